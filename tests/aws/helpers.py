"""Helpers for the aws adapter tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiobotocore.session import AioSession

from services.aws import AwsSettings, make_client

T = TypeVar("T")


def with_client(settings: AwsSettings, service: str, use: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``use(client)`` with a client of its own (what the tests do behind the adapters' backs)."""

    async def main() -> T:
        async with make_client(AioSession(), service, settings) as client:
            return await use(client)

    return asyncio.run(main())
