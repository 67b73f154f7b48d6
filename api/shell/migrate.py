"""Forward-only migrations: files named NNNN_name.sql, each applied once, in order, in its own transaction.

Our own runner, because none we checked fits: yoyo-migrations is sync DB-API; asyncpg-trek and pogo-migrate run on asyncpg but bring their own revision and rollback formats, and none refuses an applied file that was since edited.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import asyncpg
import msgspec

from api.shell.database import Connection

# Any fixed bigint will do, as long as every process migrating this database uses it: "ontime" in ASCII.
MIGRATION_LOCK_KEY = 0x6F6E74696D65

FILE_NAME = re.compile(r"(?P<version>\d{4})_[a-z0-9_]+\.sql")

CREATE_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    """The migration files and the database disagree, or a migration failed."""


class Migration(msgspec.Struct, frozen=True):
    version: int
    name: str
    sql: str
    checksum: str


def read_migrations(directory: Path) -> list[Migration]:
    """The .sql files in directory, in version order; refuses names that break the numbering."""
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist; set ONTIME_MIGRATIONS_DIR")
    by_version: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = FILE_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(
                f"migration file {path.name} is not named NNNN_name.sql "
                "(four digits, an underscore, then lowercase letters, digits and underscores); rename it"
            )
        version = int(match["version"])
        if version in by_version:
            raise MigrationError(
                f"migrations {by_version[version].name} and {path.name} share the number {match['version']}; "
                "renumber the newer one"
            )
        content = path.read_bytes()
        by_version[version] = Migration(
            version=version,
            name=path.name,
            sql=content.decode("utf-8"),
            checksum=hashlib.sha256(content).hexdigest(),
        )
    return [by_version[version] for version in sorted(by_version)]


async def apply_migrations(
    conn: Connection,
    directory: Path,
    *,
    on_applied: Callable[[str], None] | None = None,
) -> list[str]:
    """Apply the pending migrations in directory; returns the names applied by this call.

    Safe to run from several processes at once: they take turns on an advisory lock,
    and whoever comes second finds nothing left to do.
    """
    migrations = read_migrations(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(CREATE_SCHEMA_MIGRATIONS)
        applied = {
            row["version"]: row for row in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        }
        _refuse_mismatches(migrations, applied, directory)
        applied_now = []
        for migration in migrations:
            if migration.version not in applied:
                await _apply(conn, migration)
                applied_now.append(migration.name)
                if on_applied is not None:
                    on_applied(migration.name)
        return applied_now
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


def _refuse_mismatches(migrations: list[Migration], applied: dict[int, asyncpg.Record], directory: Path) -> None:
    on_disk = {migration.version: migration for migration in migrations}
    for version, row in sorted(applied.items()):
        migration = on_disk.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {row['name']} applied, but {directory} has no file numbered "
                f"{version:04d}: the database is newer than this code; run the matching version of ontime"
            )
        if migration.name != row["name"]:
            raise MigrationError(
                f"migration number {version:04d} was applied as {row['name']}, but the file with that number "
                f"is now {migration.name}; give the new migration the next free number"
            )
        if migration.checksum != row["checksum"]:
            raise MigrationError(
                f"migration {migration.name} was edited after it was applied; "
                "restore the file and put the change in a new migration"
            )


async def _apply(conn: Connection, migration: Migration) -> None:
    try:
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
    except asyncpg.PostgresError as exc:
        raise MigrationError(
            f"migration {migration.name} failed and was rolled back: {exc}; fix the file and run again"
        ) from exc
