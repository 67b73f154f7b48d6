"""Statuses and the order of events, exhaustively: there are nine statuses, so
every pair of them is checked."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.status import JOURNEY, TERMINAL, Status, is_terminal, order_key

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
EARLIER, LATER = T0 - timedelta(hours=1), T0 + timedelta(hours=1)

NON_TERMINAL = [status for status in Status if status not in TERMINAL]
TERMINALS = [status for status in Status if status in TERMINAL]
ALL_PAIRS = list(itertools.product(Status, repeat=2))
SAME_KIND_PAIRS = [(a, b) for a, b in ALL_PAIRS if is_terminal(a) == is_terminal(b)]
DISTINCT_PAIRS = [(a, b) for a, b in ALL_PAIRS if a != b]


def test_the_statuses_are_exactly_the_nine_words_of_the_contract() -> None:
    assert {status.value for status in Status} == {
        "label_created",
        "in_transit",
        "out_for_delivery",
        "delivery_attempted",
        "available_for_pickup",
        "exception",
        "delivered",
        "returned_to_sender",
        "cancelled",
    }


def test_the_terminal_statuses_are_exactly_delivered_returned_and_cancelled() -> None:
    assert {Status.DELIVERED, Status.RETURNED_TO_SENDER, Status.CANCELLED} == TERMINAL


@pytest.mark.parametrize("status", list(Status))
def test_is_terminal_agrees_with_the_terminal_set(status: Status) -> None:
    expected = status.value in {"delivered", "returned_to_sender", "cancelled"}
    assert is_terminal(status) is expected


def test_every_status_has_its_own_place_in_the_journey() -> None:
    assert set(JOURNEY) == set(Status)
    assert len(set(JOURNEY.values())) == len(Status)


@pytest.mark.parametrize("terminal", TERMINALS)
@pytest.mark.parametrize("other", NON_TERMINAL)
@pytest.mark.parametrize(
    ("terminal_at", "other_at"),
    [(EARLIER, LATER), (T0, T0), (LATER, EARLIER)],
    ids=["terminal-older", "same-time", "terminal-newer"],
)
@pytest.mark.parametrize(("terminal_key", "other_key"), [("a", "b"), ("b", "a")])
def test_a_terminal_event_outranks_any_non_terminal_event_whatever_the_times(
    terminal: Status,
    other: Status,
    terminal_at: datetime,
    other_at: datetime,
    terminal_key: str,
    other_key: str,
) -> None:
    assert order_key(terminal, terminal_at, terminal_key) > order_key(other, other_at, other_key)


@pytest.mark.parametrize(("earlier", "later"), SAME_KIND_PAIRS)
@pytest.mark.parametrize(("earlier_key", "later_key"), [("a", "b"), ("b", "a")])
def test_between_events_of_the_same_kind_the_later_occurred_at_wins(
    earlier: Status, later: Status, earlier_key: str, later_key: str
) -> None:
    assert order_key(later, LATER, later_key) > order_key(earlier, EARLIER, earlier_key)


@pytest.mark.parametrize(("first", "second"), DISTINCT_PAIRS)
def test_a_tie_at_the_same_time_is_decided_by_the_statuses_not_by_the_keys(first: Status, second: Status) -> None:
    winners = {
        first if order_key(first, T0, first_key) > order_key(second, T0, second_key) else second
        for first_key, second_key in [("a", "b"), ("b", "a"), ("z", "0")]
    }
    assert len(winners) == 1
    (winner,) = winners
    if is_terminal(first) == is_terminal(second):
        assert winner == max(first, second, key=JOURNEY.__getitem__)


@pytest.mark.parametrize("status", list(Status))
def test_a_tie_between_two_events_of_the_same_status_is_decided_by_the_key(status: Status) -> None:
    assert order_key(status, T0, "b") > order_key(status, T0, "a")
    assert order_key(status, T0, "a") != order_key(status, T0, "b")


@pytest.mark.parametrize(("first", "second"), ALL_PAIRS)
@pytest.mark.parametrize("first_at", [EARLIER, T0, LATER])
@pytest.mark.parametrize("second_at", [EARLIER, T0, LATER])
def test_two_distinct_events_are_never_equal_in_order(
    first: Status, second: Status, first_at: datetime, second_at: datetime
) -> None:
    # events carry distinct keys, so exactly one of them is the greater
    a, b = order_key(first, first_at, "key-1"), order_key(second, second_at, "key-2")
    assert (a > b) != (b > a)


def test_the_same_instant_written_with_another_offset_is_a_tie() -> None:
    in_paris = T0.astimezone(timezone(timedelta(hours=1)))
    # the tie goes to the journey (out_for_delivery after in_transit), not to the wall clock
    assert order_key(Status.OUT_FOR_DELIVERY, T0, "a") > order_key(Status.IN_TRANSIT, in_paris, "b")
    assert order_key(Status.OUT_FOR_DELIVERY, in_paris, "a") > order_key(Status.IN_TRANSIT, T0, "b")


def test_at_the_same_time_a_delivery_outranks_a_return_and_a_return_outranks_a_cancellation() -> None:
    delivered = order_key(Status.DELIVERED, T0, "a")
    returned = order_key(Status.RETURNED_TO_SENDER, T0, "b")
    cancelled = order_key(Status.CANCELLED, T0, "c")
    assert delivered > returned > cancelled
