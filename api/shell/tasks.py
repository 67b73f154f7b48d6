"""Background tasks of the app: started by the lifespan, cancelled at shutdown."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel a background loop and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def wait_for_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` pass; whether it was set.

    Not `asyncio.wait_for(event.wait(), seconds)`: on Python 3.11 that loses a
    cancellation arriving as the event is set (it returns instead of raising,
    python/cpython#86296), and a loop woken on every commit then never stops,
    so the app's shutdown waits on it forever. asyncio.timeout keeps it."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
