"""The hub in-process: pings from its one timer, and replay order without sockets."""

from __future__ import annotations

import asyncio

import asyncpg

from api.changes import log as change_log
from api.live import protocol
from api.live.hub import Hub
from api.shell.auth import Principal

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
