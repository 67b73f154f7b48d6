"""The hub in-process: pings from its one timer, replay order, writers woken a
slice at a time, its own reading connection and its trace, without sockets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import msgspec
import pytest

from api.changes import log as change_log
from api.live import hub as hub_module
from api.live import protocol
from api.live.hub import APPLICATION_NAME, WAKE_AT_ONCE, Hub, Trace
from api.shell.auth import Principal
from api.shell.database import DatabaseUnavailable

SUPPORT = Principal(key_id="key_1", role="support", account_id=None, carrier=None)


async def test_every_connection_is_pinged_by_the_hubs_one_timer(pool: asyncpg.Pool):
    hub = Hub(pool, ping_interval=0.05)
    await hub.start()
    try:
        first, second = hub.connect(SUPPORT, b"a"), hub.connect(SUPPORT, b"b")
        await asyncio.sleep(0.12)
        for subscriber in (first, second):
            assert [text for _, text in subscriber.outbox].count(protocol.PING) >= 1
            assert subscriber.ready.is_set()
    finally:
        await hub.stop()


async def test_a_replay_and_live_changes_meet_with_no_gap_and_no_duplicate(pool: asyncpg.Pool):
    async def append(n: int) -> list[int]:
        async with pool.acquire() as conn, conn.transaction():
            return await change_log.append(
                conn, [change_log.NewChange("acc_1", "shp_1", "event", b'{"type":"event"}') for _ in range(n)]
            )

    before = await append(5)
    hub = Hub(pool, poll_interval=0.01)
    await hub.start()
    try:
        subscriber = hub.connect(SUPPORT, b"c")
        replay = asyncio.create_task(hub.subscribe(subscriber, everything=True, since=before[1]))
        during = await append(3)
        await replay
        after = await append(2)
        await hub.catch_up()
        seqs = [int(text.split(",")[0].removeprefix('{"seq":')) for _, text in subscriber.outbox]
        assert seqs == before[2:] + during + after
    finally:
        await hub.stop()


async def _readers(pool: asyncpg.Pool) -> list[int]:
    """The pids of the hub's reading connections."""
    rows = await pool.fetch("select pid from pg_stat_activity where application_name = $1", APPLICATION_NAME)
    return [r["pid"] for r in rows]


async def _append_one(pool: asyncpg.Pool, account_id: str = "acc_1") -> int:
    async with pool.acquire() as conn, conn.transaction():
        [seq] = await change_log.append(conn, [change_log.NewChange(account_id, "shp_1", "event", b'{"type":"event"}')])
    return seq


async def test_a_change_for_many_connections_wakes_their_writers_a_slice_at_a_time(pool: asyncpg.Pool):
    """So that a request's next step waits behind a slice of writes, not a thousand."""
    hub = Hub(pool, poll_interval=3600)
    await hub.start()
    try:
        subscribers = [hub.connect(SUPPORT, f"k{n}".encode()) for n in range(5 * WAKE_AT_ONCE)]
        for subscriber in subscribers:
            await hub.subscribe(subscriber, everything=True)
        await _append_one(pool)
        await hub.catch_up()
        assert all(len(subscriber.outbox) == 1 for subscriber in subscribers)
        turns, woken = 0, []
        while not all(subscriber.ready.is_set() for subscriber in subscribers):
            await asyncio.sleep(0)
            turns += 1
            woken.append(sum(subscriber.ready.is_set() for subscriber in subscribers))
        assert turns >= 5
        assert max(b - a for a, b in zip([0, *woken], woken, strict=False)) <= WAKE_AT_ONCE
    finally:
        await hub.stop()


async def test_the_hub_reads_on_a_connection_of_its_own_and_makes_another_when_it_is_killed(
    pool: asyncpg.Pool, database_url: str
):
    hub = Hub(pool, poll_interval=3600, database_url=database_url)
    await hub.start()
    try:
        subscriber = hub.connect(SUPPORT, b"own")
        await hub.subscribe(subscriber, everything=True)
        first = await _append_one(pool)
        await hub.catch_up()
        readers = await _readers(pool)
        assert len(readers) == 1
        await pool.execute("select pg_terminate_backend($1)", readers[0])
        second = await _append_one(pool)
        await hub.catch_up()  # finds it dead, makes another and reads again at once
        assert [int(text.split(",")[0].removeprefix('{"seq":')) for _, text in subscriber.outbox] == [first, second]
        after = await _readers(pool)
        assert len(after) == 1 and after != readers
    finally:
        await hub.stop()
    # stopped: the reading connection goes with it
    for _ in range(50):
        if not await pool.fetchval(
            "select count(*) from pg_stat_activity where application_name = $1", APPLICATION_NAME
        ):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the hub's reading connection outlived the hub")


async def test_a_read_of_the_log_that_hangs_is_given_up_and_the_next_one_goes_through(
    pool: asyncpg.Pool, database_url: str, monkeypatch: pytest.MonkeyPatch
):
    """A connection gone half-open answers nothing, ever: the read is bounded, its
    connection replaced, and the feed goes on at the next wake-up."""
    monkeypatch.setattr(hub_module, "READ_TIMEOUT", 0.3)
    hub = Hub(pool, poll_interval=3600, database_url=database_url)
    await hub.start()
    try:
        subscriber = hub.connect(SUPPORT, b"hang")
        await hub.subscribe(subscriber, everything=True)
        first = await _append_one(pool)
        await hub.catch_up()
        [reader] = await _readers(pool)
        second = await _append_one(pool)
        blocker = await asyncpg.connect(database_url)
        try:
            async with blocker.transaction():  # the log's reads wait behind this lock, as on a dead connection
                await blocker.execute("lock table changes in access exclusive mode")
                with pytest.raises(DatabaseUnavailable):
                    await hub.catch_up()
        finally:
            await blocker.close()
        await hub.catch_up()
        assert [int(text.split(",")[0].removeprefix('{"seq":')) for _, text in subscriber.outbox] == [first, second]
        # the abandoned backend goes once its lock wait ends and it finds its client gone
        for _ in range(100):
            now = await _readers(pool)
            if len(now) == 1:
                break
            await asyncio.sleep(0.02)
        assert now != [reader] and len(now) == 1
    finally:
        await hub.stop()


async def test_a_trace_notes_each_stage_of_each_change_in_order(pool: asyncpg.Pool, tmp_path: Path):
    trace = Trace(str(tmp_path / "trace.json"))
    hub = Hub(pool, poll_interval=3600, trace=trace)
    await hub.start()
    try:
        subscriber = hub.connect(SUPPORT, b"traced")
        await hub.subscribe(subscriber, everything=True)
        seq = await _append_one(pool)
        hub.wake()
        await hub.catch_up()
        [(_, text)] = subscriber.outbox
        trace.sent(text)  # as the connection's writer does once the frame is written
        trace.sent(protocol.PING)  # not a change: not noted
    finally:
        await hub.stop()
    stages = msgspec.json.decode((tmp_path / "trace.json").read_bytes())
    assert list(stages) == [str(seq)]
    woken, read_from, read_to, dispatched, first_sent, last_sent, sends = stages[str(seq)]
    assert woken <= read_from <= read_to <= dispatched <= first_sent == last_sent
    assert sends == 1
