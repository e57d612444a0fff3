"""The auth stores (SQLite and PostgreSQL), sealing of secrets at rest, and the error catalogue the gateway maps.

The store semantics run on both stores (``open_auth_store``); what only a
shared server database is asked (several gateway processes at once) runs on
PostgreSQL, each "process" with its own store and connection pool.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from services.gateway.auth import ALL_ERRORS, Argon2Params, AuthService, AuthSettings, SecretBox, SqliteAuthStore
from services.gateway.auth.errors import AuthError, Throttled, UsernameTaken
from services.gateway.auth.postgres_store import PostgresAuthStore
from services.gateway.auth.secretbox import SecretBoxError
from services.gateway.auth.store import ApiKeyRecord, AuthStore, SigningKeyRecord
from services.persistence import StoreUnavailable

PASSWORD = "correct-horse-battery"

OpenStore = Callable[[], AuthStore]


@pytest.fixture(params=["sqlite", "postgres"])
def open_auth_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens a store on the test's database (the same one each call: a reopen, or another process)."""
    opened: list[AuthStore] = []

    def open_store() -> AuthStore:
        if request.param == "sqlite":
            store: AuthStore = SqliteAuthStore(tmp_path / "auth.db")
        else:
            store = PostgresAuthStore(request.getfixturevalue("postgres_dsn"), pool_size=2)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def _delete_user(store: AuthStore, user_id: int) -> None:
    if isinstance(store, SqliteAuthStore):
        store._run("DELETE FROM users WHERE id = ?", (user_id,))
    else:
        assert isinstance(store, PostgresAuthStore)
        store._run("DELETE FROM users WHERE id = %s", (user_id,))


def _everything_stored(store: AuthStore, tmp_path: Path) -> bytes:
    """Every byte the store keeps (the files, or every row of every table)."""
    if isinstance(store, SqliteAuthStore):
        return b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert isinstance(store, PostgresAuthStore)
    tables = ("users", "api_keys", "signing_keys", "external_identities")
    return "\n".join(str(row) for table in tables for row in store._all(f"SELECT * FROM {table}")).encode()


def test_the_store_creates_its_schema_on_open_in_wal_mode(tmp_path: Path) -> None:
    store = SqliteAuthStore(tmp_path / "nested" / "auth.db")
    store.close()
    db = sqlite3.connect(tmp_path / "nested" / "auth.db")
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "api_keys", "signing_keys", "external_identities"} <= tables


def test_the_postgres_store_creates_its_tables_on_open(postgres_dsn: str) -> None:
    PostgresAuthStore(postgres_dsn).close()
    with psycopg.connect(postgres_dsn) as db:
        tables = {row[0] for row in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"users", "api_keys", "signing_keys", "external_identities"} <= tables
    PostgresAuthStore(postgres_dsn).close()  # a second open finds the schema and changes nothing


def test_everything_survives_a_reopen(open_auth_store: OpenStore) -> None:
    store = open_auth_store()
    user = store.create_user("Alice", "alice", "$argon2id$x", 100)
    store.add_api_key(ApiKeyRecord("rk_1", user.id, "sealed", 101))
    store.close()
    again = open_auth_store()
    assert again.get_user_by_username("alice") == user
    assert again.get_api_key("rk_1") == ApiKeyRecord("rk_1", 1, "sealed", 101, None)


def test_usernames_are_unique_in_the_store_itself(open_auth_store: OpenStore) -> None:
    store = open_auth_store()
    store.create_user("Alice", "alice", "h", 1)
    with pytest.raises(UsernameTaken):
        store.create_user("ALICE", "alice", "h", 2)


def test_account_ids_are_never_reused_even_after_a_row_is_deleted(open_auth_store: OpenStore) -> None:
    store = open_auth_store()
    store.create_user("a1", "a1", "h", 1)
    second = store.create_user("a2", "a2", "h", 1)
    _delete_user(store, second.id)
    assert store.create_user("a3", "a3", "h", 1).id == 3


def test_mfa_step_only_moves_forward(open_auth_store: OpenStore) -> None:
    store = open_auth_store()
    user = store.create_user("a1", "a1", "h", 1)
    assert store.advance_mfa_step(user.id, 10)
    assert not store.advance_mfa_step(user.id, 10)
    assert not store.advance_mfa_step(user.id, 9)
    assert store.advance_mfa_step(user.id, 11)


def test_mfa_is_enabled_only_for_the_pending_secret_and_only_once(open_auth_store: OpenStore) -> None:
    store = open_auth_store()
    user = store.create_user("a1", "a1", "h", 1)
    assert store.set_pending_mfa(user.id, "sealed-1")
    assert store.set_pending_mfa(user.id, "sealed-2")  # a second setup replaces the pending secret
    assert not store.enable_mfa(user.id, "sealed-1", 5)
    assert store.enable_mfa(user.id, "sealed-2", 5)
    assert not store.enable_mfa(user.id, "sealed-2", 6)
    assert not store.set_pending_mfa(user.id, "sealed-3")
    enabled = store.get_user(user.id)
    assert enabled is not None
    assert (enabled.mfa_enabled, enabled.mfa_secret, enabled.mfa_last_step) == (True, "sealed-2", 5)


def test_api_keys_list_oldest_first_and_revoke_keeps_the_first_time(open_auth_store: OpenStore) -> None:
    store = open_auth_store()
    alice, bob = store.create_user("alice", "alice", "h", 1), store.create_user("bob", "bob", "h", 1)
    for key_id, created in (("rk_b", 20), ("rk_a", 20), ("rk_c", 10)):
        store.add_api_key(ApiKeyRecord(key_id, alice.id, "sealed", created))
    assert [k.key_id for k in store.list_api_keys(alice.id)] == ["rk_c", "rk_a", "rk_b"]
    assert store.revoke_api_key(alice.id, "rk_a", 30)
    assert store.revoke_api_key(alice.id, "rk_a", 40)
    assert not store.revoke_api_key(bob.id, "rk_b", 30)  # not bob's key
    assert not store.revoke_api_key(alice.id, "rk_missing", 30)
    assert [k.revoked for k in store.list_api_keys(alice.id)] == [None, 30, None]


def test_a_rotation_retires_every_active_key_and_old_ones_are_deleted(open_auth_store: OpenStore) -> None:
    store = open_auth_store()
    store.rotate_signing_key(SigningKeyRecord("k1", "EdDSA", "sealed", 100), retired=100)
    store.rotate_signing_key(SigningKeyRecord("k2", "EdDSA", "sealed", 200), retired=200)
    store.rotate_signing_key(SigningKeyRecord("k3", "EdDSA", "sealed", 300), retired=300)
    assert [(k.kid, k.retired) for k in store.list_signing_keys()] == [("k1", 200), ("k2", 300), ("k3", None)]
    assert store.delete_signing_keys_retired_before(250) == 1
    assert [k.kid for k in store.list_signing_keys()] == ["k2", "k3"]
    assert store.get_signing_key("k1") is None


def test_external_identities_map_a_subject_to_an_account(open_auth_store: OpenStore) -> None:
    store = open_auth_store()
    user = store.create_user("alice", "alice", "h", 1)
    store.link_external_identity("https://issuer", "sub-1", user.id, 5)
    assert store.find_external_identity("https://issuer", "sub-1") == user.id
    assert store.find_external_identity("https://other", "sub-1") is None


def test_the_service_is_usable_from_worker_threads_as_routes_will_call_it(open_auth_store: OpenStore) -> None:
    auth = AuthService.with_store(open_auth_store(), SecretBox.ephemeral(), AuthSettings(argon2=Argon2Params.cheap()))

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


def test_no_secret_reaches_the_database_in_clear(open_auth_store: OpenStore, tmp_path: Path) -> None:
    auth = AuthService.with_store(open_auth_store(), SecretBox.ephemeral(), AuthSettings(argon2=Argon2Params.cheap()))
    auth.register("alice", PASSWORD)
    auth.login("alice", PASSWORD)
    mfa = auth.mfa_setup(1)
    api = auth.create_api_key(1)
    auth.close()
    raw = _everything_stored(open_auth_store(), tmp_path)
    assert b"alice" in raw  # the check reads what is stored
    for secret in (PASSWORD, mfa.secret, api.secret, "PRIVATE KEY"):
        assert secret.encode() not in raw


# -- PostgreSQL: several gateway processes on one database -----------------------------------------


def test_two_processes_rotating_at_once_leave_exactly_one_active_key(postgres_dsn: str) -> None:
    stores = [PostgresAuthStore(postgres_dsn, pool_size=1) for _ in range(4)]
    start = threading.Barrier(len(stores))

    def rotate(n: int) -> None:
        start.wait()
        for i in range(25):
            stores[n].rotate_signing_key(SigningKeyRecord(f"k{n}-{i}", "EdDSA", "sealed", 100 + i), retired=100 + i)

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            list(pool.map(rotate, range(len(stores))))
        keys = stores[0].list_signing_keys()
        assert len(keys) == 100
        assert len([k for k in keys if k.retired is None]) == 1
        # And the database itself refuses a second active key, whoever writes it.
        with pytest.raises(psycopg.errors.UniqueViolation):
            stores[0]._run("INSERT INTO signing_keys VALUES ('extra', 'EdDSA', 'sealed', 1, NULL)")
    finally:
        for store in stores:
            store.close()


def test_compare_and_set_steps_have_one_winner_across_processes(postgres_dsn: str) -> None:
    stores = [PostgresAuthStore(postgres_dsn, pool_size=1) for _ in range(6)]
    try:
        user = stores[0].create_user("alice", "alice", "h", 1)
        assert stores[0].set_pending_mfa(user.id, "sealed")

        def race(step: Callable[[PostgresAuthStore], bool]) -> int:
            start = threading.Barrier(len(stores))

            def one(store: PostgresAuthStore) -> bool:
                start.wait()
                return step(store)

            with ThreadPoolExecutor(len(stores)) as pool:
                return sum(pool.map(one, stores))

        assert race(lambda store: store.enable_mfa(user.id, "sealed", 6)) == 1
        assert race(lambda store: store.advance_mfa_step(user.id, 7)) == 1  # a TOTP step is used once, anywhere
        assert race(lambda store: store.revoke_api_key(user.id, "rk_none", 9)) == 0
    finally:
        for store in stores:
            store.close()


def test_one_username_registered_at_once_by_two_processes_gets_one_account(postgres_dsn: str) -> None:
    stores = [PostgresAuthStore(postgres_dsn, pool_size=1) for _ in range(6)]
    start = threading.Barrier(len(stores))

    def register(store: PostgresAuthStore) -> int | None:
        start.wait()
        try:
            return store.create_user("Alice", "alice", "h", 1).id
        except UsernameTaken:
            return None

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            ids = [i for i in pool.map(register, stores) if i is not None]
        assert len(ids) == 1
        found = stores[1].get_user_by_username("alice")
        assert found is not None and found.id == ids[0]
    finally:
        for store in stores:
            store.close()


def test_a_second_gateway_process_verifies_the_first_ones_tokens_and_adopts_its_key(postgres_dsn: str) -> None:
    box, settings = SecretBox.ephemeral(), AuthSettings(argon2=Argon2Params.cheap())
    first = AuthService.with_store(PostgresAuthStore(postgres_dsn), box, settings)
    second = AuthService.with_store(PostgresAuthStore(postgres_dsn), box, settings)
    try:
        first.register("alice", PASSWORD)
        token = first.login("alice", PASSWORD).access_token
        assert second.verify_token(token).account_id == 1
        assert second.keyring.signing_key().kid == first.keyring.signing_key().kid
    finally:
        first.close()
        second.close()


def test_an_unreachable_server_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable):
        PostgresAuthStore("postgresql://postgres@127.0.0.1:1/rialto", timeout=2)


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
