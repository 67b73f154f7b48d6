"""What holds the event loop up, in /metrics.

Everything a process does shares one event loop: a long synchronous step, a
garbage collection or a CPU the process had to wait for delays every request
and every live frame alike. A task that sleeps `TICK` and records how much
later than asked it woke measures that delay (the loop's lag); a gc callback
times each collection by generation. bench.live reports both beside its
latency (bench/README.md, "Live")."""

from __future__ import annotations

import asyncio
import gc
import time

from prometheus_client import Histogram

TICK = 0.01
# the lag's buckets: from timer jitter (uvloop's clock is in milliseconds) to a stall a user sees
BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)

LOOP_LAG = Histogram(
    "ontime_event_loop_lag_seconds",
    f"How much later than asked a {TICK * 1000:g} ms sleep on the event loop woke",
    buckets=BUCKETS,
)
GC_PAUSE = Histogram(
    "ontime_gc_pause_seconds",
    "Garbage collections, by the oldest generation collected, and how long each held the process",
    ["generation"],
    buckets=(0.0005, *BUCKETS),
)


async def watch_loop() -> None:
    """Sleep TICK, again and again, and record the overshoot (a lifespan task)."""
    observe = LOOP_LAG.observe
    while True:
        before = time.perf_counter()
        await asyncio.sleep(TICK)
        observe(max(0.0, time.perf_counter() - before - TICK))


class GcTimer:
    """A gc callback: the duration of every collection, by generation."""

    def __init__(self) -> None:
        self._started = 0.0
        self._by_generation = [GC_PAUSE.labels(str(generation)) for generation in range(3)]

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._by_generation[info["generation"]].observe(time.perf_counter() - self._started)

    def install(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)


# Collect the young every 10,000 new objects rather than 700: a change for a
# thousand connections made a collection (and every tenth an older one) each time
YOUNG_THRESHOLD = 10_000


def settle_gc() -> tuple[int, int, int]:
    """Once the app has started: move every object there is (modules, routes,
    schemas, the pool: there for the life of the process) out of the
    collector's sight, so that no full collection walks them again (without
    collecting first: that costs a test suite a full collection per app, and
    a process the little garbage its start left); and collect the young less
    often. Gives the thresholds it replaced, for unsettle_gc."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, before[1], before[2])
    return before


def unsettle_gc(threshold: tuple[int, int, int]) -> None:
    """As before settle_gc (an app stopped in a process that goes on: tests)."""
    gc.unfreeze()
    gc.set_threshold(*threshold)
