"""The per-process hub of the live feed.

One task reads the change log after the last seq this process has dispatched,
on a connection of its own (never waiting behind requests for the pool),
whenever it is woken (a NOTIFY from any process's commit, a listener reconnect)
and every `poll_interval` regardless, so a lost notification only delays a
change, never loses it. Each change is encoded once, as text, and offered to
the connections that cover it; each connection has a bounded outbox drained by
its own writer, so a slow client never holds up the hub or anyone else.
Another task wakes the writers a slice at a time, a turn of the event loop
apart: a change for a thousand connections would otherwise be a thousand
writes in one turn, and every request, database reply and read of the log in
the process would wait for them all. A connection falls behind when the oldest
change waiting for it has waited `max_lag` seconds (a burst of a thousand
changes that it takes promptly is not that); it is then closed with 4008 and
resumes with `since`. `max_outbox` caps what may wait, to bound memory
whatever the timing.

With a `Trace`, the hub notes when each change passed each of its stages, for
bench.live to split the latency into its parts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import asyncpg
import msgspec

from api.changes import log as change_log
from api.live import protocol
from api.shell import set_aside
from api.shell.auth import Principal
from api.shell.database import CONNECT_TIMEOUT, CONNECTION_LOST, UNREACHABLE, DatabaseUnavailable, Pool, connect
from api.shell.tasks import cancel_and_wait, wait_for_event

if TYPE_CHECKING:
    from litestar import Litestar

log = logging.getLogger("ontime.live")

PAGE = 1000
# a read of the log slower than this is taken for a dead connection (replaced, read again at the next wake)
READ_TIMEOUT = 10.0
AFTER = "select seq, account_id, shipment_id, body from changes where seq > $1 order by seq limit $2"
# how the hub's reading connection shows in pg_stat_activity
APPLICATION_NAME = "ontime-live-hub"
# writers woken in one turn of the event loop: a few hundred µs of writes, so that a
# request's next step waits little behind a change for a thousand connections
WAKE_AT_ONCE = 16
LOOP = "live_hub"
# a connection the hub failed to hand a change to is closed with this, and resumes with `since`
INTERNAL_ERROR = 1011
# shipments one connection may follow by id (beyond that, subscribe to "all")
MAX_SHIPMENTS = 10_000


class TooManySubscriptions(ValueError):
    pass


class Subscriber:
    """One websocket connection, as the hub sees it."""

    __slots__ = (
        "accounts",
        "close_code",
        "drained",
        "everything",
        "high_water",
        "max_lag",
        "max_outbox",
        "outbox",
        "pending",
        "principal",
        "ready",
        "secret_hash",
        "shipments",
    )

    def __init__(self, principal: Principal, secret_hash: bytes, max_outbox: int, max_lag: float) -> None:
        self.principal = principal
        self.secret_hash = secret_hash
        self.accounts: set[str] = set()
        self.shipments: set[str] = set()
        self.everything = False
        # the highest seq handed to the writer: the connection's seq only grows
        self.high_water = 0
        # (when it was queued, the frame)
        self.outbox: deque[tuple[float, str]] = deque()
        self.ready = asyncio.Event()
        # made only while a replay waits for the client to take a page
        self.drained: asyncio.Event | None = None
        # while a `since` replay runs, live changes wait here
        self.pending: list[tuple[int, str]] | None = None
        self.close_code: int | None = None
        self.max_outbox = max_outbox
        self.max_lag = max_lag

    def may_see(self, account_id: str) -> bool:
        scope = self.principal.account_scope
        return scope is None or scope == account_id

    def offer(self, seq: int, entry: tuple[float, str]) -> bool:
        """Take a live change, `entry` (when it was read, its frame) shared by
        every connection it goes to; True when the writer must be woken for it."""
        if self.pending is not None:
            if len(self.pending) >= self.max_outbox:
                self.close(protocol.TOO_SLOW)
            else:
                self.pending.append((seq, entry[1]))
            return False
        return self._push(seq, entry)

    def enqueue(self, seq: int, text: str) -> None:
        if self._push(seq, (time.monotonic(), text)):
            self.ready.set()

    def _push(self, seq: int, entry: tuple[float, str]) -> bool:
        if seq <= self.high_water or self.close_code is not None:
            return False
        if self.outbox and (entry[0] - self.outbox[0][0] > self.max_lag or len(self.outbox) >= self.max_outbox):
            self.close(protocol.TOO_SLOW)
            return False
        self.outbox.append(entry)
        self.high_water = seq
        return True

    def send_now(self, text: str) -> None:
        """A protocol message outside the change sequence (answers, errors)."""
        self.outbox.append((time.monotonic(), text))
        self.ready.set()

    def close(self, code: int) -> None:
        if self.close_code is None:
            self.close_code = code
            self.outbox.clear()
            self.ready.set()
            if self.drained is not None:
                # a replay waiting for this client must not wait forever
                self.drained.set()


class Trace:
    """When each change passed the hub's stages, in wall-clock seconds (the clock
    bench.live's writer and followers stamp with, on the same machine): the first
    wake-up before its read, the read's start and end, its dispatch to the
    outboxes, its first and last frame written to a socket, and how many were.
    Written as JSON, {seq: [...]}, when the hub stops."""

    __slots__ = ("changes", "path", "woken_at")

    WOKEN, READ_FROM, READ_TO, DISPATCHED, FIRST_SENT, LAST_SENT, SENDS = range(7)

    def __init__(self, path: str) -> None:
        self.path = path
        self.woken_at: float | None = None
        self.changes: dict[int, list[float]] = {}

    def woken(self) -> None:
        if self.woken_at is None:
            self.woken_at = time.time()

    def sent(self, text: str) -> None:
        """A frame went to a socket; the change's seq leads its text (`{"seq":N,`)."""
        if text.startswith('{"seq":'):
            stages = self.changes.get(int(text[7 : text.index(",")]))
            if stages is not None:
                now = time.time()
                if not stages[Trace.SENDS]:
                    stages[Trace.FIRST_SENT] = now
                stages[Trace.LAST_SENT] = now
                stages[Trace.SENDS] += 1

    def write(self) -> None:
        Path(self.path).write_bytes(msgspec.json.encode(self.changes))


class Hub:
    def __init__(
        self,
        pool: Pool,
        *,
        poll_interval: float = 1.0,
        max_outbox: int = 10_000,
        max_lag: float = 5.0,
        ping_interval: float = 20.0,
        database_url: str | None = None,
        trace: Trace | None = None,
    ) -> None:
        """With `database_url`, the log is read on a connection of the hub's own
        (made when first needed, replaced when it fails); without, on the pool."""
        self.pool = pool
        self.database_url = database_url
        self._reader: asyncpg.Connection[asyncpg.Record] | None = None
        self.poll_interval = poll_interval
        self.max_outbox = max_outbox
        self.max_lag = max_lag
        self.ping_interval = ping_interval
        self.position = 0
        self.by_account: dict[str, set[Subscriber]] = {}
        self.by_shipment: dict[str, set[Subscriber]] = {}
        self.everything: set[Subscriber] = set()
        self.by_key: dict[bytes, set[Subscriber]] = {}
        # connections given changes since their writers were last woken, in order (a dict: each once)
        self._to_wake: dict[Subscriber, None] = {}
        self._writers_due = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._waker: asyncio.Task[None] | None = None
        # changes that cannot be sent (a body that is not UTF-8, say): each logged and counted once
        self.skipped: set[int] = set()
        self.trace = trace

    # -- the pump --------------------------------------------------------------

    async def start(self) -> None:
        self.position = await self.pool.fetchval("select coalesce(max(seq), 0) from changes")
        self._task = asyncio.create_task(self._run(), name="ontime-live-hub")
        self._pinger = asyncio.create_task(self._ping(), name="ontime-live-ping")
        self._waker = asyncio.create_task(self._wake_writers(), name="ontime-live-waker")

    async def stop(self) -> None:
        await cancel_and_wait(self._pinger)
        await cancel_and_wait(self._task)
        await cancel_and_wait(self._waker)
        if self._reader is not None:
            self._reader.terminate()
            self._reader = None
        for subscriber in list(self._all()):
            subscriber.close(1001)
        if self.trace is not None:
            self.trace.write()

    def wake(self, _payload: str = "") -> None:
        if self.trace is not None:
            self.trace.woken()
        self._wake.set()

    async def _run(self) -> None:
        unavailable = False
        while True:
            await wait_for_event(self._wake, self.poll_interval)
            self._wake.clear()
            try:
                await self.catch_up()
                unavailable = False
            except UNREACHABLE as exc:
                if not unavailable:  # said once, not at every poll while the database is away
                    log.warning("live hub cannot read the change log: %r; retrying", exc)
                unavailable = True
            except Exception:  # whatever it was, the live feed must go on
                log.exception("live hub could not read the change log; retrying")

    async def _ping(self) -> None:
        """One timer for every connection, rather than one per connection."""
        while True:
            await asyncio.sleep(self.ping_interval)
            entry = (time.monotonic(), protocol.PING)
            for subscriber in self._all():
                subscriber.outbox.append(entry)
                self._to_wake[subscriber] = None
            self._writers_due.set()

    async def _wake_writers(self) -> None:
        """Wake the writers of the connections given frames, WAKE_AT_ONCE a turn
        of the loop; the next read of the log need not wait for them all."""
        while True:
            await self._writers_due.wait()
            self._writers_due.clear()
            waking, self._to_wake = list(self._to_wake), {}
            for start in range(0, len(waking), WAKE_AT_ONCE):
                if start:
                    await asyncio.sleep(0)
                for subscriber in waking[start : start + WAKE_AT_ONCE]:
                    subscriber.ready.set()

    async def catch_up(self) -> None:
        if not self.by_key:
            # nobody to tell: move on without reading what nobody will get
            latest = await self.pool.fetchval("select coalesce(max(seq), $1) from changes", self.position)
            if not self.by_key:  # and still nobody, now that the query is back
                self.position = latest
                return
        while True:
            woken_at, read_from = self._trace_read()
            rows = await self._read_page()
            read_to = time.time() if self.trace is not None else 0.0
            for row in rows:
                self.dispatch(row["seq"], row["account_id"], row["shipment_id"], row["body"])
                if self.trace is not None:
                    self.trace.changes[row["seq"]] = [woken_at, read_from, read_to, time.time(), 0.0, 0.0, 0]
            if self._to_wake:
                self._writers_due.set()
            if len(rows) < PAGE:
                return

    def _trace_read(self) -> tuple[float, float]:
        """When the hub was first woken for the read it begins now, and now (or nothing, untraced)."""
        if self.trace is None:
            return 0.0, 0.0
        now = time.time()
        woken_at, self.trace.woken_at = self.trace.woken_at or now, None
        return woken_at, now

    async def _read_page(self) -> list[asyncpg.Record]:
        if self.database_url is None:
            return await self.pool.fetch(AFTER, self.position, PAGE)
        try:
            return await self._read_own()
        except CONNECTION_LOST:
            # it died while idle (a restart, a proxy's timeout): a read is safe to repeat at once
            return await self._read_own()

    async def _read_own(self) -> list[asyncpg.Record]:
        if self._reader is None or self._reader.is_closed():
            self._reader = await connect(
                self.database_url, timeout=CONNECT_TIMEOUT, server_settings={"application_name": APPLICATION_NAME}
            )
        try:
            # bounded: a connection gone half-open (a failover that sent no reset) would
            # otherwise hold the feed in this process until a restart
            async with asyncio.timeout(READ_TIMEOUT):
                return await self._reader.fetch(AFTER, self.position, PAGE)
        except TimeoutError as exc:
            reader, self._reader = self._reader, None
            reader.terminate()
            raise DatabaseUnavailable(f"the change log's read took over {READ_TIMEOUT:.0f} s") from exc
        except BaseException:
            # lost, or cancelled mid-query: its state is unknown, so the next read makes another
            reader, self._reader = self._reader, None
            reader.terminate()
            raise

    def dispatch(self, seq: int, account_id: str, shipment_id: str | None, body: bytes) -> None:
        """Offer the change to every connection that covers it. A change that
        cannot be sent is skipped, and a connection that fails to take one is
        closed: neither holds up the feed for anyone else."""
        text = self._frame(seq, body)
        if text is not None:
            entry = (time.monotonic(), text)
            for group in (
                self.by_account.get(account_id, ()),
                self.by_shipment.get(shipment_id, ()) if shipment_id is not None else (),  # None: a case on an account
                self.everything,
            ):
                for subscriber in group:
                    try:
                        if subscriber.may_see(account_id) and subscriber.offer(seq, entry):
                            self._to_wake[subscriber] = None
                    except Exception:
                        log.exception("live hub could not hand change %d to a connection; closing it", seq)
                        subscriber.close(INTERNAL_ERROR)
        self.position = seq

    def _frame(self, seq: int, body: bytes) -> str | None:
        """The change as sent, or None when it cannot be: then it is skipped,
        logged and counted the first time (clients still read it from /v1/changes)."""
        try:
            return change_log.with_seq(seq, body).decode()
        except Exception as exc:
            if seq not in self.skipped:
                self.skipped.add(seq)
                set_aside.skipped(LOOP, str(seq), exc, len(self.skipped))
            return None

    # -- connections -----------------------------------------------------------

    def connect(self, principal: Principal, secret_hash: bytes) -> Subscriber:
        subscriber = Subscriber(principal, secret_hash, self.max_outbox, self.max_lag)
        self.by_key.setdefault(secret_hash, set()).add(subscriber)
        return subscriber

    def disconnect(self, subscriber: Subscriber) -> None:
        self._unindex(subscriber, subscriber.accounts, subscriber.shipments, subscriber.everything)
        _discard(self.by_key, subscriber.secret_hash, subscriber)

    def revoke(self, secret_hash: bytes) -> None:
        for subscriber in list(self.by_key.get(secret_hash, ())):
            subscriber.close(protocol.REVOKED)

    async def subscribe(
        self,
        subscriber: Subscriber,
        *,
        accounts: Iterable[str] = (),
        shipments: Iterable[str] = (),
        everything: bool = False,
        since: int | None = None,
    ) -> None:
        """Cover more of the log, replaying what came after `since` first.

        Live changes that arrive during the replay wait in `pending`, and the
        outbox drops anything at or below what it already holds, so the
        connection gets each change once, in seq order, with no gap."""
        accounts, shipments = set(accounts), set(shipments)
        if len(subscriber.shipments | shipments) > MAX_SHIPMENTS:
            raise TooManySubscriptions(f'at most {MAX_SHIPMENTS} shipments per connection; subscribe to "all"')
        if since is not None:
            subscriber.pending = []
        subscriber.accounts |= accounts
        subscriber.shipments |= shipments
        subscriber.everything |= everything
        for account_id in accounts:
            self.by_account.setdefault(account_id, set()).add(subscriber)
        for shipment_id in shipments:
            self.by_shipment.setdefault(shipment_id, set()).add(subscriber)
        if everything:
            self.everything.add(subscriber)
        if since is None:
            return
        try:
            await self._replay(subscriber, since)
        finally:
            pending, subscriber.pending = subscriber.pending or [], None
            for seq, text in pending:
                subscriber.enqueue(seq, text)

    async def _replay(self, subscriber: Subscriber, since: int) -> None:
        """Everything the connection now covers (old subscriptions too: their live
        changes wait in `pending` meanwhile and must not fall below the replay)."""
        after = max(since, subscriber.high_water)
        scope = subscriber.principal.account_scope
        while subscriber.close_code is None:
            rows = await self.pool.fetch(
                """select seq, account_id, body from changes
                   where seq > $1
                     and ($2 or account_id = any($3::text[]) or shipment_id = any($4::text[]))
                     and ($5::text is null or account_id = $5)
                   order by seq limit $6""",
                after,
                subscriber.everything,
                list(subscriber.accounts),
                list(subscriber.shipments),
                scope,
                PAGE,
            )
            for row in rows:
                text = self._frame(row["seq"], row["body"])
                if text is not None:
                    subscriber.enqueue(row["seq"], text)
            if len(rows) < PAGE:
                return
            after = rows[-1]["seq"]
            # let the client take the page before reading the next one
            while len(subscriber.outbox) > subscriber.max_outbox // 2 and subscriber.close_code is None:
                subscriber.drained = asyncio.Event()
                await subscriber.drained.wait()
                subscriber.drained = None

    def unsubscribe(
        self,
        subscriber: Subscriber,
        *,
        accounts: Iterable[str] = (),
        shipments: Iterable[str] = (),
        everything: bool = False,
    ) -> None:
        accounts, shipments = set(accounts) & subscriber.accounts, set(shipments) & subscriber.shipments
        subscriber.accounts -= accounts
        subscriber.shipments -= shipments
        if everything:
            subscriber.everything = False
        self._unindex(subscriber, accounts, shipments, everything)

    def _unindex(
        self, subscriber: Subscriber, accounts: Iterable[str], shipments: Iterable[str], everything: bool
    ) -> None:
        for account_id in accounts:
            _discard(self.by_account, account_id, subscriber)
        for shipment_id in shipments:
            _discard(self.by_shipment, shipment_id, subscriber)
        if everything:
            self.everything.discard(subscriber)

    def _all(self) -> Iterable[Subscriber]:
        for group in self.by_key.values():
            yield from group


_Key = TypeVar("_Key")


def _discard(index: dict[_Key, set[Subscriber]], key: _Key, subscriber: Subscriber) -> None:
    group = index.get(key)
    if group is not None:
        group.discard(subscriber)
        if not group:
            del index[key]


def hub_of(app: Litestar) -> Hub:
    """The hub the lifespan keeps on app.state (which Litestar leaves untyped)."""
    hub: Hub = app.state.hub
    return hub
