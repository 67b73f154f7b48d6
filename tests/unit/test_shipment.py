"""The shipment aggregate and the commands that reach it from the wire."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from domain.events import DeliveredLate, EventRecorded, PromiseBroken, PromiseRevised, ShipmentCreated
from domain.promise import PromiseError
from domain.shipment import (
    CreateShipment,
    LateDelivery,
    Place,
    RecordCarrierEvent,
    RecordEvent,
    RevisePromise,
    Shipment,
    ShipmentClosed,
    TrackingEvent,
    event_key,
)
from domain.status import TERMINAL, Reason, Status

PROMISED_BY = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)
CREATED_AT = datetime(2026, 11, 18, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MICROSECOND = timedelta(microseconds=1)
PARIS = timezone(timedelta(hours=1))

NON_TERMINAL = [status for status in Status if status not in TERMINAL]
TERMINALS = sorted(TERMINAL)


def a_shipment(promised_by: datetime = PROMISED_BY, **fields: Any) -> Shipment:
    return Shipment(
        id="shp_1",
        account_id="acc_1",
        carrier="dhl",
        tracking_number="JD014600",
        promised_by=promised_by,
        created_at=CREATED_AT,
        updated_at=CREATED_AT,
        **fields,
    )


_keys = itertools.count()


def an_event(
    status: Status,
    occurred_at: datetime,
    *,
    key: str | None = None,
    estimated_delivery: datetime | None = None,
    location: Place | None = None,
) -> TrackingEvent:
    return TrackingEvent(
        key=key if key is not None else f"evt-{next(_keys)}",
        status=status,
        occurred_at=occurred_at,
        estimated_delivery=estimated_delivery,
        location=location,
    )


def recorded(*events: TrackingEvent, shipment: Shipment | None = None, now: datetime = NOW) -> Shipment:
    shipment = shipment if shipment is not None else a_shipment()
    for event in events:
        shipment.record(event, now)
    return shipment


def a_deadline_record(promised_by: datetime = PROMISED_BY) -> LateDelivery:
    return LateDelivery(promised_by=promised_by, detected_at=promised_by + HOUR, detected_by="deadline")


# -- a new shipment ----------------------------------------------------------------


def test_a_new_shipment_starts_as_label_created_with_nothing_to_save() -> None:
    shipment = a_shipment()
    assert shipment.status is Status.LABEL_CREATED
    assert shipment.progress.status_at is None
    assert shipment.progress.delivered_at is None
    assert shipment.late_delivery is None
    assert shipment.version == 1
    assert shipment.changes == []


def test_creating_a_shipment_from_the_command_says_it_was_created() -> None:
    command = msgspec.json.decode(
        b'{"carrier": "DHL", "tracking_number": "jd 014600", "promised_by": "2026-11-22T18:00:00+01:00",'
        b' "reference": "order-8812", "recipient": {"name": "Ana"}}',
        type=CreateShipment,
    )
    shipment = Shipment.create(command, shipment_id="shp_1", account_id="acc_1", now=CREATED_AT)
    assert (shipment.id, shipment.account_id, shipment.carrier, shipment.tracking_number) == (
        "shp_1",
        "acc_1",
        "dhl",
        "JD014600",
    )
    assert (shipment.promised_by, shipment.reference, shipment.recipient) == (
        PROMISED_BY,
        "order-8812",
        command.recipient,
    )
    assert (shipment.created_at, shipment.updated_at, shipment.version) == (CREATED_AT, CREATED_AT, 1)
    assert shipment.status is Status.LABEL_CREATED
    assert shipment.changes == [ShipmentCreated()]


def test_two_new_shipments_do_not_share_their_changes() -> None:
    first, second = a_shipment(), a_shipment()
    first.record(an_event(Status.IN_TRANSIT, CREATED_AT), NOW)
    assert second.changes == []


# -- recording events --------------------------------------------------------------


def test_recording_an_event_moves_the_status_and_says_so() -> None:
    event = an_event(Status.IN_TRANSIT, CREATED_AT + HOUR)
    shipment = recorded(event)
    assert shipment.status is Status.IN_TRANSIT
    assert shipment.progress.status_at == CREATED_AT + HOUR
    assert shipment.changes == [EventRecorded(event=event)]
    assert shipment.version == 2
    assert shipment.updated_at == NOW


def test_a_first_event_that_is_label_created_sets_the_status_time() -> None:
    shipment = recorded(an_event(Status.LABEL_CREATED, CREATED_AT))
    assert shipment.status is Status.LABEL_CREATED
    assert shipment.progress.status_at == CREATED_AT


def test_recording_with_an_older_clock_never_moves_updated_at_back() -> None:
    shipment = recorded(an_event(Status.IN_TRANSIT, CREATED_AT), now=NOW)
    shipment.record(an_event(Status.OUT_FOR_DELIVERY, CREATED_AT + HOUR), NOW - HOUR)
    assert shipment.updated_at == NOW
    assert shipment.version == 3


@pytest.mark.parametrize(("older", "newer"), list(itertools.product(NON_TERMINAL, repeat=2)))
def test_an_older_event_arriving_late_does_not_move_a_shipment_back(older: Status, newer: Status) -> None:
    shipment = recorded(an_event(newer, CREATED_AT + 2 * HOUR), an_event(older, CREATED_AT + HOUR))
    assert shipment.status is newer
    assert shipment.progress.status_at == CREATED_AT + 2 * HOUR


@pytest.mark.parametrize(("older", "newer"), list(itertools.product(NON_TERMINAL, repeat=2)))
def test_a_newer_event_moves_a_shipment_on_its_way_forward(older: Status, newer: Status) -> None:
    shipment = recorded(an_event(older, CREATED_AT + HOUR), an_event(newer, CREATED_AT + 2 * HOUR))
    assert shipment.status is newer


@pytest.mark.parametrize("terminal", TERMINALS)
@pytest.mark.parametrize("other", NON_TERMINAL)
@pytest.mark.parametrize("offset", [-HOUR, timedelta(0), HOUR], ids=["older", "same-time", "newer"])
def test_a_non_terminal_event_does_not_move_a_closed_shipment_back_whatever_its_time(
    terminal: Status, other: Status, offset: timedelta
) -> None:
    closing = an_event(terminal, PROMISED_BY - HOUR)
    straggler = an_event(other, PROMISED_BY - HOUR + offset)
    shipment = recorded(closing, straggler)
    assert shipment.status is terminal
    assert shipment.progress.status_at == closing.occurred_at
    # the event is still kept: it is recorded as a change for the timeline
    assert shipment.changes[-1] == EventRecorded(event=straggler)


@pytest.mark.parametrize("other", NON_TERMINAL)
def test_an_older_event_does_not_move_a_delivered_shipment_back(other: Status) -> None:
    shipment = recorded(an_event(Status.DELIVERED, PROMISED_BY - HOUR), an_event(other, PROMISED_BY - 2 * HOUR))
    assert shipment.status is Status.DELIVERED


@pytest.mark.parametrize(("first", "second"), list(itertools.product(TERMINALS, repeat=2)))
def test_between_two_terminal_events_the_later_one_decides(first: Status, second: Status) -> None:
    shipment = recorded(an_event(second, PROMISED_BY - HOUR), an_event(first, PROMISED_BY - 2 * HOUR))
    assert shipment.status is second


def test_delivered_at_is_the_first_hand_over_and_status_at_the_latest_event() -> None:
    first_scan = an_event(Status.DELIVERED, PROMISED_BY - 2 * HOUR)
    second_scan = an_event(Status.DELIVERED, PROMISED_BY - HOUR)
    shipment = recorded(second_scan, first_scan)
    assert shipment.progress.delivered_at == first_scan.occurred_at
    assert shipment.progress.status_at == second_scan.occurred_at


def test_a_delivery_followed_by_a_return_keeps_its_hand_over_time() -> None:
    shipment = recorded(
        an_event(Status.RETURNED_TO_SENDER, PROMISED_BY + 48 * HOUR),
        an_event(Status.DELIVERED, PROMISED_BY - HOUR),
    )
    assert shipment.status is Status.RETURNED_TO_SENDER
    assert shipment.progress.delivered_at == PROMISED_BY - HOUR


def test_the_latest_estimate_by_occurred_at_is_kept_beside_the_first_one() -> None:
    first = an_event(Status.IN_TRANSIT, CREATED_AT + HOUR, estimated_delivery=PROMISED_BY - HOUR)
    middle = an_event(Status.IN_TRANSIT, CREATED_AT + 2 * HOUR, estimated_delivery=PROMISED_BY + HOUR)
    latest = an_event(Status.OUT_FOR_DELIVERY, CREATED_AT + 3 * HOUR, estimated_delivery=PROMISED_BY)
    without = an_event(Status.EXCEPTION, CREATED_AT + 4 * HOUR)
    shipment = recorded(middle, latest, without, first)
    assert shipment.progress.estimated_delivery == PROMISED_BY
    assert shipment.progress.first_estimated_delivery == PROMISED_BY - HOUR


def test_the_location_is_that_of_the_latest_event_that_has_one() -> None:
    lyon, zaragoza = Place(city="Lyon", country="FR"), Place(city="Zaragoza", country="ES")
    shipment = recorded(
        an_event(Status.OUT_FOR_DELIVERY, CREATED_AT + 3 * HOUR, location=lyon),
        an_event(Status.IN_TRANSIT, CREATED_AT + HOUR, location=zaragoza),
        an_event(Status.DELIVERED, CREATED_AT + 4 * HOUR),
    )
    assert shipment.progress.location == lyon


# -- lateness --------------------------------------------------------------------


def test_a_delivery_after_the_promise_records_lateness_once_with_its_delay() -> None:
    shipment = recorded(an_event(Status.DELIVERED, PROMISED_BY + 26 * HOUR))
    record = shipment.late_delivery
    assert record == LateDelivery(
        promised_by=PROMISED_BY,
        detected_at=NOW,
        detected_by="delivery",
        status_at_detection=Status.DELIVERED,
        delivered_at=PROMISED_BY + 26 * HOUR,
        closed_at=NOW,
    )
    assert record.delay == 26 * HOUR
    assert shipment.changes[-1] == DeliveredLate(late_delivery=record)
    assert shipment.is_late(NOW)


@pytest.mark.parametrize("delivered_at", [PROMISED_BY, PROMISED_BY.astimezone(PARIS), PROMISED_BY - HOUR])
def test_a_delivery_by_the_promise_records_no_lateness(delivered_at: datetime) -> None:
    shipment = recorded(an_event(Status.DELIVERED, delivered_at))
    assert shipment.late_delivery is None
    assert not any(isinstance(change, DeliveredLate) for change in shipment.changes)
    assert not shipment.is_late(NOW)


def test_a_delivery_one_microsecond_after_the_promise_is_late() -> None:
    shipment = recorded(an_event(Status.DELIVERED, PROMISED_BY + MICROSECOND))
    assert shipment.late_delivery is not None
    assert shipment.late_delivery.delay == MICROSECOND


def test_a_second_late_delivery_scan_adds_no_second_record() -> None:
    shipment = recorded(
        an_event(Status.DELIVERED, PROMISED_BY + HOUR), an_event(Status.DELIVERED, PROMISED_BY + 2 * HOUR)
    )
    assert shipment.late_delivery is not None
    assert shipment.late_delivery.delivered_at == PROMISED_BY + HOUR
    assert sum(isinstance(change, DeliveredLate) for change in shipment.changes) == 1


def test_an_earlier_late_delivery_scan_shortens_the_recorded_delay() -> None:
    shipment = recorded(
        an_event(Status.DELIVERED, PROMISED_BY + 5 * HOUR), an_event(Status.DELIVERED, PROMISED_BY + HOUR)
    )
    assert shipment.late_delivery is not None
    assert shipment.late_delivery.delivered_at == PROMISED_BY + HOUR
    assert shipment.late_delivery.delay == HOUR


def test_an_earlier_on_time_delivery_scan_clears_a_record_found_at_delivery() -> None:
    shipment = recorded(an_event(Status.DELIVERED, PROMISED_BY + HOUR), an_event(Status.DELIVERED, PROMISED_BY - HOUR))
    assert shipment.late_delivery is None
    assert not shipment.is_late(NOW)


def test_a_late_record_is_made_even_when_the_delivery_was_not_the_last_word() -> None:
    # returned after a late delivery: still delivered late
    shipment = recorded(
        an_event(Status.RETURNED_TO_SENDER, PROMISED_BY + 72 * HOUR),
        an_event(Status.DELIVERED, PROMISED_BY + HOUR),
    )
    assert shipment.late_delivery is not None
    assert shipment.late_delivery.delivered_at == PROMISED_BY + HOUR


@pytest.mark.parametrize("status", [Status.RETURNED_TO_SENDER, Status.CANCELLED])
def test_closing_without_delivery_records_no_lateness(status: Status) -> None:
    shipment = recorded(an_event(status, PROMISED_BY + HOUR))
    assert shipment.late_delivery is None


def test_delivery_completes_a_record_found_at_the_deadline() -> None:
    record = a_deadline_record()
    shipment = recorded(an_event(Status.DELIVERED, PROMISED_BY + 3 * HOUR), shipment=a_shipment(late_delivery=record))
    assert shipment.late_delivery == msgspec.structs.replace(record, delivered_at=PROMISED_BY + 3 * HOUR, closed_at=NOW)
    assert shipment.late_delivery.delay == 3 * HOUR
    # found at the deadline, so no second announcement at delivery
    assert not any(isinstance(change, DeliveredLate) for change in shipment.changes)


def test_a_record_found_at_the_deadline_has_no_delay_until_delivery() -> None:
    shipment = recorded(
        an_event(Status.IN_TRANSIT, PROMISED_BY + HOUR),
        shipment=a_shipment(late_delivery=a_deadline_record()),
    )
    assert shipment.late_delivery is not None
    assert shipment.late_delivery.delivered_at is None
    assert shipment.late_delivery.delay is None
    assert shipment.is_late(PROMISED_BY - HOUR)


# -- late and at risk on the shipment ---------------------------------------------------


def test_a_shipment_on_its_way_becomes_late_one_microsecond_after_its_promise() -> None:
    shipment = recorded(an_event(Status.IN_TRANSIT, CREATED_AT))
    assert not shipment.is_late(PROMISED_BY)
    assert shipment.is_late(PROMISED_BY + MICROSECOND)


def test_a_shipment_is_at_risk_when_the_latest_estimate_misses_the_promise() -> None:
    shipment = recorded(an_event(Status.IN_TRANSIT, CREATED_AT, estimated_delivery=PROMISED_BY + HOUR))
    assert shipment.is_at_risk(PROMISED_BY)
    assert not shipment.is_at_risk(PROMISED_BY + MICROSECOND)
    shipment.record(an_event(Status.IN_TRANSIT, CREATED_AT + HOUR, estimated_delivery=PROMISED_BY), NOW)
    assert not shipment.is_at_risk(PROMISED_BY - HOUR)


# -- revising the promise -------------------------------------------------------


def test_revising_the_promise_keeps_the_previous_one_and_says_so() -> None:
    window = (PROMISED_BY + 20 * HOUR, PROMISED_BY + 24 * HOUR)
    shipment = a_shipment(promised_from=PROMISED_BY - 4 * HOUR)
    before_the_deadline = PROMISED_BY - HOUR
    revision = shipment.revise_promise(window[1], window[0], "carrier strike", before_the_deadline)
    assert (revision.promised_by, revision.promised_from) == (window[1], window[0])
    assert (revision.previous_promised_by, revision.previous_promised_from) == (
        PROMISED_BY,
        PROMISED_BY - 4 * HOUR,
    )
    assert (revision.reason, revision.revised_at) == ("carrier strike", before_the_deadline)
    assert (shipment.promised_by, shipment.promised_from) == (window[1], window[0])
    assert shipment.changes == [PromiseRevised(revision=revision)]
    assert shipment.version == 2
    assert shipment.late_delivery is None


def test_revising_a_promise_already_broken_records_the_broken_one_first() -> None:
    shipment = a_shipment()
    revision = shipment.revise_promise(PROMISED_BY + 48 * HOUR, None, "apology", NOW)
    assert [type(change) for change in shipment.changes] == [PromiseBroken, PromiseRevised]
    assert shipment.late_delivery is not None
    assert shipment.late_delivery.promised_by == revision.previous_promised_by == PROMISED_BY
    assert shipment.late_delivery.detected_by == "deadline"
    assert shipment.is_late(NOW)


def test_a_later_promise_takes_a_shipment_out_of_lateness_by_the_clock() -> None:
    shipment = recorded(an_event(Status.IN_TRANSIT, CREATED_AT), now=PROMISED_BY - HOUR)
    assert shipment.is_late(PROMISED_BY + HOUR)
    shipment.revise_promise(PROMISED_BY + 24 * HOUR, None, "customs", PROMISED_BY - HOUR)
    assert not shipment.is_late(PROMISED_BY + HOUR)


def test_revising_the_promise_never_erases_a_lateness_record() -> None:
    record = a_deadline_record()
    shipment = a_shipment(late_delivery=record)
    shipment.revise_promise(PROMISED_BY + 72 * HOUR, None, "customs", PROMISED_BY + 2 * HOUR)
    assert shipment.late_delivery == record
    assert shipment.is_late(PROMISED_BY + 3 * HOUR)
    shipment.record(an_event(Status.DELIVERED, PROMISED_BY + 5 * HOUR), NOW)
    assert shipment.late_delivery is not None
    assert shipment.late_delivery.promised_by == PROMISED_BY
    assert shipment.late_delivery.delay == 5 * HOUR


@pytest.mark.parametrize("terminal", TERMINALS)
def test_the_promise_of_a_closed_shipment_cannot_be_revised(terminal: Status) -> None:
    shipment = recorded(an_event(terminal, PROMISED_BY - HOUR))
    version, changes = shipment.version, list(shipment.changes)
    with pytest.raises(ShipmentClosed):
        shipment.revise_promise(PROMISED_BY + HOUR, None, "too late", NOW)
    assert shipment.promised_by == PROMISED_BY
    assert (shipment.version, shipment.changes) == (version, changes)


def test_an_inverted_window_is_refused_naming_promised_from_and_changes_nothing() -> None:
    shipment = a_shipment()
    with pytest.raises(PromiseError) as refused:
        shipment.revise_promise(PROMISED_BY, PROMISED_BY + MICROSECOND, "oops", NOW)
    assert refused.value.field == "promised_from"
    assert shipment.promised_by == PROMISED_BY
    assert shipment.promised_from is None
    assert (shipment.version, shipment.changes) == (1, [])


# -- commands from the wire ---------------------------------------------------------

CREATE = {"carrier": "dhl", "tracking_number": "JD014600", "promised_by": "2026-11-22T18:00:00+01:00"}
EVENT = {"status": "in_transit", "occurred_at": "2026-11-20T09:12:00+01:00"}
REVISE = {"promised_by": "2026-11-23T18:00:00+01:00", "reason": "customs"}


def decode(command: type, body: dict[str, Any]) -> Any:
    return msgspec.json.decode(msgspec.json.encode(body), type=command)


def refusal(command: type, body: dict[str, Any]) -> str:
    with pytest.raises(msgspec.ValidationError) as refused:
        decode(command, body)
    return str(refused.value)


@pytest.mark.parametrize(
    ("command", "body", "fields"),
    [
        (
            CreateShipment,
            {**CREATE, "promised_from": "2026-11-22T10:00:00-05:00"},
            ("promised_by", "promised_from"),
        ),
        (
            RecordEvent,
            {**EVENT, "estimated_delivery": "2026-11-22T14:00:00+01:00"},
            ("occurred_at", "estimated_delivery"),
        ),
        (
            RecordCarrierEvent,
            {
                **EVENT,
                "carrier": "dhl",
                "tracking_number": "X1",
                "estimated_delivery": "2026-11-22T14:00:00+01:00",
            },
            ("occurred_at", "estimated_delivery"),
        ),
        (
            RevisePromise,
            {**REVISE, "promised_from": "2026-11-23T10:00:00-05:00"},
            ("promised_by", "promised_from"),
        ),
    ],
)
def test_every_incoming_instant_is_kept_in_utc_as_the_same_instant(
    command: type, body: dict[str, Any], fields: tuple[str, ...]
) -> None:
    decoded = decode(command, body)
    for field in fields:
        assert getattr(decoded, field) == datetime.fromisoformat(body[field])
        assert getattr(decoded, field).tzinfo is UTC


@pytest.mark.parametrize(
    ("command", "body", "path"),
    [
        (CreateShipment, {**CREATE, "promised_by": "2026-11-22T18:00:00"}, "$.promised_by"),
        (CreateShipment, {**CREATE, "promised_from": "2026-11-22T08:00:00"}, "$.promised_from"),
        (RecordEvent, {**EVENT, "occurred_at": "2026-11-20T09:12:00"}, "$.occurred_at"),
        (RecordEvent, {**EVENT, "estimated_delivery": "2026-11-22T14:00:00"}, "$.estimated_delivery"),
        (RevisePromise, {**REVISE, "promised_by": "2026-11-23T18:00:00"}, "$.promised_by"),
        (
            RecordCarrierEvent,
            {**EVENT, "carrier": "dhl", "tracking_number": "X1", "occurred_at": "2026-11-20T09:12:00"},
            "$.occurred_at",
        ),
    ],
)
def test_a_naive_timestamp_is_refused_naming_its_field(command: type, body: dict[str, Any], path: str) -> None:
    assert f"`{path}`" in refusal(command, body)


@pytest.mark.parametrize("command", [RecordEvent, RecordCarrierEvent])
def test_an_unknown_status_word_is_refused_naming_the_status(command: type) -> None:
    body = {**EVENT, "status": "lost", "carrier": "dhl", "tracking_number": "X1"}
    assert "`$.status`" in refusal(command, body)


def test_an_unknown_reason_word_is_refused_naming_the_reason() -> None:
    assert "`$.reason`" in refusal(RecordEvent, {**EVENT, "reason": "aliens"})


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_word_is_accepted(reason: Reason) -> None:
    assert decode(RecordEvent, {**EVENT, "status": "exception", "reason": reason.value}).reason is reason


@pytest.mark.parametrize("status", list(Status))
def test_every_status_word_is_accepted(status: Status) -> None:
    assert decode(RecordEvent, {**EVENT, "status": status.value}).status is status


@pytest.mark.parametrize(
    ("command", "body"),
    [
        (CreateShipment, {**CREATE, "promised": "2026-11-22T18:00:00Z"}),
        (RecordEvent, {**EVENT, "shipment_id": "shp_1"}),
        (RecordCarrierEvent, {**EVENT, "carrier": "dhl", "tracking_number": "X1", "account_id": "acc_1"}),
        (RevisePromise, {**REVISE, "why": "customs"}),
        (CreateShipment, {**CREATE, "origin": {"city": "Lyon", "planet": "Earth"}}),
        (CreateShipment, {**CREATE, "recipient": {"name": "Ana", "address": "somewhere"}}),
    ],
)
def test_an_unknown_field_is_refused(command: type, body: dict[str, Any]) -> None:
    assert "unknown field" in refusal(command, body)


@pytest.mark.parametrize(
    "tracking_number",
    ["", "A" * 65, " A12", "-A12", "A12#"],
    ids=["empty", "65-chars", "leading-space", "leading-dash", "hash"],
)
def test_a_malformed_tracking_number_is_refused_naming_it(tracking_number: str) -> None:
    assert "`$.tracking_number`" in refusal(CreateShipment, {**CREATE, "tracking_number": tracking_number})


def test_a_tracking_number_of_64_characters_is_accepted() -> None:
    assert decode(CreateShipment, {**CREATE, "tracking_number": "a" * 64}).tracking_number == "A" * 64


@pytest.mark.parametrize("carrier", ["", "d" * 33, "-dhl", "dh l"])
def test_a_malformed_carrier_is_refused_naming_it(carrier: str) -> None:
    assert "`$.carrier`" in refusal(CreateShipment, {**CREATE, "carrier": carrier})


@pytest.mark.parametrize("command", [CreateShipment, RecordCarrierEvent])
def test_the_tracking_number_loses_its_spaces_and_the_carrier_is_lower_cased(command: type) -> None:
    body = {**CREATE, **EVENT, "carrier": "DHL_Express", "tracking_number": "jd 0146 00ab"}
    body = {field: value for field, value in body.items() if field in command.__struct_fields__}
    decoded = decode(command, body)
    assert decoded.tracking_number == "JD014600AB"
    assert decoded.carrier == "dhl_express"


def test_a_country_code_is_upper_cased() -> None:
    command = decode(CreateShipment, {**CREATE, "origin": {"city": "Lyon", "country": "fr"}})
    assert command.origin == Place(city="Lyon", country="FR")


@pytest.mark.parametrize("command", [CreateShipment, RevisePromise])
def test_a_window_that_starts_after_its_promise_is_refused_naming_promised_from(command: type) -> None:
    body = {
        **(CREATE if command is CreateShipment else REVISE),
        "promised_by": "2026-11-22T18:00:00+01:00",
        "promised_from": "2026-11-22T17:00:00.000001Z",
    }
    with pytest.raises(msgspec.ValidationError) as refused:
        decode(command, body)
    assert "promised_from" in str(refused.value)
    cause = refused.value.__cause__
    assert isinstance(cause, PromiseError)
    assert cause.field == "promised_from"


@pytest.mark.parametrize("command", [CreateShipment, RevisePromise])
def test_a_window_that_starts_at_its_promise_is_accepted(command: type) -> None:
    body = {
        **(CREATE if command is CreateShipment else REVISE),
        "promised_by": "2026-11-22T18:00:00+01:00",
        "promised_from": "2026-11-22T17:00:00Z",
    }
    assert decode(command, body).promised_from == datetime(2026, 11, 22, 17, tzinfo=UTC)


def test_a_revision_needs_a_reason() -> None:
    assert "`$.reason`" in refusal(RevisePromise, {**REVISE, "reason": ""})
    assert "reason" in refusal(RevisePromise, {"promised_by": REVISE["promised_by"]})


# -- the key that makes resends duplicates -------------------------------------------

FULL_EVENT = {
    "status": "exception",
    "occurred_at": "2026-11-20T09:12:00.250000+01:00",
    "location": {"city": "Lyon", "country": "FR"},
    "description": "Held at customs",
    "reason": "customs",
    "estimated_delivery": "2026-11-23T14:00:00+01:00",
}


def key_of(body: dict[str, Any]) -> str:
    return event_key(decode(RecordEvent, body))


def test_the_event_key_is_the_carriers_event_id_when_it_sends_one() -> None:
    command = decode(RecordEvent, {**FULL_EVENT, "event_id": "dhl-778899"})
    assert event_key(command) == "dhl-778899"
    assert TrackingEvent.from_command(command).key == "dhl-778899"


def test_two_events_with_the_same_event_id_share_a_key_whatever_their_content() -> None:
    assert key_of({**EVENT, "event_id": "e1"}) == key_of({**FULL_EVENT, "event_id": "e1"})


def test_an_identical_resend_without_event_id_gets_the_same_key() -> None:
    assert key_of(FULL_EVENT) == key_of(dict(FULL_EVENT))
    assert key_of(FULL_EVENT).startswith("auto:")


def test_the_same_instants_written_in_other_offsets_are_the_same_content() -> None:
    in_utc = {
        **FULL_EVENT,
        "occurred_at": "2026-11-20T08:12:00.25Z",
        "estimated_delivery": "2026-11-23T13:00:00Z",
    }
    assert key_of(in_utc) == key_of(FULL_EVENT)


def test_the_digest_key_does_not_change_between_runs() -> None:
    # stored keys deduplicate resends that arrive after a restart or an upgrade
    assert key_of(FULL_EVENT) == "auto:9bfacf262ee26a6696a8ff1c10ec4b71"


@pytest.mark.parametrize(
    "difference",
    [
        {"status": "delivery_attempted"},
        {"occurred_at": "2026-11-20T09:12:00.250001+01:00"},
        {"location": {"city": "Lyon", "country": "BE"}},
        {"location": {"city": "Lyon"}},
        {"location": None},
        {"description": "Held at customs."},
        {"description": ""},
        {"description": None},
        {"reason": "other"},
        {"reason": None},
        {"estimated_delivery": "2026-11-23T14:00:00.000001+01:00"},
        {"estimated_delivery": None},
    ],
    ids=lambda difference: "-".join(f"{field}={value}" for field, value in difference.items()),
)
def test_any_difference_in_content_gives_a_different_key(difference: dict[str, Any]) -> None:
    assert key_of({**FULL_EVENT, **difference}) != key_of(FULL_EVENT)


def test_a_tracking_event_from_a_command_carries_its_content() -> None:
    command = decode(RecordEvent, FULL_EVENT)
    event = TrackingEvent.from_command(command)
    assert event.key == event_key(command)
    assert (event.status, event.occurred_at, event.reason) == (
        Status.EXCEPTION,
        command.occurred_at,
        Reason.CUSTOMS,
    )
    assert (event.location, event.description, event.estimated_delivery) == (
        command.location,
        command.description,
        command.estimated_delivery,
    )
    assert event.event_id is None
