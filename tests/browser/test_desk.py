"""The board, the console and the rating form in a real browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Page, expect

from tests.browser.conftest import assert_every_control_labelled, tab_to
from tests.e2e.conftest import Server
from tests.integration.conftest import shipment_body


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _sign_in(page: Page, server: Server, secret: str, where: str) -> None:
    await page.goto(f"{server.url}{where}")
    await expect(page).to_have_url(f"{server.url}/login?next={where}")
    await page.get_by_label("API key").fill(secret)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{server.url}{where}")


async def test_the_boards_late_list_gains_a_shipment_when_its_promise_breaks(
    server: Server, page: Page, tmp_path: Path
):
    async with server.client() as admin:
        account = (await admin.post("/v1/accounts", json={"name": "Acme Parts", "timezone": "UTC"})).json()
        key = (await admin.post("/v1/keys", json={"role": "customer", "account_id": account["id"]})).json()
        await _sign_in(page, server, key["secret"], "/board")
        await expect(page.locator("#late-list")).to_contain_text("Nothing late.")
        await assert_every_control_labelled(page)
        await page.evaluate("window.notReloaded = true")
        due = datetime.now(UTC) + timedelta(seconds=2)
        shipment = (
            await admin.post(
                "/v1/shipments",
                json=shipment_body(account_id=account["id"], tracking_number="LATE0001", promised_by=_iso(due)),
            )
        ).json()
        await expect(page.locator("#late-list")).to_contain_text("LATE0001", timeout=10_000)
        await expect(page.locator("#late-list")).to_contain_text("LATE")
        assert await page.evaluate("window.notReloaded") is True
        assert shipment["id"]
        await page.screenshot(path=tmp_path / "board.png", full_page=True)


async def test_the_console_finds_a_shipment_by_the_recipients_phone_and_adds_a_note(
    server: Server, page: Page, tmp_path: Path
):
    async with server.client() as admin:
        account = (
            await admin.post("/v1/accounts", json={"name": "Tienda Sol", "timezone": "Europe/Madrid", "country": "ES"})
        ).json()
        body = shipment_body(account_id=account["id"], tracking_number="PHONE0001")
        body["recipient"] = {"name": "Begoña Ruiz", "phone": "+34 612 34 56 78"}
        await admin.post("/v1/shipments", json=body)
        support = (await admin.post("/v1/keys", json={"role": "support", "name": "Marta (support)"})).json()
        await _sign_in(page, server, support["secret"], "/console")
        await assert_every_control_labelled(page)
        # by keyboard alone: Tab to the search box, type, Enter
        await tab_to(page, "#q")
        await page.keyboard.type("0034 612345678")
        await page.keyboard.press("Enter")
        await expect(page.locator("#results")).to_contain_text("PHONE0001")
        await page.screenshot(path=tmp_path / "console-search.png", full_page=True)
        await page.get_by_role("link", name="DHL PHONE0001").click()
        await assert_every_control_labelled(page)
        await tab_to(page, "#note")
        await page.keyboard.type("Called the recipient: she will be home after 17:00")
        await page.keyboard.press("Tab")  # the note's button is next: Enter presses it
        await page.keyboard.press("Enter")
        await expect(page.locator("#note-list")).to_contain_text("she will be home after 17:00")
        await page.screenshot(path=tmp_path / "console-shipment.png", full_page=True)


async def test_the_rating_form_takes_one_rating_and_refuses_a_second(server: Server, page: Page, tmp_path: Path):
    async with server.client() as admin:
        account = (await admin.post("/v1/accounts", json={"name": "Acme Parts", "timezone": "UTC"})).json()
        shipment = (await admin.post("/v1/shipments", json=shipment_body(account_id=account["id"]))).json()
        when = _iso(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2))
        await admin.post(f"/v1/shipments/{shipment['id']}/events", json={"status": "delivered", "occurred_at": when})
        url = (await admin.get(f"/v1/shipments/{shipment['id']}")).json()["feedback_url"]
    path = url.split("/f/", 1)[1]
    await page.goto(f"{server.url}/f/{path}")
    await assert_every_control_labelled(page)
    await page.get_by_label("5 – Excellent").check()
    await page.get_by_label("Anything you would like to tell us?").fill("Quick and friendly")
    await page.screenshot(path=tmp_path / "rating-form.png", full_page=True)
    await page.get_by_role("button", name="Send my rating").click()
    await expect(page.get_by_role("status")).to_contain_text("Your rating has been received")
    await page.goto(f"{server.url}/f/{path}")
    await expect(page.get_by_role("status")).to_contain_text("already been rated")
    await expect(page.get_by_role("button", name="Send my rating")).to_have_count(0)
    await page.screenshot(path=tmp_path / "rating-refused.png", full_page=True)
    answer = await page.request.post(f"{server.url}/f/{path}", form={"rating": "1"})
    assert answer.status == 409 and "already been rated" in await answer.text()
