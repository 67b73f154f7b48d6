"""Webhook delivery: a loop in every server process that claims endpoints with
work (FOR UPDATE SKIP LOCKED, then a lease), and for each delivers its changes
one at a time in seq order, signed; a failure waits with exponential backoff
and jitter (the endpoint alone: the others go on), and an endpoint failing for
the whole retry window is disabled and its account told in its feed.

At least once: the cursor moves only after a receiver answered 2xx, so a crash
between the answer and the move sends that change again, with the same
delivery id. The HTTP client is httpx with its timeouts and limits; it connects
to the address the URL check resolved (no DNS rebinding between check and
connect), follows no redirect and reads at most a few kilobytes of an answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpcore
import httpx
import msgspec
from prometheus_client import Counter, Histogram

from api import wire
from api.changes import log as change_log
from api.shell import set_aside
from api.shell.clock import utcnow
from api.shell.database import CONNECTION_LOST, DatabaseUnavailable, Pool, transaction
from api.shell.ids import new_id
from api.shell.tasks import wait_for_event
from api.webhooks import signing, store
from api.webhooks.safety import CheckedUrl, UnsafeUrl, check_url
from domain import webhooks as rules

log = logging.getLogger("ontime.webhooks")

DELIVERED = Counter("ontime_webhook_deliveries", "Webhook delivery attempts, by outcome", ["outcome"])
LATENCY = Histogram("ontime_webhook_latency_seconds", "Webhook delivery attempts: request to answer")
DISABLED = Counter("ontime_webhooks_disabled", "Endpoints disabled after failing for the whole retry window")

UNAVAILABLE: tuple[type[BaseException], ...] = (DatabaseUnavailable, *CONNECTION_LOST)
READ_AT_MOST = 4096  # bytes of a receiver's answer kept (for the delivery log)
BATCH = 50  # changes read per round trip for one endpoint
CHECK_FOR = 30.0  # seconds a URL's check (its DNS answer) is trusted


@dataclass(frozen=True)
class Config:
    allow_private: bool = False
    timeout_seconds: float = 10.0
    first_retry: timedelta = rules.FIRST_RETRY
    longest_wait: timedelta = rules.LONGEST_WAIT
    retry_window: timedelta = rules.RETRY_WINDOW
    poll_seconds: float = 1.0
    lease_seconds: float = 60.0
    concurrency: int = 32  # endpoints delivered to at once, per process


class _Kind(msgspec.Struct):
    type: str
    shipment: _Late | None = None


class _Late(msgspec.Struct):
    late: bool = False


_read_kind = msgspec.json.Decoder(_Kind).decode


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the address the URL check chose for a host, never to what a
    second resolution might say (DNS rebinding). A host with no checked address
    is not connected to at all."""

    def __init__(self) -> None:
        self.pins: dict[str, str] = {}
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]]
        | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = self.pins.get(host)
        if address is None:
            raise httpcore.ConnectError(f"{host} was not checked before connecting")
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]]
        | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are never sent to a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, backend: PinnedBackend, concurrency: int) -> None:
        super().__init__(trust_env=False)
        # httpx's transport, with the connection pool on our network backend
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=concurrency,
            max_keepalive_connections=concurrency,
            keepalive_expiry=30.0,
            network_backend=backend,
        )


def new_client(config: Config) -> tuple[httpx.AsyncClient, PinnedBackend]:
    backend = PinnedBackend()
    client = httpx.AsyncClient(
        transport=PinnedTransport(backend, config.concurrency),
        timeout=httpx.Timeout(config.timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "ontime-webhooks/1", "Content-Type": "application/json"},
    )
    return client, backend


@dataclass(frozen=True)
class Attempt:
    status: int | None
    error: str | None
    latency_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Worker:
    def __init__(self, pool: Pool, config: Config) -> None:
        self.pool = pool
        self.config = config
        self.name = f"{socket.gethostname()}:{id(self)}:{new_id('wkr')}"
        self.client, self.backend = new_client(config)
        self.wake = asyncio.Event()
        self.running: dict[str, asyncio.Task[None]] = {}
        self.checks: dict[str, tuple[CheckedUrl, float]] = {}
        self._database_down = False

    def poke(self, *_: object) -> None:
        """A change was committed somewhere: look for work now."""
        self.wake.set()

    async def run(self) -> None:
        try:
            while True:
                await self.tick()
                await wait_for_event(self.wake, self.config.poll_seconds)
                self.wake.clear()
        finally:
            for task in self.running.values():
                task.cancel()
            await asyncio.gather(*self.running.values(), return_exceptions=True)
            await self.client.aclose()

    async def tick(self) -> None:
        """Claim what this process has room for and start delivering to each."""
        room = self.config.concurrency - len(self.running)
        if room <= 0:
            return
        try:
            rows = await self.pool.fetch(store.CLAIM, self.name, utcnow(), room, self.config.lease_seconds)
        except UNAVAILABLE as error:
            if not self._database_down:
                log.warning("webhooks: the database is unavailable (%r); retrying quietly", error)
            self._database_down = True
            return
        self._database_down = False
        for row in rows:
            endpoint = store.endpoint_from_row(row)
            task = asyncio.create_task(self.drain(endpoint), name=f"ontime-webhook-{endpoint.id}")
            self.running[endpoint.id] = task
            task.add_done_callback(functools.partial(self._done, endpoint.id))

    def _done(self, endpoint_id: str, _: asyncio.Task[None]) -> None:
        self.running.pop(endpoint_id, None)
        self.wake.set()  # room for another endpoint, and this one may have more

    async def drain(self, endpoint: store.Endpoint) -> None:
        """Deliver the endpoint's changes in seq order until none is left, one
        fails, or the lease is lost; an endpoint whose delivery cannot even be
        built is set aside, and the others go on."""
        try:
            # an endpoint claimed again after it was set aside is no longer set aside
            await set_aside.clear(self.pool, store.LOOP, [endpoint.id])
            while True:
                changes = await self.pool.fetch(store.CHANGES_AFTER, endpoint.account_id, endpoint.delivered_seq, BATCH)
                if not changes:
                    await self.pool.execute(store.RELEASE, endpoint.id, self.name)
                    return
                for change in changes:
                    if not await self.deliver(endpoint, change["seq"], change["kind"], change["body"]):
                        return
        except asyncio.CancelledError:
            raise
        except UNAVAILABLE as error:
            log.warning("webhooks: lost the database delivering to %s (%r); the lease runs out", endpoint.id, error)
        except Exception as error:
            async with transaction(self.pool) as conn:
                await set_aside.put(conn, store.LOOP, endpoint.id, error, utcnow())
                await conn.execute(store.RELEASE, endpoint.id, self.name)

    async def deliver(self, endpoint: store.Endpoint, seq: int, kind: str, body: bytes) -> bool:
        """One change to one endpoint; True to go on with the next."""
        now = utcnow()
        decoded = _read_kind(body)
        late = decoded.type == "late" or (decoded.shipment is not None and decoded.shipment.late)
        if rules.wanted(kind, late, kinds=endpoint.kinds, late_only=endpoint.late_only):
            delivery_id = await self.pool.fetchval(store.OPEN_DELIVERY, new_id("dlv"), endpoint.id, seq, now)
            message = change_log.with_seq(seq, body)
            attempt = await self.send(endpoint, delivery_id, seq, message, now)
            if not attempt.ok:
                await self.failed(endpoint, seq, attempt)
                return False
            moved = await self.pool.fetchval(
                store.DELIVERED,
                endpoint.id,
                self.name,
                endpoint.delivered_seq,
                seq,
                utcnow(),
                self.config.lease_seconds,
                attempt.status,
                attempt.latency_ms,
            )
        else:  # not wanted: passed over
            moved = await self.pool.fetchval(
                store.ADVANCE, endpoint.id, self.name, endpoint.delivered_seq, seq, utcnow(), self.config.lease_seconds
            )
        if moved is None:  # the lease ran out, or a replay moved the cursor: someone else goes on
            return False
        endpoint.delivered_seq = seq
        return True

    async def checked(self, url: str) -> CheckedUrl:
        """The URL checked (its host resolved, every address public): at most
        CHECK_FOR seconds ago, so a change of its DNS is seen soon, and a burst
        of deliveries resolves once. The connection goes to the checked address."""
        now = time.monotonic()
        cached = self.checks.get(url)
        if cached is not None and cached[1] > now:
            return cached[0]
        checked = await check_url(url, allow_private=self.config.allow_private)
        self.checks[url] = (checked, now + CHECK_FOR)
        if len(self.checks) > 10_000:  # a bound on memory, whatever the number of endpoints
            self.checks.clear()
        return checked

    async def send(
        self, endpoint: store.Endpoint, delivery_id: str, seq: int, message: bytes, now: datetime
    ) -> Attempt:
        started = time.perf_counter()

        def took() -> int:
            return round((time.perf_counter() - started) * 1000)

        try:
            checked = await self.checked(endpoint.url)
        except UnsafeUrl as refused:
            DELIVERED.labels("refused").inc()
            return Attempt(None, f"refused: {refused}", took())
        self.backend.pins[checked.host] = checked.addresses[0]
        timestamp = int(now.timestamp())
        headers = {
            "Ontime-Delivery": delivery_id,
            "Ontime-Seq": str(seq),
            "Ontime-Timestamp": str(timestamp),
            "Ontime-Signature": signing.signature_header(endpoint.secrets_in_force(now), timestamp, message),
        }
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange (a receiver dripping bytes)
            async with (
                asyncio.timeout(self.config.timeout_seconds),
                self.client.stream("POST", endpoint.url, content=message, headers=headers) as response,
            ):
                read = b""
                async for chunk in response.aiter_raw():
                    read += chunk
                    if len(read) >= READ_AT_MOST:
                        break
        except (httpx.TimeoutException, TimeoutError):
            DELIVERED.labels("timeout").inc()
            return Attempt(None, f"no answer within {self.config.timeout_seconds:g} s", took())
        except httpx.HTTPError as error:
            DELIVERED.labels("unreachable").inc()
            return Attempt(None, f"{type(error).__name__}: {error}"[:500], took())
        LATENCY.observe(time.perf_counter() - started)
        ok = 200 <= response.status_code < 300
        DELIVERED.labels("delivered" if ok else "refused_by_receiver").inc()
        said = None if ok else f"HTTP {response.status_code}: {read[:200].decode(errors='replace')}"
        return Attempt(response.status_code, said, took())

    async def failed(self, endpoint: store.Endpoint, seq: int, attempt: Attempt) -> None:
        now = utcnow()
        wait = rules.retry_wait(
            endpoint.attempts + 1,
            random.random(),
            first=self.config.first_retry,
            longest=self.config.longest_wait,
        )
        async with transaction(self.pool) as conn:
            await conn.execute(
                store.ATTEMPTED, endpoint.id, seq, attempt.status, attempt.error, attempt.latency_ms, None, now + wait
            )
            row = await conn.fetchrow(store.FAILED, endpoint.id, self.name, now, now + wait, attempt.error)
            if row is None or not rules.gives_up(row["failing_since"], now, self.config.retry_window):
                return
            if await conn.fetchval(store.DISABLE, endpoint.id, now) is None:
                return
            body = msgspec.json.encode(
                wire.WebhookDisabledChange(
                    webhook_id=endpoint.id,
                    url=endpoint.url,
                    failing_since=row["failing_since"],
                    last_error=attempt.error,
                )
            )
            await change_log.append(conn, [change_log.NewChange(endpoint.account_id, None, "webhook_disabled", body)])
        DISABLED.inc()
        log.warning("webhooks: disabled %s after failing since %s", endpoint.id, row["failing_since"].isoformat())
