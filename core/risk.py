"""Balances and holds: an order is accepted only if its account can pay for it.

Each account has, per asset, an ``available`` amount and a ``held`` amount
reserved by its open orders. Settlement moves held funds to the counterparty
and the fee account; nothing is ever created or destroyed except by deposits
and withdrawals, so the sum of each asset over all accounts is conserved.
"""

from __future__ import annotations

from core.instrument import FEE_ACCOUNT


class Account:
    __slots__ = ("account_id", "available", "held")

    def __init__(self, account_id: int, asset_slots: int) -> None:
        self.account_id = account_id
        self.available = [0] * asset_slots
        self.held = [0] * asset_slots

    def is_empty(self) -> bool:
        return not any(self.available) and not any(self.held)


class Balances:
    __slots__ = ("accounts", "asset_slots", "supply")

    def __init__(self) -> None:
        self.accounts: dict[int, Account] = {}
        self.asset_slots = 1
        self.supply: list[int] = [0]

    def add_asset(self, asset_id: int) -> None:
        if asset_id >= self.asset_slots:
            grow = asset_id + 1 - self.asset_slots
            self.asset_slots = asset_id + 1
            self.supply.extend([0] * grow)
            for account in self.accounts.values():
                account.available.extend([0] * grow)
                account.held.extend([0] * grow)

    def account(self, account_id: int) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            account = self.accounts[account_id] = Account(account_id, self.asset_slots)
        return account

    def available(self, account_id: int, asset: int) -> int:
        account = self.accounts.get(account_id)
        return account.available[asset] if account is not None else 0

    def hold(self, account_id: int, asset: int, amount: int) -> None:
        """Reserve ``amount`` (the caller has checked it is available)."""
        if amount:
            account = self.accounts[account_id]
            account.available[asset] -= amount
            account.held[asset] += amount

    def release(self, account_id: int, asset: int, amount: int) -> None:
        if amount:
            account = self.accounts[account_id]
            account.held[asset] -= amount
            account.available[asset] += amount

    def deposit(self, account_id: int, asset: int, amount: int) -> None:
        self.account(account_id).available[asset] += amount
        self.supply[asset] += amount

    def withdraw(self, account_id: int, asset: int, amount: int) -> None:
        self.accounts[account_id].available[asset] -= amount
        self.supply[asset] -= amount

    def settle(
        self, buyer_id: int, seller_id: int, base: int, quote: int, base_amount: int,
        notional: int, buyer_paid_from_hold: int, buyer_fee: int, seller_fee: int,
    ) -> None:
        """Move one trade's funds.

        The buyer's hold gives up ``buyer_paid_from_hold`` (the part reserved
        for this quantity); what exceeds the notional returns to available.
        The buyer receives base less its fee, the seller quote less its fee.
        """
        accounts = self.accounts
        buyer = accounts[buyer_id]
        buyer.held[quote] -= buyer_paid_from_hold
        buyer.available[quote] += buyer_paid_from_hold - notional
        buyer.available[base] += base_amount - buyer_fee
        seller = accounts[seller_id]
        seller.held[base] -= base_amount
        seller.available[quote] += notional - seller_fee
        if buyer_fee or seller_fee:
            fees = accounts.get(FEE_ACCOUNT)
            if fees is None:
                fees = self.account(FEE_ACCOUNT)
            fees.available[base] += buyer_fee
            fees.available[quote] += seller_fee
