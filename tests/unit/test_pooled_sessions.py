"""The pool hands connections back without asyncpg's reset round trip
(api/shell/database._keep_session), which is sound only while no code leaves
session state on a pooled connection. This reads api/ for the ways to leave some."""

from __future__ import annotations

import re
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "api"
# connections of their own, never the pool's: the migration's session lock, the LISTEN connection
OWN_CONNECTIONS = {API / "shell" / "migrate.py", API / "live" / "listener.py"}

SESSION_STATE = {
    "a session-level advisory lock": re.compile(r"pg_advisory_lock(_shared)?\s*\(", re.IGNORECASE),
    "a SET without LOCAL": re.compile(r"""execute\(\s*f?["']{1,3}\s*set\s+(?!local\b)""", re.IGNORECASE),
    "set_config for the session": re.compile(r"set_config\([^)]*,\s*false\s*\)", re.IGNORECASE),
    "LISTEN": re.compile(r"""["']{1,3}\s*listen\s""", re.IGNORECASE),
    "a cursor held open": re.compile(r"\.cursor\(|declare\s+\w+\s+(\w+\s+)*cursor", re.IGNORECASE),
    "a temporary table": re.compile(r"create\s+temp(orary)?\s+table", re.IGNORECASE),
    "a named prepared statement": re.compile(r"""["']{1,3}\s*prepare\s+\w+""", re.IGNORECASE),
}


def test_no_code_on_a_pooled_connection_leaves_session_state_behind() -> None:
    found = [
        f"{path.relative_to(API.parent)}: {what}"
        for path in sorted(API.rglob("*.py"))
        if path not in OWN_CONNECTIONS
        for what, pattern in SESSION_STATE.items()
        if pattern.search(path.read_text())
    ]
    assert found == []


def test_the_patterns_catch_what_they_are_for() -> None:
    """Each pattern finds its kind of session state in a line written as the code would write it."""
    samples = {
        "a session-level advisory lock": 'await conn.execute("select pg_advisory_lock($1)", key)',
        "a SET without LOCAL": 'await conn.execute("SET statement_timeout = 1000")',
        "set_config for the session": "select set_config('app.who', $1, false)",
        "LISTEN": 'await conn.execute("LISTEN ontime_changes")',
        "a cursor held open": "async for row in conn.cursor(QUERY):",
        "a temporary table": "create temporary table batch (id text)",
        "a named prepared statement": 'await conn.execute("PREPARE lookup AS select 1")',
    }
    for what, line in samples.items():
        assert SESSION_STATE[what].search(line), what
    # and leave alone what is harmless: transaction-scoped or not SQL at all
    for line in (
        'await conn.execute("SET LOCAL statement_timeout = 1000")',
        'await conn.execute("select pg_advisory_xact_lock($1)", key)',
        "update shipments set status = $2 where id = $1",
    ):
        assert not any(pattern.search(line) for pattern in SESSION_STATE.values()), line
