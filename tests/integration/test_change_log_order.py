"""The change log's promise, under real concurrency: a reader never sees a seq
below one it has already seen.

Writers are asyncio tasks each on its own pooled connection, plus writers in
other OS processes, all on the real write paths (api.tracking), beside writers
that keep their transaction open after appending and writers that roll back.
A reader polls `seq > last` in a tight loop on a connection of its own. After
the run, every seq in the table must have been seen by the reader no later
than the first poll whose highest seq passed it; a seq that appears below
what the reader had already seen is a change the reader skipped for good.

The control test takes the advisory lock away and shows the same checker
catching exactly that.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import count

import asyncpg
import msgspec
import pytest

from api.changes import log as change_log
from api.shell import audit, keys
from api.shell.auth import Principal
from api.shell.database import create_pool
from api.shipments import service as tracking
from domain.shipment import CreateShipment, RecordCarrierEvent, RecordEvent

READ_AFTER = "select seq from changes where seq > $1 order by seq"

ADMIN = Principal(key_id="key_admin_test", role="admin", account_id=None, carrier=None)
CARRIER = Principal(key_id="key_carrier_test", role="carrier", account_id=None, carrier="dhl")
WHO = audit.Access(
    key_id="key_admin_test", key_name=None, role="admin", client_addr=None, user_agent=None, action="test"
)

WRITE_SECONDS = 2.0
STATUSES = ("in_transit", "out_for_delivery", "delivery_attempted", "available_for_pickup", "exception")
T0 = datetime(2030, 1, 1, tzinfo=UTC)


# -- the reader and the checker ------------------------------------------------


class Reader:
    """Polls the log on its own connection, the way a feed client does."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.high = 0
        # (seqs returned, highest seq seen after this poll), for polls that returned rows
        self.polls: list[tuple[list[int], int]] = []
        self.poll_count = 0

    async def poll(self) -> list[int]:
        batch = [r["seq"] for r in await self._conn.fetch(READ_AFTER, self.high)]
        self.poll_count += 1
        if batch:
            assert batch == sorted(batch) and batch[0] > self.high
            self.high = batch[-1]
            self.polls.append((batch, self.high))
        return batch

    async def poll_until(self, done: asyncio.Event) -> None:
        while not done.is_set():
            await self.poll()
        await self.poll()  # whatever committed last

    @property
    def seen(self) -> set[int]:
        return {seq for batch, _ in self.polls for seq in batch}


def skipped_over(polls: Sequence[tuple[list[int], int]], committed: Sequence[int]) -> list[tuple[int, int]]:
    """(poll, seq) for each committed seq that the reader's highest seq had
    passed at that poll without the reader having seen it by then.

    A seq drawn and rolled back is never committed, so the hole it leaves is
    not reported: only rows that are in the table in the end count."""
    highs = [high for _, high in polls]
    first_seen = {seq: index for index, (batch, _) in enumerate(polls) for seq in batch}
    skipped = []
    for seq in sorted(committed):
        passed_at = bisect_left(highs, seq)  # the first poll whose high reached seq
        if passed_at < len(highs) and first_seen.get(seq, len(highs)) > passed_at:
            skipped.append((passed_at, seq))
    return skipped


def test_the_checker_reports_a_seq_committed_below_what_the_reader_had_seen():
    polls = [([1, 2], 2), ([4], 4), ([5], 5)]
    assert skipped_over(polls, [1, 2, 3, 4, 5]) == [(1, 3)]
    assert skipped_over(polls, [1, 2, 4, 5]) == []  # 3 rolled back: a hole, not a skip
    assert skipped_over(polls, [1, 2, 4, 5, 6]) == []  # 6 came after the last poll


# -- writers ---------------------------------------------------------------------


async def committed_seqs(conn: asyncpg.Connection) -> list[int]:
    return [r["seq"] for r in await conn.fetch("select seq from changes order by seq")]


async def create_shipments(pool: asyncpg.Pool, account_id: str, count_: int, prefix: str) -> list[str]:
    ids = []
    for n in range(count_):
        command = CreateShipment(
            carrier="dhl",
            tracking_number=f"{prefix}{n:04d}",
            promised_by=T0 + timedelta(days=30),
            account_id=account_id,
        )
        _, _, shipment_id = await tracking.create_shipment(pool, ADMIN, command, None, b"", WHO)
        ids.append(shipment_id)
    return ids


def event_fields(n: int) -> dict:
    return {"status": STATUSES[n % len(STATUSES)], "occurred_at": T0 + timedelta(seconds=n)}


def event(n: int) -> RecordEvent:
    return msgspec.convert(event_fields(n), RecordEvent)


async def write_events(pool: asyncpg.Pool, shipment_id: str, until: float, moment: Callable[[], int]) -> int:
    """The real path for one shipment, one to three events a transaction."""
    written = 0
    while time.monotonic() < until:
        commands = [event(moment()) for _ in range(random.randint(1, 3))]
        result, _ = await tracking.record_events(pool, ADMIN, shipment_id, commands, WHO)
        assert result.accepted == len(commands), result
        written += len(commands)
    return written


async def write_carrier_batches(
    pool: asyncpg.Pool, tracking_numbers: Sequence[str], until: float, moment: Callable[[], int]
) -> int:
    """The real carrier path, each batch over shipments other writers lock too."""
    written = 0
    while time.monotonic() < until:
        batch = [
            msgspec.convert({"carrier": "dhl", "tracking_number": number, **event_fields(moment())}, RecordCarrierEvent)
            for number in random.sample(list(tracking_numbers), 2)
        ]
        result = await tracking.record_carrier_events(pool, CARRIER, batch, WHO)
        assert result.accepted == len(batch), result
        written += len(batch)
    return written


async def write_and_linger(
    pool: asyncpg.Pool, account_id: str, shipment_id: str, until: float, rolled_back: list[int]
) -> int:
    """Does other work, appends, then keeps the transaction open a few ms before
    committing (or, one time in four, rolling back), to widen the window in
    which later writers would commit first."""
    written = 0
    while time.monotonic() < until:
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await conn.execute("update shipments set updated_at = now() where id = $1", shipment_id)
                    await asyncio.sleep(random.uniform(0, 0.003))
                    seqs = await change_log.append(
                        conn, [change_log.NewChange(account_id, shipment_id, "event", b'{"type":"event"}')]
                    )
                    await asyncio.sleep(random.uniform(0, 0.003))
                    if random.random() < 0.25:
                        raise _RollBack(seqs)
                written += 1
            except _RollBack as rollback:
                rolled_back.extend(rollback.seqs)
    return written


class _RollBack(Exception):
    def __init__(self, seqs: list[int]) -> None:
        self.seqs = seqs


def write_events_in_another_process(
    database_url: str, shipment_id: str, seconds: float, ready: object, go: object, first_moment: int
) -> None:
    """The same real write path as the in-process writers, from another OS process."""

    async def run() -> None:
        pool = await create_pool(database_url, min_size=1, max_size=1)
        try:
            ready.set()
            if not go.wait(30):
                raise TimeoutError("the test never said go")
            moments = count(first_moment)
            written = await write_events(pool, shipment_id, time.monotonic() + seconds, lambda: next(moments))
            assert written > 0
        finally:
            await pool.close()

    asyncio.run(run())


# -- the promise -------------------------------------------------------------------


@pytest.fixture
async def writer_pool(database_url: str):
    pool = await create_pool(database_url, min_size=16, max_size=20)
    yield pool
    await pool.close()


async def new_account(pool: asyncpg.Pool) -> str:
    async with pool.acquire() as conn:
        return (await keys.create_account(conn, "Acme", "UTC"))["id"]


async def test_a_reader_never_sees_a_seq_below_one_it_has_seen_while_many_writers_commit(
    database_url: str, writer_pool: asyncpg.Pool
):
    account_id = await new_account(writer_pool)
    own = await create_shipments(writer_pool, account_id, 8, "OWN")
    await create_shipments(writer_pool, account_id, 3, "SHARED")
    shared = [f"SHARED{n:04d}" for n in range(3)]  # their tracking numbers, for the carrier path
    lingering = await create_shipments(writer_pool, account_id, 4, "LINGER")
    in_processes = await create_shipments(writer_pool, account_id, 2, "PROC")

    spawn = multiprocessing.get_context("spawn")
    go = spawn.Event()
    processes = []
    for n, shipment_id in enumerate(in_processes):
        ready = spawn.Event()
        process = spawn.Process(
            target=write_events_in_another_process,
            args=(database_url, shipment_id, WRITE_SECONDS, ready, go, 1_000_000 * (n + 1)),
            daemon=True,
        )
        process.start()
        processes.append((process, ready))
    try:
        for _process, ready in processes:
            assert await asyncio.to_thread(ready.wait, 30), "a writer process did not start"

        reader_conn = await asyncpg.connect(database_url)
        try:
            reader = Reader(reader_conn)
            done = asyncio.Event()
            reading = asyncio.create_task(reader.poll_until(done))
            go.set()
            until = time.monotonic() + WRITE_SECONDS
            moments = count()
            rolled_back: list[int] = []
            writers: list[Awaitable[int]] = [
                *(write_events(writer_pool, s, until, lambda: next(moments)) for s in own),
                *(write_carrier_batches(writer_pool, shared, until, lambda: next(moments)) for _ in range(4)),
                *(write_and_linger(writer_pool, account_id, s, until, rolled_back) for s in lingering),
            ]
            assert len(writers) == 16
            written = await asyncio.wait_for(asyncio.gather(*writers), WRITE_SECONDS + 30)
            for process, _ in processes:
                await asyncio.to_thread(process.join, 30)
                assert process.exitcode == 0, "a writer process failed; its traceback is in the captured stderr"
            done.set()
            await asyncio.wait_for(reading, 30)
            committed = await committed_seqs(reader_conn)
        finally:
            await reader_conn.close()
    finally:
        go.set()
        for process, _ in processes:
            if process.is_alive():
                process.kill()
                process.join(5)

    assert all(written), f"every writer wrote something: {written}"
    by_process = await writer_pool.fetchval(
        "select count(*) from changes where shipment_id = any($1::text[])", in_processes
    )
    assert by_process > 0
    assert len(committed) >= 300, f"only {len(committed)} changes: not much of a race"
    assert len(reader.polls) >= 20, f"the reader saw the log grow only {len(reader.polls)} times"

    assert skipped_over(reader.polls, committed) == []
    assert reader.seen == set(committed)
    # rolled-back appends leave holes that stay holes, and the reader never saw them
    assert rolled_back, "no writer rolled back"
    holes = set(range(1, max(committed) + 1)) - set(committed)
    assert set(rolled_back) <= holes
    assert not set(rolled_back) & reader.seen


# -- the control: without the lock, the same checker finds the skip -------------------


UNLOCKED_APPEND = """
insert into changes (seq, account_id, shipment_id, kind, body)
select nextval('changes_seq'), account_id, shipment_id, kind, body
from unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) with ordinality as c(account_id, shipment_id, kind, body, n)
order by n
returning seq
"""


async def append_without_the_lock(conn: asyncpg.Connection, changes: Sequence[change_log.NewChange]) -> list[int]:
    """append_changes (migrations/0004) minus its advisory lock: how the log
    would be written if the lock were dropped."""
    rows = await conn.fetch(UNLOCKED_APPEND, *(list(column) for column in zip(*changes, strict=False)))
    return [r["seq"] for r in rows]


Append = Callable[[asyncpg.Connection, Sequence[change_log.NewChange]], Awaitable[list[int]]]


async def one_slow_writer_among_fast_ones(database_url: str, append: Append) -> tuple[Reader, list[int], int, bool]:
    """A slow writer draws a seq and holds its transaction open while fast
    writers append and commit; it commits once the reader has seen past its
    seq, or after a while if the reader never does. Returns the reader, the
    committed seqs, the slow writer's seq and whether the reader saw past it
    while it was uncommitted."""
    pool = await create_pool(database_url, min_size=1, max_size=6)
    reader_conn = await asyncpg.connect(database_url)
    try:
        account_id = await new_account(pool)
        (shipment_id,) = await create_shipments(pool, account_id, 1, "SLOW")
        change = change_log.NewChange(account_id, shipment_id, "event", b'{"type":"event"}')
        reader = Reader(reader_conn)
        done = asyncio.Event()
        reading = asyncio.create_task(reader.poll_until(done))

        async def fast_writer() -> None:
            for _ in range(5):
                async with pool.acquire() as conn, conn.transaction():
                    await append(conn, [change])

        async with pool.acquire() as slow, slow.transaction():
            (slow_seq,) = await append(slow, [change])
            fast = asyncio.gather(*(fast_writer() for _ in range(4)))
            deadline = time.monotonic() + 0.5
            while reader.high <= slow_seq and time.monotonic() < deadline:  # noqa: ASYNC110 (polls by design)
                await asyncio.sleep(0.005)
            saw_past_while_uncommitted = reader.high > slow_seq
        await asyncio.wait_for(fast, 30)
        done.set()
        await asyncio.wait_for(reading, 30)
        return reader, await committed_seqs(reader_conn), slow_seq, saw_past_while_uncommitted
    finally:
        await reader_conn.close()
        await pool.close()


async def test_without_the_lock_the_checker_finds_the_seq_a_slow_writer_committed_late(database_url: str):
    reader, committed, slow_seq, saw_past = await one_slow_writer_among_fast_ones(database_url, append_without_the_lock)
    assert saw_past
    assert slow_seq in committed
    assert slow_seq not in reader.seen
    # the fast writers race each other too, so there may be more than this one
    assert slow_seq in [seq for _, seq in skipped_over(reader.polls, committed)]


async def test_with_the_lock_a_slow_writer_holds_later_seqs_back_until_it_commits(database_url: str):
    reader, committed, _slow_seq, saw_past = await one_slow_writer_among_fast_ones(database_url, change_log.append)
    assert not saw_past
    assert skipped_over(reader.polls, committed) == []
    # the slow writer's, the fast writers' 20, and the shipment's `created`
    assert reader.seen == set(committed) and len(committed) == 22


async def test_a_rolled_back_append_leaves_a_hole_that_is_never_filled(database_url: str, pool: asyncpg.Pool):
    account_id = await new_account(pool)
    (shipment_id,) = await create_shipments(pool, account_id, 1, "HOLE")
    change = change_log.NewChange(account_id, shipment_id, "event", b'{"type":"event"}')
    reader_conn = await asyncpg.connect(database_url)
    try:
        reader = Reader(reader_conn)
        async with pool.acquire() as conn:
            async with conn.transaction():
                (before,) = await change_log.append(conn, [change])
            with pytest.raises(_RollBack):
                async with conn.transaction():
                    raise _RollBack(await change_log.append(conn, [change]))
            async with conn.transaction():
                (after,) = await change_log.append(conn, [change])
        await reader.poll()
        committed = await committed_seqs(reader_conn)
    finally:
        await reader_conn.close()
    # after the shipment's `created` change
    assert committed[1:] == [before, after] and after == before + 2
    assert skipped_over(reader.polls, committed) == []
