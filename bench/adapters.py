"""The carrier adapters' mapping: `python -m bench.adapters [--events N] [--repeats N]`.

For each adapter, one payload of --events events (1,000) is made from its
fixtures (tests/fixtures/inbound/<source>/) by repeating their events, then
mapped --repeats times in this process with `adapt(payload, context)`; the
median time gives µs per event. Floor, in the same run on the same bytes:
decoding the payload alone (msgspec's JSON decoder, or the same XML parser the
adapter uses, or for Correos Express the standard JSON parser keeping repeated keys), so the ratio is what mapping costs over reading.

With --ingest (the default), each source's payload (its events made distinct)
is also posted to POST /v1/inbound/{source} of a served ontime, for a shipment
with its number: events per second over the request's wall time, beside the
floor of inserting the same events' rows with asyncpg's executemany in the same
run. It asserts nothing; the figures also go to bench/out/adapters.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from types import ModuleType
from typing import Any

import msgspec

from api.inbound.adapters import (
    aftership,
    canada_post,
    correos,
    correos_express,
    ctt_express,
    dhl,
    dhl_express,
    easypost,
    fedex,
    gls,
    ups,
    usps,
)
from api.inbound.adapters.base import Context, parse_xml
from bench import harness
from bench.harness import Benchmark, Result, Row, figure, say

FIXTURES = harness.ROOT / "tests" / "fixtures" / "inbound"
CONTEXT = Context(account_zone="Europe/Madrid")


# For the ingest, each repeated event is made distinct (its times moved on by
# its index in seconds), so that 1,000 events are 1,000 rows, not a few rows and
# many duplicates; the mapping figures use the payloads as repeated.
DISTINCT = False
CLOCK = re.compile(r"(\d{2}):(\d{2}):(\d{2})")


def moved(value: Any, seconds: int, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: moved(v, seconds, k) for k, v in value.items()}
    if isinstance(value, list):
        return [moved(v, seconds) for v in value]
    if not isinstance(value, str):
        return value
    if len(value) >= 16 and value[4:5] == "-" and value[10:11] == "T":
        with contextlib.suppress(ValueError):
            return (datetime.fromisoformat(value) + timedelta(seconds=seconds)).isoformat()
    if key.lower() in ("time", "horaestado", "hora") and len(value) == 6 and value.isdigit():
        total = (int(value[:2]) * 3600 + int(value[2:4]) * 60 + int(value[4:]) + seconds) % 86_400
        return f"{total // 3600:02d}{total // 60 % 60:02d}{total % 60:02d}"
    if key.lower() in ("time", "horaestado", "hora", "event-time", "eventtime") or value.lstrip().startswith("<"):
        return CLOCK.sub(lambda m: shifted_clock(m, seconds), value, count=1)
    return value


def shifted_clock(match: re.Match[str], seconds: int) -> str:
    total = (int(match[1]) * 3600 + int(match[2]) * 60 + int(match[3]) + seconds) % 86_400
    return f"{total // 3600:02d}:{total // 60 % 60:02d}:{total % 60:02d}"


def repeated(items: list[Any], count: int) -> list[Any]:
    if not DISTINCT:
        return [items[i % len(items)] for i in range(count)]
    return [moved(items[i % len(items)], i) for i in range(count)]


def usps_payload(count: int) -> bytes:
    package = json.loads((FIXTURES / "usps" / "delivered_then_informational.json").read_bytes())
    package["trackingEvents"] = repeated(package["trackingEvents"], count)
    return json.dumps(package).encode()


def correos_payload(count: int) -> bytes:
    document = json.loads((FIXTURES / "correos" / "delivered_then_unknown_text.json").read_bytes())
    shipment = document["shipment"][0]
    shipment["events"] = repeated(shipment["events"], count)
    return json.dumps(document).encode()


def gls_payload(count: int) -> bytes:
    document = json.loads((FIXTURES / "gls" / "in_transit.json").read_bytes())
    parcel = document["parcels"][0]
    parcel["events"] = repeated(parcel["events"], count)
    return json.dumps(document).encode()


def canada_post_payload(count: int) -> bytes:
    text = (FIXTURES / "canada_post" / "delivered_then_signature.xml").read_text()
    start, end = text.index("<occurrence>"), text.rindex("</occurrence>") + len("</occurrence>")
    occurrences = [part + "</occurrence>" for part in text[start:end].split("</occurrence>") if part.strip()]
    return (text[:start] + "\n".join(repeated(occurrences, count)) + text[end:]).encode()


def dhl_payload(count: int) -> bytes:
    document = json.loads((FIXTURES / "dhl" / "in_transit.json").read_bytes())
    shipment = document["shipments"][0]
    shipment["events"] = repeated(shipment["events"], count)
    return json.dumps(document).encode()


def dhl_express_payload(count: int) -> bytes:
    text = (FIXTURES / "dhl_express" / "in_transit.xml").read_text()
    start, end = text.index("<ShipmentEvent>"), text.rindex("</ShipmentEvent>") + len("</ShipmentEvent>")
    events = [part + "</ShipmentEvent>" for part in text[start:end].split("</ShipmentEvent>") if part.strip()]
    return (text[:start] + "\n".join(repeated(events, count)) + text[end:]).encode()


def ups_payload(count: int) -> bytes:
    document = json.loads((FIXTURES / "ups" / "in_transit.json").read_bytes())
    package = document["trackResponse"]["shipment"][0]["package"][0]
    package["activity"] = repeated(package["activity"], count)
    return json.dumps(document).encode()


def fedex_payload(count: int) -> bytes:
    # in_transit.json holds a scan known only by its day, the costliest case to place.
    document = json.loads((FIXTURES / "fedex" / "in_transit.json").read_bytes())
    track = document["output"]["completeTrackResults"][0]["trackResults"][0]
    track["scanEvents"] = repeated(track["scanEvents"], count)
    return json.dumps(document).encode()


def correos_express_payload(count: int) -> bytes:
    document = json.loads((FIXTURES / "correos_express" / "out_for_delivery.json").read_bytes())
    document["estadoEnvios"] = repeated(document["estadoEnvios"], count)
    return json.dumps(document).encode()


def ctt_express_payload(count: int) -> bytes:
    document = json.loads((FIXTURES / "ctt_express" / "out_for_delivery.json").read_bytes())
    history = document["data"]["shipping_history"]
    history["events"] = repeated(history["events"], count)
    return json.dumps(document).encode()


def aftership_payload(count: int) -> bytes:
    document = json.loads((FIXTURES / "aftership" / "attempt_then_pickup_point.json").read_bytes())
    tracking = document["msg"]
    tracking["checkpoints"] = repeated(tracking["checkpoints"], count)
    return json.dumps(document).encode()


def easypost_payload(count: int) -> bytes:
    document = json.loads((FIXTURES / "easypost" / "out_for_delivery.json").read_bytes())
    tracker = document["result"]
    tracker["tracking_details"] = repeated(tracker["tracking_details"], count)
    return json.dumps(document).encode()


def keeping_repeated_keys(payload: bytes) -> object:
    # Correos Express is read with the standard parser keeping repeated keys; its floor is that parser.
    return json.loads(payload, object_pairs_hook=correos_express.keep_repeated_keys)


decoder = msgspec.json.Decoder()

SOURCES: list[tuple[ModuleType, Callable[[int], bytes], Callable[[bytes], object]]] = [
    (usps, usps_payload, decoder.decode),
    (canada_post, canada_post_payload, parse_xml),
    (correos, correos_payload, decoder.decode),
    (gls, gls_payload, decoder.decode),
    (dhl, dhl_payload, decoder.decode),
    (dhl_express, dhl_express_payload, parse_xml),
    (ups, ups_payload, decoder.decode),
    (fedex, fedex_payload, decoder.decode),
    (correos_express, correos_express_payload, keeping_repeated_keys),
    (ctt_express, ctt_express_payload, decoder.decode),
    (aftership, aftership_payload, decoder.decode),
    (easypost, easypost_payload, decoder.decode),
]


def median_seconds(work: Callable[[bytes], object], payload: bytes, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work(payload)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(options: argparse.Namespace) -> Result:
    rows, details = [], {}
    for adapter, make_payload, decode in SOURCES:
        payload = make_payload(options.events)
        mapped = adapter.adapt(payload, CONTEXT)
        if len(mapped.events) != options.events:
            raise SystemExit(f"bench: {adapter.SOURCE} mapped {len(mapped.events)} of {options.events} events")
        floor = median_seconds(decode, payload, options.repeats) / options.events * 1e6
        mapping = (
            median_seconds(partial(adapter.adapt, context=CONTEXT), payload, options.repeats) / options.events * 1e6
        )
        say(f"{adapter.SOURCE}: {mapping:.2f} µs/event, decoding alone {floor:.2f} µs/event")
        rows.append(
            Row(
                f"map {options.events:,} events: {adapter.SOURCE}",
                "µs/event",
                figure(mapping, detail=f"{1e6 / mapping:,.0f} events/s; {len(payload):,} bytes"),
                figure(floor, detail="decoding the same bytes alone"),
            )
        )
        details[adapter.SOURCE] = {"mapping_us": mapping, "decoding_us": floor, "bytes": len(payload)}
    notes = [
        f"one payload of {options.events:,} events per source, median of {options.repeats} runs, in this process; "
        "floor: decoding the same payload alone. The machine is shared: figures are noisy, ratios less so."
    ]
    if options.ingest:
        ingest_rows, ingest_details = ingest(options)
        rows += ingest_rows
        details["ingest"] = ingest_details
        notes.append(
            f"ingest: POST /v1/inbound/{{source}} of one {options.events:,}-event payload (each event distinct) to a "
            f"served ontime, for a shipment with its number, best of {options.rounds} rounds (a fresh account each), "
            "events/s over the request's wall time; floor: asyncpg executemany of the same events' rows into "
            "`events` for another shipment, in the same run on the same database."
        )
    return Result(rows, notes, details)


def ingest(options: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    global DISTINCT
    DISTINCT = True
    try:
        payloads = [(adapter, make_payload(options.events)) for adapter, make_payload, _ in SOURCES]
    finally:
        DISTINCT = False
    key = harness.admin_key()
    with (
        harness.fresh_database("adapters") as url,
        harness.serving(harness.server_env(url, key), harness.ontime()) as [server],
    ):
        return asyncio.run(ingest_all(server.url, url, key, payloads, options))


async def ingest_all(
    base_url: str, database_url: str, admin: str, payloads: list[tuple[ModuleType, bytes]], options: argparse.Namespace
) -> tuple[list[Row], dict[str, Any]]:
    import asyncpg
    import httpx

    from api.inbound.service import tracking_event
    from api.shipments.store import INSERT_EVENT

    rows: list[Row] = []
    details: dict[str, Any] = {}
    conn = await asyncpg.connect(database_url)
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        try:
            for adapter, payload in payloads:
                mapped = adapter.adapt(payload, CONTEXT)
                number = mapped.events[0].tracking_number
                endpoint, floor = [], []
                for round_ in range(options.rounds):
                    account = await harness.call(
                        http, "POST", "/v1/accounts", {"name": f"ingest {round_}", "timezone": "Europe/Madrid"}, admin
                    )
                    customer = await harness.call(
                        http, "POST", "/v1/keys", {"role": "customer", "account_id": account["id"]}, admin
                    )
                    body = {"carrier": "bench", "tracking_number": number, "promised_by": "2030-01-01T00:00:00Z"}
                    await harness.call(http, "POST", "/v1/shipments", body, customer["secret"])
                    started = time.perf_counter()
                    answer = await http.post(
                        f"/v1/inbound/{adapter.SOURCE}",
                        content=payload,
                        headers={"Authorization": f"Bearer {customer['secret']}"},
                    )
                    endpoint.append(time.perf_counter() - started)
                    if answer.status_code != 201 or answer.json()["accepted"] != options.events:
                        raise SystemExit(
                            f"bench: {adapter.SOURCE} ingest answered {answer.status_code} {answer.text[:300]}"
                        )
                    # the floor: the same events' rows, straight into `events` for another shipment
                    other = await harness.call(
                        http, "POST", "/v1/shipments", {**body, "tracking_number": f"FLOOR{round_}"}, customer["secret"]
                    )
                    made = [tracking_event(e, "inb_floor") for e in mapped.events]
                    rows_ = [
                        (
                            other["id"],
                            e.key,
                            e.event_id,
                            e.status.value,
                            e.occurred_at,
                            None,
                            e.description,
                            None if e.reason is None else e.reason.value,
                            e.estimated_delivery,
                            e.occurred_at,
                            e.carrier_code,
                            e.carrier_status,
                            e.time_rule,
                            e.inbound_payload_id,
                        )
                        for _, e in (m for m in made if m is not None)
                    ]
                    started = time.perf_counter()
                    await conn.executemany(INSERT_EVENT, rows_)
                    floor.append(time.perf_counter() - started)
                best, best_floor = min(endpoint), min(floor)
                rate, floor_rate = options.events / best, options.events / best_floor
                say(f"{adapter.SOURCE}: ingest {rate:,.0f} events/s, raw insert {floor_rate:,.0f} events/s")
                rows.append(
                    Row(
                        f"ingest {options.events:,} events end to end: {adapter.SOURCE}",
                        "events/s",
                        figure(rate, detail=f"{best * 1000:,.0f} ms per payload"),
                        figure(floor_rate, detail="asyncpg executemany of the same rows"),
                    )
                )
                details[adapter.SOURCE] = {"endpoint_s": endpoint, "floor_s": floor}
        finally:
            await conn.close()
    return rows, details


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=1_000, help="events in each payload")
    parser.add_argument("--repeats", type=int, default=50, help="times each payload is mapped")
    parser.add_argument(
        "--ingest",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also ingest each payload through a served ontime (needs PostgreSQL: DATABASE_URL or embedded)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="ingest rounds per source (the best is kept)")


BENCHMARK = Benchmark(
    name="adapters",
    doc=__doc__ or "",
    options=options,
    quick={"repeats": 5, "rounds": 1},
    measure=measure,
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
