"""``python -m bench.recovery [--commands N] [--engine rust]``: an engine shard's restart on the local profile.

What a ``kill -9`` of the shard process costs before it serves again: load
the newest snapshot, then replay the Redis Stream command log after it into
the engine (``EngineShard.recover``). Set-up, not timed: the workload's
set-up commands (deposits, a book of ~4,300 resting orders) are applied and
snapshotted, then N more commands (default 1,000,000, the workload's mix:
60% passive, 30% cancels, 10% aggressive) are appended to the command
stream, and their outcomes to the event stream, as a running shard leaves
them. Timed, in a new process as after a restart: a fresh engine
recovering from the snapshot plus the N commands, on this machine's Redis
(durable: AOF, fsync always).

It prints the seconds, commands/s and whether the recovered state hash is
the one the engine reached the first time. A second run, with the event
stream missing its last 10% (as if the shard died before writing them),
times the recovery that writes those outcomes again.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path

import redis

from bench import workload
from core.engine import open_engine
from services.log.redis_streams import RedisStreamLog
from services.matcher.records import CommandRecord, Outcome, encode_command_record, encode_outcome
from services.matcher.shard import EngineShard
from services.matcher.snapshots import DiskSnapshotStore, StoredSnapshot

CHUNK = 10_000


def _fill(url: str, prefix: str, commands: list, setup: list, engine_name: str, snapshots: DiskSnapshotStore,
          missing_tail: float) -> tuple[str, int]:
    """Write the logs and the snapshot a running shard would have left; the final state hash."""
    instruments = workload.instruments()
    engine = open_engine(engine_name, instruments)
    command_log = RedisStreamLog(url, f"{prefix}commands:0")
    event_log = RedisStreamLog(url, f"{prefix}events:0")
    try:
        def write(batch: list) -> None:
            records = [encode_command_record(CommandRecord(c._replace(seq=0))) for c in batch]
            positions = command_log.append_sync(records)
            outcomes = []
            for position, command in zip(positions, batch, strict=True):
                stamped = command._replace(seq=engine.sequence + 1)
                outcomes.append(encode_outcome(Outcome(position, stamped, None, engine.submit(stamped))))
            return positions, outcomes

        last_command = last_event = 0
        for at in range(0, len(setup), CHUNK):
            positions, outcomes = write(setup[at:at + CHUNK])
            last_command = positions[-1]
            last_event = event_log.append_sync(outcomes)[-1]
        snapshots.save(StoredSnapshot(engine.sequence, last_command, last_event, engine.snapshot()))
        keep = int(len(commands) * (1 - missing_tail))
        for at in range(0, len(commands), CHUNK):
            positions, outcomes = write(commands[at:at + CHUNK])
            kept = outcomes[:max(0, keep - at)]
            if kept:
                event_log.append_sync(kept)
        return engine.state_hash(), engine.sequence
    finally:
        command_log.close()
        event_log.close()


def _recover(url: str, prefix: str, engine_name: str, snapshots: DiskSnapshotStore) -> tuple[float, int, int, str]:
    engine = open_engine(engine_name, workload.instruments())
    command_log = RedisStreamLog(url, f"{prefix}commands:0")
    event_log = RedisStreamLog(url, f"{prefix}events:0")
    try:
        shard = EngineShard(engine, command_log, event_log, snapshots)
        started = time.perf_counter()
        report = shard.recover()
        seconds = time.perf_counter() - started
        return seconds, report.replayed_commands, report.rewritten_outcomes, engine.state_hash()
    finally:
        command_log.close()
        event_log.close()


def _recover_in_new_process(args: argparse.Namespace, prefix: str, snapshots: Path) -> tuple[float, int, int, str]:
    """The timed recovery runs in a fresh process, as a restarted shard does: this one holds the whole
    generated workload, whose millions of objects the garbage collector would walk while it reads."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "bench.recovery", "--engine", args.engine, "--redis", args.redis,
         "--recover", prefix, str(snapshots)], capture_output=True, text=True, check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["seconds"], result["replayed"], result["rewritten"], result["state_hash"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--engine", default="rust")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--recover", nargs=2, metavar=("PREFIX", "SNAPSHOTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.recover:
        import json

        prefix, directory = args.recover
        seconds, replayed, rewritten, state_hash = _recover(args.redis, prefix, args.engine,
                                                            DiskSnapshotStore(Path(directory)))
        print(json.dumps({"seconds": seconds, "replayed": replayed, "rewritten": rewritten,
                          "state_hash": state_hash}))
        return 0

    print(f"generating the workload: set-up + {args.commands:,} commands ...", flush=True)
    load = workload.build(args.commands)
    client = redis.Redis.from_url(args.redis)
    config = client.config_get("append*")
    print(f"Redis: appendonly={config.get('appendonly')} appendfsync={config.get('appendfsync')}")
    for missing in (0.0, 0.1):
        prefix = f"benchrec{secrets.token_hex(4)}:"
        with tempfile.TemporaryDirectory() as directory:
            snapshots = DiskSnapshotStore(Path(directory))
            try:
                print(f"writing the logs ({'complete' if not missing else f'events missing the last {missing:.0%}'}) "
                      "...", flush=True)
                expected_hash, expected_seq = _fill(args.redis, prefix, load.commands, load.setup, args.engine,
                                                    snapshots, missing)
                seconds, replayed, rewritten, state_hash = _recover_in_new_process(args, prefix, Path(directory))
            finally:
                for key in client.scan_iter(f"{prefix}*"):
                    client.delete(key)
        print(f"  recovery ({args.engine}): {seconds:.2f} s for {replayed:,} commands after the snapshot "
              f"= {replayed / seconds:,.0f} commands/s; outcomes rewritten: {rewritten:,}; "
              f"state hash {'matches' if state_hash == expected_hash else 'DIFFERS'} (seq {expected_seq:,})",
              flush=True)
    client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
