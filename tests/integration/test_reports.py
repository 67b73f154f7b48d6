"""The on-time report over a hand-computed fixture, and the lateness records list."""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg

from api.lateness import store as reports
from tests.integration.conftest import Api

NOW = datetime(2026, 11, 24, tzinfo=UTC)


async def _shipment(customer, tracking: str, promised_by: str, *, origin="ES", destination="FR", carrier="dhl") -> str:
    r = await customer.post(
        "/v1/shipments",
        json={
            "carrier": carrier,
            "tracking_number": tracking,
            "promised_by": promised_by,
            "origin": {"country": origin},
            "destination": {"country": destination},
        },
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def _event(customer, shipment_id: str, status: str, occurred_at: str, reason: str | None = None) -> None:
    body = {"status": status, "occurred_at": occurred_at} | ({"reason": reason} if reason else {})
    r = await customer.post(f"/v1/shipments/{shipment_id}/events", json=body)
    assert r.status_code == 201, r.text


async def test_the_on_time_report_counts_each_shipment_in_its_accounts_month(api: Api, pool: asyncpg.Pool):
    madrid = await api.new_account("Madrid shipper", "Europe/Madrid")
    tokyo = await api.new_account("Tokyo shipper", "Asia/Tokyo")
    es = api.as_key((await api.new_key("customer", madrid))["secret"])
    jp = api.as_key((await api.new_key("customer", tokyo))["secret"])

    # Madrid (UTC+1 in October's end, +2 before the 26th):
    on_time = await _shipment(es, "ES1", "2026-10-10T12:00:00Z")
    await _event(es, on_time, "delivered", "2026-10-10T10:00:00Z")
    late_2h = await _shipment(es, "ES2", "2026-10-15T12:00:00Z")
    await _event(es, late_2h, "exception", "2026-10-15T08:00:00Z", reason="weather")
    await _event(es, late_2h, "delivered", "2026-10-15T14:00:00Z")
    # 2026-10-31T23:30 UTC is 2026-11-01T00:30 in Madrid: November, not October
    await _shipment(es, "ES3", "2026-10-31T23:30:00Z")
    # 2026-09-30T22:30 UTC is 2026-10-01T00:30 in Madrid: October; delivered 4 h late
    border = await _shipment(es, "ES4", "2026-09-30T22:30:00Z", carrier="ups")
    await _event(es, border, "delivered", "2026-10-01T02:30:00Z")
    # Tokyo (UTC+9): 2026-10-31T16:00 UTC is 2026-11-01T01:00 there: November
    await _shipment(jp, "JP1", "2026-10-31T16:00:00Z", origin="JP", destination="JP")
    # 2026-10-20 in Tokyo, never delivered and past its promise: late and open-ended
    lost = await _shipment(jp, "JP2", "2026-10-20T03:00:00Z", origin="JP", destination="JP")
    await _event(jp, lost, "exception", "2026-10-19T03:00:00Z", reason="weather")
    cancelled = await _shipment(jp, "JP3", "2026-10-21T03:00:00Z", origin="JP", destination="JP")
    await _event(jp, cancelled, "cancelled", "2026-10-01T03:00:00Z")

    report = await reports.on_time_report(pool, date(2026, 10, 1), "carrier", NOW)
    by_group = {row.group: row for row in report.rows}
    assert set(by_group) == {"dhl", "ups"}
    dhl, ups, total = by_group["dhl"], by_group["ups"], report.total
    assert (dhl.due, dhl.on_time, dhl.late, dhl.open, dhl.closed_undelivered) == (4, 1, 2, 0, 1)
    assert (ups.due, ups.on_time, ups.late) == (1, 0, 1)
    assert ups.mean_delay_seconds == 4 * 3600
    assert (total.due, total.on_time, total.late, total.closed_undelivered) == (5, 1, 3, 1)
    assert total.on_time_rate == round(1 / 4, 4)
    # delays known: 2 h (ES2) and 4 h (ES4); the lost one has none yet
    assert total.mean_delay_seconds == 3 * 3600
    assert total.p90_delay_seconds == 2 * 3600 + 0.9 * 2 * 3600
    assert [(r.reason, r.count) for r in total.top_reasons] == [("weather", 2)]

    by_lane = await reports.on_time_report(pool, date(2026, 10, 1), "lane", NOW)
    assert {row.group: row.due for row in by_lane.rows} == {"ES-FR": 3, "JP-JP": 2}

    november = await reports.on_time_report(pool, date(2026, 11, 1), "account", NOW)
    assert {row.group: row.due for row in november.rows} == {madrid: 1, tokyo: 1}
    # past their promises by NOW, undelivered: late; seen from October, still open
    assert (november.total.late, november.total.open) == (2, 0)
    before = await reports.on_time_report(pool, date(2026, 11, 1), "account", datetime(2026, 10, 30, tzinfo=UTC))
    assert (before.total.late, before.total.open) == (0, 2)


async def test_the_report_and_the_records_list_over_http_respect_tenancy(api: Api):
    account, customer = await api.customer()
    _, other = await api.customer("Other")
    shipment = await _shipment(customer, "HT1", "2026-10-10T12:00:00Z")
    await _event(customer, shipment, "delivered", "2026-10-11T12:00:00Z")
    await _shipment(other, "HT2", "2026-10-10T12:00:00Z")

    r = await customer.get("/v1/reports/on-time", params={"month": "2026-10", "group_by": "account"})
    assert r.status_code == 200, r.text
    assert [(row["group"], row["late"]) for row in r.json()["rows"]] == [(account, 1)]

    records = (await customer.get("/v1/late-deliveries")).json()["items"]
    assert [(x["shipment_id"], x["delay_seconds"], x["detected_by"]) for x in records] == [
        (shipment, 86400, "delivery")
    ]
    assert (await other.get("/v1/late-deliveries")).json()["items"] == []
    assert (await customer.get("/v1/late-deliveries", params={"state": "open"})).json()["items"] == []
    assert len((await customer.get("/v1/late-deliveries", params={"state": "closed"})).json()["items"]) == 1

    bad = await customer.get("/v1/reports/on-time", params={"month": "2026-13"})
    assert bad.status_code == 400


async def test_the_terminal_report_prints_the_same_figures_as_a_table(api: Api, pool: asyncpg.Pool):
    from api.cli import format_report

    _, customer = await api.customer()
    shipment = await _shipment(customer, "TT1", "2026-10-10T12:00:00Z")
    await _event(customer, shipment, "delivered", "2026-10-10T15:00:00Z", reason="carrier_delay")
    text = format_report(await reports.on_time_report(pool, date(2026, 10, 1), "carrier", NOW))
    lines = text.splitlines()
    assert lines[0] == "on-time report for 2026-10, by carrier"
    dhl = next(line for line in lines if line.startswith("dhl"))
    assert dhl.split()[:6] == ["dhl", "1", "0", "1", "0", "0"]
    assert "3.0 h" in dhl and "carrier_delay 1" in dhl
    first_table = lines[: lines.index("")]
    assert first_table[-1].startswith("all")
    assert "satisfaction and cases" in lines and "recurring problems (change since 2026-09)" in lines
