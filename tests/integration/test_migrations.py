"""The migration runner against a real PostgreSQL, on an empty database per test."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from api.shell.migrate import MigrationError, apply_migrations, read_migrations
from api.shell.settings import MIGRATIONS_DIR

CREATE_CARRIERS = "CREATE TABLE carriers (id int PRIMARY KEY);"
ADD_CARRIER_NAME = "ALTER TABLE carriers ADD COLUMN name text NOT NULL DEFAULT '';"


def write_migration(directory: Path, name: str, sql: str) -> Path:
    path = directory / name
    path.write_text(sql)
    return path


async def applied_names(conn: asyncpg.Connection) -> list[str]:
    return [row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations ORDER BY version")]


async def table_exists(conn: asyncpg.Connection, table: str) -> bool:
    return await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)


@pytest.fixture
async def empty_conn(empty_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(empty_database_url)
    yield conn
    await conn.close()


async def test_an_empty_database_gets_every_migration_in_order(empty_conn, tmp_path):
    write_migration(tmp_path, "0002_add_carrier_name.sql", ADD_CARRIER_NAME)
    first = write_migration(tmp_path, "0001_create_carriers.sql", CREATE_CARRIERS)
    logged: list[str] = []

    applied = await apply_migrations(empty_conn, tmp_path, on_applied=logged.append)

    assert applied == ["0001_create_carriers.sql", "0002_add_carrier_name.sql"]
    assert logged == applied
    assert await applied_names(empty_conn) == applied
    assert await empty_conn.fetchval("SELECT checksum FROM schema_migrations WHERE version = 1") == (
        hashlib.sha256(first.read_bytes()).hexdigest()
    )
    await empty_conn.execute("INSERT INTO carriers (id, name) VALUES (1, 'Posten')")


async def test_a_second_run_applies_nothing(empty_conn, tmp_path):
    write_migration(tmp_path, "0001_create_carriers.sql", CREATE_CARRIERS)
    await apply_migrations(empty_conn, tmp_path)

    assert await apply_migrations(empty_conn, tmp_path) == []
    assert await applied_names(empty_conn) == ["0001_create_carriers.sql"]


async def test_a_run_after_a_new_file_applies_only_the_new_file(empty_conn, tmp_path):
    write_migration(tmp_path, "0001_create_carriers.sql", CREATE_CARRIERS)
    await apply_migrations(empty_conn, tmp_path)
    write_migration(tmp_path, "0002_add_carrier_name.sql", ADD_CARRIER_NAME)

    assert await apply_migrations(empty_conn, tmp_path) == ["0002_add_carrier_name.sql"]


async def test_two_processes_starting_at_once_apply_each_migration_exactly_once(empty_database_url, tmp_path):
    # The sleep keeps the first runner inside its migration while the second asks for the lock.
    write_migration(tmp_path, "0001_create_carriers.sql", CREATE_CARRIERS + "SELECT pg_sleep(0.3);")
    write_migration(tmp_path, "0002_add_carrier_name.sql", ADD_CARRIER_NAME)
    first, second = await asyncio.gather(asyncpg.connect(empty_database_url), asyncpg.connect(empty_database_url))
    try:
        results = await asyncio.gather(apply_migrations(first, tmp_path), apply_migrations(second, tmp_path))
        assert sorted(results) == [[], ["0001_create_carriers.sql", "0002_add_carrier_name.sql"]]
        assert await applied_names(first) == ["0001_create_carriers.sql", "0002_add_carrier_name.sql"]
    finally:
        await asyncio.gather(first.close(), second.close())


async def test_an_edited_migration_is_refused_and_nothing_new_is_applied(empty_conn, tmp_path):
    write_migration(tmp_path, "0001_create_carriers.sql", CREATE_CARRIERS)
    await apply_migrations(empty_conn, tmp_path)
    write_migration(tmp_path, "0001_create_carriers.sql", CREATE_CARRIERS + "\nCREATE INDEX ON carriers (id);")
    write_migration(tmp_path, "0002_create_parcels.sql", "CREATE TABLE parcels (id int);")

    with pytest.raises(MigrationError, match=re.escape("0001_create_carriers.sql was edited after it was applied")):
        await apply_migrations(empty_conn, tmp_path)

    assert await applied_names(empty_conn) == ["0001_create_carriers.sql"]
    assert not await table_exists(empty_conn, "parcels")


async def test_a_failing_migration_leaves_no_row_and_no_partial_schema(empty_conn, tmp_path):
    write_migration(tmp_path, "0001_create_carriers.sql", CREATE_CARRIERS)
    write_migration(
        tmp_path,
        "0002_create_parcels.sql",
        "CREATE TABLE parcels (id int);\nSELECT no_such_column FROM parcels;",
    )

    with pytest.raises(MigrationError, match=re.escape("0002_create_parcels.sql failed")):
        await apply_migrations(empty_conn, tmp_path)

    assert await applied_names(empty_conn) == ["0001_create_carriers.sql"]
    assert not await table_exists(empty_conn, "parcels")


async def test_a_migration_whose_row_cannot_be_recorded_leaves_no_schema(empty_conn, tmp_path):
    # The file itself succeeds; the constraint it adds makes recording it fail afterwards.
    write_migration(
        tmp_path,
        "0001_create_carriers.sql",
        CREATE_CARRIERS + "\nALTER TABLE schema_migrations ADD CHECK (version > 1);",
    )

    with pytest.raises(MigrationError, match=re.escape("0001_create_carriers.sql failed")):
        await apply_migrations(empty_conn, tmp_path)

    assert await applied_names(empty_conn) == []
    assert not await table_exists(empty_conn, "carriers")


async def test_a_database_newer_than_the_code_is_refused(empty_conn, tmp_path):
    write_migration(tmp_path, "0001_create_carriers.sql", CREATE_CARRIERS)
    newer = write_migration(tmp_path, "0002_add_carrier_name.sql", ADD_CARRIER_NAME)
    await apply_migrations(empty_conn, tmp_path)
    newer.unlink()

    with pytest.raises(MigrationError, match=re.escape("database is newer than this code")):
        await apply_migrations(empty_conn, tmp_path)


async def test_a_file_renumbered_onto_an_applied_number_is_refused(empty_conn, tmp_path):
    write_migration(tmp_path, "0001_create_carriers.sql", CREATE_CARRIERS)
    await apply_migrations(empty_conn, tmp_path)
    (tmp_path / "0001_create_carriers.sql").rename(tmp_path / "0001_create_couriers.sql")

    with pytest.raises(MigrationError, match=re.escape("was applied as 0001_create_carriers.sql")):
        await apply_migrations(empty_conn, tmp_path)


def test_two_files_with_one_number_are_refused(tmp_path):
    write_migration(tmp_path, "0001_create_carriers.sql", CREATE_CARRIERS)
    write_migration(tmp_path, "0001_create_parcels.sql", "CREATE TABLE parcels (id int);")

    with pytest.raises(MigrationError, match=re.escape("share the number 0001")):
        read_migrations(tmp_path)


@pytest.mark.parametrize("name", ["1_create_carriers.sql", "0001-create-carriers.sql", "0001_Carriers.sql"])
def test_a_file_not_named_like_a_migration_is_refused(tmp_path, name):
    write_migration(tmp_path, name, CREATE_CARRIERS)

    with pytest.raises(MigrationError, match=re.escape("not named NNNN_name.sql")):
        read_migrations(tmp_path)


def test_a_missing_migrations_directory_is_refused(tmp_path):
    with pytest.raises(MigrationError, match=re.escape("does not exist")):
        read_migrations(tmp_path / "migrations")


async def test_the_project_migrations_apply_to_an_empty_database(empty_conn):
    files = sorted(path.name for path in MIGRATIONS_DIR.glob("*.sql"))

    assert await apply_migrations(empty_conn, MIGRATIONS_DIR) == files
    assert await applied_names(empty_conn) == files
