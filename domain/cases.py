"""Cases: the support desk's tickets, each with a response-time promise.

A case moves open → in_progress → waiting_on_customer → resolved → closed;
work may go back and forth between in_progress and waiting_on_customer, a case
may be resolved from any open state, and a resolved or closed case may be
reopened (back to `open`).

The **first response** is the first comment, or the first change of status, by
a support or admin key after the case was opened. Opening the case (by hand or
automatically) and assigning it are not responses. Once responded to, the
response deadline can no longer be breached; once resolved or closed, neither
can the resolution deadline. A breach is recorded once: reopening a case whose
resolution deadline was breached does not breach it again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta


class CaseStatus(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


class CaseType(enum.StrEnum):
    DELAY = "delay"
    DAMAGE = "damage"
    LOST = "lost"
    ADDRESS_ISSUE = "address_issue"
    COMPLAINT = "complaint"
    OTHER = "other"


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Trigger(enum.StrEnum):
    """What opens a case on its own, when the account's setting asks for it."""

    LATE = "late"
    EXCEPTION = "exception"
    LOW_RATING = "low_rating"


DONE: frozenset[CaseStatus] = frozenset({CaseStatus.RESOLVED, CaseStatus.CLOSED})

TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.OPEN: frozenset({CaseStatus.IN_PROGRESS, CaseStatus.WAITING_ON_CUSTOMER, CaseStatus.RESOLVED}),
    CaseStatus.IN_PROGRESS: frozenset({CaseStatus.WAITING_ON_CUSTOMER, CaseStatus.RESOLVED}),
    CaseStatus.WAITING_ON_CUSTOMER: frozenset({CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED}),
    CaseStatus.RESOLVED: frozenset({CaseStatus.CLOSED, CaseStatus.OPEN}),
    CaseStatus.CLOSED: frozenset({CaseStatus.OPEN}),
}


def may_move(current: CaseStatus, target: CaseStatus) -> bool:
    return target in TRANSITIONS[current]


class TransitionRefused(ValueError):
    """The case cannot move from its status to the one asked for."""

    def __init__(self, current: CaseStatus, target: CaseStatus) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
        super().__init__(f"a case that is {current} cannot become {target} (allowed: {allowed})")
        self.current = current
        self.target = target


class Deadline(enum.StrEnum):
    RESPONSE = "response"
    RESOLUTION = "resolution"


@dataclass(frozen=True)
class Policy:
    respond_within: timedelta
    resolve_within: timedelta


# What happened to a case, past tense; the shell turns each into a change.
@dataclass(frozen=True)
class CaseOpened:
    pass


@dataclass(frozen=True)
class CaseStatusChanged:
    previous: CaseStatus


@dataclass(frozen=True)
class CaseAssigned:
    previous: str | None


@dataclass(frozen=True)
class CaseBreached:
    deadline: Deadline


CaseChange = CaseOpened | CaseStatusChanged | CaseAssigned | CaseBreached


@dataclass
class Case:
    id: str
    account_id: str
    shipment_id: str | None
    type: CaseType
    priority: Priority
    subject: str
    opened_by: str
    opened_at: datetime
    response_due: datetime
    resolution_due: datetime
    status: CaseStatus = CaseStatus.OPEN
    assignee_key: str | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    response_breached_at: datetime | None = None
    resolution_breached_at: datetime | None = None
    version: int = 1
    changes: list[CaseChange] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        *,
        id: str,
        account_id: str,
        shipment_id: str | None,
        type: CaseType,
        priority: Priority,
        subject: str,
        opened_by: str,
        policy: Policy,
        now: datetime,
    ) -> Case:
        case = cls(
            id=id,
            account_id=account_id,
            shipment_id=shipment_id,
            type=type,
            priority=priority,
            subject=subject,
            opened_by=opened_by,
            opened_at=now,
            response_due=now + policy.respond_within,
            resolution_due=now + policy.resolve_within,
        )
        case.changes.append(CaseOpened())
        return case

    def _responded(self, now: datetime) -> None:
        if self.first_response_at is None:
            self.first_response_at = now

    def move_to(self, target: CaseStatus, now: datetime) -> None:
        """A support or admin key moves the case; the first move is a response."""
        if not may_move(self.status, target):
            raise TransitionRefused(self.status, target)
        previous = self.status
        self.status = target
        self._responded(now)
        if target is CaseStatus.RESOLVED:
            self.resolved_at = now
        elif target is CaseStatus.CLOSED:
            self.closed_at = now
        elif target is CaseStatus.OPEN:  # reopened
            self.resolved_at = None
            self.closed_at = None
        self.changes.append(CaseStatusChanged(previous=previous))

    def comment(self, now: datetime) -> None:
        """A support or admin key commented: the first one is a response."""
        self._responded(now)

    def assign(self, assignee_key: str | None) -> bool:
        """Returns whether the assignee changed."""
        if assignee_key == self.assignee_key:
            return False
        previous, self.assignee_key = self.assignee_key, assignee_key
        self.changes.append(CaseAssigned(previous=previous))
        return True

    def due_breaches(self, now: datetime) -> list[Deadline]:
        """The deadlines that have passed unmet and are not yet recorded as breached."""
        breached = []
        if self.status not in DONE:
            if self.first_response_at is None and self.response_breached_at is None and self.response_due <= now:
                breached.append(Deadline.RESPONSE)
            if self.resolution_breached_at is None and self.resolution_due <= now:
                breached.append(Deadline.RESOLUTION)
        return breached

    def breach(self, now: datetime) -> list[Deadline]:
        """Record every deadline passed unmet by `now`, once each; returns them."""
        breached = self.due_breaches(now)
        for deadline in breached:
            if deadline is Deadline.RESPONSE:
                self.response_breached_at = now
            else:
                self.resolution_breached_at = now
            self.changes.append(CaseBreached(deadline=deadline))
        return breached

    @property
    def next_due(self) -> datetime | None:
        """The deadline nearest to breach (as the queue sorts), or None when nothing is pending."""
        if self.status in DONE:
            return None
        if self.first_response_at is None:
            return min(self.response_due, self.resolution_due)
        return self.resolution_due
