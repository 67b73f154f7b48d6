"""Webhook delivery rules: what an endpoint wants, the backoff with jitter, when to give up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.webhooks import FIRST_RETRY, LONGEST_WAIT, RETRY_WINDOW, gives_up, retry_wait, wanted

KINDS = ["created", "event", "late", "at_risk", "case_opened"]


def test_every_combination_of_kind_filter_and_lateness():
    for kind, late, chosen, late_only in product(
        KINDS, (True, False), ([], ["event"], ["late", "at_risk"]), (True, False)
    ):
        expected = (not chosen or kind in chosen) and (late or not late_only)
        assert wanted(kind, late, kinds=chosen, late_only=late_only) is expected


@given(st.integers(1, 200), st.floats(0, 1, exclude_max=True))
def test_a_wait_doubles_from_the_first_to_at_most_the_longest_within_the_jitter(attempts: int, draw: float):
    nominal = min(LONGEST_WAIT, FIRST_RETRY * 2 ** min(attempts - 1, 40))
    wait = retry_wait(attempts, draw)
    assert nominal * 0.8 - timedelta(microseconds=1) <= wait <= nominal * 1.2


@given(st.integers(1, 30))
def test_waits_never_shrink_as_failures_go_on(attempts: int):
    assert retry_wait(attempts + 1, 0.5) >= retry_wait(attempts, 0.5)


def test_the_waits_keep_trying_for_the_whole_window():
    # the nominal waits of a day's failures: at least 24 attempts after the first hour
    elapsed, attempts = timedelta(0), 0
    while elapsed < RETRY_WINDOW:
        attempts += 1
        elapsed += retry_wait(attempts, 0.0)
    assert attempts >= 24 + 8


@pytest.mark.parametrize(("attempts", "draw"), [(0, 0.5), (1, 1.0), (1, -0.1)])
def test_impossible_arguments_are_refused(attempts: int, draw: float):
    with pytest.raises(ValueError):
        retry_wait(attempts, draw)


def test_an_endpoint_is_given_up_once_it_failed_for_the_whole_window():
    since = datetime(2026, 11, 1, tzinfo=UTC)
    assert not gives_up(since, since + RETRY_WINDOW - timedelta(seconds=1))
    assert gives_up(since, since + RETRY_WINDOW)
