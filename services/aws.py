"""Plumbing shared by the aws profile's adapters: settings, clients, and the loop that owns them.

The aws profile's adapters (``services.log.kinesis``,
``services.matcher.s3_snapshots``, ``services.persistence.dynamodb``,
``services.persistence.archive``) all reach AWS through aiobotocore, the
asyncio flavour of botocore. The same code runs against AWS itself
(``endpoint_url=None``) and against moto or LocalStack (an ``endpoint_url``).

Why a private event loop
------------------------
Most of the interfaces these adapters implement are synchronous:
``Log.read`` is an iterator, ``SnapshotStore.save``/``latest`` and every
``ProjectionStore`` method are plain calls, made from worker threads
(``asyncio.to_thread``, the projector's executor) as well as from the
venue's event loop. aiobotocore clients, on the other hand, belong to the
event loop they were created in (their aiohttp connection pool does). So
each process runs one ``AwsLoop``: an event loop on a daemon thread that
creates and owns the clients. Synchronous callers hand it a coroutine with
``run(coro)`` (``run_coroutine_threadsafe(...).result()``: the calling
thread blocks, the loop does the I/O); asynchronous callers in another loop
use ``await call(coro)`` (``asyncio.wrap_future``: their loop keeps running).
One loop and one ``AioSession`` per process also means one connection pool
per service, shared by every adapter, instead of one per adapter and thread.

``run`` must not be called from the loop's own thread (it would wait for
itself); it raises instead of deadlocking.

Retries
-------
Clients use botocore's ``standard`` retry mode: throttling
(``ProvisionedThroughputExceededException``, ``ThrottlingException``, ...),
5xx and connection errors are retried with exponential backoff and jitter,
up to ``AwsSettings.max_attempts`` attempts per call, under a client-side
retry quota. What a retry can mean for the data (a PutRecords whose response
was lost is written twice) is handled by each adapter; see
``services.log.kinesis``.

Sharing
-------
``AwsLoop.acquire(settings)`` returns the process's loop for those settings
(created on first use) and counts the reference; each adapter calls
``release()`` when it closes, and the last release stops the loop and closes
its clients. An adapter may also be handed a loop explicitly (``aws=``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["AwsLoop", "AwsSettings", "error_code", "is_transient", "make_client"]

T = TypeVar("T")


@dataclass(frozen=True)
class AwsSettings:
    """Where the aws profile's resources are, and how its clients behave.

    ``endpoint_url``: None for AWS itself; a URL (``http://127.0.0.1:5000``)
    for moto or LocalStack, which also switches S3 to path-style addressing.
    Credentials come from botocore's usual chain (environment, profile, ECS
    task role), never from here.
    """

    region: str = "us-east-1"
    endpoint_url: str | None = None
    kinesis_stream: str = "rialto-commands"
    """The command logs' stream (one partition key per engine shard)."""
    event_stream: str = "rialto-events"
    """The event logs' stream."""
    table_prefix: str = "rialto-"
    """DynamoDB table names are this prefix + ``orders``, ``fills``, ..."""
    bucket: str = "rialto-venue"
    snapshot_prefix: str = "snapshots"
    archive_prefix: str = "archive"
    max_attempts: int = 5
    """Attempts per API call under botocore's standard retry mode (the first one included)."""
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_pool_connections: int = 64


def make_client(session: AioSession, service: str, settings: AwsSettings) -> Any:
    """An aiobotocore client context manager (``async with``) for ``service`` under ``settings``."""
    config = AioConfig(
        region_name=settings.region,
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=settings.max_pool_connections,
        # moto and LocalStack serve every bucket on one host: virtual-host addressing would not resolve.
        s3={"addressing_style": "path"} if settings.endpoint_url else None,
    )
    return session.create_client(service, region_name=settings.region, endpoint_url=settings.endpoint_url,
                                  config=config)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(exc, ClientError):
        code: str = exc.response.get("Error", {}).get("Code", "")
        return code
    return ""


_PERMANENT = frozenset({
    "AccessDeniedException", "AccessDenied", "InvalidArgumentException", "ValidationException",
    "ResourceNotFoundException", "NoSuchBucket", "KMSAccessDeniedException", "KMSDisabledException",
    "KMSNotFoundException", "KMSInvalidStateException", "UnrecognizedClientException",
    "InvalidSignatureException", "MissingAuthenticationToken", "SerializationException",
})


def is_transient(exc: BaseException) -> bool:
    """Whether trying the call again later could succeed (throttling, server or network trouble)."""
    if isinstance(exc, ClientError):
        return error_code(exc) not in _PERMANENT
    return isinstance(exc, BotoCoreError | OSError)


class AwsLoop:
    """An event loop on a daemon thread that owns this process's aiobotocore clients."""

    _shared: ClassVar[dict[AwsSettings, AwsLoop]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, settings: AwsSettings, name: str = "rialto-aws") -> None:
        self.settings = settings
        self._session = AioSession()
        self._clients: dict[str, Any] = {}
        self._stack = contextlib.AsyncExitStack()
        self._client_lock: asyncio.Lock | None = None
        self._references = 1
        self._references_lock = threading.Lock()
        self._closed = False
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(started,), name=name, daemon=True)
        self._thread.start()
        started.wait()

    def _main(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(started.set)
        self._loop.run_forever()

    # Sharing ---------------------------------------------------------------
    @classmethod
    def acquire(cls, settings: AwsSettings) -> AwsLoop:
        """The process's loop for ``settings`` (created on first use), with one more reference."""
        with cls._shared_lock:
            loop = cls._shared.get(settings)
            if loop is not None and loop.retain():
                return loop
            loop = cls(settings)
            cls._shared[settings] = loop
            return loop

    @classmethod
    def share(cls, settings: AwsSettings, aws: AwsLoop | None = None) -> AwsLoop:
        """``aws`` with one more reference if given (an adapter sharing its owner's loop), else ``acquire``."""
        if aws is None:
            return cls.acquire(settings)
        if not aws.retain():
            raise ValueError("the AwsLoop given is closed")
        return aws

    def retain(self) -> bool:
        """Count one more user; False if the loop is already closed (get another one)."""
        with self._references_lock:
            if self._closed or self._references <= 0:
                return False
            self._references += 1
            return True

    def release(self) -> None:
        """Drop one reference; the last one closes the clients and stops the loop."""
        with self._references_lock:
            self._references -= 1
            last = self._references <= 0
        if last:
            self.close()

    # Running coroutines -----------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self._closed:
            coro.close()
            raise RuntimeError("the AWS loop is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (from any thread but the loop's own)."""
        if self.in_loop():
            coro.close()
            raise RuntimeError("AwsLoop.run called from the AWS loop itself: await the coroutine instead")
        return self.submit(coro).result(timeout)

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and await it from the caller's own event loop."""
        if self.in_loop():
            return await coro
        return await asyncio.wrap_future(self.submit(coro))

    async def client(self, service: str) -> Any:
        """The loop's client for ``service`` (created once; call on the loop)."""
        client = self._clients.get(service)
        if client is not None:
            return client
        if self._client_lock is None:
            self._client_lock = asyncio.Lock()
        async with self._client_lock:
            client = self._clients.get(service)
            if client is None:
                client = await self._stack.enter_async_context(make_client(self._session, service, self.settings))
                self._clients[service] = client
        return client

    # Closing --------------------------------------------------------------------
    def close(self) -> None:
        """Close the clients, cancel what is still running on the loop, stop it."""
        with self._references_lock:
            if self._closed:
                return
            self._closed = True
        with self._shared_lock:
            if self._shared.get(self.settings) is self:
                del self._shared[self.settings]
        if self.in_loop():
            raise RuntimeError("AwsLoop.close called from the AWS loop itself")
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        if not self._thread.is_alive():
            self._loop.close()

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        # A waiting caller gets CancelledError rather than a future that is never resolved.
        for task in asyncio.all_tasks():
            if task is not current:
                task.cancel()
        await self._stack.aclose()
        self._clients.clear()


async def ensure_bucket(s3: Any, settings: AwsSettings) -> None:
    """Create ``settings.bucket`` if it does not exist (deployments create it; tests and first runs need this)."""
    try:
        await s3.head_bucket(Bucket=settings.bucket)
        return
    except Exception as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs: dict[str, Any] = {"Bucket": settings.bucket}
    if settings.region != "us-east-1":  # us-east-1 refuses its own name as a constraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
    try:
        await s3.create_bucket(**kwargs)
    except Exception as exc:
        if error_code(exc) != "BucketAlreadyOwnedByYou":
            raise
