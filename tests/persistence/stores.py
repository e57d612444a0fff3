"""Stores of the kind under test for one test: ``StoreFactory`` (the ``open_store`` fixture).

PostgreSQL databases come from a ``DatabasePool`` shared by the session:
copies of a migrated template, emptied and handed to the next test when a
test is done (emptying takes milliseconds; creating and dropping a database
takes a tenth of a second or more, most of it waiting for the disk).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import psycopg
from servers import POSTGRES_ADMIN_DSN, drop_database

from services.persistence import PostgresStore, SqliteStore
from services.persistence.postgres import TABLES

from .venue import INSTRUMENTS, AnyStore

STORES = ("sqlite", "postgres")


def empty_database(dsn: str) -> None:
    """Delete every projection row and reset the position: the database as migrated."""
    # DELETE, not TRUNCATE: a few thousand rows go faster than new files for every table and index.
    # The ledger's balance trigger is off for it (all of every entry goes).
    with psycopg.connect(dsn) as conn:
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("SET LOCAL session_replication_role = replica")
        for table in TABLES:
            if table != "projection_position":
                conn.execute(f"DELETE FROM {table}")
        conn.execute("UPDATE projection_position SET seq = 0, time = 0")


class DatabasePool:
    """Migrated, empty databases for the session's tests."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.free: list[str] = []
        self.created: list[str] = []

    def acquire(self) -> str:
        if self.free:
            return self.free.pop()
        database = f"rialto_test_{secrets.token_hex(4)}"
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}" TEMPLATE "{self.template}"')
        dsn = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + f"/{database}"
        self.created.append(dsn)
        return dsn

    def release(self, dsn: str) -> None:
        empty_database(dsn)
        self.free.append(dsn)

    def close(self) -> None:
        for dsn in self.created:
            drop_database(dsn)


class StoreFactory:
    """Opens stores of one kind for one test; closes them and gives their databases back after it."""

    def __init__(self, kind: str, tmp_path: Path, databases: DatabasePool | None) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.pool = databases
        self.stores: list[AnyStore] = []
        self.named: dict[str, list[AnyStore]] = {}
        self.databases: dict[str, str] = {}  # name -> DSN (postgres)

    def __call__(self, name: str | None = None, *, fresh: bool = False, readonly: bool = False) -> AnyStore:
        if fresh and name is not None:
            self._empty(name)
        store = self._open(name, readonly)
        self.stores.append(store)
        if name is not None:
            self.named.setdefault(name, []).append(store)
        return store

    def _open(self, name: str | None, readonly: bool) -> AnyStore:
        if self.kind == "sqlite":
            path = ":memory:" if name is None else str(self.tmp_path / f"{name}.db")
            return SqliteStore(path, INSTRUMENTS, readonly=readonly)
        assert self.pool is not None
        key = name if name is not None else f"_anonymous_{len(self.stores)}"
        dsn = self.databases.get(key)
        if dsn is None:
            dsn = self.databases[key] = self.pool.acquire()
        return PostgresStore(dsn, INSTRUMENTS, readonly=readonly, pool_size=2)

    def _empty(self, name: str) -> None:
        for store in self.named.pop(name, []):
            store.close()
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                (self.tmp_path / f"{name}.db{suffix}").unlink(missing_ok=True)
        elif name in self.databases:
            empty_database(self.databases[name])

    def close(self) -> None:
        for store in self.stores:
            store.close()
        if self.pool is not None:
            for dsn in self.databases.values():
                self.pool.release(dsn)
