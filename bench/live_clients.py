"""The processes that load a live feed for `bench.live`: websocket followers and the HTTP writer.

Each runs in a process of its own (never on the server's event loop) and talks
to the parent over a multiprocessing pipe. One clock serves them all (they are
on one machine): the writer puts `time.time()` in each event's `description`
as it sends the request, and a follower notes `time.time()` when the change
arrives.
"""

from __future__ import annotations

import asyncio
import sys
import time
from array import array
from collections import Counter
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import NamedTuple
from urllib.parse import urlsplit

import asyncpg
import msgspec
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

SUBSCRIBE_ALL = '{"type":"subscribe","shipments":"all"}'
CONNECTING_AT_ONCE = 100
SAMPLE_FRAMES = 2000  # real change messages kept for the floor to send


class _Event(msgspec.Struct):
    description: str | None = None


class _Message(msgspec.Struct):
    type: str
    seq: int = 0
    event: _Event | None = None


_decode = msgspec.json.Decoder(_Message).decode


class Receipts(msgspec.Struct):
    """What one follower process received: for every change message, when it was
    sent and when it arrived (array("d") bytes) and its seq (array("q") bytes);
    some of the frames themselves; closes while following, by code; its own CPU
    seconds."""

    sent: bytes
    received: bytes
    seqs: bytes
    samples: dict[int, str]
    closes: dict[int, int]
    cpu_seconds: float


# -- followers ---------------------------------------------------------------


async def subscribed_to_all(url: str, token: str) -> ClientConnection:
    """A connection to ontime's live feed, subscribed to "all" of what the token may see."""
    ws = await connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,  # ontime serves without permessage-deflate
        proxy=None,
        open_timeout=120,
        max_queue=None,
    )
    await ws.send(SUBSCRIBE_ALL)
    while _decode(await ws.recv()).type != "subscribed":
        pass
    return ws


def follow(url: str, tokens: list[str], pipe: Connection) -> None:
    """Open one connection per token, subscribe each to "all", send ("ready",
    opened, failures), note every change until told "stop", then send Receipts."""
    uvloop.run(_follow(url, tokens, pipe))


async def _follow(url: str, tokens: list[str], pipe: Connection) -> None:
    sent, received, seqs = array("d"), array("d"), array("q")
    samples: dict[int, str] = {}
    closes: Counter[int] = Counter()
    following = True
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
    readers: set[asyncio.Task[None]] = set()  # held, so none is collected mid-read

    async def read(ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                now = time.time()
                message = _decode(frame)
                if message.event is None or not message.event.description:
                    continue  # pings and protocol answers
                sent.append(float(message.event.description))
                received.append(now)
                seqs.append(message.seq)
                if len(samples) < SAMPLE_FRAMES:
                    samples.setdefault(message.seq, frame)
        except ConnectionClosed:
            pass
        if following:
            closes[ws.close_code or 0] += 1

    async def open_one(token: str) -> ClientConnection:
        async with gate:
            ws = await subscribed_to_all(url, token)
        readers.add(asyncio.create_task(read(ws)))
        return ws

    opened = await asyncio.gather(*(open_one(t) for t in tokens), return_exceptions=True)
    failures = Counter(type(e).__name__ for e in opened if isinstance(e, BaseException))
    pipe.send(("ready", len(tokens) - failures.total(), dict(failures)))

    cpu_start = time.process_time()
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"
    following = False
    cpu = time.process_time() - cpu_start
    pipe.send(Receipts(sent.tobytes(), received.tobytes(), seqs.tobytes(), samples, dict(closes), cpu))
    # leave without a close handshake per connection: the kernel closes the sockets


# -- the writer ----------------------------------------------------------------

IN_FLIGHT = 32  # keep-alive connections, so at most this many requests at once


class Shipment(NamedTuple):
    id: str
    carrier: str
    tracking_number: str


class Written(msgspec.Struct):
    """Per request, in order: when it was sent and when its answer came (the
    commit happened in between); statuses (0: no answer); the writer's CPU."""

    sent: bytes
    answered: bytes
    statuses: dict[int, int]
    seconds: float
    cpu_seconds: float


class _KeepAlive:
    """One HTTP/1.1 connection, just enough to POST JSON to ontime. (httpx's pool
    costs milliseconds of CPU a request once requests queue for connections.)"""

    def __init__(self, base_url: str, admin_key: str) -> None:
        url = urlsplit(base_url)
        self.address = url.hostname, url.port
        self.head = f"Host: {url.netloc}\r\nAuthorization: Bearer {admin_key}\r\nContent-Type: application/json\r\n"
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: bytes) -> int:
        try:
            if self.streams is None:
                self.streams = await asyncio.open_connection(*self.address)
            reader, writer = self.streams
            writer.write(f"POST {path} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            return status
        except (OSError, IndexError, ValueError, asyncio.IncompleteReadError):
            if self.streams is not None:
                self.streams[1].close()
                self.streams = None
            return 0


def write(
    base_url: str, admin_key: str, shipments: list[Shipment], rate: float, seconds: float, batch: int, pipe: Connection
) -> None:
    """Record `rate` events a second for `seconds`, on the shipments in turn,
    `batch` events a request: one a request to POST /v1/shipments/{id}/events,
    more to the batch endpoint POST /v1/events. Open loop: each request on its
    schedule, up to IN_FLIGHT at once. Sends Written."""
    pipe.send(uvloop.run(_write(base_url, admin_key, shipments, rate, seconds, batch)))


async def _write(
    base_url: str, admin_key: str, shipments: list[Shipment], rate: float, seconds: float, batch: int
) -> Written:
    requests = round(rate * seconds / batch)
    sent, answered = array("d", bytes(8 * requests)), array("d", bytes(8 * requests))
    statuses: Counter[int] = Counter()
    idle: asyncio.Queue[_KeepAlive] = asyncio.Queue()
    for _ in range(IN_FLIGHT):
        idle.put_nowait(_KeepAlive(base_url, admin_key))

    async def post(n: int, http: _KeepAlive) -> None:
        sent[n] = float(f"{time.time():.6f}")  # as the followers will read it back
        targets = [shipments[(n * batch + k) % len(shipments)] for k in range(batch)]
        event = {
            "status": "in_transit",
            "occurred_at": datetime.fromtimestamp(sent[n], UTC).isoformat(),
            "description": f"{sent[n]:.6f}",
        }
        if batch == 1:
            path, body = f"/v1/shipments/{targets[0].id}/events", event | {"event_id": f"bench-{sent[n]:.6f}-{n}"}
        else:
            path, body = (
                "/v1/events",
                [
                    event
                    | {
                        "event_id": f"bench-{sent[n]:.6f}-{n}-{k}",
                        "carrier": s.carrier,
                        "tracking_number": s.tracking_number,
                    }
                    for k, s in enumerate(targets)
                ],
            )
        statuses[await http.post(path, msgspec.json.encode(body))] += 1
        answered[n] = time.time()
        idle.put_nowait(http)

    tasks = set()
    start, cpu_start = time.monotonic(), time.process_time()
    for n in range(requests):
        await asyncio.sleep(max(0.0, start + n * batch / rate - time.monotonic()))
        task = asyncio.create_task(post(n, await idle.get()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if n and n % round(5 * rate / batch) == 0:
            done, rate_so_far = n * batch, n * batch / (time.monotonic() - start)
            print(f"      written {done}/{requests * batch} events ({rate_so_far:.0f}/s)", file=sys.stderr)
    await asyncio.gather(*tasks)
    return Written(
        sent.tobytes(), answered.tobytes(), dict(statuses), time.monotonic() - start, time.process_time() - cpu_start
    )


# -- the database's own commit latency, meanwhile --------------------------------

PROBE_RATE = 20.0  # commits a second


def probe_commits(database_url: str, pipe: Connection) -> None:
    """Until told "stop": one one-row insert committed PROBE_RATE times a second
    (a table of its own, no lock shared with ontime), each one's latency noted;
    then send (start times, latencies) as array("d") bytes. On a shared machine a
    slow commit here at the same moment as a slow request says the database was
    slow to commit, for everyone."""
    pipe.send(uvloop.run(_probe_commits(database_url, pipe)))


async def _probe_commits(database_url: str, pipe: Connection) -> tuple[bytes, bytes]:
    started, took = array("d"), array("d")
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("create table if not exists bench_commit_probe (id bigserial primary key, body bytea)")
        stop = asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        body = b"x" * 600  # about a change's size
        while not stop.done():
            at, clock = time.time(), time.perf_counter()
            async with conn.transaction():
                await conn.execute("insert into bench_commit_probe (body) values ($1)", body)
            started.append(at)
            took.append(time.perf_counter() - clock)
            await asyncio.sleep(max(0.0, 1 / PROBE_RATE - (time.perf_counter() - clock)))
        await stop
    finally:
        await conn.close()
    return started.tobytes(), took.tobytes()
