"""Users for a load run: registered, logged in and funded through the API (before any timer)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

PASSWORD = "bench: copper-lantern-2718"
FUNDS = {"USD": "1000000000", "BTC": "100000"}
"""Per user: 10^9 USD and 10^5 BTC, thousands of times what a run can hold, so no order is refused for funds."""


@dataclass(frozen=True)
class User:
    index: int
    username: str
    account_id: int
    token: str

    @property
    def auth(self) -> str:
        return f"Bearer {self.token}"


async def _make(client: httpx.AsyncClient, index: int, prefix: str, funds: dict[str, str]) -> User:
    username = f"{prefix}-{index:04d}"
    r = await client.post("/v1/auth/register", json={"username": username, "password": PASSWORD})
    if r.status_code != 201:
        raise RuntimeError(f"register {username}: {r.status_code} {r.text}")
    account_id = int(r.json()["account_id"])
    r = await client.post("/v1/auth/login", json={"username": username, "password": PASSWORD})
    if r.status_code != 200:
        raise RuntimeError(f"login {username}: {r.status_code} {r.text}")
    token = str(r.json()["access_token"])
    for asset, amount in funds.items():
        r = await client.post("/v1/faucet", json={"asset": asset, "amount": amount},
                              headers={"Authorization": f"Bearer {token}"})
        if r.status_code != 200:
            raise RuntimeError(f"faucet {username} {asset}: {r.status_code} {r.text}")
    return User(index, username, account_id, token)


async def make_users_async(url: str, count: int, prefix: str = "bench",
                           funds: dict[str, str] | None = None, parallel: int = 8) -> list[User]:
    gate = asyncio.Semaphore(parallel)
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        async def one(i: int) -> User:
            async with gate:
                return await _make(client, i, prefix, FUNDS if funds is None else funds)

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def make_users(url: str, count: int, prefix: str = "bench", funds: dict[str, str] | None = None) -> list[User]:
    """``count`` funded users, in index order."""
    return asyncio.run(make_users_async(url, count, prefix, funds))
