"""The pool lends its connections in the order they were asked for
(api/shell/database.py, `turns`): under load no request waits round after round
while newcomers go first, which was the tail of the poll's latency."""

from __future__ import annotations

import asyncio

from api.shell import database


async def test_a_connection_handed_back_goes_to_the_longest_waiting_not_to_a_newcomer(database_url: str):
    pool = await database.create_pool(database_url, min_size=1, max_size=1)
    try:
        held = await pool.acquire()
        order: list[str] = []

        async def waiter(name: str) -> None:
            async with pool.acquire():
                order.append(name)

        waiting = [asyncio.create_task(waiter("first")), asyncio.create_task(waiter("second"))]
        await asyncio.sleep(0.05)  # both are waiting now
        await pool.release(held)
        # asking in the very turn the connection comes back, ahead of the waiters waking
        async with pool.acquire():
            order.append("newcomer")
        await asyncio.wait_for(asyncio.gather(*waiting), 5)
        assert order == ["first", "second", "newcomer"]
        # and every turn came back: the pool lends its one connection again at once
        assert await asyncio.wait_for(pool.fetchval("select 1"), 1) == 1
    finally:
        await pool.close()
