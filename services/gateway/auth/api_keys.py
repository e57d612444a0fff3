"""API keys for bots: HMAC-SHA256 signed requests.

The scheme
----------
A key is a public ``key_id`` (``rk_...``) and a secret shown once, at
creation. A bot signs each request::

    payload   = f"{timestamp}{METHOD}{path}".encode() + body
    signature = hmac_sha256(key=secret.encode(), msg=payload).hexdigest()

and sends ``X-Rialto-Key: <key_id>``, ``X-Rialto-Timestamp: <timestamp>``,
``X-Rialto-Signature: <signature>``, where

* ``timestamp`` is the integer number of **milliseconds** since the Unix
  epoch, exactly as sent in the header (milliseconds so that two identical
  requests in the same second still differ);
* ``METHOD`` is the upper-case HTTP method;
* ``path`` is the request target as sent: path plus ``?query`` if any
  (``/v1/orders?symbol=BTC-USD``), so the query string is signed too;
* ``body`` is the raw request body bytes (empty for GET).

The gateway refuses a timestamp more than ``window`` seconds (default 30)
from its clock (``stale_timestamp``), compares signatures in constant time
(``invalid_signature``), and accepts each signature once while its timestamp
is inside the window (``replayed_request``): identical repeated requests
must carry a new timestamp. :func:`sign_request` is the reference client
implementation.

Secrets at rest
---------------
HMAC verification needs the secret itself, so it cannot be stored as a
one-way hash. It is stored sealed with the server's
:class:`~services.gateway.auth.secretbox.SecretBox` (AES-256-GCM, bound to the
key id): the database alone does not reveal it; the database *and* the server
key do.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from services.gateway.auth.errors import (
    ApiKeyRevoked,
    InvalidSignature,
    InvalidTimestamp,
    ReplayedRequest,
    StaleTimestamp,
    TooManyApiKeys,
    UnknownApiKey,
)
from services.gateway.auth.secretbox import SecretBox
from services.gateway.auth.store import ApiKeyRecord, AuthStore
from services.gateway.auth.tokens import Principal

KEY_ID_PREFIX = "rk_"
HEADER_KEY = "X-Rialto-Key"
HEADER_TIMESTAMP = "X-Rialto-Timestamp"
HEADER_SIGNATURE = "X-Rialto-Signature"


def signing_payload(timestamp: str | int, method: str, path: str, body: bytes) -> bytes:
    return f"{timestamp}{method.upper()}{path}".encode() + body


def sign_request(secret: str, timestamp: str | int, method: str, path: str, body: bytes = b"") -> str:
    """The ``X-Rialto-Signature`` value for a request (what a bot computes)."""
    return hmac.new(secret.encode(), signing_payload(timestamp, method, path, body), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ApiKeyCreated:
    key_id: str
    secret: str
    created: int

    def as_dict(self) -> dict[str, Any]:
        """The creation response: the only time the secret is ever shown."""
        return {"key_id": self.key_id, "secret": self.secret}


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: str
    created: int
    revoked: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "created": self.created, "revoked": self.revoked}


class ReplayCache(Protocol):
    def add(self, key: str, expires_at: float, now: float) -> bool:
        """Remember ``key`` until ``expires_at``; False if it was already remembered (a replay)."""
        ...


class InMemoryReplayCache:
    """Per-process replay memory. Thread-safe; entries leave when they expire."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._expiry: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def add(self, key: str, expires_at: float, now: float) -> bool:
        with self._lock:
            while self._expiry and self._expiry[0][0] <= now:
                when, old = heapq.heappop(self._expiry)
                if self._seen.get(old) == when:
                    del self._seen[old]
            known = self._seen.get(key)
            if known is not None and known > now:
                return False
            self._seen[key] = expires_at
            heapq.heappush(self._expiry, (expires_at, key))
            return True

    def __len__(self) -> int:
        return len(self._seen)


def _context(key_id: str) -> bytes:
    return b"api_key:" + key_id.encode()


class ApiKeys:
    """Create, list, revoke API keys and verify signed requests. Thread-safe; synchronous and fast."""

    def __init__(
        self,
        store: AuthStore,
        box: SecretBox,
        *,
        window: int = 30,
        max_active_per_user: int = 20,
        replay_cache: ReplayCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.box = box
        self.window = window
        self.max_active_per_user = max_active_per_user
        self.replay_cache: ReplayCache = replay_cache if replay_cache is not None else InMemoryReplayCache()
        self.clock = clock

    def create(self, user_id: int, now: float | None = None) -> ApiKeyCreated:
        t = int(self.clock() if now is None else now)
        active = [k for k in self.store.list_api_keys(user_id) if k.revoked is None]
        if len(active) >= self.max_active_per_user:
            raise TooManyApiKeys(f"at most {self.max_active_per_user} active API keys per account")
        key_id = KEY_ID_PREFIX + secrets.token_urlsafe(12)
        secret = secrets.token_urlsafe(32)
        self.store.add_api_key(ApiKeyRecord(key_id, user_id, self.box.encrypt(secret.encode(), _context(key_id)), t))
        return ApiKeyCreated(key_id=key_id, secret=secret, created=t)

    def list_keys(self, user_id: int) -> list[ApiKeyInfo]:
        return [ApiKeyInfo(k.key_id, k.created, k.revoked) for k in self.store.list_api_keys(user_id)]

    def revoke(self, user_id: int, key_id: str, now: float | None = None) -> None:
        """Revoke one of the user's keys; :class:`UnknownApiKey` (404) if they have no such key."""
        t = int(self.clock() if now is None else now)
        if not self.store.revoke_api_key(user_id, key_id, t):
            raise UnknownApiKey(status=404)

    def verify(
        self,
        key_id: str | None,
        timestamp: str | None,
        signature: str | None,
        method: str,
        path: str,
        body: bytes,
        now: float | None = None,
    ) -> Principal:
        """Authenticate a signed request from its three headers (None when absent) and its content."""
        t = self.clock() if now is None else now
        if not key_id or len(key_id) > 64:
            raise UnknownApiKey()
        if not timestamp or len(timestamp) > 16 or not timestamp.isascii() or not timestamp.isdigit():
            raise InvalidTimestamp()
        sent_ms = int(timestamp)
        if abs(t * 1000.0 - sent_ms) > self.window * 1000.0:
            raise StaleTimestamp(f"request timestamp must be within {self.window} s of the venue's clock")
        record = self.store.get_api_key(key_id)
        if record is None:
            raise UnknownApiKey()
        if record.revoked is not None:
            raise ApiKeyRevoked()
        secret = self.box.decrypt(record.secret, _context(record.key_id)).decode()
        expected = sign_request(secret, timestamp, method, path, body)
        sent = (signature or "").strip().lower()
        if not sent.isascii() or not hmac.compare_digest(expected, sent):
            raise InvalidSignature()
        # Only a correctly signed request is remembered, so forgeries cannot fill the replay memory.
        if not self.replay_cache.add(f"{key_id}:{expected}", sent_ms / 1000.0 + self.window + 1, t):
            raise ReplayedRequest()
        return Principal(account_id=record.user_id, via="api_key", api_key_id=record.key_id)
