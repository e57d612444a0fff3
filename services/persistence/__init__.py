"""Persistence: projections of the event stream for queries and history.

``store`` is the interface (``ProjectionStore``) and the views the API gets;
``projection`` is what the events mean for the rows, shared by every store;
``sqlite`` is the embedded profile's store. PostgreSQL and DynamoDB adapters
implement the same interface. Every store can be rebuilt from the log.
"""

from services.persistence.projection import Changes, ProjectionError, Projector
from services.persistence.sqlite import SchemaError, SqliteStore
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
    "ProjectionError",
    "ProjectionStore",
    "Projector",
    "Record",
    "Registry",
    "SchemaError",
    "SqliteStore",
    "TradeView",
    "UnknownSymbol",
]
