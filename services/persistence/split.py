"""The aws profile's reads: order, fill, trade and candle history from DynamoDB, balances from PostgreSQL.

The persister applies every record to both stores (each keeps its own
position); the gateway reads each query from the store that holds it.
"""

from __future__ import annotations

from typing import Any

from services.persistence.store import BalanceView


class SplitReader:
    def __init__(self, history: Any, ledger: Any) -> None:
        self.history = history
        self.ledger = ledger

    def __getattr__(self, name: str) -> Any:
        # Orders, fills, trades, candles, GTD expiries: the history store answers.
        return getattr(self.history, name)

    def balances(self, account: int) -> list[BalanceView]:
        result: list[BalanceView] = self.ledger.balances(account)
        return result

    def close(self) -> None:
        self.history.close()
        self.ledger.close()
