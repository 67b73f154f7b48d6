"""The tables `bench.lateness` runs on, made in SQL with generate_series.

Deterministic: shipment n has the same account, carrier, lane, status and
promise every run (the "random" spreads are n times a prime, modulo a span).
Accounts are spread over five time zones, so the report's per-account month
boundaries differ.
"""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

ACCOUNTS = 200
TIME_ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo", "America/Los_Angeles")
CARRIERS = ("dhl", "ups", "fedex", "gls")
COUNTRIES = ("ES", "FR", "DE", "IT", "NL", "PL")
OPEN_OUTCOMES = ("in_transit", "exception")  # every 20th open shipment is held up
REASONS = ("weather", "customs", "address_issue", "carrier_delay", "recipient_unavailable")

# the columns both kinds of shipment share, as a function of n (`i`)
_COMMON = f"""
    'acc_bench_' || lpad((i % {ACCOUNTS})::text, 3, '0') as account_id,
    (array{list(CARRIERS)})[1 + i % {len(CARRIERS)}] as carrier,
    'order-' || i as reference,
    'standard' as service_level,
    jsonb_build_object('city', 'Zaragoza', 'country', (array{list(COUNTRIES)})[1 + i % {len(COUNTRIES)}]) as origin,
    jsonb_build_object('city', 'Lyon', 'country', (array{list(COUNTRIES)})[1 + i / 7 % {len(COUNTRIES)}]) as destination
"""

INSERT_ACCOUNTS = f"""
insert into accounts (id, name, timezone)
select 'acc_bench_' || lpad(a::text, 3, '0'), 'bench ' || a, (array{list(TIME_ZONES)})[1 + a % {len(TIME_ZONES)}]
from generate_series(0, {ACCOUNTS - 1}) a
"""

# Open shipments n in [$1, $2]: n <= $3 fell due in the ten minutes before $4,
# in promised_by order n; the rest fall due within 30 days after $4 + 1 h.
INSERT_OPEN = f"""
insert into shipments (id, account_id, carrier, tracking_number, reference, service_level, promised_by,
                       origin, destination, status, status_at, location, location_at, last_event_at,
                       reason, reason_at, created_at, updated_at)
select 'shp_open_' || lpad(i::text, 8, '0'), account_id, carrier, 'OPEN' || lpad(i::text, 8, '0'),
       reference, service_level,
       case when i <= $3::int then $4::timestamptz - interval '10 minutes' + i * (interval '500 s' / $3::int)
            else $4::timestamptz + interval '1 hour' + (i::bigint * 7919 % 2592000) * interval '1 s' end,
       origin, destination,
       case when i % 20 = 0 then 'exception' when i % 10 = 1 then 'label_created' else 'in_transit' end,
       $4::timestamptz - interval '6 hours', origin, $4::timestamptz - interval '6 hours', $4::timestamptz - interval '6 hours',
       case when i % 20 = 0 then (array{list(REASONS)})[1 + i / 20 % {len(REASONS)}] end,
       case when i % 20 = 0 then $4::timestamptz - interval '6 hours' end,
       $4::timestamptz - interval '1 day', $4::timestamptz - interval '6 hours'
from generate_series($1::int, $2::int) i, lateral (select {_COMMON}) c
"""

# A month ($2) of $1 shipments due in it, each in its account's time zone:
# 80 % delivered on time, 10 % delivered late, 5 % still on the way past the
# promise (recorded at the deadline), 3 % returned or cancelled, 2 % delivered
# on time after an exception. The late ones get their late_deliveries rows below.
INSERT_MONTH = f"""
insert into shipments (id, account_id, carrier, tracking_number, reference, service_level, promised_by,
                       origin, destination, status, status_at, delivered_at, late, last_event_at,
                       reason, reason_at, created_at, updated_at)
select 'shp_month_' || lpad(i::text, 8, '0'), account_id, carrier, 'MONTH' || lpad(i::text, 8, '0'),
       reference, service_level, promised_by, origin, destination,
       case when fate < 90 or fate >= 98 then 'delivered'
            when fate < 95 then (array{list(OPEN_OUTCOMES)})[1 + i % 2]
            else (array['returned_to_sender', 'cancelled'])[1 + i % 2] end,
       event_at, case when fate < 90 or fate >= 98 then event_at end,
       fate between 80 and 94, event_at,
       case when fate between 85 and 94 or fate >= 98 then (array{list(REASONS)})[1 + i % {len(REASONS)}] end,
       case when fate between 85 and 94 or fate >= 98 then event_at end,
       promised_by - interval '3 days', event_at
from generate_series(1, $1::int) i,
     lateral (select {_COMMON}, i % 100 as fate,
                     ($2::date::timestamp
                      + (i::bigint * 7919 % extract(epoch from interval '1 month' + $2::date - $2::date)::bigint)
                        * interval '1 s')
                     at time zone (array{list(TIME_ZONES)})[1 + i % {ACCOUNTS} % {len(TIME_ZONES)}] as promised_by) c,
     lateral (select promised_by + case when fate < 80 or fate >= 98 then -1 else 1 end
                                   * ((i::bigint * 31 % 172800) + 60) * interval '1 s' as event_at) e
"""

# Delivered late: half caught at the deadline and closed on delivery, half
# found when the delivery arrived. Still on the way: caught at the deadline, open.
INSERT_MONTH_RECORDS = """
insert into late_deliveries (id, shipment_id, account_id, carrier, promised_by, detected_at, detected_by,
                             status_at_detection, delivered_at, closed_at)
select 'late_' || substr(id, 5), id, account_id, carrier, promised_by,
       case when by_deadline then promised_by + interval '0.5 s' else delivered_at end,
       case when by_deadline then 'deadline' else 'delivery' end,
       'in_transit', delivered_at, delivered_at
from shipments, lateral (select delivered_at is null or right(id, 1) in ('0', '2', '4', '6', '8') as by_deadline) d
where id >= 'shp_month_' and id < 'shp_month`' and late
"""

# The customer's voice on the month: a quarter of the deliveries rated (late
# ones lower), and a case on one shipment in fifty, opened a day after its
# promise, of the six types in turn; some responded to, resolved, breached.
INSERT_MONTH_FEEDBACK = """
insert into feedback (shipment_id, account_id, rating, delivered_at, on_time, received_at)
select id, account_id,
       case when late then 1 + n % 3 else 2 + n % 4 end, delivered_at, not late, delivered_at + interval '1 day'
from shipments, lateral (select substr(id, 11)::int as n) x
where id >= 'shp_month_' and id < 'shp_month`' and delivered_at is not null and n % 4 = 0
"""
INSERT_MONTH_CASES = """
insert into cases (id, account_id, shipment_id, type, priority, subject, opened_by, opened_at, response_due,
                   resolution_due, first_response_at, resolved_at, response_breached_at, resolution_breached_at,
                   updated_at)
select 'cas_month_' || substr(id, 11), account_id, id,
       (array['delay', 'damage', 'lost', 'address_issue', 'complaint', 'other'])[1 + n / 50 % 6], 'normal',
       'bench case', 'key_bench', opened, opened + interval '8 hours', opened + interval '3 days',
       case when n % 3 > 0 then opened + (n % 600) * interval '1 minute' end,
       case when n % 3 = 2 then opened + (n % 4000) * interval '1 minute' end,
       case when n % 3 > 0 and n % 600 > 480 then opened + interval '8 hours' end,
       case when n % 3 = 2 and n % 4000 > 4320 then opened + interval '3 days' end,
       opened
from shipments, lateral (select substr(id, 11)::int as n, promised_by + interval '1 day' as opened) x
where id >= 'shp_month_' and id < 'shp_month`' and n % 50 = 0
"""

# Undo the deadline sweep (or its floor), so the same rows fall due again.
RESET_SWEEP = (
    "delete from changes",
    "delete from late_deliveries where shipment_id >= 'shp_open_' and shipment_id < 'shp_open`'",
    "update shipments set late = false, version = 1 where late and id >= 'shp_open_' and id < 'shp_open`'",
)


async def insert_open(
    conn: asyncpg.Connection, first: int, last: int, due: int, now: datetime, step: int = 250_000
) -> None:
    """In statements of `step` rows, to keep each transaction's footprint modest."""
    for lo in range(first, last + 1, step):
        await conn.execute(INSERT_OPEN, lo, min(last, lo + step - 1), due, now)


def _as_previous(sql: str, previous: bool) -> str:
    """The month's statements for a second month beside it (the month before):
    ids of their own, of the same length, so `substr(id, 11)` is n in both."""
    if not previous:
        return sql
    for this, that in (("shp_month_", "shp_prev__"), ("shp_month`", "shp_prev_`"), ("cas_month_", "cas_prev__")):
        sql = sql.replace(this, that)
    return sql.replace("'MONTH'", "'PREVM'")


async def insert_month(conn: asyncpg.Connection, month: date, rows: int, previous: bool = False) -> None:
    """`rows` shipments due in `month`; `previous`: the month before the report's, ids of its own."""
    await conn.execute(_as_previous(INSERT_MONTH, previous), rows, month)
    await conn.execute(_as_previous(INSERT_MONTH_RECORDS, previous))


async def insert_month_voice(conn: asyncpg.Connection, previous: bool = False) -> None:
    """Ratings and cases on the month made by insert_month."""
    await conn.execute(_as_previous(INSERT_MONTH_FEEDBACK, previous))
    await conn.execute(_as_previous(INSERT_MONTH_CASES, previous))


async def reset_sweep(conn: asyncpg.Connection) -> None:
    for statement in RESET_SWEEP:
        await conn.execute(statement)
    await conn.execute("vacuum (analyze) shipments, late_deliveries, changes")
