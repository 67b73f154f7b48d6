"""The monthly report's satisfaction, cases and recurring problems, over a month
whose every figure is worked out by hand below, and the CLI's three formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from api.cli import format_report
from api.lateness import store as reports
from tests.integration.conftest import Api

NOW = datetime(2026, 11, 24, tzinfo=UTC)
OCTOBER = date(2026, 10, 1)


async def _shipment(
    pool: asyncpg.Pool,
    n: int,
    account: str,
    *,
    carrier: str,
    promised: str,
    delivered: str | None,
    reason: str | None = None,
) -> str:
    """A shipment written straight to the table (the report reads only the table)."""
    shipment_id = f"shp_voice_{n:03d}"
    promised_by = datetime.fromisoformat(promised)
    delivered_at = None if delivered is None else datetime.fromisoformat(delivered)
    await pool.execute(
        """insert into shipments (id, account_id, carrier, tracking_number, promised_by, status, status_at,
                                  delivered_at, late, reason, reason_at, origin, destination, created_at, updated_at)
           values ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, '{"country": "ES"}', '{"country": "FR"}', $11, $11)""",
        shipment_id,
        account,
        carrier,
        f"VOICE{n}",
        promised_by,
        "delivered" if delivered_at else "in_transit",
        delivered_at,
        delivered_at is not None and delivered_at > promised_by,
        reason,
        delivered_at if reason else None,
        promised_by - timedelta(days=3),
    )
    return shipment_id


async def _rate(pool: asyncpg.Pool, shipment_id: str, account: str, rating: int) -> None:
    await pool.execute(
        """insert into feedback (shipment_id, account_id, rating, delivered_at, on_time, received_at)
           select id, account_id, $2, delivered_at, not late, delivered_at + interval '1 day' from shipments where id = $1""",
        shipment_id,
        rating,
    )


async def _case(
    pool: asyncpg.Pool,
    n: int,
    account: str,
    shipment: str | None,
    type_: str,
    opened: str,
    *,
    responded_after: float | None = None,
    resolved_after: float | None = None,
    response_breached: bool = False,
    resolution_breached: bool = False,
) -> None:
    opened_at = datetime.fromisoformat(opened)

    def after(hours: float | None) -> datetime | None:
        return None if hours is None else opened_at + timedelta(hours=hours)

    await pool.execute(
        """insert into cases (id, account_id, shipment_id, type, priority, subject, opened_by, opened_at,
                              response_due, resolution_due, first_response_at, resolved_at,
                              response_breached_at, resolution_breached_at, updated_at)
           values ($1, $2, $3, $4, 'normal', 'voice', 'key_support', $5::timestamptz, $5::timestamptz + interval '8 hours', $5::timestamptz + interval '3 days',
                   $6, $7, $8, $9, $5::timestamptz)""",
        f"cas_voice_{n:03d}",
        account,
        shipment,
        type_,
        opened_at,
        after(responded_after),
        after(resolved_after),
        after(8) if response_breached else None,
        after(72) if resolution_breached else None,
    )


@pytest.fixture
async def month(api: Api, pool: asyncpg.Pool) -> str:
    """October 2026 for one UTC account: dhl 4 delivered (3 on time, 1 late) and 1 on its way; ups 1 late.
    Ratings: dhl on time 5, 4, 2; dhl late 1; ups late 4. Cases in October: 3 on dhl shipments, 1 on ups,
    1 on the account; in September: 1 delay on dhl. Exceptions: October 2 weather, 1 customs; September 1 weather."""
    account = await api.new_account("Voice", "UTC")
    d1 = await _shipment(
        pool, 1, account, carrier="dhl", promised="2026-10-05T18:00:00+00:00", delivered="2026-10-05T10:00:00+00:00"
    )
    d2 = await _shipment(
        pool,
        2,
        account,
        carrier="dhl",
        promised="2026-10-06T18:00:00+00:00",
        delivered="2026-10-06T10:00:00+00:00",
        reason="weather",
    )
    d3 = await _shipment(
        pool, 3, account, carrier="dhl", promised="2026-10-07T18:00:00+00:00", delivered="2026-10-07T10:00:00+00:00"
    )
    d4 = await _shipment(
        pool,
        4,
        account,
        carrier="dhl",
        promised="2026-10-08T18:00:00+00:00",
        delivered="2026-10-09T10:00:00+00:00",
        reason="weather",
    )
    await _shipment(
        pool, 5, account, carrier="dhl", promised="2026-12-20T18:00:00+00:00", delivered=None
    )  # not October
    await _shipment(
        pool, 6, account, carrier="dhl", promised="2026-10-28T18:00:00+00:00", delivered=None, reason="customs"
    )
    u1 = await _shipment(
        pool, 7, account, carrier="ups", promised="2026-10-10T18:00:00+00:00", delivered="2026-10-11T09:00:00+00:00"
    )
    sept = await _shipment(
        pool,
        8,
        account,
        carrier="dhl",
        promised="2026-09-10T18:00:00+00:00",
        delivered="2026-09-10T10:00:00+00:00",
        reason="weather",
    )
    for shipment, rating in ((d1, 5), (d2, 4), (d3, 2), (d4, 1), (u1, 4)):
        await _rate(pool, shipment, account, rating)
    await _case(pool, 1, account, d3, "complaint", "2026-10-08T09:00:00+00:00", responded_after=2, resolved_after=30)
    await _case(pool, 2, account, d4, "delay", "2026-10-09T09:00:00+00:00", responded_after=10, response_breached=True)
    await _case(
        pool,
        3,
        account,
        d4,
        "complaint",
        "2026-10-10T09:00:00+00:00",
        responded_after=4,
        resolved_after=80,
        resolution_breached=True,
    )
    await _case(pool, 4, account, u1, "delay", "2026-10-11T09:00:00+00:00")
    await _case(pool, 5, account, None, "other", "2026-10-12T09:00:00+00:00", responded_after=1, resolved_after=2)
    await _case(pool, 6, account, sept, "delay", "2026-09-11T09:00:00+00:00")
    return account


async def test_satisfaction_is_split_by_whether_the_promise_was_kept(pool: asyncpg.Pool, month: str):
    report = await reports.on_time_report(pool, OCTOBER, "carrier", NOW)
    dhl = next(r for r in report.rows if r.group == "dhl").satisfaction
    assert (dhl.delivered, dhl.ratings, dhl.response_rate, dhl.csat) == (4, 4, 1.0, 0.5)
    assert (dhl.on_time.ratings, dhl.on_time.csat) == (3, round(2 / 3, 4))
    assert (dhl.late.ratings, dhl.late.csat) == (1, 0.0)
    total = report.total.satisfaction
    assert (total.delivered, total.ratings, total.csat) == (5, 5, 0.6)
    assert (total.late.ratings, total.late.csat) == (2, 0.5)
    assert report.previous_month == "2026-09"


async def test_cases_are_counted_by_type_with_breaches_and_medians(pool: asyncpg.Pool, month: str):
    report = await reports.on_time_report(pool, OCTOBER, "carrier", NOW)
    dhl = next(r for r in report.rows if r.group == "dhl").cases
    assert dhl.opened == 3
    assert [(t.type, t.count) for t in dhl.by_type] == [("complaint", 2), ("delay", 1)]
    assert (dhl.response_breached, dhl.resolution_breached) == (1, 1)
    assert dhl.median_first_response_seconds == 4 * 3600  # of 2, 10 and 4 hours
    assert dhl.median_resolution_seconds == 55 * 3600  # of 30 and 80 hours
    total = report.total.cases
    assert total.opened == 5  # the case on the account counts in the total only
    assert [(t.type, t.count) for t in total.by_type] == [("complaint", 2), ("delay", 2), ("other", 1)]
    assert total.median_first_response_seconds == 3 * 3600  # of 2, 10, 4 and 1 hours


async def test_recurring_problems_are_compared_with_the_month_before(pool: asyncpg.Pool, month: str):
    report = await reports.on_time_report(pool, OCTOBER, "carrier", NOW)
    dhl = next(r for r in report.rows if r.group == "dhl")
    problems = [(p.kind, p.name, p.count, p.previous_count, p.change) for p in dhl.recurring_problems]
    assert problems == [
        ("exception_reason", "weather", 2, 1, 1),
        ("exception_reason", "customs", 1, 0, 1),
        ("case_type", "complaint", 2, 0, 2),
        ("case_type", "delay", 1, 1, 0),
    ]


async def test_a_month_with_nothing_has_no_shares_and_no_problems(pool: asyncpg.Pool, month: str):
    report = await reports.on_time_report(pool, date(2025, 1, 1), "lane", NOW)
    assert report.rows == [] and report.previous_month == "2024-12"
    total = report.total
    assert (total.satisfaction.ratings, total.satisfaction.csat, total.satisfaction.response_rate) == (0, None, None)
    assert (total.cases.opened, total.cases.median_resolution_seconds, total.recurring_problems) == (0, None, [])


async def test_a_customer_sees_only_its_own_accounts_voice(api: Api, pool: asyncpg.Pool, month: str):
    _, other = await api.customer("Other")
    mine = api.as_key((await api.new_key("customer", month))["secret"])
    theirs = (await other.get("/v1/reports/on-time", params={"month": "2026-10"})).json()
    assert theirs["total"]["satisfaction"]["ratings"] == 0 and theirs["total"]["cases"]["opened"] == 0
    own = (await mine.get("/v1/reports/on-time", params={"month": "2026-10", "group_by": "lane"})).json()
    assert own["total"]["satisfaction"]["ratings"] == 5 and own["total"]["cases"]["opened"] == 5
    assert [r["group"] for r in own["rows"]] == ["ES-FR"] and own["rows"][0]["cases"]["opened"] == 4


async def test_the_cli_prints_the_report_as_csv_json_and_a_table(pool: asyncpg.Pool, month: str):
    report = await reports.on_time_report(pool, OCTOBER, "carrier", NOW)
    rows = list(csv.DictReader(io.StringIO(format_report(report, "csv"))))
    assert [r["carrier"] for r in rows] == ["dhl", "ups", "all"]
    assert (rows[0]["CSAT %"], rows[0]["CSAT on time %"], rows[0]["CSAT late %"]) == ("50.0", "66.7", "0.0")
    assert rows[2]["cases"] == "5" and rows[2]["cases by type"] == "complaint 2; delay 2; other 1"
    as_json = json.loads(format_report(report, "json"))
    assert as_json["total"]["satisfaction"]["csat"] == 0.6 and as_json["previous_month"] == "2026-09"
    table = format_report(report, "table")
    assert "weather 2 (+1)" in table and "satisfaction and cases" in table
