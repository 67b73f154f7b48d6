"""The aggregator adapters (AfterShip webhooks, EasyPost tracker.updated) against
fixtures written from each source's documentation."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType

import pytest

from api.inbound.adapters import aftership, easypost
from api.inbound.adapters.base import Adapted, Context, PayloadError, TimeRule
from api.inbound.sources import SOURCES
from domain.status import Reason, Status

FIXTURES = Path(__file__).parent.parent / "fixtures" / "inbound"
ACCOUNT = Context(account_zone="Europe/Madrid")
IT, LC = (Status.IN_TRANSIT, None), (Status.LABEL_CREATED, None)


def adapted(adapter: ModuleType, name: str) -> Adapted:
    result: Adapted = adapter.adapt((FIXTURES / adapter.SOURCE / name).read_bytes(), ACCOUNT)
    return result


EXPECTED: list[tuple[ModuleType, str, list[tuple[Status, Reason | None]]]] = [
    (aftership, "in_transit.json", [LC, IT]),
    (aftership, "out_for_delivery.json", [LC, IT, (Status.OUT_FOR_DELIVERY, None)]),
    (aftership, "exception_address.json", [LC, IT, (Status.EXCEPTION, Reason.ADDRESS_ISSUE)]),
    (aftership, "delivered.json", [LC, IT, (Status.DELIVERED, None)]),
    (aftership, "returned.json", [LC, IT, (Status.RETURNED_TO_SENDER, None)]),
    (
        aftership,
        "attempt_then_pickup_point.json",
        [LC, IT, (Status.DELIVERY_ATTEMPTED, Reason.RECIPIENT_UNAVAILABLE), (Status.AVAILABLE_FOR_PICKUP, None)],
    ),
    (
        aftership,
        "unknown_subtag_and_tag.json",
        [LC, IT, (Status.EXCEPTION, Reason.OTHER), (Status.IN_TRANSIT, Reason.OTHER)],
    ),
    (easypost, "in_transit.json", [LC, IT]),
    (easypost, "out_for_delivery.json", [LC, IT, (Status.OUT_FOR_DELIVERY, None)]),
    (easypost, "exception_weather.json", [LC, IT, (Status.EXCEPTION, Reason.WEATHER)]),
    (easypost, "delivered.json", [LC, IT, (Status.DELIVERED, None)]),
    (easypost, "return_to_sender.json", [LC, IT, (Status.RETURNED_TO_SENDER, None)]),
    (easypost, "pickup_point.json", [LC, IT, (Status.AVAILABLE_FOR_PICKUP, None)]),
    (
        easypost,
        "unknown_status_and_detail.json",
        [LC, IT, (Status.IN_TRANSIT, Reason.OTHER), (Status.IN_TRANSIT, Reason.OTHER)],
    ),
]


@pytest.mark.parametrize(("adapter", "fixture", "expected"), EXPECTED, ids=[f"{a.SOURCE}/{f}" for a, f, _ in EXPECTED])
def test_each_fixture_maps_every_event(adapter: ModuleType, fixture: str, expected: list[object]) -> None:
    result = adapted(adapter, fixture)
    assert result.errors == []
    assert [(e.status, e.reason) for e in result.events] == expected


def test_unknown_codes_are_kept_raw_and_flagged_and_known_ones_are_not() -> None:
    result = adapted(aftership, "unknown_subtag_and_tag.json")
    assert [e.unmapped for e in result.events] == [False, False, True, True]
    assert [e.carrier_code for e in result.events[2:]] == ["Exception_099", "Relabelled_001"]
    assert result.events[2].carrier_status == "Held by a new rule"
    result = adapted(easypost, "unknown_status_and_detail.json")
    assert [e.unmapped for e in result.events] == [False, False, True, True]
    assert [e.carrier_code for e in result.events[2:]] == ["in_transit/rerouted_by_robot", "teleported"]


def test_local_times_are_placed_by_location_else_the_account() -> None:
    events = adapted(aftership, "in_transit.json").events
    # no offset, in Tennessee: Central time
    assert events[1].time_rule is TimeRule.LOCATION
    assert events[1].occurred_at.astimezone(UTC) == datetime(2024, 3, 10, 8, 14, tzinfo=UTC)
    assert events[0].time_rule is TimeRule.OFFSET
    events = adapted(aftership, "unknown_subtag_and_tag.json").events
    assert events[2].time_rule is TimeRule.LOCATION  # Portugal
    events = adapted(easypost, "unknown_status_and_detail.json").events
    assert events[3].time_rule is TimeRule.ACCOUNT  # no place at all: the account's Madrid
    assert events[3].occurred_at.astimezone(UTC) == datetime(2024, 3, 12, 8, 30, tzinfo=UTC)


def test_the_estimate_is_taken_where_each_source_puts_it() -> None:
    assert adapted(aftership, "in_transit.json").events[-1].estimated_delivery == date(2024, 3, 13)
    assert adapted(aftership, "out_for_delivery.json").events[-1].estimated_delivery == date(2024, 3, 12)
    assert adapted(aftership, "delivered.json").events[-1].estimated_delivery == date(2024, 3, 12)
    # UTC midnight is a date, not the evening before in the Americas
    assert adapted(easypost, "in_transit.json").events[-1].estimated_delivery == date(2024, 3, 13)
    assert adapted(easypost, "out_for_delivery.json").events[-1].estimated_delivery == date(2024, 3, 12)


@pytest.mark.parametrize("adapter", [aftership, easypost])
@pytest.mark.parametrize(
    "body", [b"", b"{", b"[]", b'{"msg": 1}', b'{"object": "Event", "result": {"object": "Tracker"}}']
)
def test_a_body_that_cannot_be_read_is_a_payload_error(adapter: ModuleType, body: bytes) -> None:
    with pytest.raises(PayloadError):
        adapter.adapt(body, ACCOUNT)


def test_a_malformed_checkpoint_is_answered_alone_and_the_others_kept() -> None:
    body = (
        b'{"msg": {"tracking_number": "1Z1", "checkpoints": [7, {"tag": "InTransit"},'
        b' {"checkpoint_time": "yesterday"}, {"checkpoint_time": "2024-03-10T10:00:00Z", "tag": "Delivered",'
        b' "subtag": "Delivered_001"}]}}'
    )
    result = aftership.adapt(body, ACCOUNT)
    assert [e.status for e in result.events] == [Status.DELIVERED]
    assert [e.where for e in result.errors] == ["msg.checkpoints[0]", "msg.checkpoints[1]", "msg.checkpoints[2]"]


UNMAPPED_FIXTURES = {
    "dhl": ("delivered_then_informational.json", ["transit:DD"]),
    "dhl_express": ("delivered_then_informational.xml", ["SG"]),
    "ups": ("delivered_then_informational.json", ["I:XS"]),
    "fedex": ("delivered_then_informational.json", ["CH"]),
    "usps": ("delivered_then_informational.json", ["XX"]),
    "canada_post": ("unknown_code_and_no_zone.xml", ["9999"]),
    "correos": ("delivered_then_unknown_text.json", ["4:Prueba de entrega disponible"]),
    "ctt_express": ("damaged_incidence.json", ["INCIDENCE:99_INZZ"]),
    "correos_express": ("delivered_repeated_key.json", ["14"]),
    "gls": ("exception_not_picked_up.json", ["NOTLISTED.NOPICKUP"]),
    "aftership": ("unknown_subtag_and_tag.json", ["Exception_099", "Relabelled_001"]),
    "easypost": ("unknown_status_and_detail.json", ["in_transit/rerouted_by_robot", "teleported"]),
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_adapter_flags_the_codes_its_table_does_not_know_and_only_those(source: str) -> None:
    adapt = SOURCES[source].adapt
    in_transit = next((FIXTURES / source).glob("in_transit.*"))
    assert [e for e in adapt(in_transit.read_bytes(), ACCOUNT).events if e.unmapped] == []
    if source in UNMAPPED_FIXTURES:
        name, codes = UNMAPPED_FIXTURES[source]
        events = adapt((FIXTURES / source / name).read_bytes(), ACCOUNT).events
        assert [e.carrier_code for e in events if e.unmapped] == codes
