"""The SQLite auth store, sealing of secrets at rest, and the error catalogue the gateway maps."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from pathlib import Path

import pytest

from services.gateway.auth import ALL_ERRORS, Argon2Params, AuthService, AuthSettings, SecretBox, SqliteAuthStore
from services.gateway.auth.errors import AuthError, Throttled, UsernameTaken
from services.gateway.auth.secretbox import SecretBoxError
from services.gateway.auth.store import ApiKeyRecord

PASSWORD = "correct-horse-battery"


def test_the_store_creates_its_schema_on_open_in_wal_mode(tmp_path: Path) -> None:
    store = SqliteAuthStore(tmp_path / "nested" / "auth.db")
    store.close()
    db = sqlite3.connect(tmp_path / "nested" / "auth.db")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "api_keys", "signing_keys", "external_identities"} <= tables


def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    store = SqliteAuthStore(tmp_path / "auth.db")
    user = store.create_user("Alice", "alice", "$argon2id$x", 100)
    store.add_api_key(ApiKeyRecord("rk_1", user.id, "sealed", 101))
    store.close()
    again = SqliteAuthStore(tmp_path / "auth.db")
    assert again.get_user_by_username("alice") == user
    assert again.get_api_key("rk_1") == ApiKeyRecord("rk_1", 1, "sealed", 101, None)


def test_usernames_are_unique_in_the_store_itself(tmp_path: Path) -> None:
    store = SqliteAuthStore(tmp_path / "auth.db")
    store.create_user("Alice", "alice", "h", 1)
    with pytest.raises(UsernameTaken):
        store.create_user("ALICE", "alice", "h", 2)


def test_account_ids_are_never_reused_even_after_a_row_is_deleted(tmp_path: Path) -> None:
    store = SqliteAuthStore(tmp_path / "auth.db")
    store.create_user("a1", "a1", "h", 1)
    second = store.create_user("a2", "a2", "h", 1)
    store._run("DELETE FROM users WHERE id = ?", (second.id,))
    assert store.create_user("a3", "a3", "h", 1).id == 3


def test_mfa_step_only_moves_forward(tmp_path: Path) -> None:
    store = SqliteAuthStore(tmp_path / "auth.db")
    user = store.create_user("a1", "a1", "h", 1)
    assert store.advance_mfa_step(user.id, 10)
    assert not store.advance_mfa_step(user.id, 10)
    assert not store.advance_mfa_step(user.id, 9)
    assert store.advance_mfa_step(user.id, 11)


def test_the_service_is_usable_from_worker_threads_as_routes_will_call_it(tmp_path: Path) -> None:
    auth = AuthService.open(tmp_path / "auth.db", SecretBox.ephemeral(), AuthSettings(argon2=Argon2Params.cheap()))

    async def main() -> list[int]:
        accounts = await asyncio.gather(*(asyncio.to_thread(auth.register, f"user{i}", PASSWORD) for i in range(16)))
        tokens = await asyncio.gather(*(asyncio.to_thread(auth.login, f"user{i}", PASSWORD) for i in range(16)))
        assert all(
            auth.verify_token(t.access_token).account_id == a.account_id for a, t in zip(accounts, tokens, strict=True)
        )
        return sorted(a.account_id for a in accounts)

    assert asyncio.run(main()) == list(range(1, 17))
    assert len(auth.store.list_signing_keys()) == 1  # concurrent first logins made one signing key


def test_sealed_secrets_need_the_server_key_and_their_own_context() -> None:
    box = SecretBox.ephemeral()
    sealed = box.encrypt(b"api-secret", b"api_key:rk_1")
    assert box.decrypt(sealed, b"api_key:rk_1") == b"api-secret"
    with pytest.raises(SecretBoxError):
        box.decrypt(sealed, b"api_key:rk_2")  # moved to another row
    with pytest.raises(SecretBoxError):
        SecretBox.ephemeral().decrypt(sealed, b"api_key:rk_1")  # another server key
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SecretBoxError):
        box.decrypt(tampered, b"api_key:rk_1")


def test_server_keys_rotate_old_ciphertexts_still_open() -> None:
    k1, k2 = SecretBox.generate_key(), SecretBox.generate_key()
    old = SecretBox({"k1": k1}, "k1").encrypt(b"seed", b"ctx")
    rotated = SecretBox({"k1": k1, "k2": k2}, "k2")
    assert rotated.decrypt(old, b"ctx") == b"seed"
    assert rotated.needs_reseal(old) and not rotated.needs_reseal(rotated.encrypt(b"seed", b"ctx"))


def test_a_server_key_can_come_from_base64_text() -> None:
    key = SecretBox.generate_key()
    for text in (base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode().rstrip("=")):
        assert SecretBox.from_base64(text).decrypt(SecretBox({"k1": key}, "k1").encrypt(b"x", b"c"), b"c") == b"x"
    with pytest.raises(ValueError):
        SecretBox.from_base64(base64.b64encode(b"too short").decode())


def test_no_secret_reaches_the_database_file_in_clear(tmp_path: Path) -> None:
    auth = AuthService.open(tmp_path / "auth.db", SecretBox.ephemeral(), AuthSettings(argon2=Argon2Params.cheap()))
    auth.register("alice", PASSWORD)
    auth.login("alice", PASSWORD)
    mfa = auth.mfa_setup(1)
    api = auth.create_api_key(1)
    auth.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (PASSWORD, mfa.secret, api.secret, "PRIVATE KEY"):
        assert secret.encode() not in raw


def test_every_failure_has_a_unique_stable_code_and_the_gateway_error_shape() -> None:
    codes = [e.code for e in ALL_ERRORS]
    assert len(codes) == len(set(codes))
    assert {
        "invalid_credentials",
        "mfa_required",
        "invalid_mfa_code",
        "token_expired",
        "token_invalid",
        "throttled",
        "username_taken",
        "weak_password",
        "invalid_signature",
        "stale_timestamp",
        "unknown_api_key",
    } <= set(codes)
    for error_type in ALL_ERRORS:
        error = Throttled(5) if error_type is Throttled else error_type()
        assert isinstance(error, AuthError) and 400 <= error.status < 500
        assert error.body() == {"error": {"code": error.code, "message": error.message}} and error.message
