"""Persistence: projections of the event stream for queries and history.

``store`` is the interface (``ProjectionStore``) and the views the API gets;
``projection`` is what the events mean for the rows, shared by every store;
``sqlite`` is the embedded profile's store, ``postgres`` the local and aws
profiles' (``migrate`` applies its schema; ``StoreUnavailable`` is an
unreachable server). A DynamoDB adapter implements the same interface. Every
store can be rebuilt from the log.
"""

from services.persistence.postgres import PostgresStore, StoreUnavailable, migrate
from services.persistence.projection import Changes, ProjectionError, Projector
from services.persistence.sqlite import SqliteStore
from services.persistence.store import (
    EXTERNAL_ACCOUNT,
    INTERVALS,
    BalanceView,
    CandleView,
    FillView,
    OrderView,
    ProjectionStore,
    Record,
    Registry,
    SchemaError,
    TradeView,
    UnknownSymbol,
)

__all__ = [
    "EXTERNAL_ACCOUNT",
    "INTERVALS",
    "BalanceView",
    "CandleView",
    "Changes",
    "FillView",
    "OrderView",
    "PostgresStore",
    "ProjectionError",
    "ProjectionStore",
    "Projector",
    "Record",
    "Registry",
    "SchemaError",
    "SqliteStore",
    "StoreUnavailable",
    "TradeView",
    "UnknownSymbol",
    "migrate",
]
