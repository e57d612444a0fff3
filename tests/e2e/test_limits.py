"""Rate limits and token expiry, on a venue configured tight: 429 with Retry-After, 401 token_expired."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from e2e.helpers import Server, register

STRICT = {
    "RIALTO_RATE_ACCOUNT_BURST": "5",
    "RIALTO_RATE_ACCOUNT_PER_SECOND": "1",
    "RIALTO_RATE_IP_BURST": "100",
    "RIALTO_RATE_IP_PER_SECOND": "10",
    "RIALTO_TOKEN_TTL": "2",
    "RIALTO_TOKEN_LEEWAY": "0",
}


@pytest.fixture(scope="module")
def strict(start_server: Callable[..., Server]) -> Server:
    return start_server(env=STRICT)


def test_an_account_over_its_rate_gets_429_with_retry_after_and_others_are_unaffected(strict: Server) -> None:
    alice, bob = register(strict, "alice"), register(strict, "bob")
    statuses = [alice.get("/v1/balances") for _ in range(8)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and all(r.status_code == 200 for r in statuses[:5])
    assert limited[0].json()["error"]["code"] == "rate_limited"
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert bob.get("/v1/balances").status_code == 200


def test_an_expired_token_is_refused_with_token_expired(strict: Server) -> None:
    user = register(strict, "expiring")
    time.sleep(2.2)
    response = httpx.get(f"{strict.url}/v1/instruments")
    assert response.status_code == 200
    expired = user.get("/v1/orders")
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "token_expired"


def test_an_address_over_its_rate_gets_429_with_retry_after(strict: Server) -> None:
    with httpx.Client(base_url=strict.url) as http, ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: http.get("/v1/instruments"), range(160)))
    limited = [r for r in responses if r.status_code == 429]
    assert limited, "the per-IP bucket never emptied"
    assert limited[0].json() == {"error": {"code": "rate_limited",
                                           "message": "too many requests from this address; slow down"}}
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert httpx.get(f"{strict.url}/healthz").status_code == 200  # health checks are exempt
