"""Every background loop has a poison-row test: a row it cannot process is set
aside (logged once with its id, counted in /metrics, retried later) and the
others go on. The deadline sweep, the live hub and the listener."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from api.cases import deadlines as case_deadlines
from api.changes import log as change_log
from api.deadlines import sweep as sweep_all
from api.lateness import sweep as deadlines
from api.live.hub import INTERNAL_ERROR, Hub
from api.live.listener import Listener
from api.shell import set_aside
from api.shell.auth import Principal
from tests.integration.conftest import Api, shipment_body

SUPPORT = Principal(key_id="key_1", role="support", account_id=None, carrier=None)
# a location no Place can be read from: the row mapper raises on this shipment
UNREADABLE_LOCATION = "update shipments set location = '\"somewhere\"'::jsonb where id = $1"
# the database refuses any update of this one shipment (a stand-in for a stored row a constraint now refuses)
REFUSE_UPDATES_OF = """
create function refuse_update() returns trigger language plpgsql as $$
begin
    raise exception 'refused: %', old.id;
end $$;
create trigger refuse_update before update on shipments
    for each row when (old.id = '{id}') execute function refuse_update();
"""


def set_aside_total(loop: str) -> float:
    return REGISTRY.get_sample_value("ontime_rows_set_aside_total", {"loop": loop}) or 0.0


def set_aside_logs(caplog: pytest.LogCaptureFixture, row_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "ontime.set_aside" and row_id in r.getMessage()]


async def _due(api_customer, now: datetime, count: int, *, hours_ago: int = 1) -> list[str]:
    ids = []
    for n in range(count):
        promised_by = (now - timedelta(hours=hours_ago, minutes=n)).isoformat()
        r = await api_customer.post("/v1/shipments", json=shipment_body(promised_by=promised_by))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def test_the_sweep_sets_aside_the_shipments_it_cannot_handle_and_records_the_others(
    api: Api, pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
):
    _, customer = await api.customer()
    now = datetime.now(UTC)
    # the two bad ones fall due first, so they head the sweep's order
    unreadable, refused = await _due(customer, now, 2, hours_ago=5)
    good = await _due(customer, now, 3)
    await pool.execute(UNREADABLE_LOCATION, unreadable)
    await pool.execute(REFUSE_UPDATES_OF.format(id=refused))
    counted = set_aside_total("deadline_sweep")

    assert await deadlines.sweep(pool, now) == 3

    late = {r["shipment_id"] for r in await pool.fetch("select shipment_id from late_deliveries")}
    assert late == set(good)
    aside = {r["row_id"]: r for r in await pool.fetch("select * from set_aside where loop = 'deadline_sweep'")}
    assert set(aside) == {unreadable, refused}
    assert "ValidationError" in aside[unreadable]["error"] and "refused" in aside[refused]["error"]
    assert aside[unreadable]["retry_after"] == now + timedelta(seconds=set_aside.FIRST_RETRY_SECONDS)
    assert set_aside_total("deadline_sweep") == counted + 2
    assert len(set_aside_logs(caplog, unreadable)) == 1
    assert len(set_aside_logs(caplog, refused)) == 1
    metrics = (await api.client.get("/metrics")).text
    assert 'ontime_rows_set_aside_total{loop="deadline_sweep"}' in metrics

    # not retried before its time, and not logged or counted again when it fails again
    assert await deadlines.sweep(pool, now + timedelta(seconds=30)) == 0
    assert await pool.fetchval("select sum(attempts) from set_aside") == 2
    retry = now + timedelta(seconds=set_aside.FIRST_RETRY_SECONDS + 1)
    assert await deadlines.sweep(pool, retry) == 0
    row = await pool.fetchrow("select * from set_aside where row_id = $1", unreadable)
    assert row["attempts"] == 2
    assert row["retry_after"] == retry + timedelta(seconds=2 * set_aside.FIRST_RETRY_SECONDS)
    assert len(set_aside_logs(caplog, unreadable)) == 1
    assert set_aside_total("deadline_sweep") == counted + 2

    # put right by an operator, each goes through at its next retry and leaves the set-aside table
    await pool.execute("update shipments set location = null where id = $1", unreadable)
    await pool.execute("drop trigger refuse_update on shipments")
    assert await deadlines.sweep(pool, retry + timedelta(hours=1)) == 2
    assert await pool.fetchval("select count(*) from late_deliveries") == 5
    assert await pool.fetchval("select count(*) from set_aside") == 0


async def test_a_thousand_poison_rows_at_the_head_of_the_queue_do_not_starve_the_good_ones(
    api: Api, pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
):
    account_id, customer = await api.customer()
    now = datetime.now(UTC)
    poison = deadlines.BATCH + 50
    await pool.execute(
        """insert into shipments (id, account_id, carrier, tracking_number, promised_by, location)
           select 'shp_poison' || n, $1, 'dhl', 'POISON' || n, $2, '"somewhere"'::jsonb
           from generate_series(1, $3) n""",
        account_id,
        now - timedelta(days=1),
        poison,
    )
    good = await _due(customer, now, 3)
    caplog.set_level(logging.CRITICAL, logger="ontime.set_aside")  # a thousand tracebacks are not worth keeping
    worker = asyncio.create_task(deadlines.run(pool, interval=0.05, clock=lambda: now))
    try:
        async with asyncio.timeout(20):
            # the database and the registry are polled: nothing there to wait on
            while await pool.fetchval("select count(*) from late_deliveries") < len(good):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            # the gauge follows, once the loop has looked
            while REGISTRY.get_sample_value("ontime_set_aside_rows", {"loop": "deadline_sweep"}) != poison:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    assert {r["shipment_id"] for r in await pool.fetch("select shipment_id from late_deliveries")} == set(good)
    assert await pool.fetchval("select count(*) from set_aside where loop = 'deadline_sweep'") == poison
    assert f'ontime_set_aside_rows{{loop="deadline_sweep"}} {float(poison)}' in (await api.client.get("/metrics")).text


async def _append(pool: asyncpg.Pool, body: bytes) -> int:
    async with pool.acquire() as conn, conn.transaction():
        (seq,) = await change_log.append(conn, [change_log.NewChange("acc_1", "shp_1", "event", body)])
        return seq


def _seqs(texts: list[str]) -> list[int]:
    return [int(text.split(",")[0].removeprefix('{"seq":')) for text in texts]


async def test_a_row_set_aside_for_years_waits_a_day_between_retries_and_never_overflows(pool: asyncpg.Pool):
    now = datetime(2026, 12, 3, tzinfo=UTC)
    await pool.execute(
        "insert into set_aside (loop, row_id, error, attempts, first_seen, last_seen, retry_after)"
        " values ('deadline_sweep', 'shp_x', 'old', 5000, $1, $1, $1)",
        now,
    )
    await set_aside.put(pool, "deadline_sweep", "shp_x", ValueError("again"), now)
    row = await pool.fetchrow("select attempts, retry_after from set_aside where row_id = 'shp_x'")
    assert row["attempts"] == 5001
    assert row["retry_after"] == now + timedelta(seconds=set_aside.LAST_RETRY_SECONDS)


async def test_the_hub_skips_a_change_it_cannot_send_and_sends_the_others(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
):
    hub = Hub(pool, poll_interval=3600)
    await hub.start()
    counted = set_aside_total("live_hub")
    try:
        live = hub.connect(SUPPORT, b"live")
        await hub.subscribe(live, everything=True)
        before = await _append(pool, b'{"type":"event"}')
        poison = await _append(pool, b'{"type":"event","note":"\xff"}')  # not UTF-8: no text frame can carry it
        after = await _append(pool, b'{"type":"event"}')

        await hub.catch_up()
        assert _seqs([text for _, text in live.outbox]) == [before, after]
        assert hub.position == after
        # a replay skips it too, without logging or counting it again
        replayed = hub.connect(SUPPORT, b"replayed")
        await hub.subscribe(replayed, everything=True, since=0)
        assert _seqs([text for _, text in replayed.outbox]) == [before, after]
    finally:
        await hub.stop()
    assert set_aside_total("live_hub") == counted + 1
    assert len([r for r in caplog.records if r.name == "ontime.set_aside" and f"row {poison};" in r.getMessage()]) == 1


class _RefusingOutbox(deque[tuple[float, str]]):
    """An outbox that fails to take a change, as a bug in one connection would."""

    def append(self, item: tuple[float, str]) -> None:
        raise RuntimeError("this connection cannot take a change")


async def test_a_connection_the_hub_cannot_hand_a_change_to_is_closed_and_the_others_get_it(pool: asyncpg.Pool):
    hub = Hub(pool, poll_interval=3600)
    await hub.start()
    try:
        broken, healthy = hub.connect(SUPPORT, b"broken"), hub.connect(SUPPORT, b"healthy")
        for subscriber in (broken, healthy):
            await hub.subscribe(subscriber, everything=True)
        broken.outbox = _RefusingOutbox()
        seq = await _append(pool, b'{"type":"event"}')
        await hub.catch_up()
        assert broken.close_code == INTERNAL_ERROR
        assert _seqs([text for _, text in healthy.outbox]) == [seq]
    finally:
        await hub.stop()


async def test_a_notification_one_handler_fails_on_reaches_the_others(database_url: str):
    listener = Listener(database_url)
    got: list[str] = []

    def failing(payload: str) -> None:
        raise ValueError(f"cannot handle {payload!r}")

    listener.subscribe("ontime_test", failing)
    listener.subscribe("ontime_test", got.append)
    counted = set_aside_total("listener")
    listener.start()
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        conn = await asyncpg.connect(database_url)
        try:
            for payload in ("one", "two"):
                await conn.execute("select pg_notify('ontime_test', $1)", payload)
        finally:
            await conn.close()
        async with asyncio.timeout(5):
            while len(got) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert listener.connected.is_set()  # no reconnect for a handler's failure
    finally:
        await listener.stop()
    assert got == ["one", "two"]
    assert set_aside_total("listener") == counted + 2


REFUSE_CASE_UPDATES_OF = """
create function refuse_case_update() returns trigger language plpgsql as $$
begin
    raise exception 'refused: %', old.id;
end $$;
create trigger refuse_case_update before update on cases
    for each row when (old.id = '{id}') execute function refuse_case_update();
"""


async def test_the_sweep_sets_aside_a_case_it_cannot_record_and_breaches_the_others(
    api: Api, pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
):
    account_id, _ = await api.customer()
    support = await api.role("support")
    ids = []
    for n in range(3):
        r = await support.post("/v1/cases", json={"account_id": account_id, "type": "other", "subject": f"c{n}"})
        ids.append(r.json()["id"])
    refused, *good = ids
    await pool.execute(REFUSE_CASE_UPDATES_OF.format(id=refused))
    counted = set_aside_total("case_response_deadline")
    later = datetime.now(UTC) + timedelta(hours=9)

    recorded = await sweep_all.sweep(pool, later, [case_deadlines.RESPONSES])

    assert recorded == {"case_response_deadline": 2}
    breached = {r["id"] for r in await pool.fetch("select id from cases where response_breached_at is not null")}
    assert breached == set(good)
    aside = await pool.fetch("select row_id from set_aside where loop = 'case_response_deadline'")
    assert [r["row_id"] for r in aside] == [refused]
    assert set_aside_total("case_response_deadline") == counted + 1
    assert len(set_aside_logs(caplog, refused)) == 1
