"""API keys: HMAC-SHA256 signed requests, stale timestamps, replays, revocation."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from services.gateway.auth import Argon2Params, AuthService, AuthSettings, InMemoryReplayCache, SecretBox, sign_request
from services.gateway.auth.api_keys import ApiKeyCreated
from services.gateway.auth.errors import (
    ApiKeyRevoked,
    InvalidSignature,
    InvalidTimestamp,
    ReplayedRequest,
    StaleTimestamp,
    TooManyApiKeys,
    UnknownApiKey,
)
from services.gateway.auth.secretbox import SecretBoxError
from services.gateway.auth.tokens import Principal

T0 = 1_700_000_000.0
PASSWORD = "correct-horse-battery"
PATH = "/v1/orders?symbol=BTC-USD"
BODY = b'{"side":"buy","price":"42000.5","quantity":"0.01"}'


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(tmp_path: Path, clock: Clock) -> AuthService:
    service = AuthService.open(
        tmp_path / "auth.db", SecretBox.ephemeral(), AuthSettings(argon2=Argon2Params.cheap()), clock=clock
    )
    service.register("alice", PASSWORD)
    service.register("mallory", PASSWORD)
    return service


@pytest.fixture
def key(auth: AuthService) -> ApiKeyCreated:
    return auth.create_api_key(1)


def ms(t: float) -> str:
    return str(int(t * 1000))


def verify(
    auth: AuthService, key_id: str, ts: str, sig: str, method: str = "POST", path: str = PATH, body: bytes = BODY
) -> Principal:
    return auth.verify_signed_request(key_id, ts, sig, method, path, body)


def test_the_signature_is_hex_hmac_sha256_over_timestamp_method_path_and_body() -> None:
    expected = hmac.new(b"s3cret", b"1700000000000POST/v1/orders{}", hashlib.sha256).hexdigest()
    assert sign_request("s3cret", "1700000000000", "post", "/v1/orders", b"{}") == expected


def test_creating_a_key_returns_its_secret_once_and_listing_never_shows_it(
    auth: AuthService, key: ApiKeyCreated
) -> None:
    assert key.key_id.startswith("rk_") and len(key.secret) >= 43
    assert set(key.as_dict()) == {"key_id", "secret"}
    (listed,) = auth.list_api_keys(1)
    assert listed.as_dict() == {"key_id": key.key_id, "created": int(T0), "revoked": None}
    assert auth.list_api_keys(2) == []


def test_a_correctly_signed_request_authenticates_as_the_key_owner(
    auth: AuthService, key: ApiKeyCreated, clock: Clock
) -> None:
    ts = ms(clock.t)
    principal = verify(auth, key.key_id, ts, sign_request(key.secret, ts, "POST", PATH, BODY))
    assert (principal.account_id, principal.via, principal.api_key_id) == (1, "api_key", key.key_id)


def test_a_get_without_body_and_upper_case_hex_are_accepted(
    auth: AuthService, key: ApiKeyCreated, clock: Clock
) -> None:
    ts = ms(clock.t)
    signature = sign_request(key.secret, ts, "GET", "/v1/balances", b"").upper()
    assert verify(auth, key.key_id, ts, signature, "GET", "/v1/balances", b"").account_id == 1


def test_a_request_signed_with_the_wrong_secret_is_refused(auth: AuthService, key: ApiKeyCreated, clock: Clock) -> None:
    ts = ms(clock.t)
    other = auth.create_api_key(2)
    with pytest.raises(InvalidSignature) as err:
        verify(auth, key.key_id, ts, sign_request(other.secret, ts, "POST", PATH, BODY))
    assert err.value.code == "invalid_signature" and err.value.status == 401


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("DELETE", PATH, BODY),
        ("POST", "/v1/orders?symbol=ETH-USD", BODY),
        ("POST", PATH, BODY.replace(b"0.01", b"100")),
    ],
)
def test_changing_the_method_path_query_or_body_breaks_the_signature(
    auth: AuthService, key: ApiKeyCreated, clock: Clock, method: str, path: str, body: bytes
) -> None:
    ts = ms(clock.t)
    signature = sign_request(key.secret, ts, "POST", PATH, BODY)
    with pytest.raises(InvalidSignature):
        verify(auth, key.key_id, ts, signature, method, path, body)


@pytest.mark.parametrize("signature", ["", "zz" * 32, "é" * 64, "00" * 31])
def test_malformed_signatures_are_refused(auth: AuthService, key: ApiKeyCreated, clock: Clock, signature: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(auth, key.key_id, ms(clock.t), signature)


@pytest.mark.parametrize("skew", [-31.0, 31.0, -3600.0, 86_400.0])
def test_a_timestamp_outside_the_30_second_window_is_refused_as_stale(
    auth: AuthService, key: ApiKeyCreated, clock: Clock, skew: float
) -> None:
    ts = ms(clock.t + skew)
    with pytest.raises(StaleTimestamp) as err:
        verify(auth, key.key_id, ts, sign_request(key.secret, ts, "POST", PATH, BODY))
    assert err.value.code == "stale_timestamp"


@pytest.mark.parametrize("skew", [-30.0, 29.999])
def test_a_timestamp_inside_the_window_is_accepted(
    auth: AuthService, key: ApiKeyCreated, clock: Clock, skew: float
) -> None:
    ts = ms(clock.t + skew)
    assert verify(auth, key.key_id, ts, sign_request(key.secret, ts, "POST", PATH, BODY)).account_id == 1


@pytest.mark.parametrize("ts", ["", "abc", "1700000000.5", "-1700000000000", "\uff11\uff17\uff10\uff10", "9" * 17])
def test_a_malformed_timestamp_is_refused(auth: AuthService, key: ApiKeyCreated, ts: str) -> None:
    with pytest.raises(InvalidTimestamp):
        verify(auth, key.key_id, ts, sign_request(key.secret, ts, "POST", PATH, BODY))


def test_a_replayed_signed_request_is_refused(auth: AuthService, key: ApiKeyCreated, clock: Clock) -> None:
    ts = ms(clock.t)
    signature = sign_request(key.secret, ts, "POST", PATH, BODY)
    verify(auth, key.key_id, ts, signature)
    clock.t += 2
    with pytest.raises(ReplayedRequest) as err:
        verify(auth, key.key_id, ts, signature)
    assert err.value.code == "replayed_request"
    ts2 = ms(clock.t)  # the same order again, freshly timestamped, is a new request
    verify(auth, key.key_id, ts2, sign_request(key.secret, ts2, "POST", PATH, BODY))


def test_a_replay_after_the_window_is_refused_as_stale(auth: AuthService, key: ApiKeyCreated, clock: Clock) -> None:
    ts = ms(clock.t)
    signature = sign_request(key.secret, ts, "POST", PATH, BODY)
    verify(auth, key.key_id, ts, signature)
    clock.t += 31
    with pytest.raises(StaleTimestamp):
        verify(auth, key.key_id, ts, signature)


def test_forged_requests_do_not_fill_the_replay_memory(auth: AuthService, key: ApiKeyCreated, clock: Clock) -> None:
    cache = auth.api_keys.replay_cache
    assert isinstance(cache, InMemoryReplayCache)
    for i in range(100):
        with pytest.raises(InvalidSignature):
            verify(auth, key.key_id, ms(clock.t), f"{i:064x}")
    assert len(cache) == 0


def test_replay_memory_forgets_entries_once_their_window_has_passed() -> None:
    cache = InMemoryReplayCache()
    assert cache.add("k:a", T0 + 31, T0) and not cache.add("k:a", T0 + 31, T0 + 1)
    assert cache.add("k:b", T0 + 100, T0 + 40)
    assert len(cache) == 1


def test_a_revoked_key_is_refused(auth: AuthService, key: ApiKeyCreated, clock: Clock) -> None:
    auth.revoke_api_key(1, key.key_id)
    ts = ms(clock.t)
    with pytest.raises(ApiKeyRevoked) as err:
        verify(auth, key.key_id, ts, sign_request(key.secret, ts, "POST", PATH, BODY))
    assert err.value.code == "api_key_revoked"
    (listed,) = auth.list_api_keys(1)
    assert listed.revoked == int(T0)


def test_an_unknown_key_is_refused(auth: AuthService, clock: Clock) -> None:
    ts = ms(clock.t)
    for key_id in ("rk_doesnotexist", "", None, "x" * 65):
        with pytest.raises(UnknownApiKey) as err:
            verify(auth, key_id, ts, sign_request("whatever", ts, "POST", PATH, BODY))  # type: ignore[arg-type]
        assert err.value.code == "unknown_api_key"


def test_a_user_cannot_revoke_another_users_key(auth: AuthService, key: ApiKeyCreated, clock: Clock) -> None:
    with pytest.raises(UnknownApiKey) as err:
        auth.revoke_api_key(2, key.key_id)
    assert err.value.status == 404
    ts = ms(clock.t)
    assert verify(auth, key.key_id, ts, sign_request(key.secret, ts, "POST", PATH, BODY)).account_id == 1


def test_revoking_twice_keeps_the_first_revocation_time(auth: AuthService, key: ApiKeyCreated, clock: Clock) -> None:
    auth.revoke_api_key(1, key.key_id)
    clock.t += 100
    auth.revoke_api_key(1, key.key_id)
    assert auth.list_api_keys(1)[0].revoked == int(T0)


def test_active_keys_per_account_are_limited(auth: AuthService) -> None:
    keys = [auth.create_api_key(2) for _ in range(20)]
    with pytest.raises(TooManyApiKeys):
        auth.create_api_key(2)
    auth.revoke_api_key(2, keys[0].key_id)
    auth.create_api_key(2)


def test_authenticate_uses_the_signature_headers_when_x_rialto_key_is_present(
    auth: AuthService, key: ApiKeyCreated, clock: Clock
) -> None:
    ts = ms(clock.t)
    headers = {
        "x-rialto-key": key.key_id,
        "X-Rialto-Timestamp": ts,
        "X-RIALTO-SIGNATURE": sign_request(key.secret, ts, "POST", PATH, BODY),
    }
    assert auth.authenticate(headers, "POST", PATH, BODY).api_key_id == key.key_id
    with pytest.raises(InvalidTimestamp):
        auth.authenticate({"X-Rialto-Key": key.key_id}, "POST", PATH, BODY)


def test_api_key_secrets_are_sealed_at_rest_and_bound_to_their_key_id(
    auth: AuthService, key: ApiKeyCreated, clock: Clock
) -> None:
    record = auth.store.get_api_key(key.key_id)
    assert record is not None and key.secret not in record.secret and record.secret.startswith("v1.")
    other = auth.create_api_key(1)
    other_record = auth.store.get_api_key(other.key_id)
    assert other_record is not None
    # Swap the sealed secrets between the two rows in the database: neither key works any more.
    auth.store._run("UPDATE api_keys SET secret = ? WHERE key_id = ?", (other_record.secret, key.key_id))  # type: ignore[attr-defined]
    ts = ms(clock.t)
    with pytest.raises(SecretBoxError):
        verify(auth, key.key_id, ts, sign_request(other.secret, ts, "POST", PATH, BODY))
