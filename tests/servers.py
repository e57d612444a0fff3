"""The real servers the adapter tests talk to: Redis, PostgreSQL and moto (AWS APIs over HTTP).

Redis and PostgreSQL are this machine's own, on their standard ports. If one
is down, the bootstrap starts it with the machine's start command and waits;
if it still cannot be reached, the test session fails with the reason. A
test that needs a server never skips: a run that could not reach Redis must
not pass by testing less.

Redis is made durable for the tests (``appendonly yes``, ``appendfsync
always``): the local profile refuses a Redis that would lose acknowledged
appends, and the fault tests restart Redis and expect the log back. The
machine's start command runs Redis without persistence; the bootstrap turns
AOF on at run time (``CONFIG SET``) and starts a stopped Redis with AOF on.

PostgreSQL: each test session creates its own database
(``rialto_test_<random>``) and drops it at the end, so runs never see each
other's rows.

moto: one ``moto.server`` process on a free port for the session; the aws
adapters reach it over HTTP through the same aiobotocore clients production
uses (``endpoint_url``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
POSTGRES_ADMIN_DSN = os.environ.get("RIALTO_TEST_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")

REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", str(REDIS_PORT),
    "--save", "", "--appendonly", "yes", "--appendfsync", "always",
    "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]
POSTGRES_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


class ServerUnavailable(RuntimeError):
    """A server the tests need is down and could not be started."""


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_for_port(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return True
        time.sleep(0.1)
    return False


def redis_durable() -> None:
    """Turn on AOF with fsync on every write in the running Redis (idempotent)."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        config = client.config_get("append*")
        if config.get("appendonly") != "yes":
            client.config_set("appendonly", "yes")
        if config.get("appendfsync") != "always":
            client.config_set("appendfsync", "always")
        # Turning AOF on starts a rewrite; appends are durable only once it is done.
        deadline = time.monotonic() + 30
        while client.info("persistence").get("aof_rewrite_in_progress") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.close()


def start_redis() -> None:
    """Start this machine's Redis (durable) if it is down; raise ServerUnavailable if it cannot be."""
    if not port_open(REDIS_HOST, REDIS_PORT):
        if shutil.which("redis-server") is None:
            raise ServerUnavailable("Redis is down on 127.0.0.1:6379 and redis-server is not installed")
        Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
        Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
        result = subprocess.run(REDIS_START, capture_output=True, text=True)
        if not _wait_for_port(REDIS_HOST, REDIS_PORT, 15):
            raise ServerUnavailable(
                f"Redis is down on 127.0.0.1:6379 and `{' '.join(REDIS_START)}` did not bring it up "
                f"(exit {result.returncode}: {result.stderr.strip() or result.stdout.strip()})"
            )
    _wait_for_redis_loaded()
    redis_durable()


def _wait_for_redis_loaded(seconds: float = 30) -> None:
    import redis

    deadline = time.monotonic() + seconds
    while True:
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
        try:
            client.ping()
            return
        except redis.exceptions.BusyLoadingError:
            if time.monotonic() > deadline:
                raise ServerUnavailable("Redis is still loading its data after 30 s") from None
            time.sleep(0.1)
        except redis.exceptions.ConnectionError as exc:
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"Redis does not answer: {exc}") from None
            time.sleep(0.1)
        finally:
            client.close()


def stop_redis_hard() -> None:
    """``kill -9`` the Redis server (the fault tests); ``start_redis`` brings it back with its AOF."""
    subprocess.run(["pkill", "-9", "-x", "redis-server"], check=False)
    deadline = time.monotonic() + 10
    while port_open(REDIS_HOST, REDIS_PORT) and time.monotonic() < deadline:
        time.sleep(0.05)


def start_postgres() -> None:
    if port_open(POSTGRES_HOST, POSTGRES_PORT):
        return
    result = subprocess.run(POSTGRES_START, shell=True, capture_output=True, text=True)
    if not _wait_for_port(POSTGRES_HOST, POSTGRES_PORT, 30):
        raise ServerUnavailable(
            f"PostgreSQL is down on 127.0.0.1:5432 and `{POSTGRES_START}` did not bring it up "
            f"(exit {result.returncode}: {result.stderr.strip() or result.stdout.strip()})"
        )


def stop_postgres_hard() -> None:
    """Stop PostgreSQL immediately (the fault tests); ``start_postgres`` brings it back."""
    subprocess.run("pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main stop -m immediate",
                   shell=True, check=False, capture_output=True)


def create_database(prefix: str = "rialto_test") -> str:
    """A new, empty database; returns its DSN."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"


def drop_database(dsn: str) -> None:
    import psycopg

    name = dsn.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# Fixtures (imported by tests/conftest.py) -------------------------------------------
@pytest.fixture(scope="session")
def redis_url() -> str:
    """``redis://`` URL of the machine's Redis, started and made durable if needed.

    Tests share the server: each uses its own key prefix (``unique_prefix``)
    instead of flushing, so nothing of another test is touched.
    """
    try:
        start_redis()
    except ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
def unique_prefix() -> str:
    """A key prefix no other test uses (``t<random>:``)."""
    return f"t{secrets.token_hex(5)}:"


@pytest.fixture(scope="session")
def postgres_server() -> None:
    try:
        start_postgres()
    except ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def postgres_session_dsn(postgres_server: None) -> Iterator[str]:
    """A database for the whole session (dropped at the end)."""
    dsn = create_database()
    yield dsn
    drop_database(dsn)


@pytest.fixture
def postgres_dsn(postgres_server: None) -> Iterator[str]:
    """A fresh, empty database for one test (dropped afterwards)."""
    dsn = create_database()
    yield dsn
    drop_database(dsn)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>``: moto's server mode (Kinesis, DynamoDB, S3 over HTTP) for the session.

    moto logs a line per request: the log goes to a file, since a pipe nobody reads fills up (about
    64 KB) and then blocks moto mid-request.
    """
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=log)
        try:
            if not _wait_for_port("127.0.0.1", port, 30):
                log.seek(0)
                pytest.fail(f"moto server did not start on port {port}: "
                            f"{log.read().decode(errors='replace')[-2000:]}", pytrace=False)
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
