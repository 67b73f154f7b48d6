"""Signing in to the board and the console: the session cookie, who may see
what, CSRF on every form, and a revoked key's session ending at once."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import asyncpg
import httpx
import msgspec

from api.shell.settings import Settings
from tests.integration.conftest import Api, running, shipment_body


async def _signed_in(api: Api, secret: str, where: str = "/board") -> httpx.Response:
    form = await api.client.get("/login")
    r = await api.client.post("/login", data={"key": secret, "next": where, "_csrf_token": _csrf(form.text)})
    assert r.status_code == 303, r.text
    return r


def _csrf(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match[1]


async def test_the_session_cookie_is_httponly_and_samesite_and_a_bad_key_signs_nobody_in(api: Api):
    account_id, _ = await api.customer()
    key = await api.new_key("customer", account_id)
    r = await _signed_in(api, key["secret"])
    cookie = r.headers["set-cookie"]
    assert "ontime_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert r.headers["location"] == "/board"
    assert (await api.client.get("/board")).status_code == 200
    api.client.cookies.clear()
    # the sign-in form carries the CSRF token too, in an HttpOnly SameSite cookie and a hidden field
    form = await api.client.get("/login")
    csrf_cookie = form.headers["set-cookie"]
    assert "ontime_csrf=" in csrf_cookie and "HttpOnly" in csrf_cookie and "samesite=lax" in csrf_cookie.lower()
    unguarded = await api.client.post("/login", data={"key": key["secret"], "next": "/board"})
    assert unguarded.status_code == 403 and "ontime_session" not in unguarded.headers.get("set-cookie", "")
    wrong = await api.client.post(
        "/login", data={"key": "ot_not-a-key", "next": "/board", "_csrf_token": _csrf(form.text)}
    )
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    assert (await api.client.get("/board")).status_code == 303  # back to the sign-in


async def test_signing_out_takes_the_forms_token(api: Api):
    account_id, _ = await api.customer()
    key = await api.new_key("customer", account_id)
    await _signed_in(api, key["secret"])
    board = await api.client.get("/board")
    assert (await api.client.post("/logout", data={})).status_code == 403  # a cross-site post signs nobody out
    assert (await api.client.get("/board")).status_code == 200
    out = await api.client.post("/logout", data={"_csrf_token": _csrf(board.text)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert (await api.client.get("/board")).status_code == 303


async def test_a_customer_sees_its_own_board_only_and_never_the_console(api: Api):
    mine, customer = await api.customer("Mine")
    other, other_customer = await api.customer("Theirs")
    await other_customer.post(
        "/v1/shipments", json=shipment_body(tracking_number="THEIRS01", promised_by="2026-01-01T00:00:00Z")
    )
    await customer.post(
        "/v1/shipments", json=shipment_body(tracking_number="MINE0001", promised_by="2026-01-01T00:00:00Z")
    )
    key = await api.new_key("customer", mine)
    await _signed_in(api, key["secret"])
    board = await api.client.get("/board", params={"account": other})  # asking for another account changes nothing
    assert "MINE0001" in board.text and "THEIRS01" not in board.text
    console = await api.client.get("/console")
    assert console.status_code == 303 and console.headers["location"].startswith("/login")


async def test_a_form_without_the_sessions_token_does_nothing(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    created = await customer.post("/v1/shipments", json=shipment_body())
    assert "ontime_csrf" not in created.headers.get("set-cookie", "")  # the API is keyed: no CSRF cookie, no token
    shipment = created.json()
    support = await api.new_key("support")
    await _signed_in(api, support["secret"], "/console")
    page = await api.client.get(f"/console/shipments/{shipment['id']}")
    # the new-case form offers types and priorities in words, their codes as the values sent
    assert '<option value="address_issue">Address issue</option>' in page.text
    assert '<option value="normal" selected>Normal</option>' in page.text
    token = _csrf(page.text)
    forged = await api.client.post(
        f"/console/shipments/{shipment['id']}/notes", data={"body": "forged", "_csrf_token": "0" * 64}
    )
    missing = await api.client.post(f"/console/shipments/{shipment['id']}/notes", data={"body": "forged"})
    assert forged.status_code == 403 and missing.status_code == 403
    assert await db.fetchval("select count(*) from shipment_notes") == 0
    ok = await api.client.post(
        f"/console/shipments/{shipment['id']}/notes", data={"body": "real", "_csrf_token": token}
    )
    assert ok.status_code == 303
    assert await db.fetchval("select body from shipment_notes") == "real"
    # what support saw through the console is in the audit log, as through the API
    assert (
        await db.fetchval(
            "select count(*) from audit_log where key_id = $1 and action like 'GET /console/shipments/%'", support["id"]
        )
        >= 1
    )


async def test_a_revoked_keys_session_ends_at_once(api: Api):
    account_id, _ = await api.customer()
    key = await api.new_key("customer", account_id)
    await _signed_in(api, key["secret"])
    assert (await api.client.get("/board")).status_code == 200
    assert (await api.admin.delete(f"/v1/keys/{key['id']}")).status_code in (200, 204)
    assert (await api.client.get("/board")).status_code == 303


async def test_sign_in_goes_back_only_to_a_page_of_this_site(api: Api):
    account_id, _ = await api.customer()
    key = await api.new_key("customer", account_id)
    token = _csrf((await api.client.get("/login")).text)
    for target in ("https://evil.example/x", "//evil.example/x", "/\\evil.example"):
        r = await api.client.post("/login", data={"key": key["secret"], "next": target, "_csrf_token": token})
        assert r.headers["location"] == "/board", target


async def test_an_admin_revises_a_promise_from_the_console_and_support_may_not(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    support = await api.new_key("support")
    await _signed_in(api, support["secret"], "/console")
    page = await api.client.get(f"/console/shipments/{shipment['id']}")
    assert "Revise the promise" not in page.text
    refused = await api.client.post(
        f"/console/shipments/{shipment['id']}/promise",
        data={"promised_by": "2030-02-01T12:00", "reason": "x", "_csrf_token": _csrf(page.text)},
    )
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    admin = await api.new_key("admin")
    await _signed_in(api, admin["secret"], "/console")
    page = await api.client.get(f"/console/shipments/{shipment['id']}")
    revised = await api.client.post(
        f"/console/shipments/{shipment['id']}/promise",
        data={"promised_by": "2030-02-01T12:00", "reason": "warehouse flood", "_csrf_token": _csrf(page.text)},
    )
    assert revised.status_code == 303, revised.text
    promised = await db.fetchval("select promised_by from shipments where id = $1", shipment["id"])
    assert promised.isoformat() == "2030-02-01T12:00:00+00:00"


async def test_the_consoles_queue_puts_breached_cases_first_then_the_nearest_deadline(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    support = await api.new_key("support")
    desk = api.as_key(support["secret"])
    ids = {}
    for subject in ("Soon but fine", "Answered too late"):
        r = await desk.post(
            "/v1/cases", json={"shipment_id": shipment["id"], "type": "delay", "priority": "normal", "subject": subject}
        )
        assert r.status_code == 201, r.text
        ids[subject] = r.json()["id"]
    # one is due within the hour; the other was answered after its response deadline, so the
    # database's nearest deadline for it is its resolution, days away: still, it is breached
    await db.execute(
        "update cases set response_due = now() + interval '1 hour', resolution_due = now() + interval '1 day' "
        "where id = $1",
        ids["Soon but fine"],
    )
    await db.execute(
        "update cases set response_due = now() - interval '2 hours', first_response_at = now() - interval '1 hour', "
        "response_breached_at = now() - interval '2 hours', resolution_due = now() + interval '3 days' where id = $1",
        ids["Answered too late"],
    )
    await _signed_in(api, support["secret"], "/console")
    page = (await api.client.get("/console")).text
    queue = page[page.index('id="queue"') :]
    assert queue.index("Answered too late") < queue.index("Soon but fine")
    late_row = queue[queue.index(f'id="case-{ids["Answered too late"]}"') :].split("</tr>", 1)[0]
    assert "MISSED" in late_row and "BREACHED" in late_row
    soon_row = queue[queue.index(f'id="case-{ids["Soon but fine"]}"') :].split("</tr>", 1)[0]
    assert "BREACHED" not in soon_row and re.search(r"\b(59|60) min left|0 h 59 min left|1 h 00 min left", soon_row)


async def test_behind_a_tls_proxy_the_cookies_are_secure(database_url: str, app_settings: Settings):
    # TLS ends at a proxy; the service is told its public address is https
    async with running(
        database_url, msgspec.structs.replace(app_settings, public_url="https://track.example.com")
    ) as api:
        account_id, _ = await api.customer()
        key = await api.new_key("customer", account_id)
        form = await api.client.get("/login")
        assert "ontime_csrf=" in form.headers["set-cookie"] and "Secure" in form.headers["set-cookie"]
        token, cookie = _csrf(form.text), form.cookies["ontime_csrf"]
        r = await api.client.post(
            "/login",
            data={"key": key["secret"], "next": "/board", "_csrf_token": token},
            headers={"Cookie": f"ontime_csrf={cookie}"},
        )
        assert r.status_code == 303, r.text
        assert "ontime_session=" in r.headers["set-cookie"] and "Secure" in r.headers["set-cookie"]


async def test_a_form_with_a_bad_field_is_a_400_naming_it_and_writes_nothing(api: Api, db: asyncpg.Connection):
    _, customer = await api.customer()
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    support = await api.new_key("support")
    await _signed_in(api, support["secret"], "/console")
    page = await api.client.get(f"/console/shipments/{shipment['id']}")
    token = _csrf(page.text)
    empty = await api.client.post(
        f"/console/shipments/{shipment['id']}/notes", data={"body": " ", "_csrf_token": token}
    )
    odd = await api.client.post(
        f"/console/shipments/{shipment['id']}/cases",
        data={"subject": "x", "type": "nonsense", "priority": "normal", "_csrf_token": token},
    )
    assert (empty.status_code, odd.status_code) == (400, 400)
    assert empty.json()["errors"][0]["path"] == "$.body" and odd.json()["errors"][0]["path"] == "$.type"
    assert await db.fetchval("select count(*) from shipment_notes") == 0
    assert await db.fetchval("select count(*) from cases") == 0


async def test_the_boards_chart_says_in_words_when_there_is_nothing_to_draw(api: Api):
    account_id, customer = await api.customer()
    key = await api.new_key("customer", account_id)
    await _signed_in(api, key["secret"])
    empty = await api.client.get("/board")
    assert 'id="chart-empty"' in empty.text and "<svg" not in empty.text
    shipment = (await customer.post("/v1/shipments", json=shipment_body())).json()
    delivered = {"status": "delivered", "occurred_at": datetime.now(UTC).isoformat()}
    assert (await customer.post(f"/v1/shipments/{shipment['id']}/events", json=delivered)).status_code == 201
    drawn = await api.client.get("/board")
    assert 'id="chart-empty"' not in drawn.text and "<svg" in drawn.text
