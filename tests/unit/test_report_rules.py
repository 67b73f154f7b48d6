"""The monthly report's rules: shares, CSAT, the response rate, the month before
and recurring problems, exhaustively where small and with hypothesis."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.report import Trend, csat, previous_month, recurring, response_rate, share

counts = st.dictionaries(
    st.sampled_from(["weather", "customs", "damaged", "lost", "delay", "other"]), st.integers(0, 50)
)


def test_every_share_of_up_to_twenty_is_part_over_whole_to_four_places():
    for whole in range(21):
        for part in range(whole + 1):
            expected = None if whole == 0 else round(part / whole, 4)
            assert share(part, whole) == expected


@pytest.mark.parametrize(("part", "whole"), [(-1, 3), (4, 3), (0, -1)])
def test_a_share_out_of_its_whole_is_refused(part: int, whole: int):
    with pytest.raises(ValueError):
        share(part, whole)


def test_csat_counts_fours_and_fives_and_the_response_rate_ratings_over_deliveries():
    assert csat(3, 4) == 0.75 and csat(0, 0) is None
    assert response_rate(25, 100) == 0.25 and response_rate(0, 0) is None


@given(st.integers(1970, 2200), st.integers(1, 12))
def test_the_month_before_is_one_month_back_and_january_goes_to_december(year: int, month: int):
    before = previous_month(date(year, month, 1))
    assert before.day == 1
    assert (before.year * 12 + before.month) == (year * 12 + month) - 1


@given(counts, counts)
def test_recurring_problems_are_this_months_top_three_beside_last_months_counts(now: dict, before: dict):
    listed = recurring(now, before)
    assert len(listed) == min(3, sum(1 for n in now.values() if n > 0))
    assert all(t.count == now[t.name] and t.previous_count == before.get(t.name, 0) for t in listed)
    assert all(t.change == t.count - t.previous_count for t in listed)
    keys = [(-t.count, t.name) for t in listed]
    assert keys == sorted(keys)
    if listed:  # nothing left out counts more than the last one listed
        assert all(n <= listed[-1].count for name, n in now.items() if name not in {t.name for t in listed})


def test_a_problem_of_last_month_alone_is_not_recurring():
    assert recurring({}, {"weather": 9}) == []
    assert recurring({"customs": 1}, {"weather": 9}) == [Trend("customs", 1, 0)]
