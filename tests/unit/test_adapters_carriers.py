"""The carrier adapters for DHL (Unified API), DHL Express (XML), UPS and FedEx against
fixtures written from each source's documentation: every fixture's mapping, where local
times are placed, where the estimated delivery comes from in its several forms, and that
nothing readable is dropped and nothing unreadable raises but a PayloadError."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.inbound.adapters import correos_express, ctt_express, dhl, dhl_express, fedex, ups
from api.inbound.adapters.base import Adapted, PayloadError, TimeRule
from api.inbound.adapters.estimates import destination_zone, promised_day
from api.inbound.adapters.zones import place_local_time
from domain.status import JOURNEY, Reason, Status
from tests.unit.test_adapters import ACCOUNT, FIXTURES, adapted, effective_status, json_values

# (adapter, fixture, status and reason of each event in payload order)
EXPECTED: list[tuple[ModuleType, str, list[tuple[Status, Reason | None]]]] = [
    (dhl, "in_transit.json", [(Status.IN_TRANSIT, None), (Status.IN_TRANSIT, None), (Status.LABEL_CREATED, None)]),
    (
        dhl,
        "out_for_delivery.json",
        [(Status.OUT_FOR_DELIVERY, None), (Status.IN_TRANSIT, None), (Status.LABEL_CREATED, None)],
    ),
    (
        dhl,
        "exception.json",
        [(Status.EXCEPTION, Reason.CUSTOMS), (Status.EXCEPTION, Reason.OTHER), (Status.IN_TRANSIT, None)],
    ),
    (
        dhl,
        "delivered_then_informational.json",
        [(Status.IN_TRANSIT, Reason.OTHER), (Status.DELIVERED, None), (Status.OUT_FOR_DELIVERY, None)],
    ),
    (dhl, "returned.json", [(Status.RETURNED_TO_SENDER, None), (Status.DELIVERY_ATTEMPTED, Reason.OTHER)]),
    (dhl, "pickup_point.json", [(Status.AVAILABLE_FOR_PICKUP, None), (Status.OUT_FOR_DELIVERY, None)]),
    (dhl_express, "in_transit.xml", [(Status.IN_TRANSIT, None)] * 4),
    (
        dhl_express,
        "out_for_delivery.xml",
        [(Status.IN_TRANSIT, None), (Status.IN_TRANSIT, None), (Status.OUT_FOR_DELIVERY, None)],
    ),
    (dhl_express, "exception_customs.xml", [(Status.IN_TRANSIT, None), (Status.EXCEPTION, Reason.CUSTOMS)]),
    (
        dhl_express,
        "delivered_then_informational.xml",
        [
            (Status.IN_TRANSIT, None),
            (Status.OUT_FOR_DELIVERY, None),
            (Status.DELIVERED, None),
            (Status.IN_TRANSIT, Reason.OTHER),
        ],
    ),
    (
        dhl_express,
        "failed_attempt_then_collection.xml",
        [
            (Status.OUT_FOR_DELIVERY, None),
            (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),
            (Status.AVAILABLE_FOR_PICKUP, None),
        ],
    ),
    (dhl_express, "returned.xml", [(Status.EXCEPTION, Reason.REFUSED), (Status.RETURNED_TO_SENDER, None)]),
    (dhl_express, "unknown_zone.xml", [(Status.IN_TRANSIT, None), (Status.IN_TRANSIT, None)]),
    (ups, "in_transit.json", [(Status.IN_TRANSIT, None)] * 3 + [(Status.LABEL_CREATED, None)]),
    (ups, "out_for_delivery.json", [(Status.OUT_FOR_DELIVERY, None), (Status.IN_TRANSIT, None)]),
    (
        ups,
        "exception_address.json",
        [(Status.EXCEPTION, Reason.ADDRESS_ISSUE), (Status.EXCEPTION, Reason.OTHER), (Status.IN_TRANSIT, None)],
    ),
    (
        ups,
        "failed_attempt.json",
        [(Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE), (Status.OUT_FOR_DELIVERY, None)],
    ),
    (
        ups,
        "delivered_then_informational.json",
        [(Status.IN_TRANSIT, Reason.OTHER), (Status.DELIVERED, None), (Status.OUT_FOR_DELIVERY, None)],
    ),
    (ups, "access_point.json", [(Status.DELIVERED, None), (Status.AVAILABLE_FOR_PICKUP, None)]),
    (
        ups,
        "returned.json",
        [(Status.RETURNED_TO_SENDER, Reason.OTHER), (Status.RETURNED_TO_SENDER, Reason.RECIPIENT_UNAVAILABLE)],
    ),
    (
        fedex,
        "in_transit.json",
        [(Status.IN_TRANSIT, None)] * 3 + [(Status.LABEL_CREATED, None), (Status.IN_TRANSIT, None)],
    ),
    (
        fedex,
        "out_for_delivery.json",
        [(Status.OUT_FOR_DELIVERY, None), (Status.IN_TRANSIT, None), (Status.IN_TRANSIT, None)],
    ),
    (
        fedex,
        "exception_delay.json",
        [(Status.EXCEPTION, Reason.WEATHER), (Status.EXCEPTION, Reason.OTHER), (Status.IN_TRANSIT, None)],
    ),
    (
        fedex,
        "failed_attempt_then_pickup.json",
        [
            (Status.AVAILABLE_FOR_PICKUP, None),
            (Status.DELIVERY_ATTEMPTED, Reason.CARRIER_DELAY),
            (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),
            (Status.OUT_FOR_DELIVERY, None),
        ],
    ),
    (
        fedex,
        "delivered_then_informational.json",
        [(Status.IN_TRANSIT, Reason.OTHER), (Status.DELIVERED, None), (Status.OUT_FOR_DELIVERY, None)],
    ),
    (fedex, "returned.json", [(Status.RETURNED_TO_SENDER, None), (Status.DELIVERY_ATTEMPTED, Reason.OTHER)]),
    (
        correos_express,
        "in_transit.json",
        [(Status.LABEL_CREATED, None), (Status.IN_TRANSIT, None), (Status.IN_TRANSIT, None)],
    ),
    (
        correos_express,
        "out_for_delivery.json",
        [(Status.LABEL_CREATED, None)] + [(Status.IN_TRANSIT, None)] * 3 + [(Status.OUT_FOR_DELIVERY, None)],
    ),
    (
        correos_express,
        "exception_address.json",
        [(Status.IN_TRANSIT, None), (Status.EXCEPTION, Reason.ADDRESS_ISSUE)],
    ),
    (
        correos_express,
        "failed_attempt.json",
        [
            (Status.OUT_FOR_DELIVERY, None),
            (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE),
            (Status.OUT_FOR_DELIVERY, None),
        ],
    ),
    (
        correos_express,
        "delivered_repeated_key.json",
        [
            (Status.IN_TRANSIT, None),
            (Status.OUT_FOR_DELIVERY, None),
            (Status.DELIVERED, None),
            (Status.IN_TRANSIT, Reason.OTHER),
        ],
    ),
    (
        correos_express,
        "pickup_and_return.json",
        [
            (Status.OUT_FOR_DELIVERY, None),
            (Status.AVAILABLE_FOR_PICKUP, Reason.OTHER),
            (Status.DELIVERY_ATTEMPTED, Reason.ADDRESS_ISSUE),
            (Status.RETURNED_TO_SENDER, Reason.OTHER),
        ],
    ),
    (
        ctt_express,
        "in_transit.json",
        [(Status.LABEL_CREATED, None), (Status.IN_TRANSIT, None), (Status.IN_TRANSIT, None)],
    ),
    (
        ctt_express,
        "out_for_delivery.json",
        [(Status.LABEL_CREATED, None), (Status.IN_TRANSIT, None), (Status.OUT_FOR_DELIVERY, None)],
    ),
    (
        ctt_express,
        "exception_address.json",
        [(Status.IN_TRANSIT, None), (Status.OUT_FOR_DELIVERY, None), (Status.EXCEPTION, Reason.ADDRESS_ISSUE)],
    ),
    (
        ctt_express,
        "damaged_incidence.json",
        [(Status.IN_TRANSIT, None), (Status.EXCEPTION, Reason.DAMAGED), (Status.EXCEPTION, Reason.OTHER)],
    ),
    (
        ctt_express,
        "delivered_then_informational.json",
        [(Status.OUT_FOR_DELIVERY, None), (Status.DELIVERED, None), (Status.IN_TRANSIT, Reason.OTHER)],
    ),
    (
        ctt_express,
        "failed_attempt_then_pickup_point.json",
        [
            (Status.OUT_FOR_DELIVERY, None),
            (Status.DELIVERY_ATTEMPTED, Reason.OTHER),
            (Status.AVAILABLE_FOR_PICKUP, None),
        ],
    ),
    (ctt_express, "returned.json", [(Status.DELIVERY_ATTEMPTED, Reason.OTHER), (Status.RETURNED_TO_SENDER, None)]),
]

ADAPTERS: list[ModuleType] = [dhl, dhl_express, ups, fedex, correos_express, ctt_express]


@pytest.mark.parametrize(("adapter", "fixture", "expected"), EXPECTED, ids=[f"{a.SOURCE}/{f}" for a, f, _ in EXPECTED])
def test_each_fixture_maps_every_event_to_its_status_and_reason(
    adapter: ModuleType, fixture: str, expected: list[tuple[Status, Reason | None]]
) -> None:
    result = adapted(adapter, fixture)
    assert [(event.status, event.reason) for event in result.events] == expected
    assert result.errors == []


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda adapter: adapter.SOURCE)
def test_every_source_has_the_four_documented_cases_and_every_fixture_is_asserted(adapter: ModuleType) -> None:
    mapped = {
        event.status
        for fixture in (FIXTURES / adapter.SOURCE).iterdir()
        for event in adapter.adapt(fixture.read_bytes(), ACCOUNT).events
    }
    assert {Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY, Status.EXCEPTION, Status.DELIVERED} <= mapped
    asserted = {fixture for module, fixture, _ in EXPECTED if module is adapter} | {
        "malformed_items.json",
        "malformed_items.xml",
    }
    assert {path.name for path in (FIXTURES / adapter.SOURCE).iterdir()} <= asserted | set(
        MALFORMED_OR_SPECIAL.get(adapter.SOURCE, ())
    )


# Fixtures asserted by their own tests below rather than in EXPECTED.
MALFORMED_OR_SPECIAL: dict[str, tuple[str, ...]] = {
    "ups": ("malformed_and_not_found.json",),
    "fedex": ("errors_and_malformed.json",),
    "correos_express": ("errors_and_malformed.json",),
    "ctt_express": ("not_found.json",),
}


@pytest.mark.parametrize(
    ("adapter", "fixture"),
    [
        (dhl, "delivered_then_informational.json"),
        (dhl_express, "delivered_then_informational.xml"),
        (ups, "delivered_then_informational.json"),
        (fedex, "delivered_then_informational.json"),
        (correos_express, "delivered_repeated_key.json"),
        (ctt_express, "delivered_then_informational.json"),
    ],
    ids=lambda value: getattr(value, "SOURCE", value),
)
def test_an_informational_event_after_delivery_does_not_hide_the_delivery(adapter: ModuleType, fixture: str) -> None:
    result = adapted(adapter, fixture)
    delivered_at = next(event.occurred_at for event in result.events if event.status == Status.DELIVERED)
    assert max(event.occurred_at for event in result.events) > delivered_at
    assert effective_status(result) == Status.DELIVERED


def test_the_promised_day_reads_each_form_carriers_write() -> None:
    new_york = destination_zone("US", "NY")
    assert promised_day("2024-03-12") == date(2024, 3, 12)
    # A date stored as UTC midnight is that date, not the evening before in New York.
    assert promised_day("2024-03-12T00:00:00Z", new_york) == date(2024, 3, 12)
    # Another UTC instant is a time at the destination: 03:59 UTC is 23:59 the day before in New York.
    assert promised_day("2021-05-08T03:59:00Z", new_york) == date(2021, 5, 7)
    # End of day with its own offset, and a local time without one, keep the date written.
    assert promised_day("2021-05-07T23:59:00-04:00", new_york) == date(2021, 5, 7)
    assert promised_day("2024-03-12T18:00:00") == date(2024, 3, 12)
    assert promised_day("soon") is None
    assert promised_day("2024-13-40") is None


def test_dhl_places_express_times_without_offset_in_the_events_country() -> None:
    leipzig, madrid, received = adapted(dhl, "in_transit.json").events
    # Leipzig and Madrid in March, before daylight time: UTC+1.
    assert leipzig.time_rule == madrid.time_rule == TimeRule.LOCATION
    assert leipzig.occurred_at.astimezone(UTC) == datetime(2024, 3, 11, 3, 12, tzinfo=UTC)
    assert madrid.occurred_at.astimezone(UTC) == datetime(2024, 3, 10, 20, 40, tzinfo=UTC)
    assert received.time_rule == TimeRule.OFFSET
    lone = adapted(dhl, "malformed_items.json").events[0]
    assert lone.time_rule == TimeRule.ACCOUNT


def test_dhl_takes_the_estimate_from_the_window_end_and_reads_utc_midnight_as_a_date() -> None:
    # `2024-03-13T00:00:00Z` for New York is the thirteenth, not the twelfth.
    assert {event.estimated_delivery for event in adapted(dhl, "in_transit.json").events} == {date(2024, 3, 13)}
    assert adapted(dhl, "out_for_delivery.json").events[0].estimated_delivery == date(2024, 4, 16)
    assert adapted(dhl, "pickup_point.json").events[0].estimated_delivery == date(2024, 7, 2)
    # 18:00 UTC is 20:00 in Barcelona, the same day.
    assert adapted(dhl, "exception.json").events[1].estimated_delivery == date(2024, 5, 3)
    # Once delivered, DHL's estimate is the delivery time: it is not taken as an estimate.
    assert {event.estimated_delivery for event in adapted(dhl, "delivered_then_informational.json").events} == {None}


def test_dhl_keeps_an_unlisted_parcel_de_code_under_its_category_with_the_raw_code() -> None:
    informational = adapted(dhl, "delivered_then_informational.json").events[0]
    assert (informational.carrier_code, informational.status, informational.reason) == (
        "transit:DD",
        Status.IN_TRANSIT,
        Reason.OTHER,
    )
    assert informational.carrier_status == "The electronic proof of delivery has been recorded."


def test_dhl_answers_malformed_shipments_and_events_one_by_one() -> None:
    result = adapted(dhl, "malformed_items.json")
    assert [event.tracking_number for event in result.events] == ["7777777770"]
    assert [error.where for error in result.errors] == [
        "shipments[0].events[1]",
        "shipments[0].events[2]",
        "shipments[0].events[3]",
        "shipments[0].events[4]",
        "shipments[1]",
        "shipments[2]",
        "shipments[3]",
    ]
    for body in (b"[]", b'{"shipments": {}}', b"{", b'{"title": "No result found", "status": 404}'):
        with pytest.raises(PayloadError):
            dhl.adapt(body, ACCOUNT)


def arbitrary_bytes_or(wrap: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=200) | wrap


@settings(max_examples=200, deadline=None)
@given(
    arbitrary_bytes_or(
        json_values.map(lambda value: json.dumps({"shipments": [value]}).encode())
        | json_values.map(lambda value: json.dumps({"shipments": [{"id": "1", "events": [value]}]}).encode())
    )
)
def test_dhl_never_raises_on_arbitrary_bytes_but_its_payload_error(body: bytes) -> None:
    try:
        result = dhl.adapt(body, ACCOUNT)
    except PayloadError:
        return
    assert isinstance(result, Adapted)


stamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)).map(
    lambda moment: moment.isoformat(timespec="seconds")
) | st.text(max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["pre-transit", "transit", "delivered", "failure", "unknown", "new-category", ""]),
            st.sampled_from(["ZU", "PO", "QQ", "", "transit"]),
            stamps,
            st.sampled_from(["DE", "ES", "US", "", "ZZ"]),
        ),
        max_size=6,
    ),
    st.sampled_from(["parcel-de", "express", ""]),
    st.booleans(),
)
def test_dhl_never_drops_an_event_it_could_read(
    events: list[tuple[str, str, str, str]], service: str, returned: bool
) -> None:
    body = {
        "shipments": [
            {
                "id": "1",
                "service": service,
                "returnFlag": returned,
                "events": [
                    {
                        "statusCode": code,
                        "status": status,
                        "timestamp": stamp,
                        "location": {"address": {"countryCode": country}},
                    }
                    for code, status, stamp, country in events
                ],
            }
        ]
    }
    result = dhl.adapt(json.dumps(body).encode(), ACCOUNT)
    readable = [(code, status) for code, status, stamp, _ in events if (code or status) and is_iso(stamp)]
    assert len(result.events) == len(readable)
    assert len(result.events) + len(result.errors) == len(events)
    assert [event.carrier_code for event in result.events] == [
        f"{code}:{status}" if status else code for code, status in readable
    ]


def is_iso(stamp: str) -> bool:
    try:
        datetime.fromisoformat(stamp.strip())
    except ValueError:
        return False
    return bool(stamp.strip())


def test_dhl_express_places_local_times_by_the_service_areas_country_and_state() -> None:
    cincinnati, springfield, _ = adapted(dhl_express, "out_for_delivery.xml").events
    # Cincinnati hub (OH) and Springfield Gardens (NY) in March after the switch: UTC-4.
    assert cincinnati.time_rule == springfield.time_rule == TimeRule.LOCATION
    assert cincinnati.occurred_at.astimezone(UTC) == datetime(2024, 3, 14, 1, 10, tzinfo=UTC)
    assert springfield.occurred_at.astimezone(UTC) == datetime(2024, 3, 14, 10, 2, tzinfo=UTC)
    picked_up = adapted(dhl_express, "in_transit.xml").events[0]
    # Barcelona in March: UTC+1.
    assert picked_up.occurred_at.astimezone(UTC) == datetime(2024, 3, 11, 12, 26, tzinfo=UTC)
    # A country whose zone is not known, or no service area at all: the account's zone.
    milan, no_area = adapted(dhl_express, "unknown_zone.xml").events
    assert milan.time_rule == no_area.time_rule == TimeRule.ACCOUNT
    assert milan.occurred_at.astimezone(UTC) == datetime(2009, 8, 31, 6, 59, tzinfo=UTC)
    kingston = adapted(dhl_express, "exception_customs.xml").events[0]
    assert kingston.time_rule == TimeRule.ACCOUNT


def test_dhl_express_reads_the_end_of_day_estimate_in_its_own_offset_not_in_utc() -> None:
    # EstDlvyDate 2024-03-14 23:59 GMT-04:00; EstDlvyDateUTC says the fifteenth.
    assert {event.estimated_delivery for event in adapted(dhl_express, "in_transit.xml").events} == {date(2024, 3, 14)}
    assert adapted(dhl_express, "exception_customs.xml").events[1].estimated_delivery == date(2024, 5, 7)
    assert adapted(dhl_express, "returned.xml").events[0].estimated_delivery is None


def test_dhl_express_keeps_an_unknown_code_with_its_text_and_a_signatory_event_does_not_hide_delivery() -> None:
    informational = adapted(dhl_express, "delivered_then_informational.xml").events[3]
    assert (informational.carrier_code, informational.carrier_status) == (
        "SG",
        "Proof of delivery signature image available",
    )


def test_dhl_express_answers_unfound_waybills_and_malformed_events_one_by_one() -> None:
    result = dhl_express.adapt((FIXTURES / "dhl_express" / "malformed_items.xml").read_bytes(), ACCOUNT)
    assert [event.carrier_code for event in result.events] == ["PU"]
    assert [error.where for error in result.errors] == [
        "AWBInfo[0]",
        "AWBInfo[1]/ShipmentEvent[1]",
        "AWBInfo[1]/ShipmentEvent[2]",
        "AWBInfo[1]/ShipmentEvent[3]",
        "AWBInfo[2]",
    ]
    assert result.errors[0].message == "No Shipments Found: 103 No Shipments Found for AWBNumber 123456789"


@pytest.mark.parametrize(
    "body",
    [
        b"<res:TrackingResponse xmlns:res='http://www.dhl.com'><AWBInfo>",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<TrackingResponse><AWBInfo><AWBNumber>&b;</AWBNumber></AWBInfo></TrackingResponse>",
        b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><TrackingResponse>&x;</TrackingResponse>',
        b'<req:ShipmentTrackingErrorResponse xmlns:req="http://www.dhl.com"><Response><Status>'
        b"<ActionStatus>Failure</ActionStatus><Condition><ConditionCode>111</ConditionCode>"
        b"<ConditionData>Error Parsing incoming request XML</ConditionData></Condition></Status></Response>"
        b"</req:ShipmentTrackingErrorResponse>",
        b'{"shipments": []}',
    ],
)
def test_dhl_express_refuses_a_body_it_cannot_read_as_a_whole(body: bytes) -> None:
    with pytest.raises(PayloadError):
        dhl_express.adapt(body, ACCOUNT)


@settings(max_examples=200, deadline=None)
@given(
    arbitrary_bytes_or(
        st.text(max_size=200).map(
            lambda text: (
                f"<TrackingResponse><AWBInfo><AWBNumber>1</AWBNumber><ShipmentInfo>{text}"
                "</ShipmentInfo></AWBInfo></TrackingResponse>".encode()
            )
        )
    )
)
def test_dhl_express_never_raises_on_arbitrary_bytes_but_its_payload_error(body: bytes) -> None:
    try:
        result = dhl_express.adapt(body, ACCOUNT)
    except PayloadError:
        return
    assert isinstance(result, Adapted)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["PU", "WC", "OK", "NH", "ZZ", "DP", "ok"]),
            st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),
            st.sampled_from(["Barcelona - Spain ", "CINCINNATI HUB,OH-USA", "KINGSTON-JAM", "", "-"]),
        ),
        max_size=6,
    )
)
def test_dhl_express_never_drops_an_event_it_could_read(events: list[tuple[str, datetime, str]]) -> None:
    body = "".join(
        f"<ShipmentEvent><Date>{when.date().isoformat()}</Date><Time>{when.time().isoformat(timespec='seconds')}</Time>"
        f"<ServiceEvent><EventCode>{code}</EventCode><Description>d</Description></ServiceEvent>"
        f"<ServiceArea><ServiceAreaCode>X</ServiceAreaCode><Description>{area}</Description></ServiceArea>"
        "</ShipmentEvent>"
        for code, when, area in events
    )
    payload = (
        "<TrackingResponse><AWBInfo><AWBNumber>1</AWBNumber><Status><ActionStatus>success</ActionStatus></Status>"
        f"<ShipmentInfo>{body}</ShipmentInfo></AWBInfo></TrackingResponse>"
    )
    result = dhl_express.adapt(payload.encode(), ACCOUNT)
    assert [event.carrier_code for event in result.events] == [code for code, *_ in events]
    assert result.errors == []


def test_ups_places_local_times_by_state_and_uses_a_given_gmt_offset() -> None:
    arrived, departed, origin, label = adapted(ups, "in_transit.json").events
    # Chicago on 10 March 2024 after 03:00: daylight time, UTC-5.
    assert arrived.time_rule == TimeRule.LOCATION
    assert arrived.occurred_at.astimezone(UTC) == datetime(2024, 3, 11, 4, 15, tzinfo=UTC)
    # The same day before 02:00 would be UTC-6: the offset UPS gives wins over the state's zone.
    assert departed.time_rule == TimeRule.OFFSET
    assert departed.occurred_at.astimezone(UTC) == datetime(2024, 3, 11, 0, 10, tzinfo=UTC)
    assert origin.occurred_at.astimezone(UTC) == datetime(2024, 3, 10, 19, 30, tzinfo=UTC)
    # The United States without a state spans several zones: the account's zone.
    assert label.time_rule == TimeRule.ACCOUNT
    out = adapted(ups, "out_for_delivery.json").events[0]
    # 20210210-style date and 071356-style time; Denver in March after the switch: UTC-6.
    assert out.occurred_at.astimezone(UTC) == datetime(2024, 3, 12, 13, 13, 56, tzinfo=UTC)
    # Arizona keeps standard time all year: UTC-7.
    attempt = adapted(ups, "failed_attempt.json").events[0]
    assert attempt.occurred_at.astimezone(UTC) == datetime(2024, 3, 13, 21, 30, tzinfo=UTC)


def test_ups_takes_the_rescheduled_date_over_the_scheduled_one_and_never_the_delivered_date() -> None:
    assert adapted(ups, "in_transit.json").events[0].estimated_delivery == date(2024, 3, 13)
    assert adapted(ups, "exception_address.json").events[0].estimated_delivery == date(2024, 3, 14)
    assert adapted(ups, "delivered_then_informational.json").events[1].estimated_delivery == date(2024, 3, 12)
    body = json.dumps(
        {
            "trackResponse": {
                "shipment": [
                    {
                        "package": [
                            {
                                "trackingNumber": "1Z1",
                                "deliveryDate": [{"type": "DEL", "date": "20240315"}],
                                "activity": [
                                    {"date": "20240315", "time": "101000", "status": {"type": "D", "code": "KB"}}
                                ],
                            }
                        ]
                    }
                ]
            }
        }
    ).encode()
    assert ups.adapt(body, ACCOUNT).events[0].estimated_delivery is None


def test_ups_keeps_an_unknown_code_under_its_type_with_the_raw_code_and_text() -> None:
    unknown = adapted(ups, "exception_address.json").events[1]
    assert (unknown.carrier_code, unknown.status, unknown.reason) == ("X:C5", Status.EXCEPTION, Reason.OTHER)
    assert unknown.carrier_status.startswith("Uncontrollable events have delayed delivery")


def test_ups_answers_not_found_shipments_and_malformed_activities_one_by_one() -> None:
    result = adapted(ups, "malformed_and_not_found.json")
    assert [event.carrier_code for event in result.events] == ["I:AR"]
    assert [error.where for error in result.errors] == [
        "trackResponse.shipment[0]",
        "trackResponse.shipment[1].package[0].activity[1]",
        "trackResponse.shipment[1].package[0].activity[2]",
        "trackResponse.shipment[1].package[0].activity[3]",
        "trackResponse.shipment[1].package[0].activity[4]",
        "trackResponse.shipment[1].package[1]",
        "trackResponse.shipment[1].package[2]",
        "trackResponse.shipment[2]",
    ]
    assert result.errors[0].message == "TW0001: Tracking Information Not Found"
    for body in (b"[]", b'{"trackResponse": {"shipment": {}}}', b"\xff", b'{"response": {"errors": []}}'):
        with pytest.raises(PayloadError):
            ups.adapt(body, ACCOUNT)
    with pytest.raises(PayloadError, match="TV1002: Invalid inquiry number"):
        ups.adapt(b'{"response": {"errors": [{"code": "TV1002", "message": "Invalid inquiry number"}]}}', ACCOUNT)


@settings(max_examples=200, deadline=None)
@given(
    arbitrary_bytes_or(
        json_values.map(lambda value: json.dumps({"trackResponse": {"shipment": [value]}}).encode())
        | json_values.map(
            lambda value: json.dumps(
                {"trackResponse": {"shipment": [{"package": [{"trackingNumber": "1Z", "activity": [value]}]}]}}
            ).encode()
        )
    )
)
def test_ups_never_raises_on_arbitrary_bytes_but_its_payload_error(body: bytes) -> None:
    try:
        result = ups.adapt(body, ACCOUNT)
    except PayloadError:
        return
    assert isinstance(result, Adapted)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["I", "D", "X", "M", "RS", "Q", ""]),
            st.sampled_from(["OT", "KB", "48", "ZZ", ""]),
            st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),
            st.sampled_from(["", "-05:00", "+0100", "bad"]),
            st.sampled_from([("US", "CO"), ("US", ""), ("CA", "BC"), ("ES", ""), ("", "")]),
        ),
        max_size=6,
    )
)
def test_ups_never_drops_an_activity_it_could_read(
    activities: list[tuple[str, str, datetime, str, tuple[str, str]]],
) -> None:
    body = {
        "trackResponse": {
            "shipment": [
                {
                    "package": [
                        {
                            "trackingNumber": "1Z",
                            "activity": [
                                {
                                    "date": when.strftime("%Y%m%d"),
                                    "time": when.strftime("%H%M%S"),
                                    "gmtOffset": offset,
                                    "location": {"address": {"countryCode": country, "stateProvince": state}},
                                    "status": {"type": kind, "code": code},
                                }
                                for kind, code, when, offset, (country, state) in activities
                            ],
                        }
                    ]
                }
            ]
        }
    }
    result = ups.adapt(json.dumps(body).encode(), ACCOUNT)
    readable = [(kind, code) for kind, code, _, offset, _ in activities if (kind or code) and offset != "bad"]
    assert [event.carrier_code for event in result.events] == [f"{kind}:{code}" for kind, code in readable]
    assert len(result.events) + len(result.errors) == len(activities)


def test_fedex_places_a_midnight_pickup_known_by_its_day_after_the_label_of_that_day() -> None:
    events = adapted(fedex, "in_transit.json").events
    label, pickup = events[3], events[4]
    # The one scan without an offset: Mankato, Minnesota, placed by its state.
    assert pickup.time_rule == TimeRule.LOCATION
    assert label.time_rule == TimeRule.OFFSET
    # `2024-08-15T00:00:00` is a day, not midnight: not before the label made at 10:36 that morning.
    assert pickup.occurred_at == label.occurred_at == datetime(2024, 8, 15, 15, 36, tzinfo=UTC)
    assert effective_status(Adapted(events=[label, pickup], errors=[])) == Status.IN_TRANSIT


def test_fedex_takes_the_estimate_where_fedex_puts_it_and_never_the_actual_delivery() -> None:
    # The window's ends differ in form (09:00 without offset, 17:00-04:00): its end is the promise.
    assert adapted(fedex, "in_transit.json").events[0].estimated_delivery == date(2024, 8, 20)
    assert adapted(fedex, "out_for_delivery.json").events[0].estimated_delivery == date(2024, 4, 25)
    # ESTIMATED_DELIVERY as a local midnight is that day.
    assert adapted(fedex, "exception_delay.json").events[0].estimated_delivery == date(2024, 1, 17)
    # Delivered: ACTUAL_DELIVERY is not an estimate; the standard transit window's end still is.
    assert adapted(fedex, "delivered_then_informational.json").events[1].estimated_delivery == date(2024, 8, 21)
    assert adapted(fedex, "returned.json").events[0].estimated_delivery is None


def test_fedex_keeps_the_exception_code_and_text_and_an_unknown_type_under_its_category() -> None:
    attempt = adapted(fedex, "failed_attempt_then_pickup.json").events[2]
    assert (attempt.carrier_code, attempt.carrier_status) == ("DE/08", "Customer not available or business closed")
    unknown = adapted(fedex, "exception_delay.json").events[1]
    assert (unknown.carrier_code, unknown.reason) == ("SE/A99", Reason.OTHER)
    changed = adapted(fedex, "delivered_then_informational.json").events[0]
    assert (changed.carrier_code, changed.status, changed.reason) == ("CH", Status.IN_TRANSIT, Reason.OTHER)


def test_fedex_answers_not_found_numbers_and_malformed_scans_one_by_one() -> None:
    result = adapted(fedex, "errors_and_malformed.json")
    assert [event.carrier_code for event in result.events] == ["OD"]
    assert [error.where for error in result.errors] == [
        "output.completeTrackResults[0].trackResults[0]",
        "output.completeTrackResults[1].trackResults[0].scanEvents[1]",
        "output.completeTrackResults[1].trackResults[0].scanEvents[2]",
        "output.completeTrackResults[1].trackResults[0].scanEvents[3]",
        "output.completeTrackResults[1].trackResults[0].scanEvents[4]",
        "output.completeTrackResults[1].trackResults[1]",
        "output.completeTrackResults[1].trackResults[2]",
        "output.completeTrackResults[2]",
    ]
    assert result.errors[0].message.startswith("TRACKING.TRACKINGNUMBER.NOTFOUND")
    for body in (b"[]", b'{"output": {}}', b"{", b'{"errors": []}'):
        with pytest.raises(PayloadError):
            fedex.adapt(body, ACCOUNT)
    with pytest.raises(PayloadError, match=r"TRACKING\.TRACKINGNUMBER\.EMPTY"):
        fedex.adapt(
            b'{"errors": [{"code": "TRACKING.TRACKINGNUMBER.EMPTY", "message": "Please provide tracking number."}]}',
            ACCOUNT,
        )


@settings(max_examples=200, deadline=None)
@given(
    arbitrary_bytes_or(
        json_values.map(lambda value: json.dumps({"output": {"completeTrackResults": [value]}}).encode())
        | json_values.map(
            lambda value: json.dumps(
                {
                    "output": {
                        "completeTrackResults": [
                            {"trackResults": [{"trackingNumberInfo": {"trackingNumber": "7"}, "scanEvents": [value]}]}
                        ]
                    }
                }
            ).encode()
        )
    )
)
def test_fedex_never_raises_on_arbitrary_bytes_but_its_payload_error(body: bytes) -> None:
    try:
        result = fedex.adapt(body, ACCOUNT)
    except PayloadError:
        return
    assert isinstance(result, Adapted)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["PU", "OD", "DL", "DE", "DY", "QQ", ""]),
            st.sampled_from(["IT", "DL", "IN", "ZZ", ""]),
            st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),
            st.sampled_from(["", "-05:00", "Z"]),
            st.sampled_from([("US", "TN"), ("CA", "QC"), ("DE", ""), ("", "")]),
        ),
        max_size=6,
    ),
    st.booleans(),
)
def test_fedex_never_drops_a_scan_it_could_read_and_no_day_only_scan_sorts_before_its_days_label(
    scans: list[tuple[str, str, datetime, str, tuple[str, str]]], at_midnight: bool
) -> None:
    body = {
        "output": {
            "completeTrackResults": [
                {
                    "trackResults": [
                        {
                            "trackingNumberInfo": {"trackingNumber": "7"},
                            "scanEvents": [
                                {
                                    "date": (
                                        when.replace(hour=0, minute=0, second=0) if at_midnight else when
                                    ).isoformat(timespec="seconds")
                                    + offset,
                                    "eventType": kind,
                                    "derivedStatusCode": derived,
                                    "scanLocation": {"countryCode": country, "stateOrProvinceCode": state},
                                }
                                for kind, derived, when, offset, (country, state) in scans
                            ],
                        }
                    ]
                }
            ]
        }
    }
    result = fedex.adapt(json.dumps(body).encode(), ACCOUNT)
    readable = [scan for scan in scans if scan[0] or scan[1]]
    assert [event.carrier_code for event in result.events] == [kind for kind, *_ in readable]
    assert len(result.events) + len(result.errors) == len(scans)
    for event, (_, _, when, offset, (country, state)) in zip(result.events, readable, strict=True):
        if offset or not at_midnight:
            continue
        midnight, _ = place_local_time(datetime.combine(when.date(), datetime.min.time()), country, state, ACCOUNT)
        for other, (*_, other_offset, _) in zip(result.events, readable, strict=True):
            same_day = other.occurred_at.astimezone(midnight.tzinfo).date() == when.date()
            if other_offset and same_day and JOURNEY[other.status] < JOURNEY[event.status]:
                assert event.occurred_at >= other.occurred_at


def test_correos_express_keeps_every_event_of_a_key_repeated_once_per_event() -> None:
    body = (FIXTURES / "correos_express" / "delivered_repeated_key.json").read_bytes()
    # What a naive parser keeps: the last event alone.
    assert json.loads(body)["estadoEnvios"]["codEstado"] == "14"
    result = correos_express.adapt(body, ACCOUNT)
    assert [event.carrier_code for event in result.events] == ["4", "8", "12", "14"]
    assert effective_status(result) == Status.DELIVERED


def test_correos_express_reads_day_first_dates_without_separators_in_spanish_local_time() -> None:
    delivered = adapted(correos_express, "delivered_repeated_key.json").events[2]
    # 05032024 114200 is the fifth of March, 11:42 in Madrid (UTC+1).
    assert delivered.occurred_at.astimezone(UTC) == datetime(2024, 3, 5, 10, 42, tzinfo=UTC)
    assert delivered.time_rule == TimeRule.LOCATION
    assert delivered.estimated_delivery is None


def test_correos_express_keeps_the_incidence_with_the_state_and_an_unknown_code_under_its_text() -> None:
    attempt = adapted(correos_express, "failed_attempt.json").events[1]
    assert (attempt.carrier_code, attempt.carrier_status) == ("9/1", "REPARTO FALLIDO: AUSENTE")
    deposited = adapted(correos_express, "pickup_and_return.json").events[1]
    assert (deposited.carrier_code, deposited.status, deposited.reason) == (
        "13",
        Status.AVAILABLE_FOR_PICKUP,
        Reason.OTHER,
    )


def test_correos_express_answers_errors_and_malformed_events_one_by_one() -> None:
    result = adapted(correos_express, "errors_and_malformed.json")
    assert [event.carrier_code for event in result.events] == ["4"]
    assert [error.where for error in result.errors] == [
        "[0]",
        "[1].estadoEnvios[1]",
        "[1].estadoEnvios[2]",
        "[1].estadoEnvios[3]",
        "[1].estadoEnvios[4]",
        "[2]",
        "[3]",
    ]
    assert result.errors[0].message == "402: NO EXISTEN DATOS PARA EL ENVIO"
    for body in (b"[]", b"3", b"{", b"\xff\xfe{", b"[" * 100_000):
        with pytest.raises(PayloadError):
            correos_express.adapt(body, ACCOUNT)


@settings(max_examples=200, deadline=None)
@given(
    arbitrary_bytes_or(
        json_values.map(lambda value: json.dumps(value).encode())
        | json_values.map(lambda value: json.dumps({"numEnvio": "1", "estadoEnvios": [value]}).encode())
    )
)
def test_correos_express_never_raises_on_arbitrary_bytes_but_its_payload_error(body: bytes) -> None:
    try:
        result = correos_express.adapt(body, ACCOUNT)
    except PayloadError:
        return
    assert isinstance(result, Adapted)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["1", "8", "9", "12", "99", "", "012"]),
            st.sampled_from(["ENTREGADO", "DEVUELTO", "ALGO NUEVO", ""]),
            st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31)),
            st.sampled_from(["", "AUSENTE", "OTRA"]),
        ),
        max_size=6,
    ),
    st.booleans(),
)
def test_correos_express_never_drops_an_event_however_the_events_are_held(
    events: list[tuple[str, str, date, str]], repeated_key: bool
) -> None:
    objects = [
        {
            "codEstado": code,
            "descEstado": state,
            "fechaEstado": day.strftime("%d%m%Y"),
            "horaEstado": "101500",
            "descIncEstado": incidence,
        }
        for code, state, day, incidence in events
    ]
    if repeated_key:
        body = "{" + ", ".join(['"numEnvio": "1"', *(f'"estadoEnvios": {json.dumps(item)}' for item in objects)]) + "}"
    else:
        body = json.dumps({"numEnvio": "1", "estadoEnvios": objects})
    result = correos_express.adapt(body.encode(), ACCOUNT)
    readable = [code for code, state, *_ in events if code or state]
    assert [event.carrier_code for event in result.events] == readable
    assert len(result.events) + len(result.errors) == len(events)


def test_ctt_express_reads_its_two_code_sets_apart_and_a_status_code_with_or_without_its_zero() -> None:
    picked_up = adapted(ctt_express, "in_transit.json").events[1]
    assert (picked_up.carrier_code, picked_up.status) == ("STATUS:500", Status.IN_TRANSIT)
    # The same characters under the other set are not a status: an incidence, exception, reason other.
    body = json.dumps(
        {
            "error": None,
            "data": {
                "shipping_code": "1",
                "shipping_history": {
                    "events": [
                        {"code": "2000", "type": "INCIDENCE", "event_date": "2025-09-16T10:31:00+00:00"},
                        {"code": "6_INCT", "type": "STATUS", "event_date": "2025-09-16T10:32:00+00:00"},
                    ]
                },
            },
        }
    ).encode()
    incidence, status = ctt_express.adapt(body, ACCOUNT).events
    assert (incidence.status, incidence.reason) == (Status.EXCEPTION, Reason.OTHER)
    assert (status.status, status.reason) == (Status.IN_TRANSIT, Reason.OTHER)


def test_ctt_express_takes_the_items_own_time_and_the_committed_date() -> None:
    transit = adapted(ctt_express, "in_transit.json").events[2]
    # event_date says 15 September 06:42; the item's own scan was 16 September 02:13 UTC.
    assert transit.occurred_at == datetime(2025, 9, 16, 2, 13, 30, 127000, tzinfo=UTC)
    assert transit.time_rule == TimeRule.OFFSET
    assert transit.estimated_delivery == date(2025, 9, 17)
    # No committed date: the reported one.
    assert adapted(ctt_express, "failed_attempt_then_pickup_point.json").events[0].estimated_delivery == date(
        2025, 9, 18
    )


def test_ctt_express_answers_not_found_and_malformed_events_one_by_one() -> None:
    result = adapted(ctt_express, "not_found.json")
    assert (result.events, [(error.where, error.message) for error in result.errors]) == (
        [],
        [("error", "404: Envío no encontrado")],
    )
    result = adapted(ctt_express, "malformed_items.json")
    assert [event.carrier_code for event in result.events] == ["STATUS:1000"]
    assert [error.where for error in result.errors] == [
        f"data.shipping_history.events[{index}]" for index in (1, 2, 3, 4)
    ]
    for body in (b"[]", b'{"shipments": []}', b"{", b"null"):
        with pytest.raises(PayloadError):
            ctt_express.adapt(body, ACCOUNT)


@settings(max_examples=200, deadline=None)
@given(
    arbitrary_bytes_or(
        json_values.map(lambda value: json.dumps({"error": None, "data": value}).encode())
        | json_values.map(
            lambda value: json.dumps(
                {"error": None, "data": {"shipping_code": "1", "shipping_history": {"events": [value]}}}
            ).encode()
        )
    )
)
def test_ctt_express_never_raises_on_arbitrary_bytes_but_its_payload_error(body: bytes) -> None:
    try:
        result = ctt_express.adapt(body, ACCOUNT)
    except PayloadError:
        return
    assert isinstance(result, Adapted)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["0000", "500", "1500", "2000", "9999", "6_INCT", ""]),
            st.sampled_from(["STATUS", "INCIDENCE", ""]),
            st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
            st.booleans(),
        ),
        max_size=6,
    )
)
def test_ctt_express_never_drops_an_event_it_could_read(events: list[tuple[str, str, datetime, bool]]) -> None:
    body = {
        "error": None,
        "data": {
            "shipping_code": "1",
            "shipping_history": {
                "events": [
                    {"code": code, "type": kind, "detail": {"item_event_datetime": when.isoformat()}}
                    if in_detail
                    else {"code": code, "type": kind, "event_date": when.isoformat()}
                    for code, kind, when, in_detail in events
                ]
            },
        },
    }
    result = ctt_express.adapt(json.dumps(body).encode(), ACCOUNT)
    assert [event.carrier_code for event in result.events] == [
        f"{kind or 'STATUS'}:{code}" for code, kind, *_ in events if code
    ]
    assert [event.occurred_at for event in result.events] == [when for code, _, when, _ in events if code]
    assert len(result.events) + len(result.errors) == len(events)
