"""The support lookup's SQL: one statement finds, ranks and reads the shipments a
query names, and one writes the audit row."""

from __future__ import annotations

import asyncpg
import msgspec

from api.shell.database import Connection
from api.shipments import store as shipments


class Lookup(msgspec.Struct, frozen=True, kw_only=True):
    """What one search looks for; None: not that way."""

    tracking_number: str | None
    reference: str | None
    email: str | None
    phones: list[str]
    name: str | None
    limit: int


# Each way to be found is its own branch over its own index, newest first, at most
# `limit` rows; a shipment found several ways keeps its best. Exact identifiers rank
# before names (by their order here), names by similarity, ties newest first.
_BRANCHES = {
    "tracking_number": """
    (select id, 1 as rank, 1::real as score, 'tracking_number' as matched from shipments
     where tracking_number = {value} order by id desc limit {limit})""",
    "reference": """
    (select id, 2 as rank, 1::real as score, 'reference' as matched from shipments
     where reference = {value} order by id desc limit {limit})""",
    "email": """
    (select id, 3 as rank, 1::real as score, 'email' as matched from shipments
     where recipient ->> 'email' is not null and lower(recipient ->> 'email') = lower({value})
     order by id desc limit {limit})""",
    "phones": """
    (select id, 4 as rank, 1::real as score, 'phone' as matched from shipments
     where recipient_phone_e164 = any({value}::text[]) order by id desc limit {limit})""",
    "name": """
    (select id, 5 as rank, word_similarity(ontime_fold({value}), ontime_fold(recipient ->> 'name')) as score,
            'name' as matched from shipments
     where recipient ->> 'name' is not null and ontime_fold({value}) <% ontime_fold(recipient ->> 'name')
     order by 3 desc, id desc limit {limit})""",
}

_SEARCH = """
with hits as ({branches}),
best as (select distinct on (id) id, rank, score, matched from hits order by id, rank, score desc)
select best.matched, accounts.name as account_name, found.*
from best
join ({select_shipment}) as found on found.id = best.id
join accounts on accounts.id = found.account_id
order by best.rank, best.score desc, best.id desc
limit {limit}
"""


def search_sql(lookup: Lookup) -> tuple[str, list[object]]:
    """The statement for this lookup, with its arguments (every value a parameter)."""
    args: list[object] = [lookup.limit]
    branches = []
    for way, template in _BRANCHES.items():
        value = getattr(lookup, way)
        if not value:
            continue
        args.append(value)
        branches.append(template.format(value=f"${len(args)}", limit="$1"))
    if not branches:
        return "", []
    sql = _SEARCH.format(
        branches="\n    union all".join(branches), select_shipment=shipments.SELECT_SHIPMENT, limit="$1"
    )
    return sql, args


async def search(conn: Connection, lookup: Lookup) -> list[asyncpg.Record]:
    sql, args = search_sql(lookup)
    if not sql:
        return []
    return await conn.fetch(sql, *args)


COUNTRIES = "select distinct country from accounts where country is not null order by country"


async def countries(conn: Connection) -> list[str]:
    """The accounts' countries: a phone number in national form may be any of theirs."""
    return [row["country"] for row in await conn.fetch(COUNTRIES)]
