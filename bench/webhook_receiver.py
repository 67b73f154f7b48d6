"""A webhook receiver for bench.webhooks: `python -m bench.webhook_receiver --host H --port P`.

The least HTTP/1.1 server that can take deliveries (asyncio streams, keep-alive,
Content-Length bodies): every POST is answered 200 at once and noted as
(path, Ontime-Seq, arrival time); GET /stats answers what was noted, as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

import msgspec

received: list[tuple[str, int, float]] = []


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # the client closing its connection ends the loop: nothing more to read
    with contextlib.closing(writer), contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            arrived = time.time()
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            length = int(headers.get("content-length", "0"))
            if length:
                await reader.readexactly(length)
            if method == "GET" and path == "/stats":
                body = msgspec.json.encode(received)
            else:
                received.append((path, int(headers.get("ontime-seq", "0")), arrived))
                body = b"ok"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()


async def main(host: str, port: int) -> None:
    server = await asyncio.start_server(serve, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    asyncio.run(main(options.host, options.port))
