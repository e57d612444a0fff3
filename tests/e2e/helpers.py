"""End-to-end helpers: a ``rialto up`` process (``Server``) and a logged-in client (``User``)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "e2e: tangerine-quartz-7141"
GENEROUS = {
    "RIALTO_RATE_IP_BURST": "1000000",
    "RIALTO_RATE_IP_PER_SECOND": "1000000",
    "RIALTO_RATE_ACCOUNT_BURST": "1000000",
    "RIALTO_RATE_ACCOUNT_PER_SECOND": "1000000",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


PROFILE = os.environ.get("RIALTO_E2E_PROFILE", "embedded")
"""The profile the end-to-end suite runs on: ``embedded`` (default) or ``local`` (``make test`` runs both)."""


def local_profile_env(data: Path) -> dict[str, str]:
    """The local profile's settings for a venue over ``data``: its own PostgreSQL database and Redis keys,
    made once and kept in the data directory, so a restart over the same directory finds its state."""
    import json

    from servers import create_database, start_postgres, start_redis

    marker = data / "local-profile.json"
    if marker.exists():
        settings: dict[str, str] = json.loads(marker.read_text())
        return settings
    start_redis()
    start_postgres()
    data.mkdir(parents=True, exist_ok=True)
    settings = {
        "RIALTO_PROFILE": "local",
        "RIALTO_POSTGRES_DSN": create_database("rialto_e2e"),
        "RIALTO_KEY_PREFIX": f"e2e{uuid.uuid4().hex[:10]}:",
        "RIALTO_SNAPSHOT_SECONDS": "5",
    }
    marker.write_text(json.dumps(settings))
    return settings


class Server:
    """One ``python -m control up`` process (with its children, in the local profile) on a free port."""

    def __init__(self, data: Path, env: dict[str, str] | None = None) -> None:
        self.data = data
        self.profile = (env or {}).get("RIALTO_PROFILE", PROFILE)
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = data.parent / f"{data.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws"

    def start(self, timeout: float = 30.0) -> Server:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RIALTO_ARGON2": "cheap", "RIALTO_LOG_LEVEL": "warning",
               **self.extra_env}
        if self.profile == "local":
            env.update(local_profile_env(self.data))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "control", "up", "--port", str(self.port), "--data", str(self.data)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server not ready in {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM: the orderly stop (snapshot on the way out)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash (of every process of the venue)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def pids(self) -> dict[str, int]:
        """Local profile: each role's pid, as the supervisor reports it."""
        import json

        state = json.loads((self.data / "supervisor.json").read_text())
        return {name: info["pid"] for name, info in state.items() if info["pid"]}

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0, **kwargs)

    def status(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/admin/status", timeout=10.0)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


@dataclass
class User:
    server: Server
    username: str
    account_id: int
    token: str
    funded: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.Client:
        return self.server.client(headers=self.headers)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.server.url}{path}", headers=self.headers, timeout=10.0, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.server.url}{path}", json=body, headers=self.headers, timeout=10.0, **kwargs)

    def patch(self, path: str, body: Any = None) -> httpx.Response:
        return httpx.patch(f"{self.server.url}{path}", json=body, headers=self.headers, timeout=10.0)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.delete(f"{self.server.url}{path}", headers=self.headers, timeout=10.0, **kwargs)

    def order(self, **fields: Any) -> httpx.Response:
        return self.post("/v1/orders", fields)

    def balances(self) -> dict[str, dict[str, str]]:
        response = self.get("/v1/balances")
        assert response.status_code == 200, response.text
        return {b["asset"]: b for b in response.json()}

    def fund(self, **amounts: str) -> None:
        for asset, amount in amounts.items():
            response = self.post("/v1/faucet", {"asset": asset, "amount": amount})
            assert response.status_code == 200, response.text
            self.funded[asset] = amount


def register(server: Server, prefix: str = "user") -> User:
    username = f"{prefix}-{uuid.uuid4().hex[:10]}"
    response = httpx.post(f"{server.url}/v1/auth/register", json={"username": username, "password": PASSWORD},
                          timeout=10.0)
    assert response.status_code == 201, response.text
    account_id = response.json()["account_id"]
    return User(server, username, account_id, login(server, username))


def login(server: Server, username: str, totp: str | None = None) -> str:
    body: dict[str, Any] = {"username": username, "password": PASSWORD}
    if totp is not None:
        body["totp"] = totp
    response = httpx.post(f"{server.url}/v1/auth/login", json=body, timeout=10.0)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout} s")
        time.sleep(interval)
