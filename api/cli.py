"""`ontime serve | migrate`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.shell.settings import Settings

if TYPE_CHECKING:
    # imported where used at run time, so that `ontime migrate` loads no more than it needs
    from api.inbound.adapters.base import Adapted
    from api.lateness.store import OnTimeReport, OnTimeRow


def _migrate_and_bootstrap(settings: Settings, database_url: str) -> None:
    import asyncpg

    from api.shell import keys
    from api.shell.migrate import MigrationError, apply_migrations

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


SERVERS = ("uvicorn", "granian")


def worker_app() -> Any:
    """The app of one worker process when there are several (or under granian):
    built from the environment, where `serve` has put the resolved DATABASE_URL
    after migrating, so workers neither migrate nor start PostgreSQL."""
    from api.app import create_app

    settings = Settings.from_env()
    return create_app(settings, database_url=os.environ["DATABASE_URL"])


def serve(args: argparse.Namespace) -> None:
    from api.shell.database import resolve_database_url

    settings = Settings.from_env()
    server = args.server or os.environ.get("ONTIME_SERVER") or "uvicorn"
    workers = args.workers or int(os.environ.get("ONTIME_WORKERS") or 1)
    if server not in SERVERS:
        raise SystemExit(f"ontime: ONTIME_SERVER must be one of {', '.join(SERVERS)}, not {server!r}")
    if workers < 1:
        raise SystemExit(f"ontime: ONTIME_WORKERS must be at least 1, not {workers}")
    database_url = resolve_database_url(settings)
    _migrate_and_bootstrap(settings, database_url)
    os.environ["DATABASE_URL"] = database_url  # for worker_app, in every worker
    host = args.host or settings.host
    port = args.port or settings.port
    print(
        f"serving on http://{host}:{port} with {server}, {workers} worker(s) (API docs at /docs)",
        file=sys.stderr,
        flush=True,
    )
    if server == "granian":
        _serve_granian(host, port, workers, args.log_level)
    else:
        _serve_uvicorn(host, port, workers, args.log_level)


def _serve_uvicorn(host: str, port: int, workers: int, log_level: str) -> None:
    import uvicorn

    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again
    # with the handler it found; make that handler a normal exit, so exit
    # handlers run and the embedded PostgreSQL this process started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        # one worker: the app in this process; several: each builds its own
        worker_app() if workers == 1 else "api.cli:worker_app",
        factory=workers > 1,
        workers=workers if workers > 1 else None,
        host=host,
        port=port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        log_level=log_level,
        access_log=False,
        lifespan="on",
        # Live frames are encoded once per change and sent as they are:
        # permessage-deflate would compress each again per connection and keep a
        # zlib context (hundreds of KB) for every open socket.
        ws_per_message_deflate=False,
    )


def _serve_granian(host: str, port: int, workers: int, log_level: str) -> None:
    try:
        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.log import LogLevels
    except ImportError:
        raise SystemExit("ontime: granian is not installed; pip install 'ontime[granian]'") from None
    # granian stops its workers gracefully on SIGTERM and SIGINT (lifespan
    # shutdown included) and then returns here, so exit handlers run.
    Granian(
        "api.cli:worker_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop if sys.platform != "win32" else Loops.asyncio,
        log_level=LogLevels(log_level),
        log_access=False,
        websockets=True,
    ).serve()


def migrate(_args: argparse.Namespace) -> None:
    from api.shell.database import resolve_database_url

    settings = Settings.from_env()
    _migrate_and_bootstrap(settings, resolve_database_url(settings))


def report(args: argparse.Namespace) -> None:
    """The monthly report: on time, satisfaction, cases and recurring problems."""
    import asyncpg

    from api.lateness import store as reports
    from api.lateness.routes import parse_month
    from api.shell.clock import utcnow
    from api.shell.database import resolve_database_url
    from api.shell.errors import Problem

    try:
        month = parse_month(args.month)
    except Problem:
        raise SystemExit(f"ontime: --month takes a month as YYYY-MM, not {args.month!r}") from None
    settings = Settings.from_env()
    database_url = resolve_database_url(settings)

    async def run() -> reports.OnTimeReport:
        conn = await asyncpg.connect(database_url)
        try:
            return await reports.on_time_report(
                conn, month, args.group_by, utcnow(), account_id=args.account, carrier=args.carrier
            )
        finally:
            await conn.close()

    try:
        print(format_report(asyncio.run(run()), args.format))
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError):
        raise SystemExit("ontime: the database schema is older than this ontime; run `ontime migrate` first") from None


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}"


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f} h"


def _report_columns(row: OnTimeRow, name: str) -> dict[str, str]:
    """One row of the report as named cells, for the table and for CSV alike."""
    sat, cases = row.satisfaction, row.cases
    return {
        "group": name,
        "due": str(row.due),
        "on time": str(row.on_time),
        "late": str(row.late),
        "open": str(row.open),
        "closed": str(row.closed_undelivered),
        "on-time %": _percent(row.on_time_rate),
        "mean delay": _hours(row.mean_delay_seconds),
        "p90 delay": _hours(row.p90_delay_seconds),
        "top reasons": "; ".join(f"{r.reason} {r.count}" for r in row.top_reasons) or "-",
        "ratings": str(sat.ratings),
        "response %": _percent(sat.response_rate),
        "CSAT %": _percent(sat.csat),
        "CSAT on time %": _percent(sat.on_time.csat),
        "CSAT late %": _percent(sat.late.csat),
        "cases": str(cases.opened),
        "cases by type": "; ".join(f"{t.type} {t.count}" for t in cases.by_type) or "-",
        "response breached": str(cases.response_breached),
        "resolution breached": str(cases.resolution_breached),
        "median first response": _hours(cases.median_first_response_seconds),
        "median resolution": _hours(cases.median_resolution_seconds),
        "recurring": "; ".join(f"{p.name} {p.count} ({p.change:+d})" for p in row.recurring_problems) or "-",
    }


def format_report(report: OnTimeReport, output: str = "table") -> str:
    """The report as `table` (a terminal), `csv` (a spreadsheet) or `json` (as the API answers)."""
    import csv
    import io

    import msgspec

    if output == "json":
        return msgspec.json.format(msgspec.json.encode(report)).decode()
    rows = [_report_columns(row, row.group or "?") for row in report.rows] + [_report_columns(report.total, "all")]
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([report.group_by if h == "group" else h for h in rows[0]])
        writer.writerows([list(r.values()) for r in rows])
        return buffer.getvalue().rstrip("\n")
    first = ["group", "due", "on time", "late", "open", "closed", "on-time %", "mean delay", "p90 delay", "top reasons"]
    second = [
        "group",
        "ratings",
        "response %",
        "CSAT %",
        "CSAT on time %",
        "CSAT late %",
        "cases",
        "response breached",
        "resolution breached",
        "median first response",
        "median resolution",
    ]
    third = ["group", "cases by type", "recurring"]

    def table(columns: list[str]) -> list[str]:
        cells = [[report.group_by if c == "group" else c for c in columns]] + [[r[c] for c in columns] for r in rows]
        widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
        rendered = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in cells]
        rendered.insert(1, "  ".join("-" * w for w in widths))
        return rendered

    return "\n".join(
        [
            f"on-time report for {report.month}, by {report.group_by}",
            *table(first),
            "",
            "satisfaction and cases",
            *table(second),
            "",
            f"recurring problems (change since {report.previous_month})",
            *table(third),
        ]
    )


def inbound(args: argparse.Namespace) -> None:
    """Map a saved carrier payload and print the events it would record; writes nothing."""
    from api.inbound.adapters.base import PayloadError
    from api.inbound.sources import SOURCES

    source = SOURCES.get(args.source)
    if source is None:
        raise SystemExit(f"ontime: no such source {args.source!r}; sources: {', '.join(sorted(SOURCES))}")
    try:
        body = sys.stdin.buffer.read() if args.file == "-" else open(args.file, "rb").read()  # noqa: SIM115
    except OSError as error:
        raise SystemExit(f"ontime: cannot read {args.file}: {error.strerror}") from None
    from api.inbound.adapters.base import Context

    try:
        adapted = source.adapt(body, Context(account_zone=args.zone))
    except PayloadError as error:
        raise SystemExit(f"ontime: {args.file} is not a {args.source} payload: {error}") from None
    print(format_inbound(args.source, adapted))


def format_inbound(source: str, adapted: Adapted) -> str:
    headers = ["tracking number", "occurred at (UTC)", "time rule", "status", "reason", "code", "estimate", "text"]
    rows = [
        [
            e.tracking_number,
            e.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            str(e.time_rule),
            str(e.status),
            str(e.reason) if e.reason else "-",
            e.carrier_code + (" (unmapped)" if e.unmapped else ""),
            e.estimated_delivery.isoformat() if e.estimated_delivery else "-",
            e.carrier_status[:60],
        ]
        for e in adapted.events
    ]
    table = [headers, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    rendered = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=False)).rstrip() for r in table]
    rendered.insert(1, "  ".join("-" * w for w in widths))
    lines = [f"{source}: {len(adapted.events)} events (nothing written)", *rendered]
    lines += [f"error at {error.where}: {error.message}" for error in adapted.errors]
    return "\n".join(lines)


def demo(args: argparse.Namespace) -> None:
    """Shippers, shipments and carriers posting events to a running ontime."""
    from api import demo as demo_run

    if args.rate <= 0:
        raise SystemExit("ontime demo: --rate must be above 0")
    try:
        asyncio.run(demo_run.run(args.url, args.key, None, args.rate, args.seconds, args.shipments))
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ontime", description="Shipment tracking API")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="serve the API (migrations are applied first)")
    serve_cmd.add_argument("--host", help="address to bind (default 127.0.0.1, or ONTIME_HOST)")
    serve_cmd.add_argument("--port", type=int, help="port (default 8000, or ONTIME_PORT)")
    serve_cmd.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve_cmd.add_argument("--server", choices=SERVERS, help="ASGI server (default uvicorn, or ONTIME_SERVER)")
    serve_cmd.add_argument("--workers", type=int, help="worker processes (default 1, or ONTIME_WORKERS)")
    serve_cmd.set_defaults(run=serve)
    migrate_cmd = commands.add_parser("migrate", help="apply migrations and exit")
    migrate_cmd.set_defaults(run=migrate)
    report_cmd = commands.add_parser(
        "report", help="print the monthly report: on time, satisfaction, cases, recurring problems"
    )
    report_cmd.add_argument("--month", required=True, help="the month, YYYY-MM (in each account's time zone)")
    report_cmd.add_argument("--group-by", default="carrier", choices=["carrier", "lane", "account"])
    report_cmd.add_argument("--account", help="one account's shipments only")
    report_cmd.add_argument("--carrier", help="one carrier's shipments only")
    report_cmd.add_argument(
        "--format",
        default="table",
        choices=["table", "csv", "json"],
        help="table for a terminal, csv for a spreadsheet, json as GET /v1/reports/on-time answers",
    )
    report_cmd.set_defaults(run=report)
    inbound_cmd = commands.add_parser(
        "inbound", help="map a saved carrier payload and print its events; writes nothing"
    )
    inbound_cmd.add_argument("source", help="the source: dhl, ups, fedex, aftership, easypost, …")
    inbound_cmd.add_argument("file", help="the saved payload (- for standard input)")
    inbound_cmd.add_argument("--zone", default="UTC", help="the account's time zone, for times with no place (UTC)")
    inbound_cmd.set_defaults(run=inbound)
    demo_cmd = commands.add_parser(
        "demo", help="seed shippers and shipments, then post carrier events at a rate (the board comes alive)"
    )
    demo_cmd.add_argument("--url", default="http://127.0.0.1:8000", help="the running ontime")
    demo_cmd.add_argument("--key", help="an admin key (default: make one, and a support key, in its database)")
    demo_cmd.add_argument("--rate", type=float, default=2.0, help="carrier events a second")
    demo_cmd.add_argument(
        "--seconds", type=float, default=0, help="stop after this long (0: when every parcel is delivered)"
    )
    demo_cmd.add_argument("--shipments", type=int, default=12, help="shipments per shipper (three shippers)")
    demo_cmd.set_defaults(run=demo)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
