"""Background loops stop when cancelled, even when woken at the same moment."""

from __future__ import annotations

import asyncio

from api.shell.tasks import cancel_and_wait, wait_for_event


async def _loop_woken_on_every_commit(wake: asyncio.Event, rounds: list[int]) -> None:
    """The shape of the webhook worker's, the live hub's and the listener's loops."""
    while True:
        await wait_for_event(wake, 30)
        wake.clear()
        rounds.append(1)


async def test_a_loop_cancelled_as_its_event_is_set_stops() -> None:
    """On Python 3.11, asyncio.wait_for(event.wait(), t) returns instead of raising
    when the cancellation and the wake-up land in the same turn of the loop, so
    such a loop ran on and the app's shutdown waited for it forever."""
    for _ in range(50):
        wake, rounds = asyncio.Event(), []
        task = asyncio.create_task(_loop_woken_on_every_commit(wake, rounds))
        await asyncio.sleep(0)  # the loop is now waiting
        wake.set()  # a commit's wake-up...
        async with asyncio.timeout(2):
            await cancel_and_wait(task)  # ...and the shutdown, in the same turn
        assert task.cancelled()


async def test_wait_for_event_says_whether_the_event_was_set() -> None:
    wake = asyncio.Event()
    assert await wait_for_event(wake, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, wake.set)
    assert await wait_for_event(wake, 5) is True
