"""Bad input of every kind is the client's fault: a 4xx in the one error shape, never a 500."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.helpers import GENEROUS, Server, User, register

GOOD = {"symbol": "BTC-USD", "side": "buy", "price": "59000.00", "quantity": "0.01"}


def with_(**changes: Any) -> dict[str, Any]:
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not ...}


BAD_ORDERS: list[tuple[str, Any, int, str]] = [
    ("a price as a JSON number", with_(price=59000), 422, "invalid_field"),
    ("a quantity with an exponent", with_(quantity="1e-2"), 400, "invalid_quantity"),
    ("a negative quantity", with_(quantity="-0.01"), 400, "invalid_quantity"),
    ("a price beyond int64", with_(price="9" * 30), 400, "invalid_price"),
    ("a price with 39 digits", with_(price="1" * 39), 400, "invalid_price"),
    ("a price that is not a number", with_(price="sixty"), 400, "invalid_price"),
    ("NaN", with_(price="NaN"), 400, "invalid_price"),
    ("an overlong price string", with_(price="1" * 100), 422, "invalid_field"),
    ("an unknown symbol", with_(symbol="DOGE-USD"), 400, "unknown_symbol"),
    ("an unknown side", with_(side="hold"), 422, "invalid_field"),
    ("a missing side", with_(side=...), 422, "missing_field"),
    ("an unknown field", with_(leverage="100x"), 422, "unknown_field"),
    ("an overlong client order id", with_(client_order_id="x" * 65), 422, "invalid_field"),
    ("a client order id with spaces", with_(client_order_id="a b"), 422, "invalid_field"),
    ("post_only as a string", with_(post_only="true"), 422, "invalid_field"),
    ("expire_time beyond the engine's clock", with_(time_in_force="gtd", expire_time=2**70), 422, "invalid_field"),
    ("expire_time as a float", with_(time_in_force="gtd", expire_time=1.5), 422, "invalid_field"),
    ("a list instead of an object", [GOOD], 422, "invalid_field"),
    ("no body at all", None, 422, "missing_field"),
]


@pytest.fixture(scope="module")
def user(venue: Server) -> User:
    user = register(venue, "fuzzy")
    user.fund(USD="100000")
    return user


@pytest.mark.parametrize(("what", "body", "status", "code"), BAD_ORDERS, ids=[case[0] for case in BAD_ORDERS])
def test_a_bad_order_is_answered_4xx_with_a_stable_code(user: User, what: str, body: Any, status: int,
                                                         code: str) -> None:
    response = user.post("/v1/orders", body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]


def test_malformed_json_a_huge_body_and_deep_nesting_are_4xx(venue: Server, user: User) -> None:
    headers = {**user.headers, "Content-Type": "application/json"}
    cases = [
        (b"{\"symbol\": ", 400, "malformed_json"),
        (b"null", 422, "invalid_field"),
        (b"\xff\xfe not utf-8", 400, "malformed_json"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "malformed_json"),
        (b"{\"pad\": \"" + b"x" * (2 << 20) + b"\"}", 413, "payload_too_large"),
    ]
    for content, status, code in cases:
        response = httpx.post(f"{venue.url}/v1/orders", content=content, headers=headers, timeout=10.0)
        assert response.status_code == status, (content[:20], response.text)
        assert response.json()["error"]["code"] == code, (content[:20], response.text)


def test_bad_paths_and_queries_are_4xx_in_the_error_shape(venue: Server, user: User) -> None:
    cases = [
        ("GET", "/v1/orders/abc", 422, "invalid_path"),
        ("GET", f"/v1/orders/{2**64}", 422, "invalid_path"),
        ("GET", "/v1/orders/0", 422, "invalid_path"),
        ("GET", "/v1/orders/123456789", 404, "unknown_order"),
        ("GET", "/v1/orders?status=sideways", 422, "invalid_query"),
        ("GET", "/v1/orders?limit=-1", 422, "invalid_query"),
        ("GET", "/v1/orders?symbol=NOPE", 400, "unknown_symbol"),
        ("GET", "/v1/book/NOPE", 400, "unknown_symbol"),
        ("GET", "/v1/book/BTC-USD?depth=100000", 422, "invalid_query"),
        ("GET", "/v1/candles/BTC-USD?interval=7m", 422, "invalid_query"),
        ("GET", "/v1/nowhere", 404, "not_found"),
        ("PUT", "/v1/orders", 405, "method_not_allowed"),
        ("PATCH", "/v1/orders/1", 422, "missing_field"),
    ]
    for method, path, status, code in cases:
        response = httpx.request(method, f"{venue.url}{path}", headers=user.headers, timeout=10.0)
        assert response.status_code == status, (method, path, response.text)
        assert response.json()["error"]["code"] == code, (method, path, response.text)


def test_fuzzing_every_operation_from_the_openapi_document_never_gets_a_5xx(
    start_server: Callable[..., Server], tmp_path: Path,
) -> None:
    # Its own venue: fuzzed logins would otherwise slow down the shared venue's login throttle.
    server = start_server(env=GENEROUS)
    fuzzer = register(server, "fuzzer")
    fuzzer.fund(USD="100000", BTC="1", ETH="10")
    assert httpx.get(f"{server.url}/openapi.json").status_code == 200
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
        "--checks", "not_a_server_error",
        "--header", f"Authorization: Bearer {fuzzer.token}",
        "--max-examples", os.environ.get("RIALTO_FUZZ_EXAMPLES", "15"),
        "--seed", os.environ.get("RIALTO_FUZZ_SEED", "20261124"),
        "--workers", "1",
        "--generation-database", "none",
        "--request-timeout", "10",
        "--no-color",
        "--report-dir", str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "5xx" not in result.stdout
    assert '"status":500' not in server.log_tail(100_000)
