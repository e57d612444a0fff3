"""The gateway's fast path (``services.gateway.fastpath``) answers exactly as FastAPI's routes do.

Two real venues (``rialto up``, embedded profile) take the same requests in
the same order: one with the fast path (the default), one without
(``RIALTO_FAST_PATH=0``). Every answer must match: status, the headers that
matter, and the body (ids and times aside, which are the two venues' own).
At the end, the two venues' request metrics and per-request log lines
(route template, status, error code, account) must match too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from e2e.helpers import GENEROUS, PASSWORD, Server, login

from services.gateway.auth import sign_request
from services.gateway.fastpath import FastPath, OrderBody, decode_order, is_json_content_type
from services.gateway.schemas import MAX_INT64, MAX_TIME_MS, OrderRequest

ACCOUNT_BURST = 40
ENV = {
    **GENEROUS,
    "RIALTO_PROFILE": "embedded",
    "RIALTO_LOG_LEVEL": "debug",  # one log line per request: the two venues' lines are compared at the end
    # Tight enough for a rate-limit test to exhaust an account, loose enough for every other test's users.
    "RIALTO_RATE_ACCOUNT_BURST": str(ACCOUNT_BURST),
    "RIALTO_RATE_ACCOUNT_PER_SECOND": "0.001",
}
TIMES = {"created_time", "updated_time", "time"}
IDS = {"id", "order_id", "trade_id"}
HEADERS = ("content-type", "idempotent-replayed", "retry-after", "www-authenticate", "allow", "location")
GOOD = {"symbol": "BTC-USD", "side": "buy", "type": "limit", "price": "59000.00", "quantity": "0.0100"}


# Two venues, one per path ---------------------------------------------------------------
class Side:
    """One venue, and the ids it has answered with (so both venues' ids can be compared by position)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.ids: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.server.url}{path}", timeout=10.0, **kwargs)

    def user(self, prefix: str, **funds: str) -> dict[str, Any]:
        username = f"{prefix}-{time.monotonic_ns()}"
        response = self.request("POST", "/v1/auth/register", json={"username": username, "password": PASSWORD})
        assert response.status_code == 201, response.text
        token = login(self.server, username)
        auth = {"Authorization": f"Bearer {token}"}
        for asset, amount in funds.items():
            funded = self.request("POST", "/v1/faucet", json={"asset": asset, "amount": amount}, headers=auth)
            assert funded.status_code == 200, funded.text
        return {"username": username, "account_id": response.json()["account_id"], "auth": auth}

    def normal(self, value: Any) -> Any:
        """``value`` with times blanked and ids numbered by first appearance on this venue."""
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key in TIMES and isinstance(item, int):
                    out[key] = "<time>"
                elif key in IDS and isinstance(item, str):
                    out[key] = self.ids.setdefault(item, f"<id {len(self.ids)}>")
                else:
                    out[key] = self.normal(item)
            return out
        if isinstance(value, list):
            return [self.normal(item) for item in value]
        return value


@pytest.fixture(scope="module")
def venues(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, Side]]:
    root = tmp_path_factory.mktemp("fastpath")
    fast = Server(root / "fast", ENV)
    slow = Server(root / "slow", {**ENV, "RIALTO_FAST_PATH": "0"})
    try:
        fast.start()
        slow.start()
        yield Side(fast), Side(slow)
    finally:
        fast.kill()
        slow.kill()


Scenario = Callable[[Side], list[httpx.Response]]


def answer(side: Side, response: httpx.Response) -> dict[str, Any]:
    headers = {name: response.headers.get(name) for name in HEADERS}
    if headers["location"] is not None:
        headers["location"] = headers["location"].replace(side.server.url, "<venue>")
    if headers["retry-after"] is not None:
        headers["retry-after"] = "<set>"  # seconds to wait: depends on when each venue was asked
    try:
        body: Any = side.normal(response.json())
    except ValueError:
        body = response.text
    names = [name for name in response.headers if name not in ("date", "server")]
    return {"status": response.status_code, "headers": headers, "header_names": names, "body": body}


def same(venues: tuple[Side, Side], scenario: Scenario) -> list[dict[str, Any]]:
    """Run ``scenario`` on both venues; their answers must be the same. Returns the fast path's."""
    fast, slow = venues
    answers = [[answer(side, r) for r in scenario(side)] for side in (fast, slow)]
    assert answers[0] == answers[1]
    return answers[0]


def post_raw(side: Side, user: dict[str, Any], content: bytes, content_type: str | None = "application/json",
             headers: dict[str, str] | None = None) -> httpx.Response:
    sent = {**user["auth"], **(headers or {})}
    if content_type is not None:
        sent["Content-Type"] = content_type
    return side.request("POST", "/v1/orders", content=content, headers=sent)


def post(side: Side, user: dict[str, Any], body: Any) -> httpx.Response:
    return post_raw(side, user, json.dumps(body).encode())


# Orders that are placed ------------------------------------------------------------------
def test_valid_orders_limit_market_ioc_post_only_stop_gtd(venues: tuple[Side, Side]) -> None:
    def scenario(side: Side) -> list[httpx.Response]:
        maker = side.user("maker", BTC="1", USD="100000")
        taker = side.user("taker", BTC="1", USD="100000")
        return [
            post(side, maker, GOOD),
            post(side, maker, {**GOOD, "side": "sell", "price": "60000.00", "quantity": "0.0200"}),
            post(side, taker, {"symbol": "BTC-USD", "side": "buy", "type": "market", "quantity": "0.0100"}),
            post(side, taker, {"symbol": "BTC-USD", "side": "buy", "type": "market", "quote_quantity": "100.00"}),
            post(side, taker, {**GOOD, "price": "60000.00", "time_in_force": "ioc"}),
            post(side, taker, {**GOOD, "post_only": True, "stp": "cancel_both"}),
            post(side, taker, {**GOOD, "type": "stop_limit", "stop_price": "61000.00", "price": "61000.00"}),
            post(side, taker, {**GOOD, "time_in_force": "gtd", "expire_time": MAX_TIME_MS}),
            post(side, taker, {**GOOD, "time_in_force": None, "price": "59000.01", "client_order_id": None}),
            # JSON variants FastAPI also takes: a charset, a +json type, whitespace, duplicate keys (last wins)
            post_raw(side, taker, json.dumps(GOOD).encode(), "application/json; charset=utf-8"),
            post_raw(side, taker, json.dumps(GOOD).encode(), "application/vnd.rialto+json"),
            post_raw(side, taker, b" \n" + json.dumps(GOOD).encode() + b"\r\n\t"),
            post_raw(side, taker, b'{"side":"sell","symbol":"BTC-USD","side":"buy","price":"59000.00","quantity":"0.0001"}'),
            post_raw(side, taker, b'{"sym\\u0062ol":"BTC-USD","side":"buy","price":"59000.00","quantity":"0.0001"}'),
        ]

    answers = same(venues, scenario)
    assert [a["status"] for a in answers] == [201] * len(answers)
    assert answers[2]["body"]["type"] == "market"


def test_a_repeated_client_order_id_is_replayed(venues: tuple[Side, Side]) -> None:
    def scenario(side: Side) -> list[httpx.Response]:
        user = side.user("dup", USD="100000")
        body = {**GOOD, "client_order_id": "dup-1"}
        return [
            post(side, user, body),
            post(side, user, body),
            post(side, user, {**body, "price": "58000.00"}),  # another body, the same id: the first result
            post(side, user, {**GOOD, "client_order_id": "rejected-1", "quantity": "10"}),  # insufficient funds
            post(side, user, {**GOOD, "client_order_id": "rejected-1", "quantity": "10"}),
        ]

    answers = same(venues, scenario)
    assert [a["status"] for a in answers] == [201, 201, 201, 422, 422]
    assert [a["headers"]["idempotent-replayed"] for a in answers] == [None, "true", "true", None, "true"]


# Orders that are refused -------------------------------------------------------------------
BAD_BODIES: list[tuple[str, bytes, str | None]] = [
    ("bad side", json.dumps({**GOOD, "side": "hold"}).encode(), "application/json"),
    ("side in capitals", json.dumps({**GOOD, "side": "BUY"}).encode(), "application/json"),
    ("negative price", json.dumps({**GOOD, "price": "-1.00"}).encode(), "application/json"),
    ("price as a number", json.dumps({**GOOD, "price": 50000}).encode(), "application/json"),
    ("negative price number", json.dumps({**GOOD, "price": -1}).encode(), "application/json"),
    ("price off the tick", json.dumps({**GOOD, "price": "50000.001"}).encode(), "application/json"),
    ("quantity below the lot", json.dumps({**GOOD, "quantity": "0.00001"}).encode(), "application/json"),
    ("missing symbol", json.dumps({k: v for k, v in GOOD.items() if k != "symbol"}).encode(), "application/json"),
    ("missing side", json.dumps({k: v for k, v in GOOD.items() if k != "side"}).encode(), "application/json"),
    ("missing price", json.dumps({k: v for k, v in GOOD.items() if k != "price"}).encode(), "application/json"),
    ("empty object", b"{}", "application/json"),
    ("extra field", json.dumps({**GOOD, "leverage": "100x"}).encode(), "application/json"),
    ("two extra fields", json.dumps({"zz": 1, **GOOD, "aa": 2}).encode(), "application/json"),
    ("symbol a number", json.dumps({**GOOD, "symbol": 5}).encode(), "application/json"),
    ("symbol null", json.dumps({**GOOD, "symbol": None}).encode(), "application/json"),
    ("type null", json.dumps({**GOOD, "type": None}).encode(), "application/json"),
    ("post_only a string", json.dumps({**GOOD, "post_only": "true"}).encode(), "application/json"),
    ("post_only 1", json.dumps({**GOOD, "post_only": 1}).encode(), "application/json"),
    ("expire_time a string", json.dumps({**GOOD, "time_in_force": "gtd", "expire_time": "1"}).encode(),
     "application/json"),
    ("expire_time a float", json.dumps({**GOOD, "time_in_force": "gtd", "expire_time": 1.5}).encode(),
     "application/json"),
    ("expire_time 1.0", b'{"symbol":"BTC-USD","side":"buy","price":"1.00","quantity":"1","expire_time":1.0}',
     "application/json"),
    ("expire_time true", json.dumps({**GOOD, "expire_time": True}).encode(), "application/json"),
    ("expire_time negative", json.dumps({**GOOD, "time_in_force": "gtd", "expire_time": -1}).encode(),
     "application/json"),
    ("expire_time past the clock", json.dumps({**GOOD, "expire_time": MAX_TIME_MS + 1}).encode(), "application/json"),
    ("expire_time 2**70", json.dumps({**GOOD, "expire_time": 2**70}).encode(), "application/json"),
    ("expire_time of 5000 digits", b'{"symbol":"BTC-USD","side":"buy","expire_time":' + b"9" * 5000 + b"}",
     "application/json"),
    ("expire_time 1e400", b'{"symbol":"BTC-USD","side":"buy","expire_time":1e400}', "application/json"),
    ("expire_time NaN", b'{"symbol":"BTC-USD","side":"buy","expire_time":NaN}', "application/json"),
    ("price of 39 digits", json.dumps({**GOOD, "price": "9" * 39}).encode(), "application/json"),
    ("price of 41 characters", json.dumps({**GOOD, "price": "1" * 41}).encode(), "application/json"),
    ("price of 40 emoji", json.dumps({**GOOD, "price": "\U0001f600" * 40}, ensure_ascii=False).encode(),
     "application/json"),
    ("quantity 1e400", json.dumps({**GOOD, "quantity": "1e400"}).encode(), "application/json"),
    ("client order id empty", json.dumps({**GOOD, "client_order_id": ""}).encode(), "application/json"),
    ("client order id of 65", json.dumps({**GOOD, "client_order_id": "x" * 65}).encode(), "application/json"),
    ("client order id with a space", json.dumps({**GOOD, "client_order_id": "a b"}).encode(), "application/json"),
    ("client order id with a newline", json.dumps({**GOOD, "client_order_id": "ab\n"}).encode(), "application/json"),
    ("bad stp", json.dumps({**GOOD, "stp": "both"}).encode(), "application/json"),
    ("tif for a market order", json.dumps({**GOOD, "type": "market", "time_in_force": "gtc"}).encode(),
     "application/json"),
    ("post only market", json.dumps({**GOOD, "type": "market", "post_only": True}).encode(), "application/json"),
    ("gtd without expire_time", json.dumps({**GOOD, "time_in_force": "gtd"}).encode(), "application/json"),
    ("unknown symbol", json.dumps({**GOOD, "symbol": "DOGE-USD"}).encode(), "application/json"),
    ("unknown long symbol", json.dumps({**GOOD, "symbol": "D" * 32}).encode(), "application/json"),
    ("symbol too long", json.dumps({**GOOD, "symbol": "D" * 33}).encode(), "application/json"),
    ("symbol with a control character", b'{"symbol":"BTC\x7f","side":"buy"}', "application/json"),
    ("insufficient funds", json.dumps({**GOOD, "quantity": "10"}).encode(), "application/json"),
    ("malformed JSON", b'{"symbol": "BTC-USD",', "application/json"),
    ("single quotes", b"{'symbol': 'BTC-USD'}", "application/json"),
    ("trailing comma", b'{"symbol":"BTC-USD","side":"buy",}', "application/json"),
    ("trailing garbage", json.dumps(GOOD).encode() + b"x", "application/json"),
    ("raw control character", b'{"symbol":"BTC\x01","side":"buy"}', "application/json"),
    ("invalid UTF-8", b'{"symbol":"BTC\xff","side":"buy"}', "application/json"),
    ("a lone surrogate", b'{"symbol":"BTC\\ud800","side":"buy"}', "application/json"),
    ("a UTF-8 BOM", b"\xef\xbb\xbf" + json.dumps(GOOD).encode(), "application/json"),
    ("UTF-16", json.dumps(GOOD).encode("utf-16-le"), "application/json"),
    ("nested too deeply", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ("a list", json.dumps([GOOD]).encode(), "application/json"),
    ("a string", b'"BTC-USD"', "application/json"),
    ("a number", b"1", "application/json"),
    ("null", b"null", "application/json"),
    ("true", b"true", "application/json"),
    ("empty body", b"", "application/json"),
    ("whitespace body", b"  ", "application/json"),
    ("text/plain", json.dumps(GOOD).encode(), "text/plain"),
    ("no content type", json.dumps(GOOD).encode(), None),
    ("an empty content type", json.dumps(GOOD).encode(), ""),
    ("a form", b"symbol=BTC-USD&side=buy", "application/x-www-form-urlencoded"),
    ("JSON in capitals", json.dumps(GOOD).encode(), "APPLICATION/JSON"),
    ("application/jsonx", json.dumps(GOOD).encode(), "application/jsonx"),
    ("no body, no content type", b"", None),
]


@pytest.mark.parametrize(("what", "content", "content_type"), BAD_BODIES, ids=[case[0] for case in BAD_BODIES])
def test_bad_orders_are_refused_alike(venues: tuple[Side, Side], what: str, content: bytes,
                                      content_type: str | None) -> None:
    users: dict[int, dict[str, Any]] = {}

    def scenario(side: Side) -> list[httpx.Response]:
        user = users.setdefault(id(side), side.user("bad", USD="1000"))
        return [post_raw(side, user, content, content_type)]

    (only,) = same(venues, scenario)
    assert only["status"] != 500


# Authentication and limits ------------------------------------------------------------------
def _signed(key: dict[str, str], method: str, target: str, body: bytes, secret: str | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() * 1000))
    return {
        "X-Rialto-Key": key["key_id"],
        "X-Rialto-Timestamp": timestamp,
        "X-Rialto-Signature": sign_request(secret or key["secret"], timestamp, method, target, body),
    }


def test_authentication_alike(venues: tuple[Side, Side]) -> None:
    def scenario(side: Side) -> list[httpx.Response]:
        user = side.user("auth", USD="100000")
        created = side.request("POST", "/v1/api-keys", headers=user["auth"])
        assert created.status_code == 201, created.text
        key = created.json()
        body = json.dumps(GOOD).encode()
        json_type = {"Content-Type": "application/json"}
        placed = side.request("POST", "/v1/orders", content=body, headers={**_signed(key, "POST", "/v1/orders", body),
                                                                           **json_type})
        order_id = placed.json()["id"]
        cancel_target = f"/v1/orders/{order_id}"
        return [
            placed,
            side.request("POST", "/v1/orders", content=body, headers=json_type),
            side.request("POST", "/v1/orders", content=body, headers={"Authorization": "Bearer nonsense", **json_type}),
            side.request("POST", "/v1/orders", content=body, headers={"Authorization": "Basic dXNlcjpwYXNz", **json_type}),
            side.request("POST", "/v1/orders", content=body, headers={"Authorization": "Bearer", **json_type}),
            side.request("POST", "/v1/orders", content=body,
                         headers={**_signed(key, "POST", "/v1/orders", body, secret="0" * 64), **json_type}),
            side.request("POST", "/v1/orders", content=body + b" ",
                         headers={**_signed(key, "POST", "/v1/orders", body), **json_type}),
            side.request("POST", "/v1/orders", content=body, headers={"X-Rialto-Key": key["key_id"], **json_type}),
            # which comes first: malformed JSON (before authentication) and validation (after it)
            side.request("POST", "/v1/orders", content=b"{", headers=json_type),
            side.request("POST", "/v1/orders", content=b"[]", headers=json_type),
            side.request("POST", "/v1/orders", content=b"", headers=json_type),
            side.request("DELETE", cancel_target),
            side.request("DELETE", "/v1/orders/abc"),
            side.request("DELETE", cancel_target, headers={"Authorization": "Bearer nonsense"}),
            side.request("DELETE", cancel_target, headers=_signed(key, "DELETE", cancel_target, b"")),
            side.request("DELETE", cancel_target, headers=user["auth"]),
        ]

    answers = same(venues, scenario)
    assert answers[0]["status"] == 201 and answers[-2]["status"] == 200 and answers[-1]["status"] == 404


def test_the_account_rate_limit_alike(venues: tuple[Side, Side]) -> None:
    def scenario(side: Side) -> list[httpx.Response]:
        user = side.user("limited")  # no faucet: every token of the bucket is for orders
        body = {**GOOD, "quantity": "10"}  # refused for funds: nothing rests
        responses = [post(side, user, body) for _ in range(ACCOUNT_BURST + 2)]
        responses.append(side.request("DELETE", "/v1/orders/1", headers=user["auth"]))
        responses.append(post_raw(side, user, b"[]"))  # validation comes after the limit
        return responses

    answers = same(venues, scenario)
    assert answers[-1]["status"] == 429 and answers[-1]["headers"]["retry-after"] == "<set>"
    assert answers[0]["status"] == 422


# Cancels --------------------------------------------------------------------------------------
BAD_IDS = ["abc", "0", "-1", "01", "+1", "1.0", "1e3", " 1", "%201", "%31", "\u0661", str(MAX_INT64 + 1),
           "9" * 40, str(MAX_INT64), "1/", "1/x", ""]


def test_cancels_alike(venues: tuple[Side, Side]) -> None:
    def scenario(side: Side) -> list[httpx.Response]:
        owner = side.user("owner", USD="100000")
        other = side.user("other", USD="100000")
        placed = post(side, owner, GOOD)
        order_id = placed.json()["id"]
        filled = post(side, other, {**GOOD, "side": "sell", "price": "1.00", "type": "market"})
        responses = [
            placed,
            filled,
            side.request("DELETE", f"/v1/orders/{order_id}", headers=other["auth"]),  # another's order
            side.request("DELETE", f"/v1/orders/{order_id}", headers=owner["auth"]),
            side.request("DELETE", f"/v1/orders/{order_id}", headers=owner["auth"]),  # already cancelled
            side.request("DELETE", "/v1/orders/999999999", headers=owner["auth"]),
            side.request("DELETE", f"/v1/orders/{order_id}", headers=owner["auth"], content=b"ignored"),
            side.request("DELETE", f"/v1/orders/{order_id}"),
            side.request("DELETE", "/v1/orders", headers=owner["auth"]),  # mass cancel: FastAPI's own
            side.request("PUT", "/v1/orders", headers=owner["auth"]),
            side.request("GET", f"/v1/orders/{order_id}", headers=owner["auth"]),
        ]
        for bad in BAD_IDS:
            responses.append(side.request("DELETE", f"/v1/orders/{bad}", headers=owner["auth"]))
        return responses

    answers = same(venues, scenario)
    assert [a["status"] for a in answers[2:6]] == [404, 200, 404, 404]
    assert answers[3]["body"]["status"] == "cancelled"


def test_metrics_and_request_logs_alike(venues: tuple[Side, Side]) -> None:
    """The latency histogram's labels and the request log lines (route, status, code, account) match."""
    fast, slow = venues

    def scenario(side: Side) -> list[httpx.Response]:
        user = side.user("logged", USD="100000")
        placed = post(side, user, GOOD)
        return [placed, side.request("DELETE", f"/v1/orders/{placed.json()['id']}", headers=user["auth"]),
                side.request("DELETE", "/v1/orders/1"), post_raw(side, user, b"{}")]

    same(venues, scenario)

    def counts(side: Side) -> dict[str, str]:
        text = side.request("GET", "/metrics").text
        return {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in text.splitlines()
                if line.startswith("rialto_http_request_duration_seconds_count") and 'route="/v1/' in line}

    def lines(side: Side) -> list[tuple[Any, ...]]:
        out = []
        for line in side.server.log_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("logger") == "rialto.gateway.http" and str(record.get("route")).startswith("/v1/"):
                out.append(tuple(side.normal({k: record.get(k) for k in ("method", "route", "status", "code",
                                                                              "account")}).values()))
        return out

    fast_counts, slow_counts = counts(fast), counts(slow)
    assert any('route="/v1/orders/{order_id}"' in label for label in fast_counts)
    assert fast_counts == slow_counts
    fast_lines, slow_lines = lines(fast), lines(slow)
    assert len(fast_lines) > 5
    assert fast_lines == slow_lines


# OrderBody against OrderRequest (no venue) ------------------------------------------------------
def test_order_body_has_order_requests_fields_and_defaults() -> None:
    fields = OrderRequest.model_fields
    assert list(fields) == list(OrderBody.__struct_fields__)
    minimal = decode_order(b'{"symbol":"BTC-USD","side":"buy"}')
    assert msgspec.structs.asdict(minimal) == OrderRequest(symbol="BTC-USD", side="buy").model_dump()


EDGE_BODIES = [body for _, body, _ in BAD_BODIES] + [
    json.dumps({**GOOD, "client_order_id": "x" * 64}).encode(),
    json.dumps({**GOOD, "client_order_id": "!~"}).encode(),
    json.dumps({**GOOD, "client_order_id": "a\u00a0"}, ensure_ascii=False).encode(),
    json.dumps({**GOOD, "price": "\U0001f600" * 40}, ensure_ascii=False).encode(),
    json.dumps({**GOOD, "symbol": "\u00e9" * 32}, ensure_ascii=False).encode(),
    json.dumps({**GOOD, "expire_time": 0, "post_only": False, "stp": "decrement", "time_in_force": "fok"}).encode(),
    json.dumps({**GOOD, "expire_time": MAX_TIME_MS}).encode(),
    json.dumps({**GOOD, "quote_quantity": "1", "stop_price": "2", "type": "stop_market"}).encode(),
    b'{"symbol":"BTC-USD","side":"buy","expire_time":-0}',
    b'{"symbol":"BTC-USD","side":"sell","side":"buy"}',
    b'{"symbol":"BTC-USD","side":"b\\u0075y"}',
    b'{"symbol":"BTC-USD","side":"buy\\u0000"}',
    b'{"symbol":"BTC-USD","side":"buy","client_order_id":"abc\\u0000"}',
]


@pytest.mark.parametrize("body", EDGE_BODIES)
def test_what_order_body_takes_fastapi_takes_alike(body: bytes) -> None:
    """Whatever OrderBody accepts, ``json.loads`` + ``OrderRequest`` (FastAPI's way) accept with the same values."""
    try:
        fast = decode_order(body)
    except Exception:
        return  # refused: FastAPI answers it
    model = OrderRequest.model_validate(json.loads(body), from_attributes=True)
    assert msgspec.structs.asdict(fast) == model.model_dump()


def test_content_types_and_routes() -> None:
    assert is_json_content_type("application/json")
    assert is_json_content_type("application/json; charset=utf-8")
    assert is_json_content_type("Application/JSON")
    assert is_json_content_type("application/problem+json")
    assert not is_json_content_type("")
    assert not is_json_content_type(None)
    assert not is_json_content_type("text/json")
    assert not is_json_content_type("application/jsonx")
    assert FastPath.handles("POST", "/v1/orders") and FastPath.handles("DELETE", "/v1/orders/12")
    assert not FastPath.handles("POST", "/v1/orders/") and not FastPath.handles("GET", "/v1/orders")
    assert not FastPath.handles("DELETE", "/v1/orders") and not FastPath.handles("PATCH", "/v1/orders/12")


def test_the_fast_path_is_on_by_default_and_configurable(tmp_path: Path) -> None:
    from control.config import load_config

    assert load_config(environ={}).fast_path is True
    assert load_config(environ={"RIALTO_FAST_PATH": "0"}).fast_path is False
