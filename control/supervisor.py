"""The supervisor: runs a multi-process venue (local and aws profiles) and keeps it running.

``rialto up --profile local`` starts, in this order::

    shard 0..S-1     engine shards (control.processes.shard)      recover, then follow the command logs
    persister        projections into PostgreSQL                  (control.processes.persister)
    marketdata       market data to Redis pub/sub                  (control.processes.marketdata)
    gateway 0..G-1   the API, sharing one listening socket         (control.processes.gateway)

Before any of them it checks the servers (Redis must be durable as
``redis_fsync`` demands; PostgreSQL is migrated), and opens the listening
socket, which every gateway worker inherits: the kernel spreads connections
over them, and a restarted worker picks up the same socket, so the port
never closes while the venue runs.

A child that exits without being asked to is started again after a backoff
(0.5 s doubling to 10 s, back to 0.5 s once a child has run for 30 s): a
``kill -9`` of any process is repaired by a restart, which recovers from the
logs. The supervisor writes ``<data>/supervisor.json`` with each role's pid
and restart count, for operators and the fault tests.

Stop (SIGTERM or Ctrl-C): the gateways first (they drain in-flight
requests), then the shards (each writes a snapshot), then the persister and
market data; anything still running after its grace period is killed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from control import adapters
from control.config import Config

log = logging.getLogger("rialto.supervisor")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
HEALTHY_AFTER = 30.0


@dataclass
class Child:
    name: str
    argv: list[str]
    group: int
    """Stop order: lower groups stop first."""
    pass_fds: tuple[int, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = BACKOFF_FIRST
    next_start: float = 0.0
    exits: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, pass_fds=self.pass_fds)
        self.started = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.process.pid,
                 extra={"fields": {"role": self.name, "pid": self.process.pid}})


class Supervisor:
    def __init__(self, config: Config, config_args: list[str]) -> None:
        self.config = config
        self.config_args = config_args
        self.children: list[Child] = []
        self.stopping = False
        self.listener: socket.socket | None = None
        self.state_file = Path(config.data_dir) / "supervisor.json"

    def _role(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "control", "role", *args, *self.config_args]

    def plan(self, fd: int) -> list[Child]:
        children = [Child(f"shard-{k}", self._role("shard", "--shard", str(k)), group=1)
                    for k in range(len(self.config.shard_specs()))]
        children.append(Child("persister", self._role("persister"), group=2))
        children.append(Child("marketdata", self._role("marketdata"), group=2))
        children += [Child(f"gateway-{i}", self._role("gateway", "--worker", str(i), "--fd", str(fd)), group=0,
                           pass_fds=(fd,)) for i in range(self.config.gateways)]
        return children

    def open_listener(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.config.host, self.config.port))
        listener.listen(2048)
        listener.set_inheritable(True)
        return listener

    def run(self) -> int:
        Path(self.config.data_dir).mkdir(parents=True, exist_ok=True)
        adapters.check_servers(self.config)
        self.listener = self.open_listener()
        self.children = self.plan(self.listener.fileno())
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        for child in self.children:
            child.start()
        self._write_state()
        log.info("venue (%s profile) serving on http://%s:%d with %d gateway workers", self.config.profile,
                 self.config.host, self.config.port, self.config.gateways)
        while not self.stopping:
            self._watch()
            time.sleep(0.1)
        self._stop_all()
        self.listener.close()
        return 0

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def _watch(self) -> None:
        now = time.monotonic()
        changed = False
        for child in self.children:
            process = child.process
            if process is not None and process.poll() is not None:
                code = process.returncode
                child.exits.append(code)
                child.process = None
                ran = now - child.started
                if ran > HEALTHY_AFTER:
                    child.backoff = BACKOFF_FIRST
                child.next_start = now + child.backoff
                log.error("%s exited with %d after %.1f s; restarting in %.1f s", child.name, code, ran,
                          child.backoff, extra={"fields": {"role": child.name, "code": code}})
                child.backoff = min(child.backoff * 2, BACKOFF_MAX)
                changed = True
            if child.process is None and now >= child.next_start:
                child.restarts += 1
                child.start()
                changed = True
        if changed:
            self._write_state()

    def _stop_all(self) -> None:
        for group, grace in ((0, 15.0), (1, 30.0), (2, 10.0)):
            members = [c for c in self.children if c.group == group and c.process is not None]
            for child in members:
                assert child.process is not None
                child.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for child in members:
                assert child.process is not None
                try:
                    child.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.error("%s did not stop in %.0f s; killing it", child.name, grace)
                    child.process.kill()
                    child.process.wait()
        log.info("venue stopped")

    def _write_state(self) -> None:
        state = {c.name: {"pid": c.process.pid if c.process else None, "restarts": c.restarts, "exits": c.exits}
                 for c in self.children}
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=1))
        os.replace(temporary, self.state_file)
