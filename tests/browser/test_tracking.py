"""The recipient's tracking page in a real browser: it changes without a reload."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect

from tests.browser.conftest import assert_every_control_labelled
from tests.e2e.conftest import Server
from tests.integration.conftest import shipment_body


async def test_the_tracking_page_changes_status_without_a_reload_when_an_event_is_posted(
    server: Server, page: Page, tmp_path: Path
):
    async with server.client() as admin:
        account = (await admin.post("/v1/accounts", json={"name": "Acme Parts", "timezone": "Europe/Madrid"})).json()
        shipment = (await admin.post("/v1/shipments", json=shipment_body(account_id=account["id"]))).json()
        path = shipment["tracking_url"].split("/t/", 1)[1]
        await page.goto(f"{server.url}/t/{path}")
        await expect(page.locator("#status")).to_have_text("Label created: the sender is preparing your parcel")
        # the promise on a 24-hour clock in the reader's zone (17:00 UTC is 18:00 in Madrid)
        await expect(page.locator("section.status")).to_contain_text("Thursday 10 January")
        await expect(page.locator("section.status")).to_contain_text("18:00")
        await assert_every_control_labelled(page)
        await page.evaluate("window.notReloaded = true")
        await page.screenshot(path=tmp_path / "tracking-before.png", full_page=True)

        r = await admin.post(
            f"/v1/shipments/{shipment['id']}/events",
            json={
                "status": "out_for_delivery",
                "occurred_at": "2029-12-01T08:00:00Z",
                "location": {"city": "Lyon", "country": "FR"},
            },
        )
        assert r.status_code == 201, r.text
        await expect(page.locator("#status")).to_have_text("Out for delivery today", timeout=5000)
        assert await page.evaluate("window.notReloaded") is True  # the same document: no reload
        await expect(page.locator(".timeline li")).to_have_count(1)
        await page.screenshot(path=tmp_path / "tracking-after.png", full_page=True)

        # delivered: the rating form appears in the page, still without a reload
        r = await admin.post(
            f"/v1/shipments/{shipment['id']}/events",
            json={
                "status": "delivered",
                "occurred_at": "2029-12-01T12:00:00Z",
                "location": {"city": "Lyon", "country": "FR"},
            },
        )
        assert r.status_code == 201, r.text
        await expect(page.locator("#status")).to_have_text("Delivered", timeout=5000)
        await expect(page.get_by_role("button", name="Send my rating")).to_be_visible()
        assert await page.evaluate("window.notReloaded") is True
        await assert_every_control_labelled(page)
        await page.screenshot(path=tmp_path / "tracking-delivered.png", full_page=True)
