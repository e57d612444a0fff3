"""The auth store on PostgreSQL: :class:`PostgresAuthStore`, for the ``local`` and ``aws`` profiles.

Same semantics as :class:`~services.gateway.auth.store.SqliteAuthStore`, for
several gateway processes sharing one database:

* the schema is migration ``0003_auth`` of ``services/persistence/migrations/postgres``,
  applied by :func:`services.persistence.postgres.migrate` on open (the same
  database and history as the projections);
* ``users.id`` (the engine's account id) comes from an identity column: never
  reused; a registration that loses a race for its username may leave a gap;
* the compare-and-set updates (MFA steps, enabling MFA, revoking a key) are
  single ``UPDATE ... WHERE <expected state>`` statements: under concurrent
  callers PostgreSQL re-checks the condition on the row the first one wrote,
  so exactly one of them wins;
* a signing-key rotation locks ``signing_keys`` against other writers for its
  transaction, so two processes rotating at once take turns and the second
  retires the first one's new key; the unique partial index
  ``signing_keys_one_active`` makes a second unretired key impossible anyway.

Every method is synchronous and thread-safe (a connection pool); an
unreachable server raises :class:`~services.persistence.postgres.StoreUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from services.gateway.auth.errors import UsernameTaken
from services.gateway.auth.store import ApiKeyRecord, AuthStore, Row, SigningKeyRecord, UserRecord
from services.persistence.postgres import connection_errors_as_unavailable, migrate, open_pool

_USER_COLUMNS = "id, username, username_norm, password_hash, mfa_secret, mfa_enabled, mfa_last_step, created"
_SIGNING_KEY_COLUMNS = "kid, algorithm, private_key, created, retired"
_API_KEY_COLUMNS = "key_id, user_id, secret, created, revoked"


def _user(row: Row | None) -> UserRecord | None:
    if row is None:
        return None
    return UserRecord(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7])


class PostgresAuthStore(AuthStore):
    """The auth tables in one PostgreSQL database (migrated on open)."""

    def __init__(self, dsn: str, pool_size: int = 4, *, timeout: float = 10.0) -> None:
        self.dsn = dsn
        migrate(dsn, timeout)
        self._pool = open_pool(dsn, pool_size, timeout=timeout, name="rialto-auth")

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        with connection_errors_as_unavailable(self.dsn), self._pool.connection() as conn:
            yield conn

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        with self._connection() as conn:
            return conn.execute(sql, args).fetchone()

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        with self._connection() as conn:
            return conn.execute(sql, args).fetchall()

    def _run(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run one statement (``%s`` placeholders); the number of rows it changed."""
        with self._connection() as conn:
            return conn.execute(sql, args).rowcount

    # -- users ----------------------------------------------------------------------------

    def create_user(self, username: str, username_norm: str, password_hash: str, created: int) -> UserRecord:
        # Checked first so that a taken name (the common refusal) does not burn an account id;
        # ON CONFLICT settles a race between two registrations of one name.
        if self._one("SELECT 1 FROM users WHERE username_norm = %s", (username_norm,)) is not None:
            raise UsernameTaken()
        row = self._one(
            "INSERT INTO users (username, username_norm, password_hash, created) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (username_norm) DO NOTHING RETURNING id",
            (username, username_norm, password_hash, created),
        )
        if row is None:
            raise UsernameTaken()
        return UserRecord(row[0], username, username_norm, password_hash, None, False, None, created)

    def get_user(self, user_id: int) -> UserRecord | None:
        return _user(self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,)))

    def get_user_by_username(self, username_norm: str) -> UserRecord | None:
        return _user(self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE username_norm = %s", (username_norm,)))

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        self._run("UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id))

    def set_pending_mfa(self, user_id: int, sealed_secret: str) -> bool:
        return self._run(
            "UPDATE users SET mfa_secret = %s, mfa_last_step = NULL WHERE id = %s AND NOT mfa_enabled",
            (sealed_secret, user_id),
        ) == 1

    def enable_mfa(self, user_id: int, sealed_secret: str, step: int) -> bool:
        return self._run(
            "UPDATE users SET mfa_enabled = true, mfa_last_step = %s "
            "WHERE id = %s AND NOT mfa_enabled AND mfa_secret = %s",
            (step, user_id, sealed_secret),
        ) == 1

    def advance_mfa_step(self, user_id: int, step: int) -> bool:
        return self._run(
            "UPDATE users SET mfa_last_step = %s WHERE id = %s AND (mfa_last_step IS NULL OR mfa_last_step < %s)",
            (step, user_id, step),
        ) == 1

    # -- external identities ---------------------------------------------------------------

    def link_external_identity(self, issuer: str, subject: str, user_id: int, created: int) -> None:
        self._run(
            "INSERT INTO external_identities (issuer, subject, user_id, created) VALUES (%s, %s, %s, %s)",
            (issuer, subject, user_id, created),
        )

    def find_external_identity(self, issuer: str, subject: str) -> int | None:
        row = self._one(
            "SELECT user_id FROM external_identities WHERE issuer = %s AND subject = %s", (issuer, subject),
        )
        return None if row is None else int(row[0])

    # -- API keys ---------------------------------------------------------------------------

    def add_api_key(self, record: ApiKeyRecord) -> None:
        self._run(
            f"INSERT INTO api_keys ({_API_KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
            (record.key_id, record.user_id, record.secret, record.created, record.revoked),
        )

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        row = self._one(f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE key_id = %s", (key_id,))
        return None if row is None else ApiKeyRecord(*row)

    def list_api_keys(self, user_id: int) -> list[ApiKeyRecord]:
        rows = self._all(
            f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE user_id = %s ORDER BY created, key_id", (user_id,),
        )
        return [ApiKeyRecord(*row) for row in rows]

    def revoke_api_key(self, user_id: int, key_id: str, revoked: int) -> bool:
        # One statement: the first revocation's time stays (coalesce), and the row count says
        # whether the user has such a key at all.
        return self._run(
            "UPDATE api_keys SET revoked = coalesce(revoked, %s) WHERE key_id = %s AND user_id = %s",
            (revoked, key_id, user_id),
        ) == 1

    # -- signing keys -------------------------------------------------------------------------

    def list_signing_keys(self) -> list[SigningKeyRecord]:
        rows = self._all(f"SELECT {_SIGNING_KEY_COLUMNS} FROM signing_keys ORDER BY created, kid")
        return [SigningKeyRecord(*row) for row in rows]

    def get_signing_key(self, kid: str) -> SigningKeyRecord | None:
        row = self._one(f"SELECT {_SIGNING_KEY_COLUMNS} FROM signing_keys WHERE kid = %s", (kid,))
        return None if row is None else SigningKeyRecord(*row)

    def rotate_signing_key(self, new: SigningKeyRecord, retired: int) -> None:
        with self._connection() as conn, conn.transaction():
            # Without the lock, a rotation running beside another would not see the other's new key
            # (it commits after this UPDATE's snapshot) and would fail on signing_keys_one_active.
            # SHARE ROW EXCLUSIVE conflicts with itself and with writes, not with readers.
            conn.execute("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
            conn.execute("UPDATE signing_keys SET retired = %s WHERE retired IS NULL", (retired,))
            conn.execute(
                f"INSERT INTO signing_keys ({_SIGNING_KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
                (new.kid, new.algorithm, new.private_key, new.created, new.retired),
            )

    def delete_signing_keys_retired_before(self, cutoff: int) -> int:
        return self._run("DELETE FROM signing_keys WHERE retired IS NOT NULL AND retired < %s", (cutoff,))

    def close(self) -> None:
        self._pool.close()
