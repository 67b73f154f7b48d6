"""`ontime serve | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from api.settings import Settings


def _migrate_and_bootstrap(settings: Settings, database_url: str) -> None:
    import asyncpg

    from api.migrate import MigrationError, apply_migrations
    from api.store import keys

    async def run() -> str | None:
        conn = await asyncpg.connect(database_url)
        try:
            applied = await apply_migrations(conn, Path(settings.migrations_dir))
            for name in applied:
                print(f"applied migration {name}", file=sys.stderr)
            return await keys.ensure_admin_key(conn, settings.bootstrap_admin_key)
        finally:
            await conn.close()

    try:
        secret = asyncio.run(run())
    except MigrationError as exc:
        raise SystemExit(f"ontime: {exc}") from None
    except OSError as exc:
        raise SystemExit(
            f"ontime: cannot reach PostgreSQL ({exc}); check DATABASE_URL, or unset it to use the embedded server"
        ) from None
    if secret is not None:
        print("no admin key existed, so one was made; it is shown this once:", file=sys.stderr)
        print(f"admin key: {secret}", flush=True)


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from api.app import create_app
    from api.database import resolve_database_url

    settings = Settings.from_env()
    database_url = resolve_database_url(settings)
    _migrate_and_bootstrap(settings, database_url)
    host = args.host or settings.host
    port = args.port or settings.port
    print(f"serving on http://{host}:{port} (API docs at /docs)", file=sys.stderr, flush=True)
    uvicorn.run(
        create_app(settings, database_url=database_url),
        host=host,
        port=port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
    )


def migrate(_args: argparse.Namespace) -> None:
    from api.database import resolve_database_url

    settings = Settings.from_env()
    _migrate_and_bootstrap(settings, resolve_database_url(settings))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ontime", description="Shipment tracking API")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="serve the API (migrations are applied first)")
    serve_cmd.add_argument("--host", help="address to bind (default 127.0.0.1, or ONTIME_HOST)")
    serve_cmd.add_argument("--port", type=int, help="port (default 8000, or ONTIME_PORT)")
    serve_cmd.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve_cmd.set_defaults(run=serve)
    migrate_cmd = commands.add_parser("migrate", help="apply migrations and exit")
    migrate_cmd.set_defaults(run=migrate)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
