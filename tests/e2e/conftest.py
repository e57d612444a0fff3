"""End-to-end fixtures: the real ``rialto up`` process, driven over HTTP and WebSocket like a client.

``venue`` is one server for the session (generous rate limits, cheap Argon2);
tests that need their own process (crash, restart, rate limits, fuzzing)
start one with ``start_server``. ``traders`` registers and funds users and,
at teardown, cancels their open orders so tests do not trade with each
other's leftovers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from e2e.helpers import GENEROUS, Server, User, register


@pytest.fixture(scope="session")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """Start a server over a fresh (or given) data directory; every one is stopped at the end."""
    started: list[Server] = []

    def start(data: Path | None = None, env: dict[str, str] | None = None) -> Server:
        directory = data or tmp_path_factory.mktemp("venue") / "data"
        server = Server(directory, env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="session")
def venue(start_server: Callable[..., Server]) -> Server:
    return start_server(env=GENEROUS)


@pytest.fixture
def traders(venue: Server) -> Iterator[Callable[..., User]]:
    """``traders(USD="100000", BTC="2")``: a new funded user; its open orders are cancelled afterwards."""
    made: list[User] = []

    def make(prefix: str = "trader", **funds: str) -> User:
        user = register(venue, prefix)
        user.fund(**funds)
        made.append(user)
        return user

    yield make
    for user in made:
        user.delete("/v1/orders")
