"""The monthly report's satisfaction and case figures equal the straightforward
count over the same rows, on random months (seeded: a failure names its seed)."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from api.lateness import store as reports
from domain import report as rules
from tests.integration.conftest import Api

MONTH = date(2026, 10, 1)
NOW = datetime(2026, 11, 24, tzinfo=UTC)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_reports_voice_equals_the_straightforward_count(api: Api, pool: asyncpg.Pool, seed: int):
    rng = random.Random(seed)
    account = await api.new_account(f"Random {seed}", "UTC")
    shipments: list[dict] = []
    for n in range(120):
        promised = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(31 * 24 * 60))
        delivered = None if rng.random() < 0.15 else promised + timedelta(hours=rng.uniform(-30, 20))
        row = {
            "id": f"shp_rand_{seed}_{n:03d}",
            "carrier": rng.choice(["dhl", "ups", "gls"]),
            "promised": promised,
            "delivered": delivered,
            "late": delivered is not None and delivered > promised,
            "rating": rng.choice([None, None, 1, 2, 3, 4, 5]) if delivered else None,
        }
        shipments.append(row)
        await pool.execute(
            """insert into shipments (id, account_id, carrier, tracking_number, promised_by, status, status_at,
                                      delivered_at, late, created_at, updated_at)
               values ($1, $2, $3, $1, $4::timestamptz, $5, $6, $6, $7, $4::timestamptz - interval '3 days', $4::timestamptz)""",
            row["id"],
            account,
            row["carrier"],
            promised,
            "delivered" if delivered else "in_transit",
            delivered,
            row["late"],
        )
        if row["rating"]:
            await pool.execute(
                """insert into feedback (shipment_id, account_id, rating, delivered_at, on_time, received_at)
                   values ($1, $2, $3, $4::timestamptz, $5, $4::timestamptz + interval '1 day')""",
                row["id"],
                account,
                row["rating"],
                delivered,
                not row["late"],
            )
    cases: list[dict] = []
    for n in range(40):
        opened = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(31 * 24 * 60))
        target = rng.choice(shipments)
        case = {
            "carrier": target["carrier"],
            "type": rng.choice(["delay", "damage", "lost", "complaint"]),
            "respond": rng.choice([None, rng.uniform(0.1, 20)]),
            "resolve": rng.choice([None, rng.uniform(1, 100)]),
            "response_breached": rng.random() < 0.3,
        }
        cases.append(case)
        await pool.execute(
            """insert into cases (id, account_id, shipment_id, type, priority, subject, opened_by, opened_at,
                                  response_due, resolution_due, first_response_at, resolved_at, response_breached_at,
                                  updated_at)
               values ($1, $2, $3, $4, 'normal', 'r', 'key_random', $5::timestamptz, $5::timestamptz, $5::timestamptz, $6, $7, $8, $5::timestamptz)""",
            f"cas_rand_{seed}_{n:03d}",
            account,
            target["id"],
            case["type"],
            opened,
            None if case["respond"] is None else opened + timedelta(hours=case["respond"]),
            None if case["resolve"] is None else opened + timedelta(hours=case["resolve"]),
            opened if case["response_breached"] else None,
        )

    report = await reports.on_time_report(pool, MONTH, "carrier", NOW)
    for carrier in ("dhl", "ups", "gls"):
        row = next(r for r in report.rows if r.group == carrier)
        mine = [s for s in shipments if s["carrier"] == carrier]
        rated = [s for s in mine if s["rating"]]
        on_time = [s for s in rated if not s["late"]]
        late = [s for s in rated if s["late"]]
        satisfied = lambda group: sum(1 for s in group if s["rating"] >= 4)  # noqa: E731
        sat = row.satisfaction
        assert sat.delivered == sum(1 for s in mine if s["delivered"])
        assert sat.ratings == len(rated)
        assert sat.csat == rules.csat(satisfied(rated), len(rated))
        assert (sat.on_time.ratings, sat.on_time.csat) == (len(on_time), rules.csat(satisfied(on_time), len(on_time)))
        assert (sat.late.ratings, sat.late.csat) == (len(late), rules.csat(satisfied(late), len(late)))
        assert sat.response_rate == rules.response_rate(len(rated), sat.delivered)

        theirs = [c for c in cases if c["carrier"] == carrier]
        figures = row.cases
        assert figures.opened == len(theirs)
        assert figures.response_breached == sum(1 for c in theirs if c["response_breached"])
        responded = [c["respond"] * 3600 for c in theirs if c["respond"] is not None]
        resolved = [c["resolve"] * 3600 for c in theirs if c["resolve"] is not None]
        expect = lambda xs: None if not xs else round(statistics.median(xs), 1)  # noqa: E731
        assert figures.median_first_response_seconds == pytest.approx(expect(responded), abs=0.11)
        assert figures.median_resolution_seconds == pytest.approx(expect(resolved), abs=0.11)
        by_type = {t.type: t.count for t in figures.by_type}
        assert by_type == Counter(c["type"] for c in theirs)
