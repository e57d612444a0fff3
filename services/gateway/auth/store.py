"""Where users, API keys and signing keys live: the :class:`AuthStore` interface and SQLite.

The interface is small and its SQL plain so that a PostgreSQL implementation
can follow (``BIGINT GENERATED ALWAYS AS IDENTITY`` for ``users.id``,
``%s`` placeholders, ``ON CONFLICT`` instead of catching the integrity error).

Account ids
-----------
``users.id`` *is* the matching engine's account id. It is allocated from 1
upward and never reused, even after a row is deleted (SQLite
``AUTOINCREMENT``), because the engine and the log know accounts only by it.

Secrets at rest
---------------
The store keeps opaque text for ``users.mfa_secret``,
``api_keys.secret`` and ``signing_keys.private_key``: the services seal them
with :class:`~services.gateway.auth.secretbox.SecretBox` (AES-256-GCM under a
server key kept outside the database) before they get here. Password hashes
are Argon2id PHC strings.

Threading
---------
Every method is **synchronous** and quick (one indexed statement, or one
short transaction). :class:`SqliteAuthStore` keeps one connection guarded by
a lock and opened with ``check_same_thread=False``, so it is safe to call from
the event-loop thread and from worker threads (``asyncio.to_thread``) alike.
"""

from __future__ import annotations

import abc
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.gateway.auth.errors import UsernameTaken

SCHEMA_VERSION = 1

Row = tuple[Any, ...]


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    username_norm: str
    password_hash: str
    mfa_secret: str | None
    mfa_enabled: bool
    mfa_last_step: int | None
    created: int


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    user_id: int
    secret: str
    created: int
    revoked: int | None = None


@dataclass(frozen=True)
class SigningKeyRecord:
    kid: str
    algorithm: str
    private_key: str
    created: int
    retired: int | None = None


class AuthStore(abc.ABC):
    """Persistent state of authentication. Times are integer Unix seconds."""

    # -- users ----------------------------------------------------------------------------

    @abc.abstractmethod
    def create_user(self, username: str, username_norm: str, password_hash: str, created: int) -> UserRecord:
        """Insert a user with the next account id; :class:`UsernameTaken` if ``username_norm`` exists."""

    @abc.abstractmethod
    def get_user(self, user_id: int) -> UserRecord | None: ...

    @abc.abstractmethod
    def get_user_by_username(self, username_norm: str) -> UserRecord | None: ...

    @abc.abstractmethod
    def set_password_hash(self, user_id: int, password_hash: str) -> None: ...

    @abc.abstractmethod
    def set_pending_mfa(self, user_id: int, sealed_secret: str) -> bool:
        """Store a not-yet-enabled TOTP secret; False (nothing changed) if MFA is already enabled."""

    @abc.abstractmethod
    def enable_mfa(self, user_id: int, sealed_secret: str, step: int) -> bool:
        """Enable MFA if the pending secret is still ``sealed_secret``; record ``step`` as used."""

    @abc.abstractmethod
    def advance_mfa_step(self, user_id: int, step: int) -> bool:
        """Record TOTP time step ``step`` as used, only if it is later than the last one (atomic)."""

    # -- external identities (sub -> account, for an external issuer) -------------------------

    @abc.abstractmethod
    def link_external_identity(self, issuer: str, subject: str, user_id: int, created: int) -> None: ...

    @abc.abstractmethod
    def find_external_identity(self, issuer: str, subject: str) -> int | None: ...

    # -- API keys ---------------------------------------------------------------------------

    @abc.abstractmethod
    def add_api_key(self, record: ApiKeyRecord) -> None: ...

    @abc.abstractmethod
    def get_api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    @abc.abstractmethod
    def list_api_keys(self, user_id: int) -> list[ApiKeyRecord]:
        """The user's keys, revoked ones included, oldest first."""

    @abc.abstractmethod
    def revoke_api_key(self, user_id: int, key_id: str, revoked: int) -> bool:
        """Revoke the user's key; False if the user has no such key. Revoking twice keeps the first time."""

    # -- signing keys -------------------------------------------------------------------------

    @abc.abstractmethod
    def list_signing_keys(self) -> list[SigningKeyRecord]:
        """All keys, oldest first."""

    @abc.abstractmethod
    def get_signing_key(self, kid: str) -> SigningKeyRecord | None: ...

    @abc.abstractmethod
    def rotate_signing_key(self, new: SigningKeyRecord, retired: int) -> None:
        """In one transaction: retire every unretired key at ``retired`` and add ``new``."""

    @abc.abstractmethod
    def delete_signing_keys_retired_before(self, cutoff: int) -> int:
        """Drop keys retired before ``cutoff``; return how many."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT    NOT NULL,
    username_norm  TEXT    NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,
    mfa_secret     TEXT,
    mfa_enabled    INTEGER NOT NULL DEFAULT 0,
    mfa_last_step  INTEGER,
    created        INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS external_identities (
    issuer   TEXT    NOT NULL,
    subject  TEXT    NOT NULL,
    user_id  INTEGER NOT NULL REFERENCES users(id),
    created  INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id   TEXT    PRIMARY KEY,
    user_id  INTEGER NOT NULL REFERENCES users(id),
    secret   TEXT    NOT NULL,
    created  INTEGER NOT NULL,
    revoked  INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys(user_id);
CREATE TABLE IF NOT EXISTS signing_keys (
    kid          TEXT    PRIMARY KEY,
    algorithm    TEXT    NOT NULL,
    private_key  TEXT    NOT NULL,
    created      INTEGER NOT NULL,
    retired      INTEGER
);
"""

_USER_COLUMNS = "id, username, username_norm, password_hash, mfa_secret, mfa_enabled, mfa_last_step, created"


def _user(row: Row | None) -> UserRecord | None:
    if row is None:
        return None
    return UserRecord(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7])


class SqliteAuthStore(AuthStore):
    """SQLite in WAL mode, one file. ``path`` may be ``":memory:"`` for throwaway use."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Accounts and keys are few and precious: a committed registration must survive power loss.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._tx():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version == 0:
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise RuntimeError(f"{self.path}: auth schema version {version}, this code knows {SCHEMA_VERSION}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> Row | None:
        with self._lock:
            row: Row | None = self._db.execute(sql, args).fetchone()
            return row

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Row]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # -- users ----------------------------------------------------------------------------

    def create_user(self, username: str, username_norm: str, password_hash: str, created: int) -> UserRecord:
        try:
            with self._tx() as db:
                cur = db.execute(
                    "INSERT INTO users (username, username_norm, password_hash, created) VALUES (?, ?, ?, ?)",
                    (username, username_norm, password_hash, created),
                )
                user_id = cur.lastrowid
        except sqlite3.IntegrityError:
            raise UsernameTaken() from None
        assert user_id is not None
        return UserRecord(user_id, username, username_norm, password_hash, None, False, None, created)

    def get_user(self, user_id: int) -> UserRecord | None:
        return _user(self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)))

    def get_user_by_username(self, username_norm: str) -> UserRecord | None:
        return _user(self._one(f"SELECT {_USER_COLUMNS} FROM users WHERE username_norm = ?", (username_norm,)))

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        self._run("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    def set_pending_mfa(self, user_id: int, sealed_secret: str) -> bool:
        return (
            self._run(
                "UPDATE users SET mfa_secret = ?, mfa_last_step = NULL WHERE id = ? AND mfa_enabled = 0",
                (sealed_secret, user_id),
            )
            == 1
        )

    def enable_mfa(self, user_id: int, sealed_secret: str, step: int) -> bool:
        return (
            self._run(
                "UPDATE users SET mfa_enabled = 1, mfa_last_step = ? WHERE id = ? AND mfa_enabled = 0 AND mfa_secret = ?",
                (step, user_id, sealed_secret),
            )
            == 1
        )

    def advance_mfa_step(self, user_id: int, step: int) -> bool:
        return (
            self._run(
                "UPDATE users SET mfa_last_step = ? WHERE id = ? AND (mfa_last_step IS NULL OR mfa_last_step < ?)",
                (step, user_id, step),
            )
            == 1
        )

    # -- external identities ---------------------------------------------------------------

    def link_external_identity(self, issuer: str, subject: str, user_id: int, created: int) -> None:
        self._run(
            "INSERT INTO external_identities (issuer, subject, user_id, created) VALUES (?, ?, ?, ?)",
            (issuer, subject, user_id, created),
        )

    def find_external_identity(self, issuer: str, subject: str) -> int | None:
        row = self._one("SELECT user_id FROM external_identities WHERE issuer = ? AND subject = ?", (issuer, subject))
        return None if row is None else int(row[0])

    # -- API keys ---------------------------------------------------------------------------

    def add_api_key(self, record: ApiKeyRecord) -> None:
        self._run(
            "INSERT INTO api_keys (key_id, user_id, secret, created, revoked) VALUES (?, ?, ?, ?, ?)",
            (record.key_id, record.user_id, record.secret, record.created, record.revoked),
        )

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        row = self._one("SELECT key_id, user_id, secret, created, revoked FROM api_keys WHERE key_id = ?", (key_id,))
        return None if row is None else ApiKeyRecord(*row)

    def list_api_keys(self, user_id: int) -> list[ApiKeyRecord]:
        rows = self._all(
            "SELECT key_id, user_id, secret, created, revoked FROM api_keys WHERE user_id = ? ORDER BY created, key_id",
            (user_id,),
        )
        return [ApiKeyRecord(*row) for row in rows]

    def revoke_api_key(self, user_id: int, key_id: str, revoked: int) -> bool:
        with self._tx() as db:
            row = db.execute(
                "SELECT revoked FROM api_keys WHERE key_id = ? AND user_id = ?", (key_id, user_id)
            ).fetchone()
            if row is None:
                return False
            if row[0] is None:
                db.execute("UPDATE api_keys SET revoked = ? WHERE key_id = ?", (revoked, key_id))
            return True

    # -- signing keys -------------------------------------------------------------------------

    def list_signing_keys(self) -> list[SigningKeyRecord]:
        rows = self._all("SELECT kid, algorithm, private_key, created, retired FROM signing_keys ORDER BY created, kid")
        return [SigningKeyRecord(*row) for row in rows]

    def get_signing_key(self, kid: str) -> SigningKeyRecord | None:
        row = self._one("SELECT kid, algorithm, private_key, created, retired FROM signing_keys WHERE kid = ?", (kid,))
        return None if row is None else SigningKeyRecord(*row)

    def rotate_signing_key(self, new: SigningKeyRecord, retired: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE signing_keys SET retired = ? WHERE retired IS NULL", (retired,))
            db.execute(
                "INSERT INTO signing_keys (kid, algorithm, private_key, created, retired) VALUES (?, ?, ?, ?, ?)",
                (new.kid, new.algorithm, new.private_key, new.created, new.retired),
            )

    def delete_signing_keys_retired_before(self, cutoff: int) -> int:
        return self._run("DELETE FROM signing_keys WHERE retired IS NOT NULL AND retired < ?", (cutoff,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
