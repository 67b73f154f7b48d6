"""The desk pages' times: what is left before a deadline, how late a shipment is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.pages.routes import late_by, left

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_time_left_and_overdue_read_as_a_desk_reads_them():
    assert left(NOW + timedelta(hours=2, minutes=5), NOW) == "2 h 05 min left"
    assert left(NOW + timedelta(seconds=30), NOW) == "under a minute left"
    assert left(NOW - timedelta(seconds=0.5), NOW) == "overdue by under a minute"  # past, however little
    assert left(NOW - timedelta(minutes=7, seconds=10), NOW) == "overdue by 7 min"
    assert left(None, NOW) == "-"


def test_late_by_says_how_long_past_the_promise_and_nothing_for_a_promise_still_ahead():
    assert late_by(NOW - timedelta(seconds=0.5), NOW) == "under a minute"
    assert late_by(NOW - timedelta(hours=26, minutes=1), NOW) == "26 h 01 min"
    assert late_by(NOW + timedelta(hours=1), NOW) == "–"
