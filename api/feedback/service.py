"""The recipient's side of a feedback link (no API key: the link is the
credential) and the shipper's reading of the rating.

A rating is written, its `feedback_received` change appended and, for a low
rating when the account asks for it, a complaint case opened, all in one
transaction: a 201 means all of it is committed.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from api import wire
from api.cases import service as cases
from api.changes import log as change_log
from api.feedback import store
from api.shell.database import Executor, Pool, transaction
from api.shell.errors import Problem
from api.shipments import store as shipments
from domain import feedback
from domain.cases import CaseType, Trigger
from domain.feedback import GiveFeedback, LinkExpired, LinkRefused
from domain.shipment import Shipment

_encode = msgspec.json.Encoder().encode


class LinkView(msgspec.Struct, kw_only=True):
    """What a feedback link shows its holder: only what the recipient knows already."""

    shipper: str
    carrier: str
    delivered_at: datetime
    expires_at: datetime
    # rated already: the link takes no second rating
    answered: bool


def no_such_link() -> Problem:
    return Problem(404, "not-found", "Not found", "no such feedback link; check that the whole link was copied")


def expired(exc: LinkExpired) -> Problem:
    return Problem(
        410,
        "feedback-link-expired",
        "Feedback link expired",
        f"this link took ratings for {feedback.VALID_FOR.days} days after the delivery, until "
        f"{exc.expired_at:%Y-%m-%d %H:%M} UTC",
    )


def already_rated() -> Problem:
    return Problem(409, "already-rated", "Already rated", "this delivery has been rated; a link takes one rating")


def verify(links: wire.PublicLinks, token: str, now: datetime) -> feedback.Link:
    try:
        return links.keys.verify(token, now)
    except LinkRefused:
        raise no_such_link() from None
    except LinkExpired as exc:
        raise expired(exc) from None


async def _delivered(conn: Executor, link: feedback.Link) -> Shipment:
    shipment = await shipments.get(conn, link.shipment_id, None)
    if shipment is None or shipment.progress.delivered_at is None:
        raise no_such_link()  # signed by us, so only after the shipment was removed
    return shipment


async def view(pool: Pool, links: wire.PublicLinks, token: str, now: datetime) -> LinkView:
    link = verify(links, token, now)
    async with pool.acquire() as conn:
        shipment = await _delivered(conn, link)
        answered = await store.get(conn, shipment.id) is not None
        shipper = await store.account_name(conn, shipment.account_id)
    assert shipment.progress.delivered_at is not None
    return LinkView(
        shipper=shipper,
        carrier=shipment.carrier,
        delivered_at=shipment.progress.delivered_at,
        expires_at=link.expires_at,
        answered=answered,
    )


async def give(
    pool: Pool, links: wire.PublicLinks, token: str, command: GiveFeedback, now: datetime
) -> wire.FeedbackOut:
    link = verify(links, token, now)
    async with transaction(pool) as conn:
        shipment = await _delivered(conn, link)
        assert shipment.progress.delivered_at is not None
        given = wire.FeedbackOut(
            shipment_id=shipment.id,
            rating=command.rating,
            comment=command.comment,
            on_time=not shipment.is_late(now),
            delivered_at=shipment.progress.delivered_at,
            received_at=now,
        )
        if not await store.insert(conn, shipment.account_id, given):
            raise already_rated()
        body = _encode(wire.FeedbackReceivedChange(feedback=given))
        await change_log.append(
            conn, [change_log.NewChange(shipment.account_id, shipment.id, "feedback_received", body)]
        )
        if feedback.is_low(command.rating):
            await cases.open_automatic(
                conn,
                account_id=shipment.account_id,
                shipment_id=shipment.id,
                type=CaseType.COMPLAINT,
                trigger=Trigger.LOW_RATING,
                now=now,
            )
    return given
