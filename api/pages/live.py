"""What the pages' websockets share: a hub subscriber whose changes are told to
the page only as `{"type": "changed"}` (the page then fetches itself again), so
no change body, with whatever it carries, ever reaches a page's socket."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from litestar import WebSocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect

from api.live import protocol
from api.live.hub import Subscriber

CHANGED = '{"type":"changed"}'


async def tell_changes(socket: WebSocket[Any, Any, State], subscriber: Subscriber, quiet: float = 0.0) -> None:
    """Until the page leaves: "changed" for each batch of changes (then `quiet`
    seconds without another, so a burst makes one refresh), pings passed on."""

    async def relay() -> None:
        while subscriber.close_code is None:
            await subscriber.ready.wait()
            subscriber.ready.clear()
            frames = [text for _, text in subscriber.outbox]
            subscriber.outbox.clear()
            if any(text != protocol.PING for text in frames):
                await socket.send_text(CHANGED)
                await asyncio.sleep(quiet)
            elif frames:
                await socket.send_text(protocol.PING)  # keeps the connection through proxies
        await socket.close(1000)

    sender = asyncio.create_task(relay())
    try:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await socket.receive_text()  # the page says nothing; this notices it leaving
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
