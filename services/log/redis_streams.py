"""Redis Streams: the local profile's ordered log (``services.log.base.Log``).

One log is one stream key. A record is one stream entry with a single field
(``r``) holding the opaque bytes. Several processes may open the same key: an
appender in one, tailing consumers in others, as the local profile runs them.

Positions
---------
Redis gives each entry an id ``<ms>-<seq>`` (milliseconds of the server's
clock, then a counter within that millisecond; ids only grow, even if the
clock steps back). The log's position is the integer ``ms << 20 | seq``
(``position_of`` / ``id_of``):

* it keeps the id order, so positions are strictly increasing like the ids;
* it fits in a signed int64 (records, outcomes and SQL columns store
  positions as int64) while ``ms < 2**43``, i.e. until the year 2248;
* 20 bits of ``seq`` is about a million entries in one millisecond. Redis does
  not append that fast; the only way to get there is one transaction of that
  many XADDs (Redis may give a whole MULTI/EXEC one clock reading), which
  ``append`` forbids (``MAX_APPEND_RECORDS``). Should such an id appear
  anyway, ``position_of`` raises ``LogError`` rather than return a position
  that breaks the order.

Position 0 means "before the first record". Positions are not consecutive:
a consumer that wants "the next record after ``p``" asks for ``p + 1``, which
``id_of`` turns into the smallest id after ``p``'s.

Append and durability
---------------------
``append`` is group commit: concurrent calls in one event loop are queued
and one task sends everything queued as ONE MULTI/EXEC pipeline of XADDs
(one round trip), then gives each caller its positions. MULTI/EXEC makes a
call's records consecutive in the stream, never interleaved with another
call's, whichever process that other call came from.

An append is durable when it returns only if Redis runs with ``appendonly
yes`` and ``appendfsync always`` (``check_durability``): Redis executes the
EXEC, appends it to the AOF buffer, and in the same event-loop iteration
writes and fsyncs the AOF (``beforeSleep``) *before* it writes any reply to
any client. So the EXEC reply, and equally any other client's XRANGE/XREAD
reply that could show the new entries, leaves Redis only after the entries
are on disk: a reader never sees a record Redis could still lose, and an
acknowledged append survives a Redis crash. (If the fsync fails, Redis with
``always`` exits rather than reply.) Caveat: turning AOF on at run time
(``CONFIG SET appendonly yes``) starts a rewrite; wait for it to finish
before relying on the AOF (``tests/servers.py`` does).

Failure: a connection error fails every append of that batch with
``LogUnavailable``. The outcome of a failed EXEC is unknown (the connection
may have dropped after Redis applied it), so the client is built with no
automatic retry (a retry could append twice); the caller decides (the intake
deduplicates by client order id). The next append reconnects; a pooled
connection that died with a Redis restart is replaced before an append is
sent on it (``async_client_options``).

Truncation
----------
``truncate_before(p)`` runs ``XTRIM MINID`` (exact) and records ``p`` in a
floor key (``<key>:floor``), so ``read``/``tail`` can tell "removed by
truncation" (``LogTruncated``) from "never there", also after a restart. The
floor only rises, and is clamped to the last entry so the stream never
becomes empty and ``last_position`` stays monotonic. A log that was never
truncated never raises ``LogTruncated``.

Known limitations
-----------------
* The floor key and the stream are two keys: fine on one Redis; on Redis
  Cluster they would need a hash tag (``{name}``) in the key.
* A tail checks the floor when it starts, not while it follows: a consumer
  so far behind that truncation overtakes it mid-tail skips silently.
* An append cannot be withdrawn: cancelling the awaiting task does not stop
  the transaction.
* The async side serves one event loop at a time (redis.asyncio clients
  belong to the loop that made them); used from a new loop, the log makes new
  clients and drops the old loop's.
* ``tail`` and ``wait_for`` let redis-py retry a lost connection for a few
  seconds, then raise ``LogUnavailable``; a follower that must outlive a
  longer Redis outage restarts its tail from its last position.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.log.base import Log, LogClosed, LogError, LogTruncated, Position

__all__ = [
    "MAX_APPEND_RECORDS",
    "LogUnavailable",
    "RedisLogMetrics",
    "RedisStreamLog",
    "check_durability",
    "async_client_options",
    "durability_problem",
    "id_of",
    "position_of",
]

logger = logging.getLogger(__name__)

SEQ_BITS = 20
SEQ_MASK = (1 << SEQ_BITS) - 1
FIELD = b"r"  # the one field of an entry: the record
MAX_APPEND_RECORDS = 1 << 18  # per call: far below the 2**20 ids of one millisecond (see Positions)
MAX_BATCH_RECORDS = 8192  # per transaction, soft (a bigger single call goes alone): keeps EXEC short
_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class LogUnavailable(LogError):
    """Redis could not be reached (or timed out); the operation's outcome may be unknown."""


@dataclass
class RedisLogMetrics:
    """Counters of this process's appends (field names follow ``JournalMetrics``)."""

    batches: int = 0  # transactions committed (group commits)
    records: int = 0
    bytes: int = 0
    largest_batch: int = 0  # records in the largest transaction
    commit_seconds: float = 0.0  # time spent waiting for EXEC replies (Redis's write + fsync included)
    errors: int = 0  # failed transactions
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, records: int, nbytes: int, seconds: float) -> None:
        with self._lock:
            self.batches += 1
            self.records += records
            self.bytes += nbytes
            self.commit_seconds += seconds
            if records > self.largest_batch:
                self.largest_batch = records


# -- positions -------------------------------------------------------------------------


def position_of(entry_id: bytes | str) -> Position:
    """The position of stream id ``"<ms>-<seq>"``: ``ms << 20 | seq``."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, sep, seq = text.partition("-")
    if not sep:
        raise LogError(f"not a stream id: {text!r}")
    s = int(seq)
    if s > SEQ_MASK:
        raise LogError(f"stream id {text} has a sequence number past 2**{SEQ_BITS}: it has no position")
    return int(ms) << SEQ_BITS | s


def _raw_reply(response: Any, **options: Any) -> Any:
    return response


def id_of(position: Position) -> str:
    """The stream id of ``position`` (for any int >= 0: the smallest id at or after it)."""
    if position < 0:
        raise ValueError(f"positions are >= 0, got {position}")
    return f"{position >> SEQ_BITS}-{position & SEQ_MASK}"


# -- durability ------------------------------------------------------------------------


def durability_problem(config: Mapping[str, str], require: str = "always", where: str = "Redis") -> str | None:
    """Why ``config`` (CONFIG GET appendonly / appendfsync) is not durable enough; None if it is.

    ``require``: ``always`` (an acknowledged append survives a crash of Redis
    or of the machine), ``everysec`` (accepts always or everysec: up to a
    second of acknowledged appends lost on a machine crash) or ``none``.
    """
    if require not in ("always", "everysec", "none"):
        raise ValueError(f"require must be 'always', 'everysec' or 'none', got {require!r}")
    if require == "none":
        return None
    appendonly = str(config.get("appendonly", "")).lower()
    appendfsync = str(config.get("appendfsync", "")).lower()
    accepted = ("always",) if require == "always" else ("always", "everysec")
    if appendonly == "yes" and appendfsync in accepted:
        return None
    want = "appendonly yes and appendfsync always" if require == "always" else (
        "appendonly yes and appendfsync everysec (or always)")
    consequence = ("an acknowledged order survives a Redis crash" if require == "always"
                   else "a Redis crash loses at most a second of acknowledged orders")
    return (
        f"{where} has appendonly={appendonly or '?'} appendfsync={appendfsync or '?'}; the local profile needs "
        f"{want} so {consequence} (redis.conf, or CONFIG SET appendonly yes / CONFIG SET appendfsync always)"
    )


def check_durability(client_or_url: redis.Redis | str, require: str = "always") -> None:
    """Raise ``LogError`` unless the Redis at ``client_or_url`` persists appends as ``require`` demands."""
    own = isinstance(client_or_url, str)
    client = redis.Redis.from_url(client_or_url, socket_connect_timeout=5) if isinstance(client_or_url, str) \
        else client_or_url
    where = f"Redis at {_where(client)}"
    try:
        raw = client.config_get("append*")
    except _REDIS_DOWN as exc:
        raise LogUnavailable(f"{where} is unreachable, cannot check its durability: {exc}") from exc
    except redis.exceptions.ResponseError as exc:
        raise LogError(f"{where} refuses CONFIG GET, so its durability cannot be checked: {exc}") from exc
    finally:
        if own:
            client.close()
    config = {_text(k): _text(v) for k, v in raw.items() if v is not None}
    problem = durability_problem(config, require, where)
    if problem:
        raise LogError(problem)


def async_client_options() -> dict[str, Any]:
    """Options every ``redis.asyncio`` client of the venue needs, for the installed redis-py.

    redis-py 7/8 (``maint_notifications_config`` "auto", its default) skips
    the check that a pooled connection is still alive when it is handed out,
    so after a Redis restart the first command on each old connection fails
    with "Connection closed by server", for an append an unknown outcome.
    Turning the notifications off (they need RESP3 and a Redis Enterprise
    server anyway) brings the check back: a dead connection is replaced
    before anything is sent on it. Older redis-py has no such option and
    always checks.
    """
    try:
        from redis.maint_notifications import MaintNotificationsConfig
    except ImportError:
        return {}
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _where(client: redis.Redis | redis.asyncio.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


# -- the log ---------------------------------------------------------------------------


class _Request:
    __slots__ = ("future", "nbytes", "records")

    def __init__(self, records: list[bytes], future: asyncio.Future[list[Position]]) -> None:
        self.records = records
        self.future = future
        self.nbytes = sum(map(len, records))


class _LoopState:
    """What ``append``/``tail`` need in one event loop: redis.asyncio clients are bound to theirs."""

    def __init__(self, loop: asyncio.AbstractEventLoop, writer: redis.asyncio.Redis,
                 reader: redis.asyncio.Redis) -> None:
        self.loop = loop
        self.writer = writer  # appends: no automatic retry
        self.reader = reader  # tail / wait_for: blocking XREADs, retried
        self.pending: list[_Request] = []
        self.drain: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        if self.drain is not None and not self.drain.done():
            await asyncio.shield(self.drain)
        await self.writer.aclose()
        await self.reader.aclose()


class RedisStreamLog(Log):
    """The log on a Redis stream ``key`` at ``url``.

    ``block_ms``: how long one XREAD BLOCK waits in ``tail``/``wait_for``
    (also the most a closed log keeps them waiting). ``read_batch``: entries
    per XRANGE/XREAD round trip.
    """

    def __init__(self, url: str, key: str, *, block_ms: int = 1000, read_batch: int = 10_000) -> None:
        if block_ms <= 0:
            raise ValueError("block_ms must be positive (0 would block forever)")
        if read_batch <= 0:
            raise ValueError("read_batch must be positive")
        self.url = url
        self.key = key
        self.floor_key = f"{key}:floor"
        self.block_ms = block_ms
        self.read_batch = read_batch
        self.metrics = RedisLogMetrics()
        # No automatic retries: a retried append could be applied twice. Reads retry once by hand (_call).
        self._sync = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30, retry=Retry(NoBackoff(), 0))
        # XRANGE replies stay as hiredis parsed them ([id, [field, value]]): redis-py's dict per entry was a
        # third of the time a recovering shard spent replaying a million commands.
        self._sync.set_response_callback("XRANGE", _raw_reply)
        self._prefetch: ThreadPoolExecutor | None = None
        self.where = f"Redis at {_where(self._sync)}"
        self._state: _LoopState | None = None
        self._known_last: Position = 0  # the highest position this process has seen acknowledged
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisStreamLog({self.url!r}, {self.key!r})"

    # -- the Log interface --------------------------------------------------------------

    async def append(self, records: Sequence[bytes]) -> list[Position]:
        """Append ``records`` (one unit, consecutive in the stream); their positions once acknowledged."""
        checked = self._checked(records)
        if self._closed:
            raise LogClosed(f"{self!r} is closed")
        if not checked:
            return []
        state = self._loop_state()
        future: asyncio.Future[list[Position]] = state.loop.create_future()
        state.pending.append(_Request(checked, future))
        if state.drain is None or state.drain.done():
            state.drain = state.loop.create_task(self._drain(state), name=f"redis-log-writer:{self.key}")
        return await future

    def append_sync(self, records: Sequence[bytes]) -> list[Position]:
        """``append`` for threads and start-up code: one transaction, blocks until acknowledged."""
        checked = self._checked(records)
        if self._closed:
            raise LogClosed(f"{self!r} is closed")
        if not checked:
            return []
        started = time.perf_counter()
        pipe = self._sync.pipeline(transaction=True)
        for record in checked:
            pipe.execute_command("XADD", self.key, "*", FIELD, record)
        try:
            ids = pipe.execute()
        except Exception as exc:
            self.metrics.errors += 1
            raise self._failure("append", exc) from exc
        positions = [position_of(i) for i in ids]
        self.metrics.count(len(checked), sum(map(len, checked)), time.perf_counter() - started)
        self._saw(positions[-1])
        return positions

    @property
    def last_position(self) -> Position:
        """The stream's last entry (acknowledged by whichever process appended it); 0 if none."""
        entries = self._call("last_position", self._sync.xrevrange, self.key, "+", "-", count=1)
        if not entries:
            return 0
        last = position_of(entries[0][0])
        self._saw(last)
        return last

    @property
    def first_position(self) -> Position:
        """The oldest position the stream still holds; if it is empty, where a read from the start begins."""
        pipe = self._sync.pipeline(transaction=True)
        pipe.xrange(self.key, "-", "+", count=1)
        pipe.get(self.floor_key)
        entries, floor = self._call("first_position", pipe.execute)
        if entries:
            return position_of(entries[0][0])
        return int(floor) if floor else 1

    def read(
        self, from_position: Position = 0, to_position: Position | None = None
    ) -> Iterator[tuple[Position, bytes]]:
        """Yield ``(position, record)`` for ``from_position <= position <= to_position``.

        ``to_position`` defaults to ``last_position`` now. ``from_position`` 0
        starts at the oldest record held. Raises ``LogTruncated`` (at the
        call, not at the first ``next``) if truncation removed
        ``from_position``.
        """
        if self._closed:
            raise LogClosed(f"{self!r} is closed")
        start = id_of(from_position) if from_position > 0 else "-"
        if to_position is not None and to_position <= 0:
            return iter(())
        end = id_of(to_position) if to_position is not None else "+"
        pipe = self._sync.pipeline(transaction=True)  # one consistent view: floor, last entry, first chunk
        pipe.get(self.floor_key)
        pipe.xrevrange(self.key, "+", "-", count=1)
        pipe.xrange(self.key, start, end, count=self.read_batch)
        floor, last, chunk = self._call("read", pipe.execute)
        self._check_floor(from_position, floor)
        bound = to_position if to_position is not None else (position_of(last[0][0]) if last else 0)
        return self._chunks(chunk, bound)

    def _chunks(self, chunk: list[Any], bound: Position) -> Iterator[tuple[Position, bytes]]:
        # The next chunk is fetched on a helper thread while this one is consumed: Redis serialising it
        # and the socket carrying it overlap with the reader's work (a recovering shard's replay).
        while True:
            upcoming: Future[list[Any]] | None = None
            if len(chunk) == self.read_batch:
                last = position_of(chunk[-1][0])
                if last < bound:
                    upcoming = self._prefetcher().submit(self._fetch, last + 1, bound)
            for entry_id, fields in chunk:
                ms, _, seq_text = entry_id.partition(b"-")
                seq = int(seq_text)
                if seq > SEQ_MASK:
                    position_of(entry_id)  # raises, with the message
                position = int(ms) << SEQ_BITS | seq
                if position > bound:
                    return
                if fields[0] != FIELD:
                    raise LogError(f"{self!r}: entry {entry_id!r} is not a record of this log")
                yield position, fields[1]
            if upcoming is None:
                return
            chunk = upcoming.result()

    def _fetch(self, start: Position, bound: Position) -> list[Any]:
        pipe = self._sync.pipeline(transaction=True)
        pipe.get(self.floor_key)
        pipe.xrange(self.key, id_of(start), id_of(bound), count=self.read_batch)
        floor, chunk = self._call("read", pipe.execute)
        self._check_floor(start, floor, "while reading")
        result: list[Any] = chunk
        return result

    def _prefetcher(self) -> ThreadPoolExecutor:
        if self._prefetch is None:
            self._prefetch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stream-read")
        return self._prefetch

    async def tail(self, from_position: Position = 0) -> AsyncIterator[tuple[Position, bytes]]:
        """Replay from ``from_position``, then follow new entries (XREAD BLOCK); ends when the log closes.

        A closed log ends a tail at once if ``aclose`` (or ``close`` from the
        loop's thread) closed the connections, else within ``block_ms``.
        """
        state = self._loop_state()
        client = state.reader
        if from_position > 0:
            floor = await self._acall("tail", client.get, self.floor_key)
            self._check_floor(from_position, floor)
        cursor = id_of(from_position - 1) if from_position > 0 else "0-0"
        while not self._closed:
            try:
                response = await client.xread({self.key: cursor}, count=self.read_batch, block=self.block_ms)
            except Exception as exc:
                if self._closed:
                    return
                raise self._failure("tail", exc) from exc
            entries = _xread_entries(response)
            if not entries:
                continue
            for entry_id, fields in entries:
                if fields[0] != FIELD:
                    raise LogError(f"{self!r}: entry {entry_id!r} is not a record of this log")
                yield position_of(entry_id), fields[1]
            cursor = _text(entries[-1][0])
            self._saw(position_of(cursor))

    async def wait_for(self, position: Position) -> bool:
        """Wait until ``last_position >= position`` (an append from any process); False if the log closed."""
        if position <= self._known_last:
            return True
        if self._closed:
            return False
        client = self._loop_state().reader
        after = id_of(position - 1) if position > 0 else "0-0"
        while not self._closed:
            try:
                response = await client.xread({self.key: after}, count=1, block=self.block_ms)
            except Exception as exc:
                if self._closed:
                    return False
                raise self._failure("wait_for", exc) from exc
            entries = _xread_entries(response)
            if entries:
                self._saw(position_of(entries[-1][0]))
                return True
        return False

    def truncate_before(self, position: Position) -> None:
        """XTRIM MINID (exact) to ``position`` and raise the floor; keeps ``position``, what follows,
        and always the last entry."""
        if self._closed:
            raise LogClosed(f"{self!r} is closed")
        if position <= 0:
            return

        def trim(pipe: redis.client.Pipeline) -> None:
            floor = pipe.get(self.floor_key)
            last: Any = pipe.xrevrange(self.key, "+", "-", count=1)
            if not last:
                return
            new = max(int(floor) if floor else 0, min(position, position_of(last[0][0])))
            pipe.multi()
            pipe.set(self.floor_key, str(new))
            pipe.xtrim(self.key, minid=id_of(new), approximate=False)

        self._call("truncate_before", self._sync.transaction, trim, self.floor_key)

    def close(self) -> None:
        """Refuse new appends; queued ones still complete. Releases the connections.

        From the loop's own thread the async connections are closed by a task
        (after the queued appends); prefer ``aclose`` there.
        """
        if self._prefetch is not None:
            self._prefetch.shutdown(wait=False, cancel_futures=True)
        state = self._shutdown()
        if state is None or state.loop.is_closed():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is state.loop:
            state.loop.create_task(state.aclose())
        elif state.loop.is_running():
            asyncio.run_coroutine_threadsafe(state.aclose(), state.loop)

    async def aclose(self) -> None:
        """Refuse new appends, wait for queued ones, close the connections (ends tails at once)."""
        state = self._shutdown()
        if state is None:
            return
        if state.loop is asyncio.get_running_loop():
            await state.aclose()
        elif state.loop.is_running():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(state.aclose(), state.loop))

    def _shutdown(self) -> _LoopState | None:
        """Mark closed (once) and release the sync client; the loop state to close, if any."""
        if self._closed:
            return None
        self._closed = True
        self._sync.close()
        state, self._state = self._state, None
        return state

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _checked(records: Sequence[bytes]) -> list[bytes]:
        out = [r if type(r) is bytes else bytes(r) for r in records]
        if len(out) > MAX_APPEND_RECORDS:
            raise ValueError(f"one append takes at most {MAX_APPEND_RECORDS} records, got {len(out)}")
        return out

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._state
        if state is None or state.loop is not loop:
            if state is not None and not state.loop.is_closed():
                logger.warning("%r used from a second event loop; its first loop's connections are dropped", self)
            timeout = self.block_ms / 1000 + 10  # a blocked XREAD must not time out on the socket
            writer = redis.asyncio.Redis.from_url(
                self.url, socket_connect_timeout=5, socket_timeout=30, retry=AsyncRetry(NoBackoff(), 0),
                **async_client_options(),
            )
            reader = redis.asyncio.Redis.from_url(
                self.url, socket_connect_timeout=5, socket_timeout=timeout, **async_client_options()
            )
            reader.set_response_callback("XREAD", _raw_reply)  # entries as [id, [field, value]], no dicts
            state = self._state = _LoopState(loop, writer, reader)
        return state

    async def _drain(self, state: _LoopState) -> None:
        """The group-commit writer: while requests are queued, send them as one transaction each round.

        Whatever queued up while a transaction was in flight goes out in the
        next one, so the batch size follows the load with no added delay.
        """
        pending = state.pending
        while pending:
            take = count = 0
            while take < len(pending):
                n = len(pending[take].records)
                if take and count + n > MAX_BATCH_RECORDS:
                    break
                count += n
                take += 1
            batch = pending[:take]
            del pending[:take]
            await self._commit(state, batch, count)

    async def _commit(self, state: _LoopState, batch: list[_Request], count: int) -> None:
        pipe = state.writer.pipeline(transaction=True)
        key = self.key
        for request in batch:
            for record in request.records:
                pipe.execute_command("XADD", key, "*", FIELD, record)
        started = time.perf_counter()
        try:
            ids = await pipe.execute()
            positions = [position_of(i) for i in ids]
        except Exception as exc:
            self.metrics.errors += 1
            failure = self._failure("append", exc)
            for request in batch:
                if not request.future.done():
                    error = type(failure)(str(failure))
                    error.__cause__ = exc
                    request.future.set_exception(error)
            return
        self.metrics.count(count, sum(r.nbytes for r in batch), time.perf_counter() - started)
        self._saw(positions[-1])
        at = 0
        for request in batch:
            n = len(request.records)
            if not request.future.done():  # a cancelled caller: its records are appended anyway
                request.future.set_result(positions[at : at + n])
            at += n

    def _saw(self, position: Position) -> None:
        if position > self._known_last:
            self._known_last = position

    def _check_floor(self, from_position: Position, floor: bytes | None, when: str = "") -> None:
        if from_position > 0 and floor is not None and from_position < int(floor):
            suffix = f" {when}" if when else ""
            raise LogTruncated(
                f"position {from_position} of {self!r} was removed by truncation{suffix}: "
                f"the log holds positions from {int(floor)} on"
            )

    def _failure(self, what: str, exc: BaseException) -> LogError:
        if isinstance(exc, LogError):
            return exc
        if isinstance(exc, _REDIS_DOWN):
            return LogUnavailable(f"{what} on stream {self.key!r} failed: {self.where} is unreachable ({exc})")
        return LogError(f"{what} on stream {self.key!r} at {self.where} failed: {exc!r}")

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an idempotent sync operation; a connection error is retried once (a pooled
        connection may have died with a Redis restart: the retry gets a new one)."""
        for attempt in (1, 2):
            try:
                return fn(*args, **kwargs)
            except LogError:
                raise
            except _REDIS_DOWN as exc:
                if attempt == 2:
                    raise self._failure(what, exc) from exc
            except Exception as exc:
                raise self._failure(what, exc) from exc

    async def _acall(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return await fn(*args)
        except Exception as exc:
            raise self._failure(what, exc) from exc


def _xread_entries(response: Any) -> list[tuple[bytes, list[bytes]]]:
    """The entries of a one-stream XREAD reply, whichever shape (RESP2 list, RESP3 dict) redis-py gives."""
    if not response:
        return []
    if isinstance(response, dict):
        (entries,) = response.values()
        if entries and isinstance(entries[0], list) and entries[0] and isinstance(entries[0][0], list):
            # older RESP3 parser: {key: [[entries]]}
            entries = entries[0]
        return list(entries)
    return list(response[0][1])
