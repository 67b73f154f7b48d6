"""Case deadlines at scale: `python -m bench.cases [--cases N] [--due N]`.

--cases open cases (default 100,000, on accounts, made in SQL) and as many open
shipments wait in a fresh database; one `ontime serve` process runs the one
deadline sweep (every kind: promises, case responses, case resolutions) and a
websocket follower (a support key, "all") notes when each message arrives.

- ontime: --due cases get response deadlines spread over one second, a few
  seconds ahead; per `case_breached` message, receipt - response_due.
- floor, in the same run, through the same server and sweep: --due shipments'
  promises spread the same way; per `late` message, receipt - promised_by
  (the delivery-promise path the case deadlines were generalised from).

The figures are p50 and p99 in seconds and their ratio; the issue's aim is
every breach pushed within 2 s. One machine and one clock for the database,
the server and the follower. It asserts nothing; figures go to bench/out/cases.json.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bench import harness, lateness_data
from bench.harness import Aim, Benchmark, Result, Row, figure, percentiles, say
from bench.live_clients import subscribed_to_all

LEAD = 4.0  # seconds from moving the deadlines to the first of them falling due
AIM = 2.0  # seconds from deadline to message
GIVE_UP = 30.0

INSERT_CASES = """
insert into cases (id, account_id, type, priority, subject, opened_by, opened_at, response_due, resolution_due,
                   updated_at)
select 'cas_' || lpad(i::text, 26, '0'), 'acc_bench_' || lpad((i % 200)::text, 3, '0'),
       (array['delay', 'damage', 'lost', 'address_issue', 'complaint', 'other'])[1 + i % 6],
       (array['low', 'normal', 'high', 'urgent'])[1 + i % 4], 'bench case ' || i, 'late', now(),
       now() + interval '1 day' + (i::bigint * 7919 % 2592000) * interval '1 s',
       now() + interval '40 days', now()
from generate_series(1, $1::int) i
"""

MOVE_CASES = """
update cases c set response_due = $2::timestamptz + u.n * $3::interval
from unnest($1::text[]) with ordinality as u(id, n) where c.id = u.id
"""
MOVE_PROMISES = """
update shipments s set promised_by = $2::timestamptz + u.n * $3::interval
from unnest($1::text[]) with ordinality as u(id, n) where s.id = u.id
"""


class _Thing(msgspec.Struct):
    id: str
    promised_by: datetime | None = None
    response_due: datetime | None = None


class _Message(msgspec.Struct):
    type: str
    shipment: _Thing | None = None
    case: _Thing | None = None
    deadline: str | None = None


_decode = msgspec.json.Decoder(_Message).decode


async def _support_key(base_url: str, admin_key: str) -> str:
    async with httpx.AsyncClient(base_url=base_url) as http:
        return (await harness.call(http, "POST", "/v1/keys", {"role": "support", "name": "bench cases"}, admin_key))[
            "secret"
        ]


async def _push(url: str, live_url: str, token: str, ids: list[str], move: str, kind: str) -> list[float]:
    """Move the deadlines of `ids` to fall due over one second, LEAD ahead; the
    seconds from each deadline to its message."""
    wanted, delays = set(ids), []
    done = asyncio.Event()

    async def read(ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                arrived = time.time()
                m = _decode(frame)
                if kind == "late" and m.type == "late" and m.shipment and m.shipment.id in wanted:
                    due = m.shipment.promised_by
                elif kind == "case_breached" and m.type == kind and m.case and m.case.id in wanted:
                    due = m.case.response_due
                else:
                    continue
                assert due is not None
                delays.append(arrived - due.timestamp())
                if len(delays) >= len(wanted):
                    done.set()
        except ConnectionClosed:
            done.set()

    ws = await subscribed_to_all(live_url, token)
    reader = asyncio.create_task(read(ws))
    first = datetime.now(UTC) + timedelta(seconds=LEAD)
    await harness.fetch(url, move, ids, first, timedelta(seconds=1) / len(ids))
    try:
        await asyncio.wait_for(done.wait(), LEAD + 1 + GIVE_UP)
    except TimeoutError:
        say(f"    gave up with {len(delays):,}/{len(ids):,} {kind} messages")
    reader.cancel()
    await ws.close()
    return delays


def measure(options: argparse.Namespace) -> Result:
    cases, due = options.cases, options.due
    admin_key = harness.admin_key()
    details: dict = {"cases": cases, "due": due}
    with harness.fresh_database("cases", lateness_data.INSERT_ACCOUNTS) as url:
        far = datetime.now(UTC) + timedelta(days=1)
        asyncio.run(harness.fetch(url, lateness_data.INSERT_OPEN, 2, cases + 1, 1, far))
        asyncio.run(harness.fetch(url, INSERT_CASES, cases))
        asyncio.run(harness.execute(url, "vacuum analyze cases", "vacuum analyze shipments"))
        say(f"{cases:,} open cases and {cases:,} open shipments; {due:,} deadlines fall due over one second")
        with harness.serving(harness.server_env(url, admin_key), harness.ontime("cases-serve")) as [server]:
            token = asyncio.run(_support_key(server.url, admin_key))
            step = cases // due
            shipments = [f"shp_open_{i:08d}" for i in range(2, cases + 2, step)][:due]
            case_ids = [f"cas_{i:026d}" for i in range(1, cases + 1, step)][:due]
            with harness.usage(server.pid) as floor_used:
                floor = asyncio.run(_push(url, server.live_url, token, shipments, MOVE_PROMISES, "late"))
            with harness.usage(server.pid) as ours_used:
                ours = asyncio.run(_push(url, server.live_url, token, case_ids, MOVE_CASES, "case_breached"))
    details["floor"] = {"received": len(floor), **percentiles(floor), "cpu_seconds": floor_used.cpu}
    details["cases_breached"] = {"received": len(ours), **percentiles(ours), "cpu_seconds": ours_used.cpu}

    def row(p: str) -> Row:
        o, f = details["cases_breached"], details["floor"]
        return Row(
            f"deadline to push {p}, {due:,} due among {cases:,} open",
            "s",
            figure(o[p], detail=f"{o['received']:,}/{due:,} received; server CPU {o['cpu_seconds']:.1f} s"),
            figure(f[p], detail=f"{f['received']:,}/{due:,} late received; server CPU {f['cpu_seconds']:.1f} s"),
            Aim(max_value=AIM),
        )

    notes = [
        "",
        "ontime: receipt of case_breached - response_due; floor: receipt of late - promised_by, the same sweep and"
        " server on as many open shipments. Both include the sweep's poll interval (0.5 s by default).",
    ]
    return Result([row("p50"), row("p99")], notes, details)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", type=int, default=100_000, help="open cases (and open shipments)")
    parser.add_argument("--due", type=int, default=1_000, help="deadlines falling due at once")


BENCHMARK = Benchmark("cases", __doc__, options, {"cases": 5_000, "due": 200}, measure)


def main(argv: list[str] | None = None) -> None:
    harness.main(BENCHMARK, argv)


if __name__ == "__main__":
    main()
