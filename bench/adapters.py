"""The carrier adapters' mapping: `python -m bench.adapters [--events N] [--repeats N]`.

For each adapter, one payload of --events events (1,000) is made from its
fixtures (tests/fixtures/inbound/<source>/) by repeating their events, then
mapped --repeats times in this process with `adapt(payload, context)`; the
median time gives µs per event. Floor, in the same run on the same bytes:
decoding the payload alone (msgspec's JSON decoder, or the same XML parser the
adapter uses, or for Correos Express the standard JSON parser keeping repeated keys), so the ratio is what mapping costs over reading. No database:
the ingest end to end belongs to the inbound endpoint. It asserts nothing; the
figures also go to bench/out/adapters.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from types import ModuleType
from typing import Any

import msgspec

from api.inbound.adapters import (
    canada_post,
    correos,
    correos_express,
    ctt_express,
    dhl,
    dhl_express,
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


def repeated(items: list[Any], count: int) -> list[Any]:
    return [items[i % len(items)] for i in range(count)]


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
    return Result(rows, notes, details)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=1_000, help="events in each payload")
    parser.add_argument("--repeats", type=int, default=50, help="times each payload is mapped")


BENCHMARK = Benchmark(
    name="adapters",
    doc=__doc__ or "",
    options=options,
    quick={"repeats": 5},
    measure=measure,
)

if __name__ == "__main__":
    harness.main(BENCHMARK)
