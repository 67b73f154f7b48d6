"""Background tasks of the app: started by the lifespan, cancelled at shutdown."""

from __future__ import annotations

import asyncio


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel a background loop and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
