"""The carrier adapters (USPS, Canada Post, Correos, GLS) against fixtures written from each
source's documentation: every fixture's mapping, where local times are placed,
where the estimated delivery comes from, and that nothing readable is dropped."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.inbound.adapters import canada_post, correos, gls, usps
from api.inbound.adapters.base import Adapted, Context, PayloadError, TimeRule
from domain.status import Reason, Status, order_key

FIXTURES = Path(__file__).parent.parent / "fixtures" / "inbound"
ACCOUNT = Context(account_zone="Europe/Madrid")


def adapted(adapter: ModuleType, name: str) -> Adapted:
    result: Adapted = adapter.adapt((FIXTURES / adapter.SOURCE / name).read_bytes(), ACCOUNT)
    return result


def effective_status(result: Adapted) -> Status:
    latest = max(result.events, key=lambda event: order_key(event.status, event.occurred_at, event.carrier_code))
    return latest.status


# (adapter, fixture, status and reason of each event in payload order)
EXPECTED: list[tuple[ModuleType, str, list[tuple[Status, Reason | None]]]] = [
    (usps, "in_transit.json", [(Status.IN_TRANSIT, None), (Status.IN_TRANSIT, None), (Status.LABEL_CREATED, None)]),
    (usps, "out_for_delivery.json", [(Status.OUT_FOR_DELIVERY, None), (Status.IN_TRANSIT, None)]),
    (usps, "exception_refused.json", [(Status.EXCEPTION, Reason.REFUSED)]),
    (
        usps,
        "delivered_then_informational.json",
        [(Status.IN_TRANSIT, Reason.OTHER), (Status.DELIVERED, None), (Status.OUT_FOR_DELIVERY, None)],
    ),
    (usps, "failed_attempt.json", [(Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE)]),
    (usps, "available_for_pickup.json", [(Status.AVAILABLE_FOR_PICKUP, None)]),
    (usps, "returned_to_sender.json", [(Status.RETURNED_TO_SENDER, Reason.ADDRESS_ISSUE)]),
    (usps, "offset_given_and_no_state.json", [(Status.IN_TRANSIT, None), (Status.IN_TRANSIT, None)]),
    (canada_post, "in_transit.xml", [(Status.IN_TRANSIT, None)]),
    (canada_post, "out_for_delivery.xml", [(Status.OUT_FOR_DELIVERY, None), (Status.IN_TRANSIT, None)]),
    (canada_post, "exception_address.xml", [(Status.EXCEPTION, Reason.ADDRESS_ISSUE)]),
    (
        canada_post,
        "delivered_then_signature.xml",
        [(Status.IN_TRANSIT, None), (Status.DELIVERED, None), (Status.OUT_FOR_DELIVERY, None)],
    ),
    (canada_post, "unknown_code_and_no_zone.xml", [(Status.IN_TRANSIT, Reason.OTHER), (Status.IN_TRANSIT, None)]),
    (
        correos,
        "in_transit.json",
        [(Status.LABEL_CREATED, None), (Status.IN_TRANSIT, None), (Status.IN_TRANSIT, None)],
    ),
    (
        correos,
        "out_for_delivery.json",
        [
            (Status.LABEL_CREATED, None),
            (Status.IN_TRANSIT, None),
            (Status.IN_TRANSIT, None),
            (Status.OUT_FOR_DELIVERY, None),
        ],
    ),
    (
        correos,
        "exception_address.json",
        [(Status.LABEL_CREATED, None), (Status.IN_TRANSIT, None), (Status.EXCEPTION, Reason.ADDRESS_ISSUE)],
    ),
    (
        correos,
        "delivered_then_unknown_text.json",
        [
            (Status.LABEL_CREATED, None),
            (Status.IN_TRANSIT, None),
            (Status.IN_TRANSIT, None),
            (Status.OUT_FOR_DELIVERY, None),
            (Status.DELIVERED, None),
            (Status.DELIVERED, Reason.OTHER),
        ],
    ),
    (
        correos,
        "failed_attempt_then_pickup.json",
        [
            (Status.OUT_FOR_DELIVERY, None),
            (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),
            (Status.AVAILABLE_FOR_PICKUP, None),
        ],
    ),
    (correos, "returned.json", [(Status.RETURNED_TO_SENDER, None)]),
    (
        gls,
        "in_transit.json",
        [(Status.IN_TRANSIT, None), (Status.LABEL_CREATED, None), (Status.LABEL_CREATED, None)],
    ),
    (gls, "out_for_delivery.json", [(Status.OUT_FOR_DELIVERY, Reason.OTHER), (Status.IN_TRANSIT, None)]),
    (
        gls,
        "exception_not_picked_up.json",
        [(Status.EXCEPTION, Reason.OTHER), (Status.LABEL_CREATED, None), (Status.LABEL_CREATED, None)],
    ),
    (
        gls,
        "delivered_then_informational.json",
        [(Status.DELIVERED, Reason.OTHER), (Status.IN_TRANSIT, Reason.OTHER), (Status.IN_TRANSIT, None)],
    ),
    (gls, "failed_attempt.json", [(Status.DELIVERY_ATTEMPTED, Reason.OTHER), (Status.IN_TRANSIT, None)]),
    (gls, "parcel_shop.json", [(Status.AVAILABLE_FOR_PICKUP, None), (Status.IN_TRANSIT, None)]),
    (gls, "no_offset.json", [(Status.IN_TRANSIT, None), (Status.LABEL_CREATED, None)]),
]


@pytest.mark.parametrize(("adapter", "fixture", "expected"), EXPECTED, ids=[f"{a.SOURCE}/{f}" for a, f, _ in EXPECTED])
def test_each_fixture_maps_every_event_to_its_status_and_reason(
    adapter: ModuleType, fixture: str, expected: list[tuple[Status, Reason | None]]
) -> None:
    result = adapted(adapter, fixture)
    assert [(event.status, event.reason) for event in result.events] == expected
    assert result.errors == []


def test_every_fixture_directory_has_at_least_the_four_documented_cases() -> None:
    for adapter in (usps, canada_post, correos, gls):
        mapped = {
            event.status
            for fixture in (FIXTURES / adapter.SOURCE).iterdir()
            for event in adapter.adapt(fixture.read_bytes(), ACCOUNT).events
        }
        assert {Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY, Status.EXCEPTION, Status.DELIVERED} <= mapped


def test_an_unknown_code_keeps_its_raw_code_and_text() -> None:
    usps_event = adapted(usps, "delivered_then_informational.json").events[0]
    assert (usps_event.carrier_code, usps_event.carrier_status) == ("XX", "Delivery Confirmation Recorded")
    post_event = adapted(canada_post, "unknown_code_and_no_zone.xml").events[0]
    assert (post_event.carrier_code, post_event.carrier_status) == ("9999", "An event this table does not know")


def test_canada_post_reads_a_zero_padded_code_and_an_unpadded_one_alike() -> None:
    padded = adapted(canada_post, "out_for_delivery.xml").events[0]
    unpadded = adapted(canada_post, "delivered_then_signature.xml").events[2]
    assert (padded.carrier_code, unpadded.carrier_code) == ("0174", "174")
    assert padded.status == unpadded.status == Status.OUT_FOR_DELIVERY


@pytest.mark.parametrize(
    ("adapter", "fixture"),
    [(usps, "delivered_then_informational.json"), (canada_post, "delivered_then_signature.xml")],
)
def test_an_informational_event_after_delivery_does_not_hide_the_delivery(adapter: ModuleType, fixture: str) -> None:
    result = adapted(adapter, fixture)
    assert max(event.occurred_at for event in result.events) > next(
        event.occurred_at for event in result.events if event.status == Status.DELIVERED
    )
    assert effective_status(result) == Status.DELIVERED


def test_usps_local_times_are_placed_in_the_zone_of_the_events_state() -> None:
    out = adapted(usps, "out_for_delivery.json").events[0]
    # Denver on 12 March 2024, two days into daylight time: UTC-6.
    assert out.occurred_at.astimezone(UTC) == datetime(2024, 3, 12, 13, 10, tzinfo=UTC)
    assert out.time_rule == TimeRule.LOCATION
    chicago = adapted(usps, "in_transit.json").events[0]
    assert chicago.occurred_at.astimezone(UTC) == datetime(2024, 3, 10, 4, 14, tzinfo=UTC)


def test_usps_uses_a_given_offset_and_else_the_accounts_zone() -> None:
    with_offset, without_place = adapted(usps, "offset_given_and_no_state.json").events
    assert with_offset.time_rule == TimeRule.OFFSET
    assert with_offset.occurred_at.astimezone(UTC) == datetime(2024, 7, 2, 1, 0, tzinfo=UTC)
    assert without_place.time_rule == TimeRule.ACCOUNT
    # Madrid in July: UTC+2.
    assert without_place.occurred_at.astimezone(UTC) == datetime(2024, 7, 1, 16, 0, tzinfo=UTC)


def test_canada_post_places_a_zone_abbreviation_and_else_the_province() -> None:
    processed = adapted(canada_post, "in_transit.xml").events[0]
    assert processed.time_rule == TimeRule.SOURCE_ZONE
    assert processed.occurred_at.astimezone(UTC) == datetime(2011, 2, 2, 19, 45, 48, tzinfo=UTC)
    pacific, winnipeg = adapted(canada_post, "unknown_code_and_no_zone.xml").events
    assert pacific.occurred_at.astimezone(UTC) == datetime(2011, 7, 2, 16, 15, tzinfo=UTC)
    assert winnipeg.time_rule == TimeRule.LOCATION
    # Winnipeg in July: CDT, UTC-5.
    assert winnipeg.occurred_at.astimezone(UTC) == datetime(2011, 7, 1, 22, 5, tzinfo=UTC)


def test_the_estimated_delivery_is_taken_where_each_source_puts_it() -> None:
    assert adapted(usps, "in_transit.json").events[0].estimated_delivery == date(2024, 3, 12)
    # The prediction is fresher than the expectation when both are given.
    assert adapted(usps, "offset_given_and_no_state.json").events[0].estimated_delivery == date(2024, 7, 3)
    assert adapted(usps, "failed_attempt.json").events[0].estimated_delivery is None
    assert adapted(canada_post, "in_transit.xml").events[0].estimated_delivery == date(2011, 2, 4)
    # A changed expected date replaces the expected one.
    assert adapted(canada_post, "exception_address.xml").events[0].estimated_delivery == date(2011, 2, 7)


def test_malformed_items_are_answered_one_by_one_and_the_readable_ones_kept() -> None:
    result = usps.adapt((FIXTURES / "usps" / "malformed_items.json").read_bytes(), ACCOUNT)
    assert [event.status for event in result.events] == [Status.OUT_FOR_DELIVERY]
    assert [error.where for error in result.errors] == ["[0].trackingEvents[0]", "[0].trackingEvents[1]", "[1]", "[2]"]
    result = canada_post.adapt((FIXTURES / "canada_post" / "malformed_items.xml").read_bytes(), ACCOUNT)
    assert [event.status for event in result.events] == [Status.OUT_FOR_DELIVERY]
    assert len(result.errors) == 2


@pytest.mark.parametrize(
    ("adapter", "body"),
    [
        (usps, b"{not json"),
        (canada_post, b"<tracking-detail><pin>1</pin>"),
        (
            canada_post,
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b"<tracking-detail><pin>&b;</pin></tracking-detail>",
        ),
        (
            canada_post,
            b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><tracking-detail><pin>&x;</pin></tracking-detail>',
        ),
    ],
)
def test_a_body_that_cannot_be_read_is_a_clear_payload_error(adapter: ModuleType, body: bytes) -> None:
    with pytest.raises(PayloadError):
        adapter.adapt(body, ACCOUNT)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
    max_leaves=20,
)


def usps_event_like() -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries(
        {
            "eventCode": st.sampled_from(["01", "OF", "10", "ZZ", "", "0174"]) | st.text(max_size=4),
            "eventType": st.text(max_size=20),
            "eventTimestamp": st.datetimes().map(datetime.isoformat) | st.text(max_size=20),
        },
        optional={"eventState": st.sampled_from(["CO", "NY", "HI", "??", ""]), "GMTOffset": st.text(max_size=6)},
    )


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | json_values.map(lambda value: json.dumps(value).encode()))
def test_usps_never_raises_on_arbitrary_bytes_but_its_payload_error(body: bytes) -> None:
    try:
        result = usps.adapt(body, ACCOUNT)
    except PayloadError:
        return
    assert isinstance(result, Adapted)


@settings(max_examples=200, deadline=None)
@given(st.lists(usps_event_like(), max_size=6))
def test_usps_never_drops_an_event_it_could_read(events: list[dict[str, object]]) -> None:
    body = json.dumps({"trackingNumber": "9400", "trackingEvents": events}).encode()
    result = usps.adapt(body, ACCOUNT)
    assert len(result.events) + len(result.errors) == len(events)
    readable = [event for event in events if readable_usps_event(event)]
    assert len(result.events) == len(readable)


def readable_usps_event(event: dict[str, object]) -> bool:
    said = str(event["eventCode"]).strip() or str(event["eventType"]).strip()
    return bool(said) and valid_timestamp(str(event["eventTimestamp"]).strip(), event.get("GMTOffset"))


def valid_timestamp(stamp: str, offset: object) -> bool:
    try:
        local = datetime.fromisoformat(stamp)
        if local.tzinfo is None and isinstance(offset, str) and offset.strip():
            datetime.fromisoformat(stamp + offset.strip())
    except ValueError:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=200)
    | st.text(max_size=200).map(lambda text: f"<tracking-detail>{text}</tracking-detail>".encode())
)
def test_canada_post_never_raises_on_arbitrary_bytes_but_its_payload_error(body: bytes) -> None:
    try:
        result = canada_post.adapt(body, ACCOUNT)
    except PayloadError:
        return
    assert isinstance(result, Adapted)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["0174", "174", "1496", "20", "4242"]),
            st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31)),
            st.sampled_from(["EST", "PDT", "", "XYZ"]),
            st.sampled_from(["QC", "BC", "NL", ""]),
        ),
        max_size=6,
    )
)
def test_canada_post_never_drops_an_occurrence_it_could_read(
    occurrences: list[tuple[str, date, str, str]],
) -> None:
    body = "".join(
        f"<occurrence><event-identifier>{code}</event-identifier><event-date>{day.isoformat()}</event-date>"
        f"<event-time>12:00:00</event-time><event-time-zone>{zone}</event-time-zone>"
        f"<event-description>d</event-description><event-province>{province}</event-province></occurrence>"
        for code, day, zone, province in occurrences
    )
    payload = f"<tracking-detail><pin>1</pin><significant-events>{body}</significant-events></tracking-detail>"
    result = canada_post.adapt(payload.encode(), ACCOUNT)
    assert [event.carrier_code for event in result.events] == [code for code, *_ in occurrences]
    assert result.errors == []


def test_correos_reads_day_first_dates_in_spanish_local_time() -> None:
    delivered = adapted(correos, "delivered_then_unknown_text.json").events[4]
    # 06/03/2024 is the sixth of March; Madrid in March before daylight time: UTC+1.
    assert delivered.occurred_at.astimezone(UTC) == datetime(2024, 3, 6, 11, 31, tzinfo=UTC)
    assert delivered.time_rule == TimeRule.LOCATION
    pickup = adapted(correos, "failed_attempt_then_pickup.json").events[2]
    assert pickup.occurred_at.astimezone(UTC) == datetime(2024, 3, 7, 8, 30, tzinfo=UTC)


def test_correos_keeps_an_unknown_text_under_its_phase_with_the_raw_text() -> None:
    unknown = adapted(correos, "delivered_then_unknown_text.json").events[5]
    assert (unknown.status, unknown.reason) == (Status.DELIVERED, Reason.OTHER)
    assert unknown.carrier_code == "4:Prueba de entrega disponible"
    assert unknown.carrier_status == "Firma digitalizada disponible."


def test_correos_answers_malformed_events_and_shipments_one_by_one() -> None:
    result = adapted(correos, "malformed_items.json")
    assert [event.status for event in result.events] == [Status.IN_TRANSIT]
    assert [error.where for error in result.errors] == [
        "shipment[0].events[1]",
        "shipment[0].events[2]",
        "shipment[0].events[3]",
        "shipment[1]",
    ]
    for body in (b"[]", b'{"shipment": 3}', b"{"):
        with pytest.raises(PayloadError):
            correos.adapt(body, ACCOUNT)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | json_values.map(lambda value: json.dumps({"shipment": [value]}).encode()))
def test_correos_never_raises_on_arbitrary_bytes_but_its_payload_error(body: bytes) -> None:
    try:
        result = correos.adapt(body, ACCOUNT)
    except PayloadError:
        return
    assert isinstance(result, Adapted)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31)),
            st.sampled_from(["1", "2", "3", "4", "9", ""]),
            st.sampled_from(["Entregado", "En tránsito", "Algo nuevo", ""]),
        ),
        max_size=6,
    )
)
def test_correos_never_drops_an_event_it_could_read(events: list[tuple[date, str, str]]) -> None:
    body = {
        "shipment": [
            {
                "shipmentCode": "PQ1",
                "events": [
                    {
                        "eventDate": day.strftime("%d/%m/%Y"),
                        "eventTime": "10:00:00",
                        "phase": phase,
                        "summaryText": text,
                    }
                    for day, phase, text in events
                ],
            }
        ]
    }
    result = correos.adapt(json.dumps(body).encode(), ACCOUNT)
    readable = [(phase, text) for _, phase, text in events if phase or text]
    assert len(result.events) == len(readable)
    assert len(result.events) + len(result.errors) == len(events)


def test_gls_keeps_the_offset_it_is_given_and_places_a_time_without_one_by_country() -> None:
    handed_over = adapted(gls, "in_transit.json").events[0]
    assert handed_over.time_rule == TimeRule.OFFSET
    assert handed_over.occurred_at.astimezone(UTC) == datetime(2024, 9, 18, 4, 50, 22, tzinfo=UTC)
    in_germany, nowhere = adapted(gls, "no_offset.json").events
    assert in_germany.time_rule == TimeRule.LOCATION
    assert in_germany.occurred_at.astimezone(UTC) == datetime(2024, 9, 18, 4, 50, 22, tzinfo=UTC)
    assert nowhere.time_rule == TimeRule.ACCOUNT


def test_gls_gives_an_unlisted_code_the_parcels_status_only_on_its_latest_event() -> None:
    delivered = adapted(gls, "delivered_then_informational.json")
    assert effective_status(delivered) == Status.DELIVERED
    assert [event.carrier_code for event in delivered.events] == [
        "NOTLISTED.INFO",
        "NOTLISTED.DELIVERED",
        "INTIAL.NORMAL",
    ]


def test_gls_answers_parcel_errors_and_malformed_events_one_by_one() -> None:
    result = adapted(gls, "errors_and_malformed.json")
    assert [event.carrier_code for event in result.events] == ["INTIAL.NORMAL"]
    assert [error.where for error in result.errors] == [
        "parcels[0]",
        "parcels[1].events[1]",
        "parcels[1].events[2]",
        "parcels[1].events[3]",
        "parcels[2]",
    ]
    assert result.errors[0].message == "E_404_01: Resource Not Found"
    for body in (b"[]", b'{"parcels": {}}', b"\xff"):
        with pytest.raises(PayloadError):
            gls.adapt(body, ACCOUNT)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | json_values.map(lambda value: json.dumps({"parcels": [value]}).encode()))
def test_gls_never_raises_on_arbitrary_bytes_but_its_payload_error(body: bytes) -> None:
    try:
        result = gls.adapt(body, ACCOUNT)
    except PayloadError:
        return
    assert isinstance(result, Adapted)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["INTIAL.NORMAL", "DELIVD.PARCELSHOP", "NEW.CODE", ""]),
            st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),
            st.sampled_from(["+0200", "-0500", ""]),
            st.sampled_from(["DE", "ES", "US", "", "ZZ"]),
        ),
        max_size=6,
    ),
    st.sampled_from([*gls.PARCEL_STATUSES, "FINAL", "SOMETHING"]),
)
def test_gls_never_drops_an_event_it_could_read(events: list[tuple[str, datetime, str, str]], status: str) -> None:
    body = {
        "parcels": [
            {
                "unitno": "1",
                "status": status,
                "statusDateTime": "2030-01-01T00:00:00+0000",
                "events": [
                    {"code": code, "country": country, "eventDateTime": when.isoformat(timespec="seconds") + offset}
                    for code, when, offset, country in events
                ],
            }
        ]
    }
    result = gls.adapt(json.dumps(body).encode(), ACCOUNT)
    assert len(result.events) == sum(1 for code, *_ in events if code)
    assert len(result.events) + len(result.errors) == len(events)
