"""pytest hooks for the micro benchmarks.

The benchmarks are collected only when ``bench`` (or a file in it) is named on
the command line, never by a run of the whole tree (``pytest .``); at the end
of a session that ran them, a per-command summary is printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path: Path, config: Any) -> bool | None:
    if collection_path.resolve().parent != _HERE or not collection_path.name.startswith("test_"):
        return None
    for arg in config.args:
        target = Path(str(arg).split("::", 1)[0])
        target = (Path(config.invocation_params.dir) / target).resolve()
        if target == _HERE or _HERE in target.parents:
            return None
    return True


_collected = False


def pytest_collection_modifyitems(items: list[Any]) -> None:
    global _collected
    _collected = _collected or any(Path(str(item.path)).resolve().parent == _HERE for item in items)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _collected:
        return
    from bench import micro

    status = micro.backend_status()
    missing = {name: why for name, why in status.items() if why}
    if not micro.RESULTS and not missing:
        return
    write = terminalreporter.write_line
    terminalreporter.section("engine micro benchmarks: per command")
    if micro.RESULTS:
        base: dict[str, float] = {r.group: r.median_ns for r in micro.RESULTS if r.backend == "python"}
        header = f"{'case':<16}{'backend':<9}{'cmds/round':>11}{'rounds':>8}{'min/cmd':>12}{'median/cmd':>12}{'msgs/s':>12}{'vs python':>11}"
        write(header)
        write("-" * len(header))
        order = list(micro.cases())
        for r in sorted(micro.RESULTS, key=lambda r: (order.index(r.group), micro.MICRO_BACKENDS.index(r.backend))):
            rate = 1e9 / r.median_ns if r.median_ns else 0.0
            ratio = f"{base[r.group] / r.median_ns:.2f}x" if r.group in base and r.median_ns else "-"
            write(f"{r.group:<16}{r.backend:<9}{r.commands:>11,}{r.rounds:>8}{_ns(r.min_ns):>12}{_ns(r.median_ns):>12}"
                  f"{_rate(rate):>12}{ratio:>11}")
        write("Each round starts from the same restored book (a few thousand resting orders); "
              "times are per command, from the round's time.")
        ran = {r.group for r in micro.RESULTS}
        for name, case in micro.cases().items():
            if name in ran:
                write(f"  {name}: {case.description}")
    for name, why in missing.items():
        write(f"{name}: skipped, {why}")


def _ns(ns: float) -> str:
    return f"{ns:,.0f} ns" if ns < 10_000 else f"{ns / 1_000:,.1f} us"


def _rate(rate: float) -> str:
    return f"{rate / 1e6:.2f} M" if rate >= 1e6 else f"{rate / 1e3:,.0f} k"
