"""The monthly report (one pass, reading the copies migrations/0023 keeps on the
rows it scans) equals the straightforward queries over the tables the copies
come from (tests/integration/report_reference.py): on random months written
in SQL, across time zones whose local months start a day either side of UTC's,
with records whose promise was revised, then changed again; and on a month made
through the service's own paths (events, the deadline sweep, a promise revised
after its record, a rating through its link, cases by hand and automatic)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from api.lateness import store as reports
from api.lateness import sweep as promises
from tests.integration.conftest import Api, shipment_body
from tests.integration.report_reference import straightforward_report

OCTOBER = date(2026, 10, 1)
ZONES = ("UTC", "Europe/Madrid", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati", "Etc/GMT+12")
CARRIERS = ("dhl", "ups", "gls")
COUNTRIES = ("ES", "FR", "JP")
REASONS = ("weather", "customs", "address_issue", "damaged", None)
STATUSES = ("delivered", "in_transit", "exception", "returned_to_sender", "cancelled", "label_created")
BOUNDARIES = [datetime(2026, m, 1, tzinfo=UTC) for m in (9, 10, 11)]


def _instant(rng: random.Random) -> datetime:
    """Half near a month's start (where the account's time zone decides), half anywhere from August to November."""
    if rng.random() < 0.5:
        return rng.choice(BOUNDARIES) + timedelta(minutes=rng.randrange(-30 * 60, 30 * 60))
    return datetime(2026, 8, 25, tzinfo=UTC) + timedelta(minutes=rng.randrange(75 * 24 * 60))


async def _random_month(api: Api, pool: asyncpg.Pool, seed: int) -> list[str]:
    rng = random.Random(seed)
    accounts = [await api.new_account(f"Zone {seed} {zone}", zone) for zone in ZONES]
    shipments: list[str] = []
    for n in range(400):
        shipment_id = f"shp_straight_{seed}_{n:03d}"
        promised = _instant(rng)
        status = "delivered" if rng.random() < 0.5 else rng.choice(STATUSES[1:])
        delivered = promised + timedelta(minutes=rng.randrange(-40 * 60, 40 * 60)) if status == "delivered" else None
        # mostly as the service keeps it (late once past the promise), sometimes not, as rows written before it may be
        late = (
            rng.random() < 0.1 if rng.random() < 0.1 else (delivered or datetime(2026, 11, 10, tzinfo=UTC)) > promised
        )
        reason = rng.choice(REASONS) if rng.random() < 0.4 else None
        await pool.execute(
            """insert into shipments (id, account_id, carrier, tracking_number, promised_by, status, status_at,
                                      delivered_at, late, reason, reason_at, origin, destination, created_at, updated_at)
               values ($1, $2, $3, $1, $4::timestamptz, $5, $4, $6, $7, $8, $9, $10, $11, $4::timestamptz - interval '3 days', $4)""",
            shipment_id,
            rng.choice(accounts),
            rng.choice(CARRIERS),
            promised,
            status,
            delivered,
            late,
            reason,
            promised if reason else None,
            {"country": rng.choice(COUNTRIES)} if rng.random() < 0.9 else None,
            {"country": rng.choice(COUNTRIES)},
        )
        shipments.append(shipment_id)
        if late and rng.random() < 0.8:
            # the record's promise: the shipment's, or one revised since (the report keeps the record's delay)
            record_promise = promised - timedelta(hours=rng.choice([0, 0, 5, -3, 30]))
            record_delivered = delivered if rng.random() < 0.8 else promised + timedelta(hours=rng.uniform(1, 50))
            await pool.execute(
                """insert into late_deliveries (id, shipment_id, account_id, carrier, promised_by, detected_at,
                                                detected_by, delivered_at, closed_at)
                   select 'late_' || $1, id, account_id, carrier, $2, $2, 'deadline', $3, $3 from shipments where id = $1""",
                shipment_id,
                record_promise,
                record_delivered if rng.random() < 0.7 else None,
            )
        if delivered and rng.random() < 0.5:
            await pool.execute(
                """insert into feedback (shipment_id, account_id, rating, delivered_at, on_time, received_at)
                   select id, account_id, $2, delivered_at, not late, delivered_at from shipments where id = $1""",
                shipment_id,
                rng.randint(1, 5),
            )
    for n in range(120):
        opened = _instant(rng)
        shipment = rng.choice(shipments) if rng.random() < 0.8 else None
        account = (
            await pool.fetchval("select account_id from shipments where id = $1", shipment)
            if shipment
            else rng.choice(accounts)
        )
        await pool.execute(
            """insert into cases (id, account_id, shipment_id, type, priority, subject, opened_by, opened_at,
                                  response_due, resolution_due, first_response_at, resolved_at, response_breached_at,
                                  updated_at)
               values ($1, $2, $3, $4, 'normal', 'r', 'key_random', $5, $5, $5, $6, $7, $8, $5)""",
            f"cas_straight_{seed}_{n:03d}",
            account,
            shipment,
            rng.choice(["delay", "damage", "lost", "complaint"]),
            opened,
            opened + timedelta(hours=rng.uniform(0.1, 30)) if rng.random() < 0.6 else None,
            opened + timedelta(hours=rng.uniform(1, 200)) if rng.random() < 0.5 else None,
            opened if rng.random() < 0.3 else None,
        )
    return accounts


async def _change_some(pool: asyncpg.Pool, seed: int) -> None:
    """Records closed, reopened and deleted, ratings changed and withdrawn, a case moved to another shipment."""
    rng = random.Random(-seed)
    records = [r["shipment_id"] for r in await pool.fetch("select shipment_id from late_deliveries order by id")]
    for shipment_id in rng.sample(records, len(records) // 3):
        await pool.execute(
            "update late_deliveries set delivered_at = $2, closed_at = $2 where shipment_id = $1",
            shipment_id,
            rng.choice([None, datetime(2026, 10, 20, tzinfo=UTC) + timedelta(hours=rng.uniform(-500, 500))]),
        )
    for shipment_id in rng.sample(records, len(records) // 10):
        await pool.execute("delete from late_deliveries where shipment_id = $1", shipment_id)
    rated = [r["shipment_id"] for r in await pool.fetch("select shipment_id from feedback order by shipment_id")]
    for shipment_id in rng.sample(rated, len(rated) // 4):
        await pool.execute("update feedback set rating = $2 where shipment_id = $1", shipment_id, rng.randint(1, 5))
    for shipment_id in rng.sample(rated, len(rated) // 10):
        await pool.execute("delete from feedback where shipment_id = $1", shipment_id)
    await pool.execute(
        """update cases set shipment_id = (select id from shipments where account_id = cases.account_id
                                           order by id desc limit 1)
           where id = (select min(id) from cases where shipment_id is not null)"""
    )


async def _assert_equal_everywhere(pool: asyncpg.Pool, accounts: list[str], months: list[date]) -> None:
    scopes = [(None, None), (accounts[0], None), (None, "ups"), (accounts[-1], "dhl")]
    for month in months:
        for now in (datetime(2026, 10, 15, tzinfo=UTC), datetime(2026, 12, 24, tzinfo=UTC)):
            for group_by in ("carrier", "lane", "account"):
                for account_id, carrier in scopes:
                    made = await reports.on_time_report(pool, month, group_by, now, account_id, carrier)
                    expected = await straightforward_report(pool, month, group_by, now, account_id, carrier)
                    assert made == expected, (month, now, group_by, account_id, carrier)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_one_pass_report_equals_the_straightforward_queries_on_random_months(
    api: Api, pool: asyncpg.Pool, seed: int
):
    accounts = await _random_month(api, pool, seed)
    report = await reports.on_time_report(pool, OCTOBER, "carrier", datetime(2026, 12, 1, tzinfo=UTC))
    assert report.total.due > 100 and report.total.late > 10 and report.total.cases.opened > 10
    assert report.total.satisfaction.ratings > 10 and report.total.recurring_problems
    await _assert_equal_everywhere(pool, accounts, [OCTOBER, date(2026, 11, 1)])

    await _change_some(pool, seed)
    await _assert_equal_everywhere(pool, accounts, [OCTOBER])


async def test_the_copies_on_the_rows_follow_the_tables_they_come_from(api: Api, pool: asyncpg.Pool):
    await _random_month(api, pool, 7)
    await _change_some(pool, 7)
    # no path moves a shipment to another carrier or address today; if one does, its cases follow
    await pool.execute(
        """update shipments set carrier = 'moved', origin = '{"country": "PT"}', destination = null
           where id in (select shipment_id from cases where shipment_id is not null order by id limit 5)"""
    )
    assert await pool.fetchval("select count(*) from cases where lane = 'PT-?' and carrier = 'moved'") >= 5
    stale = await pool.fetch(
        """select s.id from shipments s
           left join late_deliveries l on l.shipment_id = s.id
           left join feedback f on f.shipment_id = s.id
           where s.late_delay_seconds is distinct from l.delay_seconds or s.rating is distinct from f.rating"""
    )
    assert stale == []
    stale_cases = await pool.fetch(
        """select c.id from cases c left join shipments s on s.id = c.shipment_id
           where c.carrier is distinct from s.carrier
              or c.lane is distinct from case when s.id is not null
                  then coalesce(s.origin->>'country', '?') || '-' || coalesce(s.destination->>'country', '?') end"""
    )
    assert stale_cases == []


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_a_month_made_through_the_service_reports_as_the_straightforward_queries(api: Api, pool: asyncpg.Pool):
    account_id, customer = await api.customer()
    support = await api.role("support")
    r = await support.put(f"/v1/accounts/{account_id}/case-automatic", json={"late": {"priority": "high"}})
    assert r.status_code == 200, r.text
    now = datetime.now(UTC).replace(microsecond=0)
    base = now - timedelta(days=2)
    if (base + timedelta(hours=9)).month != base.month:  # every promise in one month
        base -= timedelta(hours=12)

    async def shipment(hours: float, **overrides: object) -> dict:
        body = shipment_body(promised_by=_iso(base + timedelta(hours=hours)), **overrides)
        made = await customer.post("/v1/shipments", json=body)
        assert made.status_code == 201, made.text
        return made.json()

    async def event(made: dict, status: str, hours: float, **extra: object) -> None:
        body = {"status": status, "occurred_at": _iso(base + timedelta(hours=hours)), **extra}
        posted = await customer.post(f"/v1/shipments/{made['id']}/events", json=body)
        assert posted.status_code == 201, posted.text

    on_time = await shipment(5)
    await event(on_time, "delivered", 2)
    late_at_delivery = await shipment(1, carrier="ups")
    await event(late_at_delivery, "exception", 0, reason="weather")
    await event(late_at_delivery, "delivered", 4)
    swept = await shipment(0.5)
    revised = await shipment(0.25, carrier="ups")
    still_out = await shipment(0.1)
    await event(still_out, "exception", 0.05, reason="customs")
    cancelled = await shipment(3)
    await event(cancelled, "cancelled", 1)

    assert await promises.sweep(pool, base + timedelta(hours=1)) == 3  # swept, revised, still_out
    await event(swept, "delivered", 6)
    # revised after its record: the record keeps its promise and its delay, the shipment's promise moves
    r = await customer.put(
        f"/v1/shipments/{revised['id']}/promise",
        json={"promised_by": _iso(base + timedelta(hours=8)), "reason": "agreed with the recipient"},
    )
    assert r.status_code == 200, r.text
    await event(revised, "delivered", 7)
    rated = (await customer.get(f"/v1/shipments/{late_at_delivery['id']}")).json()
    token = rated["feedback_url"].rsplit("/", 1)[1]
    assert (await api.client.post(f"/v1/feedback/{token}", json={"rating": 2})).status_code == 201
    r = await support.post(
        "/v1/cases", json={"shipment_id": on_time["id"], "type": "damage", "priority": "high", "subject": "Dented"}
    )
    assert r.status_code == 201, r.text

    month = (base + timedelta(hours=1)).date().replace(day=1)
    for group_by in ("carrier", "lane", "account"):
        made = await reports.on_time_report(pool, month, group_by, now)
        assert made == await straightforward_report(pool, month, group_by, now)
    total = (await reports.on_time_report(pool, month, "carrier", now)).total
    assert (total.due, total.on_time, total.late, total.closed_undelivered) == (6, 1, 4, 1)
    by_hand = 1 if now.month == base.month else 0  # opened now: this month's, or the next one's
    assert total.satisfaction.late.ratings == 1 and total.cases.opened == 3 + by_hand  # and 3 for lateness
    # the revised shipment's delay is its record's: delivered 7 h after the first promise, 0.25 h in
    record_delay = await pool.fetchval(
        "select delay_seconds from late_deliveries where shipment_id = $1", revised["id"]
    )
    assert record_delay == round(6.75 * 3600)
