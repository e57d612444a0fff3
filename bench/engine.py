"""Replay the benchmark workload through every engine backend and report throughput and latency.

    python -m bench.engine [--commands N] [--seed S] [--backends python cython rust]
                           [--repeat R] [--budget SECONDS] [--warmup W]
                           [--modes submit batch latency] [--json PATH]

For each requested backend that is importable (the others are reported as
not available, with the import error):

``submit``        one ``engine.submit(command)`` Python call per command, events
                  returned as Python ``Event`` tuples; timed over the whole stream.
``submit_batch``  one ``engine.submit_batch(array)`` call over the stream as a
                  NumPy structured array (``core.batch``), events returned as an
                  array. Python and Cython convert and loop per command inside;
                  Rust runs the whole batch natively.
``latency``       per-command latency percentiles. From Python: a separate pass
                  of ``submit`` calls, each timed with ``time.perf_counter_ns()``
                  (includes the call and the timer's own overhead, which is
                  printed). In the engine: ``submit_batch(array, record_latency=True)``
                  then ``batch_latencies()``, where the backend supports it (Rust).

Every timed run uses a fresh engine with the workload's set-up (deposits and
the commands that build the book) applied before the timer starts; the figure
kept is the best of ``--repeat`` runs (fewer for a mode whose runs already add
up to ``--budget`` seconds, so a slow backend does not stretch the run).
Every run's final ``state_hash()`` and every counted event total is checked
against what the generator's run of the reference engine produced, so all
backends are seen to do the same work; the exit status is 1 if any differs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench import workload as wl
from core.batch import commands_to_array
from core.engine import BACKENDS, BackendUnavailable, open_engine

DEFAULT_BACKENDS = ("python", "cython", "rust")
MODES = ("submit", "batch", "latency")
PERCENTILES = (50.0, 99.0, 99.9)

# (backend, what, comparison, threshold, description). "what" names a figure of Result.
TARGETS: tuple[tuple[str, str, str, float, str], ...] = (
    ("rust", "batch_rate", ">=", 20e6, "rust submit_batch, matching included: >= 20 M msgs/s"),
    ("rust", "submit_rate", ">=", 3e6, "rust submit, one Python call per command, events as Python objects: >= 3 M msgs/s"),
    ("rust", "engine_p99", "<", 1_000.0, "rust per-command latency inside the engine (record_latency), p99 < 1 us"),
    ("cython", "submit_ratio", ">=", 2.0, "cython submit >= 2x python submit"),
    ("cython", "batch_ratio", ">=", 2.0, "cython submit_batch >= 2x python submit_batch"),
    ("python", "submit_rate", ">=", 0.5e6, "python submit: >= 0.5 M msgs/s"),
)
PEERS = (
    "Peers on this workload shape and machine (from the issue, for context): a straightforward Python book "
    "~0.7 M msgs/s; nautilus_trader's PyO3 order book (no matching) 1.3 M; liquibook (C++) 4.9 M; "
    "a tight C++ array book 37 M."
)


@dataclass
class Result:
    backend: str
    available: bool = True
    reason: str = ""
    submit_runs_s: list[float] = field(default_factory=list)
    batch_runs_s: list[float] = field(default_factory=list)
    submit_rate: float | None = None
    batch_rate: float | None = None
    submit_ratio: float | None = None
    batch_ratio: float | None = None
    python_timed_ns: dict[str, float] | None = None
    engine_ns: dict[str, float] | None = None
    engine_latency_note: str = ""
    events: dict[str, int] = field(default_factory=dict)
    """Events counted, by the pass that counted them."""
    events_by_kind: dict[str, int] = field(default_factory=dict)
    hashes: dict[str, list[str]] = field(default_factory=dict)
    """Final state hash of every run, by mode."""
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def engine_p99(self) -> float | None:
        return self.engine_ns["p99"] if self.engine_ns else None


# Helpers ----------------------------------------------------------------------
def _fmt_rate(rate: float | None) -> str:
    if rate is None:
        return "-"
    if rate >= 1e6:
        return f"{rate / 1e6:,.2f} M"
    return f"{rate / 1e3:,.0f} k"


def _fmt_ns(ns: float | None) -> str:
    if ns is None:
        return "-"
    if ns < 1_000:
        return f"{ns:,.0f} ns"
    if ns < 100_000:
        return f"{ns / 1_000:,.2f} us"
    return f"{ns / 1_000:,.0f} us"


def _percentiles(latencies: np.ndarray) -> dict[str, float]:
    values = np.percentile(latencies, PERCENTILES, method="inverted_cdf")
    out = {f"p{p:g}": float(v) for p, v in zip(PERCENTILES, values, strict=True)}
    out["mean"] = float(latencies.mean())
    out["max"] = float(latencies.max())
    out["count"] = int(latencies.size)
    return out


def timer_overhead_ns() -> float:
    """Median cost of one back-to-back ``perf_counter_ns()`` pair."""
    pc = time.perf_counter_ns
    samples = []
    for _ in range(20_000):
        t0 = pc()
        samples.append(pc() - t0)
    return float(np.median(samples))


def _kind_histogram(events: Any) -> dict[str, int]:
    from core.events import EventKind

    try:
        kinds = np.asarray(events["kind"], dtype=np.int64)
    except (KeyError, ValueError, TypeError, IndexError):
        return {}
    counts = np.bincount(kinds) if kinds.size else np.zeros(0, dtype=np.int64)
    return {EventKind(k).name: int(c) for k, c in enumerate(counts) if c and k in EventKind._value2member_map_}


class Bench:
    def __init__(self, workload: wl.Workload, repeat: int, warmup: int, modes: tuple[str, ...], budget: float) -> None:
        self.workload = workload
        self.repeat = repeat
        self.budget = budget
        self.modes = modes
        self.commands = workload.commands
        self.setup_array = commands_to_array(workload.setup)
        self.array = commands_to_array(workload.commands)
        self.warm_commands = workload.commands[:warmup]
        self.warm_array = self.array[:warmup]

    def fresh(self, backend: str) -> Any:
        engine = open_engine(backend, self.workload.instruments)
        engine.submit_batch(self.setup_array)
        return engine

    def run(self, backend: str) -> Result:
        result = Result(backend)
        try:
            engine = open_engine(backend, self.workload.instruments)
        except BackendUnavailable as exc:
            result.available = False
            result.reason = str(exc.__cause__ or exc)
            return result
        except Exception as exc:  # a half-built backend: report it, go on with the others
            result.available = False
            result.reason = f"{type(exc).__name__}: {exc}"
            return result
        del engine
        started = time.perf_counter()
        expected_seq = self.workload.stats.last_seq
        expected_hash = self.workload.stats.state_hash

        def finish(engine: Any, mode: str) -> None:
            if engine.sequence != expected_seq:
                result.problems.append(f"{mode}: sequence {engine.sequence} after the run, expected {expected_seq}")
            digest = engine.state_hash()
            result.hashes.setdefault(mode, []).append(digest)
            if digest != expected_hash:
                result.problems.append(f"{mode}: state_hash {digest} differs from the reference's {expected_hash}")

        # Warm-up: a prefix through each entry point, on throw-away engines.
        engine = self.fresh(backend)
        submit = engine.submit
        for command in self.warm_commands:
            submit(command)
        engine = self.fresh(backend)
        latency_batch = True
        try:
            engine.submit_batch(self.warm_array, record_latency=False)
        except TypeError as exc:
            latency_batch = False
            result.engine_latency_note = f"not supported by this backend (submit_batch(record_latency=...): {exc})"
            engine = self.fresh(backend)
            engine.submit_batch(self.warm_array)

        n = len(self.commands)
        if "submit" in self.modes:
            while len(result.submit_runs_s) < self.repeat and sum(result.submit_runs_s) < self.budget:
                engine = self.fresh(backend)
                submit = engine.submit
                commands = self.commands
                gc.collect()
                t0 = time.perf_counter_ns()
                for command in commands:
                    submit(command)
                t1 = time.perf_counter_ns()
                result.submit_runs_s.append((t1 - t0) / 1e9)
                finish(engine, "submit")
            result.submit_rate = n / min(result.submit_runs_s)

        if "batch" in self.modes:
            while len(result.batch_runs_s) < self.repeat and sum(result.batch_runs_s) < self.budget:
                engine = self.fresh(backend)
                array = self.array
                gc.collect()
                if latency_batch:
                    t0 = time.perf_counter_ns()
                    events = engine.submit_batch(array, record_latency=False)
                    t1 = time.perf_counter_ns()
                else:
                    t0 = time.perf_counter_ns()
                    events = engine.submit_batch(array)
                    t1 = time.perf_counter_ns()
                result.batch_runs_s.append((t1 - t0) / 1e9)
                result.events["submit_batch"] = len(events)
                result.events_by_kind = _kind_histogram(events)
                del events
                finish(engine, "submit_batch")
            result.batch_rate = n / min(result.batch_runs_s)

        if "latency" in self.modes:
            # From Python: every submit call timed on its own.
            engine = self.fresh(backend)
            submit = engine.submit
            pc = time.perf_counter_ns
            latencies = [0] * n
            count = 0
            gc.collect()
            for i, command in enumerate(self.commands):
                t0 = pc()
                events = submit(command)
                latencies[i] = pc() - t0
                count += len(events)
            del events
            result.events["timed submit"] = count
            result.python_timed_ns = _percentiles(np.array(latencies, dtype=np.int64))
            del latencies
            finish(engine, "timed submit")
            # Inside the engine, where the backend measures it.
            if latency_batch:
                engine = self.fresh(backend)
                gc.collect()
                try:
                    events = engine.submit_batch(self.array, record_latency=True)
                    recorded = np.asarray(engine.batch_latencies(), dtype=np.int64)
                except (TypeError, AttributeError, NotImplementedError) as exc:
                    result.engine_latency_note = f"not supported by this backend ({type(exc).__name__}: {exc})"
                else:
                    result.events["latency batch"] = len(events)
                    del events
                    if recorded.size != n:
                        result.problems.append(f"batch_latencies() gave {recorded.size} values for {n} commands")
                    if recorded.size:
                        result.engine_ns = _percentiles(recorded)
                    finish(engine, "latency batch")
        expected_kinds = self.workload.stats.events_by_kind
        if result.events_by_kind and result.events_by_kind != expected_kinds:
            result.problems.append(f"submit_batch: events per kind {result.events_by_kind}, the reference's {expected_kinds}")
        expected_events = self.workload.stats.events
        for where, count in result.events.items():
            if count != expected_events:
                result.problems.append(f"{where}: {count:,} events, the reference produced {expected_events:,}")
        result.seconds = time.perf_counter() - started
        return result


def _ratios(results: list[Result]) -> None:
    base = next((r for r in results if r.backend == "python" and r.available), None)
    for r in results:
        if base is not None and r.available:
            if r.submit_rate and base.submit_rate:
                r.submit_ratio = r.submit_rate / base.submit_rate
            if r.batch_rate and base.batch_rate:
                r.batch_ratio = r.batch_rate / base.batch_rate


def _targets(results: list[Result]) -> list[dict[str, Any]]:
    by_name = {r.backend: r for r in results}
    out = []
    for backend, what, op, threshold, text in TARGETS:
        r = by_name.get(backend)
        value: float | None = None
        if r is None:
            status = "not run"
        elif not r.available:
            status = "n/a (backend not available)"
        else:
            value = getattr(r, what)
            if value is None:
                if what.endswith("ratio"):
                    status = "n/a (python not measured)"
                elif what == "engine_p99" and r.engine_latency_note:
                    status = "n/a (no in-engine latency)"
                else:
                    status = "n/a (not measured)"
            else:
                ok = value >= threshold if op == ">=" else value < threshold
                status = "pass" if ok else "short"
        out.append({"backend": backend, "target": text, "figure": what, "op": op, "threshold": threshold,
                    "value": value, "status": status})
    return out


def _fmt_target_value(what: str, value: float | None) -> str:
    if value is None:
        return "-"
    if what.endswith("ratio"):
        return f"{value:.2f}x"
    if what.endswith("rate"):
        return _fmt_rate(value) + " msgs/s"
    return _fmt_ns(value)


def report(results: list[Result], workload: wl.Workload, args: argparse.Namespace, overhead: float) -> bool:
    """Print the tables; return True when every check passed."""
    n = len(workload.commands)
    print()
    print(f"Results: {n:,} commands per run; msgs/s is the best of the runs (up to {args.repeat}, fewer once a "
          f"mode's runs add up to {args.budget:g} s), each on a fresh engine with the set-up "
          f"({len(workload.setup):,} commands) applied before the timer")
    def ratio(value: float | None) -> str:
        return f"{value:.2f}x" if value is not None else "-"

    header = ("backend", "mode", "runs", "msgs/s", "vs python", "p50", "p99", "p99.9", "latency measured")
    rows: list[tuple[str, ...]] = []
    for r in results:
        if not r.available:
            rows.append((r.backend, "NOT AVAILABLE", "-", "-", "-", "-", "-", "-", r.reason[:70]))
            continue
        pt = r.python_timed_ns or {}
        rows.append((r.backend, "submit", str(len(r.submit_runs_s)), _fmt_rate(r.submit_rate), ratio(r.submit_ratio),
                     _fmt_ns(pt.get("p50")), _fmt_ns(pt.get("p99")), _fmt_ns(pt.get("p99.9")),
                     "per submit call, from Python" if pt else "-"))
        en = r.engine_ns or {}
        rows.append((r.backend, "submit_batch", str(len(r.batch_runs_s)), _fmt_rate(r.batch_rate), ratio(r.batch_ratio),
                     _fmt_ns(en.get("p50")), _fmt_ns(en.get("p99")), _fmt_ns(en.get("p99.9")),
                     "per command, inside the engine" if en else "-"))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" if i < 2 or i == 8 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*header).rstrip())
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row).rstrip())
    print(f"Latency from Python includes the perf_counter_ns() pair around each call ({overhead:.0f} ns here).")
    no_engine_latency = [r.backend for r in results if r.available and r.engine_latency_note]
    if no_engine_latency and "latency" in args.modes:
        whose = "its" if len(no_engine_latency) == 1 else "their"
        print(f"No in-engine latency for {', '.join(no_engine_latency)} (submit_batch() takes no record_latency); "
              f"{whose} submit_batch runs the same per-command code as submit.")

    print()
    expected_events = workload.stats.events
    expected_hash = workload.stats.state_hash
    print(f"Checks against the generator's run of the reference engine ({expected_events:,} events, "
          f"final state_hash {expected_hash}):")
    all_ok = True
    agreeing = []
    for r in results:
        if not r.available:
            continue
        counted = ", ".join(f"{k} {v:,}" for k, v in r.events.items()) or "not counted (no batch or latency pass)"
        runs = sum(len(v) for v in r.hashes.values())
        if r.problems:
            all_ok = False
            print(f"  {r.backend}: MISMATCH")
            for p in r.problems[:10]:
                print(f"    {p}")
        else:
            agreeing.append(r.backend)
            kinds = "; same events per kind" if r.events_by_kind else ""
            print(f"  {r.backend}: ok - events: {counted}{kinds}; state_hash as expected in all {runs} runs")
    if len(agreeing) > 1 and all_ok:
        print(f"  all backends agree ({', '.join(agreeing)}): same event count, events per kind and final state")
    missing = [r.backend for r in results if not r.available]
    if missing:
        print(f"  not available, not measured: {', '.join(missing)}")

    print()
    print("Targets:")
    for t in _targets(results):
        print(f"  {t['status']:<28} {_fmt_target_value(t['figure'], t['value']):>16}  {t['target']}")
    print()
    print(PEERS)
    return all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__.split("\n")[0])
    parser.add_argument("--commands", "-n", type=int, default=1_000_000, help="measured commands (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=wl.DEFAULT_SEED)
    parser.add_argument("--backends", nargs="+", default=list(DEFAULT_BACKENDS), choices=list(BACKENDS),
                        metavar="NAME", help=f"from {', '.join(BACKENDS)} (default: {' '.join(DEFAULT_BACKENDS)})")
    parser.add_argument("--repeat", "-r", type=int, default=3, help="timed runs per mode; the best is kept (default 3)")
    parser.add_argument("--budget", type=float, default=15.0, metavar="SECONDS",
                        help="stop repeating a mode once its timed runs add up to this (default 15; one run always)")
    parser.add_argument("--warmup", type=int, default=50_000, help="commands replayed per entry point before timing")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES, help="what to measure (default: all)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    if args.commands < 1 or args.repeat < 1:
        parser.error("--commands and --repeat must be positive")
    args.modes = tuple(args.modes)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print("Rialto matching engine benchmark")
    print(f"  machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, load average {load:.2f}; "
          f"Python {platform.python_version()}, NumPy {np.__version__}")
    started = time.perf_counter()
    workload = wl.build(args.commands, args.seed)
    generated = time.perf_counter() - started
    print("  " + workload.stats.summary().replace("\n", "\n  "))
    print(f"  (generated in {generated:.1f} s)")
    gc.collect()
    gc.freeze()  # the workload lives all run long: keep it out of the collector's scans
    bench = Bench(workload, args.repeat, min(args.warmup, args.commands), args.modes, args.budget)
    overhead = timer_overhead_ns()
    results = []
    for backend in args.backends:
        print(f"\n{backend}: ", end="", flush=True)
        try:
            r = bench.run(backend)
        except Exception as exc:  # a backend that fails mid-run is reported, the others still run
            r = Result(backend, problems=[f"the run failed: {type(exc).__name__}: {exc}"])
        if r.available and not r.seconds:
            print(f"FAILED - {r.problems[0]}", flush=True)
        elif r.available:
            print(f"measured in {r.seconds:.1f} s", flush=True)
        else:
            print(f"NOT AVAILABLE - {r.reason}", flush=True)
        results.append(r)
    _ratios(results)
    ok = report(results, workload, args, overhead)
    if args.json:
        payload = {
            "meta": {
                "commands": args.commands, "seed": args.seed, "repeat": args.repeat, "budget_s": args.budget,
                "warmup": args.warmup,
                "modes": list(args.modes), "python": platform.python_version(), "numpy": np.__version__,
                "platform": platform.platform(), "cpus": os.cpu_count(), "load_average": load,
                "timer_overhead_ns": overhead, "argv": sys.argv[1:], "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
            "workload": workload.stats.as_dict(),
            "backends": {r.backend: r.__dict__ for r in results},
            "targets": _targets(results),
            "checks_ok": ok,
        }
        with open(args.json, "w") as fh:
            json.dump(payload, fh, indent=2, default=str)
        print(f"\nwrote {args.json}")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
