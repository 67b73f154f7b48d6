"""One LISTEN connection per process, kept alive.

A notification is only a wake-up. Whoever subscribes must also cope with the
connection going away (notifications sent meanwhile are lost): `on_connect`
runs after every (re)connect, before notifications flow, and `on_disconnect`
as soon as the loss is seen, so a subscriber can stop trusting what it
cached and catch up from the database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from api.shell import set_aside
from api.shell.database import CONNECT_TIMEOUT, Connection
from api.shell.tasks import cancel_and_wait, wait_for_event

log = logging.getLogger("ontime.listener")

Handler = Callable[[str], None]

# how the LISTEN connection shows in pg_stat_activity
APPLICATION_NAME = "ontime-listener"
LOOP = "listener"


class Listener:
    def __init__(
        self,
        dsn: str,
        *,
        health_interval: float = 5.0,
        retry_interval: float = 0.5,
    ) -> None:
        self._dsn = dsn
        self._handlers: dict[str, list[Handler]] = {}
        self._on_connect: list[Callable[[], Awaitable[None] | None]] = []
        self._on_disconnect: list[Callable[[], None]] = []
        self._health_interval = health_interval
        self._retry_interval = retry_interval
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self.connected = asyncio.Event()

    def subscribe(
        self,
        channel: str,
        handler: Handler,
        *,
        on_connect: Callable[[], Awaitable[None] | None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
    ) -> None:
        self._handlers.setdefault(channel, []).append(handler)
        if on_connect:
            self._on_connect.append(on_connect)
        if on_disconnect:
            self._on_disconnect.append(on_disconnect)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ontime-listener")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        failing = False
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn, timeout=CONNECT_TIMEOUT, server_settings={"application_name": APPLICATION_NAME}
                )
                self._lost.clear()
                conn.add_termination_listener(lambda _c: self._lost.set())
                for channel in self._handlers:
                    await conn.add_listener(channel, self._dispatch)
                for callback in self._on_connect:
                    result = callback()
                    if result is not None:
                        await result
                self.connected.set()
                failing = False
                await self._watch(conn)
            except asyncio.CancelledError:
                raise
            except Exception:  # lost, refused, or a subscriber's catch-up failed: reconnect either way
                # said once per spell, not every retry_interval while the database is away
                if not failing:
                    log.exception("listener connection lost; reconnecting every %s s", self._retry_interval)
                failing = True
            finally:
                self._mark_lost()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(self._retry_interval)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return when the connection is gone; a cheap query now and then
        finds a connection that died without telling us."""
        while True:
            if await wait_for_event(self._lost, self._health_interval):
                return
            async with asyncio.timeout(self._health_interval):
                await conn.execute("select 1")

    def _mark_lost(self) -> None:
        if self.connected.is_set():
            self.connected.clear()
            for callback in self._on_disconnect:
                callback()

    def _dispatch(self, _conn: Connection, _pid: int, channel: str, payload: object) -> None:
        # a NOTIFY payload is text; asyncpg's listener signature says object
        text = str(payload)
        for handler in self._handlers.get(channel, ()):
            try:
                handler(text)
            except Exception as exc:  # one handler, one notification: the others still get theirs
                set_aside.skipped(LOOP, f"{channel}:{text[:100]}", exc)
