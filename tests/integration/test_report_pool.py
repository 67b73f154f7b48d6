"""The monthly report's queries run a few at once, but never more than the pool
holds: a slow month makes them wait their turn, not time out on the pool behind
their own siblings (found at 1M deliveries: a DatabaseUnavailable)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import asyncpg
import pytest

from api.lateness import store as reports
from api.shell import database
from api.shell.database import create_pool


async def test_a_slow_report_on_a_pool_of_one_waits_its_turn(database_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(database, "ACQUIRE_TIMEOUT", 0.2)
    pool = await create_pool(database_url, min_size=1, max_size=1)
    blocker = await asyncpg.connect(database_url)
    try:
        # the first query reads shipments: it holds the pool's one connection until the lock goes
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("lock table shipments in access exclusive mode")
        report = asyncio.create_task(
            reports.on_time_report(pool, date(2026, 10, 1), "carrier", datetime(2026, 11, 24, tzinfo=UTC))
        )
        await asyncio.sleep(0.6)  # three times the acquire timeout
        assert not report.done()
        await tx.rollback()
        made = await asyncio.wait_for(report, 10)
        assert made.month == "2026-10" and made.rows == [] and made.total.due == 0
    finally:
        await blocker.close()
        await pool.close()
