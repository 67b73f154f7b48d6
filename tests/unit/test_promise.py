"""Delivery promises, lateness and at-risk as plain functions of the facts and
`now`, checked over every status and at the boundary instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.promise import PromiseError, check_window, delay, delivered_late, is_at_risk, is_late
from domain.status import TERMINAL, Status

PROMISED_BY = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
JUST_BEFORE = PROMISED_BY - MICROSECOND
JUST_AFTER = PROMISED_BY + MICROSECOND
LONG_BEFORE = PROMISED_BY - timedelta(days=3)
LONG_AFTER = PROMISED_BY + timedelta(days=30)
PARIS = timezone(timedelta(hours=1))

NON_TERMINAL = [status for status in Status if status not in TERMINAL]
TERMINALS = sorted(TERMINAL)


# -- the window -----------------------------------------------------------------


def test_a_window_that_starts_after_its_end_is_refused_naming_promised_from() -> None:
    with pytest.raises(PromiseError) as refused:
        check_window(PROMISED_BY, JUST_AFTER)
    assert refused.value.field == "promised_from"
    assert "promised_from" in refused.value.message
    assert isinstance(refused.value, ValueError)


@pytest.mark.parametrize(
    "promised_from",
    [None, PROMISED_BY, JUST_BEFORE, LONG_BEFORE, PROMISED_BY.astimezone(PARIS)],
    ids=["no-window", "equal", "just-before", "long-before", "equal-in-another-offset"],
)
def test_a_window_that_starts_at_or_before_its_end_is_accepted(promised_from: datetime | None) -> None:
    check_window(PROMISED_BY, promised_from)


def test_the_window_compares_instants_not_wall_clocks() -> None:
    # 17:30 in Paris is 16:30 UTC, before a 17:00 UTC promise, though its clock reads later
    check_window(PROMISED_BY, datetime(2026, 11, 22, 17, 30, tzinfo=PARIS))
    with pytest.raises(PromiseError):
        # 18:30 in Paris is 17:30 UTC, after the promise
        check_window(PROMISED_BY, datetime(2026, 11, 22, 18, 30, tzinfo=PARIS))


# -- delivered late and by how much ----------------------------------------------


@pytest.mark.parametrize(
    ("delivered_at", "late"),
    [
        (LONG_BEFORE, False),
        (JUST_BEFORE, False),
        (PROMISED_BY, False),
        (PROMISED_BY.astimezone(PARIS), False),
        (JUST_AFTER, True),
        (LONG_AFTER, True),
    ],
    ids=["long-before", "just-before", "exactly-at", "exactly-at-in-paris", "just-after", "long-after"],
)
def test_a_delivery_is_late_only_when_it_is_after_the_promise(delivered_at: datetime, late: bool) -> None:
    assert delivered_late(PROMISED_BY, delivered_at) is late


def test_the_delay_is_the_delivery_time_minus_the_promise() -> None:
    assert delay(PROMISED_BY, JUST_AFTER) == MICROSECOND
    assert delay(PROMISED_BY, PROMISED_BY + timedelta(hours=26)) == timedelta(hours=26)
    assert delay(PROMISED_BY, PROMISED_BY.astimezone(PARIS)) == timedelta(0)
    assert delay(PROMISED_BY, LONG_BEFORE) == -timedelta(days=3)


# -- late ------------------------------------------------------------------------


@pytest.mark.parametrize("status", NON_TERMINAL)
@pytest.mark.parametrize(
    "now", [LONG_BEFORE, JUST_BEFORE, PROMISED_BY], ids=["long-before", "just-before", "exactly-at"]
)
def test_a_shipment_on_its_way_is_not_late_up_to_and_including_its_promise(status: Status, now: datetime) -> None:
    assert not is_late(status, PROMISED_BY, None, False, now)


@pytest.mark.parametrize("status", NON_TERMINAL)
@pytest.mark.parametrize("now", [JUST_AFTER, LONG_AFTER], ids=["just-after", "long-after"])
def test_a_shipment_on_its_way_is_late_one_microsecond_after_its_promise(status: Status, now: datetime) -> None:
    assert is_late(status, PROMISED_BY, None, False, now)


@pytest.mark.parametrize("status", TERMINALS)
@pytest.mark.parametrize("now", [LONG_BEFORE, PROMISED_BY, JUST_AFTER, LONG_AFTER])
@pytest.mark.parametrize("delivered_at", [LONG_BEFORE, JUST_BEFORE, PROMISED_BY])
def test_a_shipment_delivered_by_its_promise_is_never_late_whenever_it_is_asked(
    status: Status, now: datetime, delivered_at: datetime
) -> None:
    # a delivered shipment may later be returned: its status is terminal either way
    assert not is_late(status, PROMISED_BY, delivered_at, False, now)


@pytest.mark.parametrize("status", TERMINALS)
@pytest.mark.parametrize("now", [LONG_BEFORE, PROMISED_BY, JUST_AFTER, LONG_AFTER])
@pytest.mark.parametrize("delivered_at", [JUST_AFTER, LONG_AFTER])
def test_a_shipment_delivered_after_its_promise_is_late_whenever_it_is_asked(
    status: Status, now: datetime, delivered_at: datetime
) -> None:
    assert is_late(status, PROMISED_BY, delivered_at, False, now)


@pytest.mark.parametrize("status", [Status.RETURNED_TO_SENDER, Status.CANCELLED])
@pytest.mark.parametrize("now", [JUST_AFTER, LONG_AFTER])
def test_a_shipment_closed_without_delivery_is_not_counted_late_by_the_clock(status: Status, now: datetime) -> None:
    assert not is_late(status, PROMISED_BY, None, False, now)


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("now", [LONG_BEFORE, PROMISED_BY, JUST_AFTER])
@pytest.mark.parametrize("delivered_at", [None, LONG_BEFORE, PROMISED_BY, JUST_AFTER])
def test_a_standing_lateness_record_makes_a_shipment_late_whatever_its_status_and_the_time(
    status: Status, now: datetime, delivered_at: datetime | None
) -> None:
    assert is_late(status, PROMISED_BY, delivered_at, True, now)


# -- at risk ---------------------------------------------------------------------


@pytest.mark.parametrize("status", NON_TERMINAL)
@pytest.mark.parametrize("now", [LONG_BEFORE, JUST_BEFORE, PROMISED_BY])
@pytest.mark.parametrize("estimate", [JUST_AFTER, LONG_AFTER])
def test_a_shipment_on_its_way_is_at_risk_when_the_estimate_lands_after_the_promise(
    status: Status, now: datetime, estimate: datetime
) -> None:
    assert is_at_risk(status, PROMISED_BY, estimate, now)


@pytest.mark.parametrize("status", NON_TERMINAL)
@pytest.mark.parametrize("estimate", [None, LONG_BEFORE, JUST_BEFORE, PROMISED_BY, PROMISED_BY.astimezone(PARIS)])
def test_a_shipment_is_not_at_risk_when_the_estimate_is_missing_or_keeps_the_promise(
    status: Status, estimate: datetime | None
) -> None:
    assert not is_at_risk(status, PROMISED_BY, estimate, LONG_BEFORE)


@pytest.mark.parametrize("status", NON_TERMINAL)
@pytest.mark.parametrize("now", [JUST_AFTER, LONG_AFTER])
def test_once_the_promise_has_passed_a_shipment_is_late_rather_than_at_risk(status: Status, now: datetime) -> None:
    assert not is_at_risk(status, PROMISED_BY, LONG_AFTER, now)
    assert is_late(status, PROMISED_BY, None, False, now)


@pytest.mark.parametrize("status", TERMINALS)
@pytest.mark.parametrize("now", [LONG_BEFORE, PROMISED_BY, LONG_AFTER])
def test_a_closed_shipment_is_never_at_risk(status: Status, now: datetime) -> None:
    assert not is_at_risk(status, PROMISED_BY, LONG_AFTER, now)


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("now", [LONG_BEFORE, JUST_BEFORE, PROMISED_BY, JUST_AFTER, LONG_AFTER])
@pytest.mark.parametrize("estimate", [None, LONG_BEFORE, PROMISED_BY, JUST_AFTER, LONG_AFTER])
def test_without_a_record_a_shipment_on_its_way_is_never_both_late_and_at_risk(
    status: Status, now: datetime, estimate: datetime | None
) -> None:
    late = is_late(status, PROMISED_BY, None, False, now)
    at_risk = is_at_risk(status, PROMISED_BY, estimate, now)
    assert not (late and at_risk)
