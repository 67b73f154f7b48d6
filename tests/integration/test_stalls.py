"""What holds the event loop up is in /metrics: its lag, and each garbage collection."""

from __future__ import annotations

import asyncio
import gc

from prometheus_client.parser import text_string_to_metric_families

from api.shell.settings import Settings
from api.shell.stalls import YOUNG_THRESHOLD
from tests.integration.conftest import ADMIN_SECRET, Api, running


def _samples(text: str) -> dict[str, float]:
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_the_loops_lag_and_the_collections_are_counted_while_the_app_runs(api: Api):
    before = _samples((await api.client.get("/metrics")).text)
    await asyncio.sleep(0.1)
    gc.collect(0)
    after = _samples((await api.client.get("/metrics")).text)
    ticks = "ontime_event_loop_lag_seconds_count[]"
    assert after[ticks] - before.get(ticks, 0.0) >= 3  # a tick every 10 ms
    young = "ontime_gc_pause_seconds_count[('generation', '0')]"
    assert after[young] - before.get(young, 0.0) >= 1


async def test_the_started_app_collects_the_young_less_often_and_leaves_the_process_as_it_found_it(
    database_url: str,
):
    threshold = gc.get_threshold()
    settings = Settings(bootstrap_admin_key=ADMIN_SECRET, pool_min_size=1, pool_max_size=2, deadline_poll_seconds=3600)
    async with running(database_url, settings):
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == 0
