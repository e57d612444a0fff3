"""The ``rialto`` command: run a venue, look at one, rebuild one from its journal.

::

    rialto up [--profile embedded] [--host H] [--port P] [--data DIR] [--engine BACKEND] [--config FILE]
    rialto status [--url http://127.0.0.1:8000] [--data DIR] [--json]
    rialto replay [--data DIR] [--engine BACKEND] [--projections OUT.sqlite] [--json]

``up`` serves the API until SIGINT/SIGTERM (then snapshots and stops).
``status`` asks a running venue (``/admin/status``, ``/healthz``) and, if none
answers, reads the data directory: journal positions, the newest snapshot,
the projection's position. ``replay`` rebuilds the engine from the whole
command journal into a fresh engine and prints its sequence, state hash and
counts; it checks that the newest snapshot plus the journal after it gives
the same state, and with ``--projections`` writes the projections into a
fresh SQLite file. ``status`` offline and ``replay`` need the venue stopped
(the journal is locked while it runs).

Run it as ``python -m control ...`` or ``bin/rialto ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from control.config import PROFILES, Config, ConfigError, load_config
from control.logs import configure_logging


def _config(args: argparse.Namespace) -> Config:
    return load_config(
        getattr(args, "config", None),
        profile=getattr(args, "profile", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        data_dir=getattr(args, "data", None),
        engine=getattr(args, "engine", None),
    )


# up ---------------------------------------------------------------------------
def _passthrough(args: argparse.Namespace) -> list[str]:
    """The configuration flags given to ``up``, for the supervisor's child processes."""
    out: list[str] = []
    for flag in ("config", "profile", "host", "port", "data", "engine"):
        value = getattr(args, flag, None)
        if value is not None:
            out += [f"--{flag}", str(value)]
    return out


def cmd_up(args: argparse.Namespace) -> int:
    config = _config(args)
    configure_logging(config.log_level)
    if config.profile == "embedded":
        from control.venue import serve

        return serve(config)
    from control.supervisor import Supervisor

    return Supervisor(config, _passthrough(args)).run()


def cmd_role(args: argparse.Namespace) -> int:
    """One process of a multi-process venue (the supervisor starts these)."""
    config = _config(args)
    configure_logging(config.log_level)
    if args.role == "shard":
        from control.processes import shard

        return shard.run(config, args.shard)
    if args.role == "persister":
        from control.processes import persister

        return persister.run(config)
    if args.role == "marketdata":
        from control.processes import marketdata

        return marketdata.run(config)
    from control.processes import gateway

    return gateway.run(config, args.worker, args.fd)


# status -----------------------------------------------------------------------
def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _metric_lines(text: str, names: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        parts = line.rsplit(" ", 1)
        if len(parts) == 2 and parts[0] in names:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def offline_status(config: Config) -> dict[str, Any]:
    """What the data directory says, with the venue stopped."""
    from services.log.journal import Journal, JournalLocked
    from services.matcher.snapshots import DiskSnapshotStore
    from services.persistence import SqliteStore

    data = config.data_dir
    out: dict[str, Any] = {"source": "data", "data": str(data)}
    if not (data / "commands").exists():
        out["error"] = f"no venue data in {data}"
        return out
    try:
        for name in ("commands", "events"):
            with Journal(data / name) as journal:
                out[f"{name[:-1]}_log"] = {"first": journal.first_position, "last": journal.last_position}
    except JournalLocked:
        out["error"] = "the venue is running (its journal is locked); ask it with --url"
        return out
    latest = DiskSnapshotStore(data / "snapshots").latest()
    out["snapshot"] = (
        {"seq": latest.seq, "command_position": latest.command_position, "event_position": latest.event_position}
        if latest else None
    )
    path = data / "projections.sqlite"
    if path.exists():
        store = SqliteStore(path, config.build_instruments(), readonly=True)
        try:
            out["projection"] = {"position": store.position()}
        finally:
            store.close()
    return out


def cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)
    url = (args.url or f"http://{config.host}:{config.port}").rstrip("/")
    result: dict[str, Any]
    try:
        code, body = _get(f"{url}/healthz")
        result = {"source": url, "healthz": code}
        code, body = _get(f"{url}/readyz")
        result["ready"] = code == 200
        code, body = _get(f"{url}/admin/status")
        if code == 200:
            result.update(json.loads(body))
        code, body = _get(f"{url}/metrics")
        if code == 200:
            result["metrics"] = _metric_lines(body.decode(), (
                "rialto_engine_sequence", "rialto_projection_lag", "rialto_websocket_clients",
                "rialto_engine_command_seconds_total", "rialto_journal_fsyncs_total",
            ))
    except (urllib.error.URLError, OSError):
        result = offline_status(config)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        _print_tree(result)
    return 1 if "error" in result else 0


def _print_tree(value: Any, indent: str = "") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict):
                print(f"{indent}{key}:")
                _print_tree(item, indent + "  ")
            else:
                print(f"{indent}{key}: {item}")
    else:
        print(f"{indent}{value}")


# replay -----------------------------------------------------------------------
def replay(config: Config, projections: Path | None = None) -> dict[str, Any]:
    """Rebuild the engine from the whole command journal (and, optionally, the projections)."""
    from core.engine import open_engine
    from core.events import EventKind
    from services.log.journal import Journal
    from services.matcher.records import decode_command_record
    from services.matcher.snapshots import DiskSnapshotStore
    from services.persistence import Record, SqliteStore

    data = config.data_dir
    if not (data / "commands").exists():
        raise ConfigError(f"no command journal in {data}")
    instruments = config.build_instruments()
    engine = open_engine(config.engine or None, instruments)
    store = None
    if projections is not None:
        if projections.exists():
            raise ConfigError(f"{projections} exists; replay writes projections into a fresh file")
        store = SqliteStore(projections, instruments)
    kinds: Counter[str] = Counter()
    commands = 0
    started = time.perf_counter()
    snapshot = DiskSnapshotStore(data / "snapshots").latest()
    snapshot_hash_at: str | None = engine.state_hash() if snapshot is not None and snapshot.seq == 0 else None
    with Journal(data / "commands") as journal:
        if journal.first_position > 1:
            raise ConfigError(f"the command journal starts at position {journal.first_position}: older records "
                              "were truncated, and replay needs the whole journal")
        batch: list[Record] = []
        for _, payload in journal.read():
            record = decode_command_record(payload)
            command = record.command._replace(seq=engine.sequence + 1)
            events = engine.submit(command)
            commands += 1
            for event in events:
                kinds[EventKind(event.kind).name.lower()] += 1
            if store is not None:
                batch.append((command, record.client_order_id, events))
                if len(batch) >= 5_000:
                    store.apply(batch)
                    batch = []
            if snapshot is not None and command.seq == snapshot.seq:
                snapshot_hash_at = engine.state_hash()
        if store is not None:
            store.apply(batch)
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "engine": engine.backend,
        "sequence": engine.sequence,
        "state_hash": engine.state_hash(),
        "commands": commands,
        "events": dict(sorted(kinds.items())),
        "seconds": round(seconds, 3),
    }
    if snapshot is not None:
        check = open_engine(config.engine or None, instruments)
        check.restore(snapshot.engine_state)
        result["snapshot"] = {
            "seq": snapshot.seq,
            "matches_journal": check.state_hash() == snapshot_hash_at,
        }
    if store is not None:
        result["projections"] = {"path": str(projections), "position": store.position(),
                                 "ledger_problems": len(store.check_ledger())}
        store.close()
    return result


def cmd_replay(args: argparse.Namespace) -> int:
    config = _config(args)
    from services.log.journal import JournalLocked

    try:
        result = replay(config, Path(args.projections) if args.projections else None)
    except JournalLocked:
        print("the venue is running (its journal is locked): stop it first, or use `rialto status`", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        _print_tree(result)
    return 0


# the parser ---------------------------------------------------------------------
def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="a TOML configuration file (also RIALTO_CONFIG)")
    parser.add_argument("--data", help="the data directory (default ./data; also RIALTO_DATA)")
    parser.add_argument("--engine", help="engine backend: python, cython, rust, fpga-sim (default: fastest built)")
    parser.add_argument("--profile", choices=PROFILES,
                        help="embedded (one process, default), local (Redis + PostgreSQL, several processes) "
                             "or aws (Kinesis, DynamoDB, Aurora, S3)")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="rialto", description="Run and inspect a Rialto trading venue.")
    commands = root.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the venue (API on http://HOST:PORT)")
    _common(up)
    up.add_argument("--host", help="listen address (default 127.0.0.1)")
    up.add_argument("--port", type=int, help="listen port (default 8000)")
    up.set_defaults(run=cmd_up)

    role = commands.add_parser("role", help=argparse.SUPPRESS)
    _common(role)
    role.add_argument("role", choices=("shard", "persister", "marketdata", "gateway"))
    role.add_argument("--host", help=argparse.SUPPRESS)
    role.add_argument("--port", type=int, help=argparse.SUPPRESS)
    role.add_argument("--shard", type=int, default=0)
    role.add_argument("--worker", type=int, default=0)
    role.add_argument("--fd", type=int, default=None)
    role.set_defaults(run=cmd_role)

    status = commands.add_parser("status", help="a running venue's status, or the data directory's")
    _common(status)
    status.add_argument("--host", help=argparse.SUPPRESS)
    status.add_argument("--port", type=int, help=argparse.SUPPRESS)
    status.add_argument("--url", help="the venue's base URL (default http://127.0.0.1:8000)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(run=cmd_status)

    rep = commands.add_parser("replay", help="rebuild the engine (and projections) from the command journal")
    _common(rep)
    rep.add_argument("--projections", help="also write the projections into this fresh SQLite file")
    rep.add_argument("--json", action="store_true", help="print JSON")
    rep.set_defaults(run=cmd_replay)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    from core.engine import BackendUnavailable
    from services.log.base import LogError
    from services.log.journal import JournalLocked
    from services.persistence.postgres import StoreUnavailable

    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (ConfigError, BackendUnavailable) as exc:
        print(f"rialto: {exc}", file=sys.stderr)
        return 2
    except JournalLocked:
        print("rialto: another venue is running on this data directory", file=sys.stderr)
        return 2
    except (LogError, StoreUnavailable, OSError) as exc:
        # A server the profile needs is missing or unsafe (Redis without AOF, PostgreSQL down, port taken).
        print(f"rialto: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
