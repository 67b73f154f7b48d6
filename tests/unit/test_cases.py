"""The case state machine, exhaustively (five statuses: every pair), and its
deadlines under any sequence of moves, comments and sweeps (hypothesis)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.cases import (
    DONE,
    TRANSITIONS,
    Case,
    CaseBreached,
    CaseOpened,
    CaseStatus,
    CaseStatusChanged,
    CaseType,
    Deadline,
    Policy,
    Priority,
    TransitionRefused,
    may_move,
)

T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
POLICY = Policy(respond_within=timedelta(hours=1), resolve_within=timedelta(hours=8))

ALLOWED = {
    (CaseStatus.OPEN, CaseStatus.IN_PROGRESS),
    (CaseStatus.OPEN, CaseStatus.WAITING_ON_CUSTOMER),
    (CaseStatus.OPEN, CaseStatus.RESOLVED),
    (CaseStatus.IN_PROGRESS, CaseStatus.WAITING_ON_CUSTOMER),
    (CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED),
    (CaseStatus.WAITING_ON_CUSTOMER, CaseStatus.IN_PROGRESS),
    (CaseStatus.WAITING_ON_CUSTOMER, CaseStatus.RESOLVED),
    (CaseStatus.RESOLVED, CaseStatus.CLOSED),
    (CaseStatus.RESOLVED, CaseStatus.OPEN),
    (CaseStatus.CLOSED, CaseStatus.OPEN),
}


def new_case(status: CaseStatus = CaseStatus.OPEN) -> Case:
    case = Case.open(
        id="cas_1",
        account_id="acc_1",
        shipment_id=None,
        type=CaseType.DELAY,
        priority=Priority.NORMAL,
        subject="late",
        opened_by="key_1",
        policy=POLICY,
        now=T0,
    )
    case.status = status
    case.changes.clear()
    return case


@pytest.mark.parametrize(("current", "target"), list(itertools.product(CaseStatus, repeat=2)))
def test_every_move_is_allowed_exactly_when_the_table_says_so(current: CaseStatus, target: CaseStatus) -> None:
    case = new_case(current)
    if (current, target) in ALLOWED:
        case.move_to(target, T0)
        assert case.status is target
        assert case.changes == [CaseStatusChanged(previous=current)]
    else:
        with pytest.raises(TransitionRefused):
            case.move_to(target, T0)
        assert (case.status, case.changes) == (current, [])
    assert may_move(current, target) == ((current, target) in ALLOWED)


def test_the_table_in_code_is_the_table_documented() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED


def test_a_new_case_is_open_with_its_deadlines_from_the_policy() -> None:
    case = Case.open(
        id="cas_1",
        account_id="acc_1",
        shipment_id="shp_1",
        type=CaseType.LOST,
        priority=Priority.URGENT,
        subject="gone",
        opened_by="late",
        policy=POLICY,
        now=T0,
    )
    assert (case.status, case.response_due, case.resolution_due) == (
        CaseStatus.OPEN,
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=8),
    )
    assert case.changes == [CaseOpened()]
    assert case.next_due == T0 + timedelta(hours=1)


def test_a_comment_before_the_response_deadline_means_it_is_never_breached() -> None:
    case = new_case()
    case.comment(T0 + timedelta(minutes=5))
    assert case.breach(T0 + timedelta(hours=2)) == []
    assert case.breach(T0 + timedelta(hours=9)) == [Deadline.RESOLUTION]


def test_both_deadlines_passed_are_breached_together_and_only_once() -> None:
    case = new_case()
    assert case.breach(T0 + timedelta(hours=9)) == [Deadline.RESPONSE, Deadline.RESOLUTION]
    assert case.breach(T0 + timedelta(hours=10)) == []
    assert case.changes == [CaseBreached(Deadline.RESPONSE), CaseBreached(Deadline.RESOLUTION)]


def test_a_resolved_case_breaches_nothing_and_a_reopened_one_is_not_breached_twice() -> None:
    case = new_case()
    case.breach(T0 + timedelta(hours=9))
    case.move_to(CaseStatus.RESOLVED, T0 + timedelta(hours=9))
    assert case.next_due is None
    case.move_to(CaseStatus.OPEN, T0 + timedelta(hours=10))
    assert case.breach(T0 + timedelta(hours=11)) == []


def test_assigning_the_same_key_again_changes_nothing() -> None:
    case = new_case()
    assert case.assign("key_2") is True
    assert case.assign("key_2") is False
    assert len(case.changes) == 1


Step = tuple[str, CaseStatus, int]
steps = st.lists(
    st.tuples(st.sampled_from(["move", "comment", "sweep"]), st.sampled_from(list(CaseStatus)), st.integers(0, 600)),
    max_size=30,
)


@given(steps)
def test_under_any_sequence_each_deadline_is_breached_at_most_once_and_only_once_passed_unmet(
    sequence: list[Step],
) -> None:
    case = new_case()
    now = T0
    breaches: list[tuple[Deadline, datetime]] = []
    for action, target, minutes in sequence:
        now += timedelta(minutes=minutes)
        if action == "move":
            if may_move(case.status, target):
                case.move_to(target, now)
            else:
                with pytest.raises(TransitionRefused):
                    case.move_to(target, now)
        elif action == "comment":
            case.comment(now)
        else:
            breaches.extend((deadline, now) for deadline in case.breach(now))
    deadlines = [d for d, _ in breaches]
    assert len(deadlines) == len(set(deadlines))
    for deadline, at in breaches:
        if deadline is Deadline.RESPONSE:
            assert at >= case.response_due
            assert case.first_response_at is None or case.first_response_at > case.response_due
        else:
            assert at >= case.resolution_due
    if case.status in DONE:
        assert case.next_due is None
    if case.status is CaseStatus.RESOLVED:
        assert case.resolved_at is not None
    if case.status not in DONE:
        assert (case.resolved_at, case.closed_at) == (None, None)
