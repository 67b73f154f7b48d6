"""The floor for polling: a bare Litestar app that fetches one shipment row by
primary key and returns it as JSON, with nothing else around it; and the
change feed's floor, a raw keyset page of an account's changes.

`python -m bench.floor_app --port P` serves it exactly as `ontime serve` serves
ontime (one uvicorn process, uvloop, httptools, no access log), on the database
at DATABASE_URL, with the pool sized by the same ONTIME_POOL_MIN_SIZE and
ONTIME_POOL_MAX_SIZE variables, so the two differ only in the application.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import uvicorn
from litestar import Litestar, Request, Response, get

SELECT_SHIPMENT = "select * from shipments where id = $1"
# the change feed's floor: a raw keyset page of one account's stored change
# bodies, spliced into one JSON document, with no key check and no validation
SELECT_CHANGES = "select seq, body from changes where account_id = $1 and seq > $2 order by seq limit $3"
JSON = "application/json"

_encode = msgspec.json.Encoder().encode


async def _decode_jsonb(conn: asyncpg.Connection) -> None:
    # jsonb columns come out as objects, not strings, as they do in ontime
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=lambda v: _encode(v).decode(), decoder=msgspec.json.decode
    )


def create_app(database_url: str, *, pool_min_size: int, pool_max_size: int) -> Litestar:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(
            database_url, min_size=pool_min_size, max_size=pool_max_size, init=_decode_jsonb
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    @get("/v1/shipments/{shipment_id:str}")
    async def get_shipment(request: Request, shipment_id: str) -> Response:
        row = await request.app.state.pool.fetchrow(SELECT_SHIPMENT, shipment_id)
        if row is None:
            return Response(content=b'{"status":404}', status_code=404, media_type=JSON)
        return Response(content=_encode(dict(row)), media_type=JSON)

    @get("/v1/changes")
    async def get_changes(request: Request, account_id: str, after: int = 0, limit: int = 100) -> Response:
        rows = await request.app.state.pool.fetch(SELECT_CHANGES, account_id, after, limit)
        items = b",".join(b'{"seq":%d,%s' % (row["seq"], row["body"][1:]) for row in rows)
        next_after = rows[-1]["seq"] if rows else after
        return Response(content=b'{"items":[%s],"next_after":%d}' % (items, next_after), media_type=JSON)

    return Litestar(route_handlers=[get_shipment, get_changes], lifespan=[lifespan], debug=False)


def app_from_env() -> Litestar:
    """The floor of one worker, for granian or several uvicorn workers."""
    return create_app(
        os.environ["DATABASE_URL"],
        pool_min_size=int(os.environ.get("ONTIME_POOL_MIN_SIZE", "2")),
        pool_max_size=int(os.environ.get("ONTIME_POOL_MAX_SIZE", "10")),
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # the same server and workers as `ontime serve` (api.cli) under the same environment
    server = os.environ.get("ONTIME_SERVER") or "uvicorn"
    workers = int(os.environ.get("ONTIME_WORKERS") or 1)
    if server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.log import LogLevels

        Granian(
            "bench.floor_app:app_from_env", factory=True, address=args.host, port=args.port,
            interface=Interfaces.ASGI, workers=workers, loop=Loops.uvloop, log_level=LogLevels.warning,
            log_access=False,
        ).serve()  # fmt: skip
        return
    uvicorn.run(
        app_from_env() if workers == 1 else "bench.floor_app:app_from_env",
        factory=workers > 1,
        workers=workers if workers > 1 else None,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
