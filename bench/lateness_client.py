"""The websocket follower for `bench.lateness`, in a process of its own.

It opens one connection per ontime process with a support key, subscribes each
to "all" (every account), and notes for every `late` message the shipment, its
`promised_by` and when the message arrived (`time.time()`: one machine, one
clock with the database's `now()` and the server's). It talks to the parent
over a multiprocessing pipe.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime
from multiprocessing.connection import Connection

import msgspec
import uvloop
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench.live_clients import subscribed_to_all


class _Shipment(msgspec.Struct):
    id: str
    promised_by: datetime


class _Message(msgspec.Struct):
    type: str
    shipment: _Shipment | None = None


_decode = msgspec.json.Decoder(_Message).decode


class Receipts(msgspec.Struct):
    """Per connection, for each `late` message in arrival order: shipment id,
    seconds from its promised_by to its arrival; and how connections closed."""

    late: list[list[tuple[str, float]]]
    closes: dict[int, int]


def follow(urls: list[str], token: str, expected: int, pipe: Connection) -> None:
    """Send ("ready",) once subscribed; then Receipts when every connection has
    `expected` late messages, or as soon as the parent sends "stop"."""
    uvloop.run(_follow(urls, token, expected, pipe))


async def _follow(urls: list[str], token: str, expected: int, pipe: Connection) -> None:
    late: list[list[tuple[str, float]]] = [[] for _ in urls]
    closes: Counter[int] = Counter()
    done = asyncio.Event()

    async def read(ws: ClientConnection, received: list[tuple[str, float]]) -> None:
        try:
            async for frame in ws:
                arrived = time.time()
                message = _decode(frame)
                if message.type == "late" and message.shipment is not None:
                    received.append((message.shipment.id, arrived - message.shipment.promised_by.timestamp()))
                    if all(len(r) >= expected for r in late):
                        done.set()
        except ConnectionClosed:
            pass
        closes[ws.close_code or 0] += 1

    sockets = [await subscribed_to_all(url, token) for url in urls]
    readers = [asyncio.create_task(read(ws, received)) for ws, received in zip(sockets, late, strict=False)]
    pipe.send(("ready",))
    stop = asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    await asyncio.wait([asyncio.ensure_future(done.wait()), stop], return_when=asyncio.FIRST_COMPLETED)
    for reader in readers:
        reader.cancel()
    pipe.send(Receipts(late, dict(closes)))
    await stop  # the parent always says "stop" in the end
