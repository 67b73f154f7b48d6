"""Carrier batches from many writers at once on the same shipments, each in its own
order: the batch locks its shipments in id order (no deadlock), folds, and saves
set-wise. Nothing is lost, nothing is stored twice, every version counts every event."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.integration.conftest import Api, new_tracking_number, shipment_body
from tests.integration.test_tracking_numbers_per_account import carrier_event, post_batch


async def test_many_batches_at_once_on_the_same_shipments_store_every_event_once(api: Api, db: asyncpg.Connection):
    account_id, customer = await api.customer()
    numbers = [new_tracking_number() for _ in range(12)]
    for number in numbers:
        r = await customer.post("/v1/shipments", json=shipment_body(tracking_number=number))
        assert r.status_code == 201, r.text
    carrier = await api.role("carrier", carrier="dhl")

    async def batch(writer: int, round_: int) -> dict:
        order = numbers[writer % len(numbers) :] + numbers[: writer % len(numbers)]  # each writer its own order
        return await post_batch(carrier, [carrier_event(n, f"w{writer}-r{round_}-{n}") for n in order])

    async def writer(n: int) -> list[dict]:
        return [await batch(n, round_) for round_ in range(4)]

    answers = await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(6))), 60)
    assert all(a["accepted"] == len(numbers) for rounds in answers for a in rounds)
    expected = 6 * 4  # events per shipment
    assert await db.fetchval("select count(*) from events") == expected * len(numbers)
    assert await db.fetchval("select count(distinct (shipment_id, key)) from events") == expected * len(numbers)
    assert {v for (v,) in await db.fetch("select version from shipments")} == {1 + expected}
    assert await db.fetchval("select count(*) from changes where kind = 'event'") == expected * len(numbers)
    del account_id
