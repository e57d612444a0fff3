"""A fresh venue for one benchmark: ``python -m control up`` over a temporary data directory on a free port.

The load settings are explicit (and printed with every result):

* rate limits raised far above the offered load (``RIALTO_RATE_*`` = 10^9): the benchmarks measure the
  order path, not the limiter refusing it (the limiter still runs: every request takes its tokens);
* the faucet's caps raised (a TOML ``[faucet]`` table) so that a few requests fund a user for the run;
* cheap Argon2 (``RIALTO_ARGON2=cheap``), since the set-up registers and logs in many users;
* tokens valid for an hour (``RIALTO_TOKEN_TTL``) so that none expires during a run;
* log level ``warning`` (no per-request logging; 4xx responses are logged at info, so not at all).

Everything else is the default embedded profile: the file journal with group commit and
``fsync = every_batch`` (an order is acknowledged only after its batch is fdatasync'ed), the engine
backend the venue picks (the fastest built), SQLite projections, the market-data hub.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]

LOAD_ENV = {
    "RIALTO_ARGON2": "cheap",
    "RIALTO_LOG_LEVEL": "warning",
    "RIALTO_TOKEN_TTL": "3600",
    "RIALTO_RATE_IP_BURST": "1000000000",
    "RIALTO_RATE_IP_PER_SECOND": "1000000000",
    "RIALTO_RATE_ACCOUNT_BURST": "1000000000",
    "RIALTO_RATE_ACCOUNT_PER_SECOND": "1000000000",
}

FAUCET_TOML = """\
[faucet]
enabled = true
[faucet.per_request]
BTC = "100000"
ETH = "100000"
USD = "1000000000"
[faucet.per_hour]
BTC = "1000000"
ETH = "1000000"
USD = "10000000000"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Venue:
    """One venue process; ``with Venue() as venue: ...`` starts it and always stops it (then removes its data)."""

    def __init__(self, extra_env: dict[str, str] | None = None, keep: bool = False, profile: str = "embedded",
                 gateways: int = 2) -> None:
        self.profile = profile
        self.gateways = gateways
        self.database = ""
        self.key_prefix = ""
        self.tmp = Path(tempfile.mkdtemp(prefix="rialto-bench-"))
        self.data = self.tmp / "data"
        self.log_path = self.tmp / "venue.log"
        self.config_path = self.tmp / "bench.toml"
        self.extra_env = extra_env or {}
        self.keep = keep
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def env(self) -> dict[str, str]:
        env = {**LOAD_ENV, **self.extra_env}
        if self.profile == "local":
            env.update({"RIALTO_PROFILE": "local", "RIALTO_POSTGRES_DSN": self.database,
                        "RIALTO_KEY_PREFIX": self.key_prefix, "RIALTO_GATEWAYS": str(self.gateways)})
        return env

    def pids(self) -> list[int]:
        """The venue's processes: the one process, or the supervisor and every process it runs."""
        assert self.proc is not None
        pids = [self.proc.pid]
        state = self.data / "supervisor.json"
        if self.profile == "local" and state.exists():
            import json

            pids += [info["pid"] for info in json.loads(state.read_text()).values() if info["pid"]]
        return pids

    def start(self, timeout: float = 60.0) -> Venue:
        self.config_path.write_text(FAUCET_TOML)
        self.port = free_port()
        if self.profile == "local" and not self.database:
            import secrets

            import psycopg

            name = f"rialto_bench_{secrets.token_hex(4)}"
            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            self.database = f"postgresql://postgres@127.0.0.1:5432/{name}"
            self.key_prefix = f"bench{secrets.token_hex(4)}:"
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "control", "up", "--port", str(self.port), "--data", str(self.data),
                 "--config", str(self.config_path)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"venue exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"venue not ready in {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (the orderly stop: snapshot, projection caught up); SIGKILL if it does not stop in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def drop_servers_state(self) -> None:
        """Local profile: remove the benchmark's database and Redis keys."""
        if not self.database:
            return
        import psycopg
        import redis

        name = self.database.rsplit("/", 1)[1]
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = redis.Redis()
        try:
            for key in client.scan_iter(f"{self.key_prefix}*", count=1000):
                client.delete(key)
        finally:
            client.close()

    def __enter__(self) -> Venue:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            if not self.keep:
                shutil.rmtree(self.tmp, ignore_errors=True)
                self.drop_servers_state()

    # Reading the venue ------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/admin/status", timeout=30.0)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def metrics(self) -> dict[str, float]:
        """``/metrics`` as {series: value} (series with their labels, as Prometheus prints them)."""
        text = httpx.get(f"{self.url}/metrics", timeout=30.0).text
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def wait_projection(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until the projection has applied everything the engine has (lag 0); the last status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if self.profile == "local":
                status["projection"]["lag"] = status["sequence"] - status["projection"]["applied"].get("0", 0)
            if status["projection"]["lag"] == 0 or time.monotonic() > deadline:
                return status
            time.sleep(0.2)

    def projection_counts(self) -> dict[str, int]:
        """Orders in the projection (read-only while the venue runs), by status, and their total."""
        if self.profile == "local":
            import psycopg

            with psycopg.connect(self.database) as conn:
                rows = conn.execute("SELECT status, count(*) FROM orders GROUP BY status").fetchall()
            counts = {str(status): int(n) for status, n in rows}
            counts["total"] = sum(counts.values())
            return counts
        db = sqlite3.connect(f"file:{self.data / 'projections.sqlite'}?mode=ro", uri=True, timeout=30.0)
        try:
            rows = db.execute("SELECT status, count(*) FROM orders GROUP BY status").fetchall()
        finally:
            db.close()
        counts = {str(status): int(n) for status, n in rows}
        counts["total"] = sum(counts.values())
        return counts


def orders_accepted(metrics: dict[str, float]) -> tuple[int, int]:
    """(accepted, rejected) from ``rialto_orders_total``."""
    return (int(metrics.get('rialto_orders_total{result="accepted"}', 0)),
            int(metrics.get('rialto_orders_total{result="rejected"}', 0)))


def copy_log(venue: Venue, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(venue.log_path, dest)
