"""The support lookup: what a query could be, the search, and its audit row, in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from api.shell import audit, database, phones
from api.shell.clock import utcnow
from api.shipments import store as shipments
from api.support import store
from domain.shipment import normalize_tracking_number
from domain.status import Status

# a name is looked for from this many characters on: fewer match too many names to rank
NAME_MIN_LENGTH = 3
# what a query is trimmed of (the same characters its documented pattern allows around it)
BLANK = " \t\n\r\x0b\x0c"

Matched = Literal["tracking_number", "reference", "email", "phone", "name"]


class SearchHit(msgspec.Struct, kw_only=True):
    """A shipment the query found, in any account, and why."""

    matched: Matched
    shipment_id: str
    account_id: str
    account_name: str
    carrier: str
    tracking_number: str
    reference: str | None
    status: Status
    promised_by: datetime
    late: bool
    at_risk: bool


class SearchAnswer(msgspec.Struct, kw_only=True):
    items: list[SearchHit]


def looks_like_a_name(query: str) -> bool:
    """A name has a few characters, no digit and no @: a tracking number, reference,
    email or phone is not also looked for among names (the costliest way)."""
    return len(query) >= NAME_MIN_LENGTH and "@" not in query and not any(c.isdigit() for c in query)


def lookup_for(query: str, countries: list[str], limit: int) -> store.Lookup:
    """Every way this query may name a shipment."""
    tracking_number = normalize_tracking_number(query)
    return store.Lookup(
        tracking_number=tracking_number if len(tracking_number) <= 64 else None,
        reference=query,
        email=query if "@" in query else None,
        phones=phones.readings(query, countries),
        name=query if looks_like_a_name(query) else None,
        limit=limit,
    )


async def search(pool: database.Pool, who: audit.Access, query: str, limit: int) -> SearchAnswer:
    """Search every account; the audit rows (who, the query, the ids answered:
    one row per account, so each account's access log shows its part) are
    written in the same transaction, so no answer goes out unrecorded."""
    query = query.strip(BLANK)
    now = utcnow()
    async with database.transaction(pool) as conn:
        lookup = lookup_for(query, await store.countries(conn), limit)
        rows = await store.search(conn, lookup)
        hits = []
        for row in rows:
            shipment = shipments.shipment_from_row(row)
            hits.append(
                SearchHit(
                    matched=row["matched"],
                    shipment_id=shipment.id,
                    account_id=shipment.account_id,
                    account_name=row["account_name"],
                    carrier=shipment.carrier,
                    tracking_number=shipment.tracking_number,
                    reference=shipment.reference,
                    status=shipment.status,
                    promised_by=shipment.promised_by,
                    late=shipment.is_late(now),
                    at_risk=shipment.is_at_risk(now),
                )
            )
        touched: dict[str, list[str]] = {}
        for hit in hits:
            touched.setdefault(hit.account_id, []).append(hit.shipment_id)
        await audit.record_by_account(conn, who, touched, query=query)
    return SearchAnswer(items=hits)
