"""Events arrive late and out of order: whatever order a set of events arrives
in, the shipment ends up the same. Checked with generated events whose times
come from a small set, so that ties at the same instant happen often."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.events import EventRecorded
from domain.promise import delay
from domain.shipment import LateDelivery, Place, Shipment, TrackingEvent
from domain.status import TERMINAL, Status, order_key

HOUR = timedelta(hours=1)
PROMISED_BY = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)
CREATED_AT = PROMISED_BY - 96 * HOUR
# the same instants, written with one of several offsets
OFFSETS = [UTC, timezone(HOUR), timezone(-5 * HOUR)]
INSTANTS = [PROMISED_BY + k * HOUR for k in (-3, -1, 0, 1, 3)] + [PROMISED_BY + timedelta(microseconds=1)]
PLACES = [Place(city="Zaragoza", country="ES"), Place(city="Lyon", country="FR"), Place(city="Lyon")]
NON_TERMINAL = [status for status in Status if status not in TERMINAL]
NEVER = datetime(1970, 1, 1, tzinfo=UTC)

thoroughly = settings(max_examples=300, deadline=None)

instants = st.builds(lambda at, tz: at.astimezone(tz), st.sampled_from(INSTANTS), st.sampled_from(OFFSETS))
nows = st.sampled_from(
    [PROMISED_BY - 2 * HOUR, PROMISED_BY, PROMISED_BY + timedelta(microseconds=1), PROMISED_BY + 5 * HOUR]
)


@st.composite
def event_lists(draw: st.DrawFn, min_size: int = 0) -> list[TrackingEvent]:
    # short keys from a small alphabet, so a tie on the key order is decided by real strings
    keys = draw(st.lists(st.text("abc", min_size=1, max_size=3), unique=True, min_size=min_size, max_size=10))
    return [
        TrackingEvent(
            key=key,
            status=draw(st.sampled_from(Status)),
            occurred_at=draw(instants),
            estimated_delivery=draw(st.none() | instants),
            location=draw(st.none() | st.sampled_from(PLACES)),
        )
        for key in keys
    ]


def a_shipment(**fields: Any) -> Shipment:
    return Shipment(
        id="shp_1",
        account_id="acc_1",
        carrier="dhl",
        tracking_number="JD014600",
        promised_by=PROMISED_BY,
        created_at=CREATED_AT,
        updated_at=CREATED_AT,
        **fields,
    )


def folded(events: list[TrackingEvent], now: datetime, **fields: Any) -> Shipment:
    shipment = a_shipment(**fields)
    for event in events:
        shipment.record(event, now)
    return shipment


def without_detection_time(record: LateDelivery | None) -> LateDelivery | None:
    return None if record is None else msgspec.structs.replace(record, detected_at=NEVER)


def outcome(shipment: Shipment, now: datetime) -> tuple[Any, ...]:
    return (
        shipment.progress,
        without_detection_time(shipment.late_delivery),
        shipment.is_late(now),
        shipment.is_at_risk(now),
        shipment.version,
        shipment.updated_at,
    )


def shuffled(events: list[TrackingEvent], rng: random.Random) -> list[TrackingEvent]:
    events = list(events)
    rng.shuffle(events)
    return events


@thoroughly
@given(events=event_lists(), rng=st.randoms(use_true_random=False), now=nows)
def test_the_same_events_in_any_order_give_the_same_shipment(
    events: list[TrackingEvent], rng: random.Random, now: datetime
) -> None:
    assert outcome(folded(events, now), now) == outcome(folded(shuffled(events, rng), now), now)


@thoroughly
@given(events=event_lists(), rng=st.randoms(use_true_random=False), now=nows)
def test_the_same_events_in_any_order_complete_a_deadline_record_the_same_way(
    events: list[TrackingEvent], rng: random.Random, now: datetime
) -> None:
    record = LateDelivery(promised_by=PROMISED_BY, detected_at=PROMISED_BY + HOUR, detected_by="deadline")
    in_order = folded(events, now, late_delivery=record)
    reordered = folded(shuffled(events, rng), now, late_delivery=record)
    assert outcome(in_order, now) == outcome(reordered, now)
    delivered_at = in_order.progress.delivered_at
    if delivered_at is not None and delivered_at <= PROMISED_BY:
        # the carrier's data shows the promise was kept after all
        assert in_order.late_delivery is None
    else:
        assert in_order.late_delivery is not None
        assert in_order.late_delivery.delivered_at == delivered_at


@thoroughly
@given(events=event_lists(min_size=1), now=nows)
def test_the_status_is_that_of_the_greatest_event_by_order_key(events: list[TrackingEvent], now: datetime) -> None:
    effective = max(events, key=lambda event: order_key(event.status, event.occurred_at, event.key))
    shipment = folded(events, now)
    assert shipment.status is effective.status
    assert shipment.progress.status_at == effective.occurred_at
    assert shipment.progress.status_key == effective.key


@thoroughly
@given(events=event_lists(), now=nows)
def test_once_a_terminal_event_is_seen_the_status_is_terminal(events: list[TrackingEvent], now: datetime) -> None:
    shipment = folded(events, now)
    assert (shipment.status in TERMINAL) == any(event.status in TERMINAL for event in events)


@thoroughly
@given(events=event_lists(), straggler_status=st.sampled_from(NON_TERMINAL), straggler_at=instants, now=nows)
def test_a_non_terminal_event_never_reopens_a_closed_shipment(
    events: list[TrackingEvent], straggler_status: Status, straggler_at: datetime, now: datetime
) -> None:
    shipment = folded(events, now)
    before = shipment.status
    shipment.record(TrackingEvent(key="straggler", status=straggler_status, occurred_at=straggler_at), now)
    if before in TERMINAL:
        assert shipment.status is before


@thoroughly
@given(events=event_lists(), now=nows)
def test_delivered_at_is_the_earliest_delivery_scan(events: list[TrackingEvent], now: datetime) -> None:
    deliveries = [event.occurred_at for event in events if event.status is Status.DELIVERED]
    assert folded(events, now).progress.delivered_at == (min(deliveries) if deliveries else None)


@thoroughly
@given(events=event_lists(), now=nows)
def test_a_late_delivery_is_recorded_exactly_when_the_first_hand_over_is_after_the_promise(
    events: list[TrackingEvent], now: datetime
) -> None:
    shipment = folded(events, now)
    delivered_at = shipment.progress.delivered_at
    late = delivered_at is not None and delivered_at > PROMISED_BY
    assert (shipment.late_delivery is not None) == late
    if shipment.late_delivery is not None:
        assert shipment.late_delivery.detected_by == "delivery"
        assert shipment.late_delivery.detected_at == now
        assert shipment.late_delivery.delivered_at == delivered_at
        assert shipment.late_delivery.delay == delay(PROMISED_BY, delivered_at)


@thoroughly
@given(events=event_lists(), now=nows)
def test_the_estimates_are_those_of_the_latest_and_the_earliest_events_that_carry_one(
    events: list[TrackingEvent], now: datetime
) -> None:
    with_estimate = [event for event in events if event.estimated_delivery is not None]
    progress = folded(events, now).progress
    if not with_estimate:
        assert progress.estimated_delivery is None and progress.first_estimated_delivery is None
        return
    latest = max(with_estimate, key=lambda event: (event.occurred_at, event.key))
    earliest = min(with_estimate, key=lambda event: (event.occurred_at, event.key))
    assert progress.estimated_delivery == latest.estimated_delivery
    assert progress.first_estimated_delivery == earliest.estimated_delivery


@thoroughly
@given(events=event_lists(), now=nows)
def test_the_location_is_that_of_the_latest_event_that_carries_one(events: list[TrackingEvent], now: datetime) -> None:
    located = [event for event in events if event.location is not None]
    expected = max(located, key=lambda event: (event.occurred_at, event.key)).location if located else None
    assert folded(events, now).progress.location == expected


@thoroughly
@given(events=event_lists(), now=nows)
def test_every_recorded_event_is_kept_as_a_change_in_arrival_order(events: list[TrackingEvent], now: datetime) -> None:
    shipment = folded(events, now)
    recorded = [change.event for change in shipment.changes if isinstance(change, EventRecorded)]
    assert recorded == events
    assert shipment.version == 1 + len(events)
