"""The floor for the live feed: a bare `websockets` server that only fans frames out.

It speaks just enough of the protocol for the same followers: the bearer token
is taken as the account id, the first message as the subscription, answered
with `subscribed`. Told to over its pipe, it broadcasts real change messages
captured from the ontime run (same sizes, same accounts) at a given rate to
the connections of each frame's account, stamping `description` with the
time of the broadcast, as the ontime writer stamps it at the time of the POST.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from array import array
from collections import defaultdict
from multiprocessing.connection import Connection

import msgspec
import uvloop
import websockets
from websockets.asyncio.server import ServerConnection, serve

SUBSCRIBED = '{"type":"subscribed","shipments":"all","account_id":null,"seq":0}'
# the writer's stamp: f"{time.time():.6f}", the same width for centuries
STAMP = re.compile(r'"description":"(\d+\.\d{6})"')


class _Shipment(msgspec.Struct):
    account_id: str


class _Change(msgspec.Struct):
    shipment: _Shipment


_account_of = msgspec.json.Decoder(_Change).decode


def run(port: int, pipe: Connection) -> None:
    """Serve on `port`; answer ("listening", pid); then obey ("broadcast", frames,
    rate, seconds, batch) -> when each frame went out, as array("d") bytes; and ("stop",)."""
    uvloop.run(_run(port, pipe))


async def _run(port: int, pipe: Connection) -> None:
    by_account: dict[str, set[ServerConnection]] = defaultdict(set)

    async def subscriber(ws: ServerConnection) -> None:
        account_id = ws.request.headers["Authorization"].removeprefix("Bearer ")
        await ws.recv()
        by_account[account_id].add(ws)
        try:
            await ws.send(SUBSCRIBED)
            await ws.wait_closed()
        finally:
            by_account[account_id].discard(ws)

    # as ontime is served: a backlog of 2048 (uvicorn's), no permessage-deflate
    async with serve(subscriber, "127.0.0.1", port, backlog=2048, compression=None, max_queue=None):
        pipe.send(("listening", os.getpid()))
        loop = asyncio.get_running_loop()
        while (command := await loop.run_in_executor(None, pipe.recv))[0] == "broadcast":
            pipe.send(await _broadcast(by_account, *command[1:]))


async def _broadcast(
    by_account: dict[str, set[ServerConnection]], frames: list[str], rate: float, seconds: float, batch: int
) -> bytes:
    """`rate` frames a second, `batch` at a time, as the writer commits them."""
    templates = []
    for frame in frames:
        stamp = STAMP.search(frame)
        templates.append((_account_of(frame).shipment.account_id, frame[: stamp.start(1)], frame[stamp.end(1) :]))
    sent_at = array("d")
    start = time.monotonic()
    for n in range(round(rate * seconds)):
        if n % batch == 0:
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        account_id, head, tail = templates[n % len(templates)]
        stamp = f"{time.time():.6f}"
        websockets.broadcast(by_account.get(account_id, ()), f"{head}{stamp}{tail}")
        sent_at.append(float(stamp))
    return sent_at.tobytes()
