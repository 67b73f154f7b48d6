"""A Spanish reader's tracking page in a real browser: delivery arrives live, the
page then offers the rating form itself, takes one rating and refuses a second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.async_api import Browser, expect

from tests.e2e.conftest import Server
from tests.integration.conftest import shipment_body


async def test_the_tracking_page_offers_the_rating_once_delivered_and_takes_it_once(
    server: Server, browser: Browser, tmp_path: Path
):
    context = await browser.new_context(locale="es-ES", timezone_id="Europe/Madrid")
    page = await context.new_page()
    try:
        async with server.client() as admin:
            account = (
                await admin.post("/v1/accounts", json={"name": "Tienda Sol", "timezone": "Europe/Madrid"})
            ).json()
            shipment = (await admin.post("/v1/shipments", json=shipment_body(account_id=account["id"]))).json()
            path = shipment["tracking_url"].split("/t/", 1)[1]
            await page.goto(f"{server.url}/t/{path}")
            await expect(page.get_by_role("heading", level=1)).to_have_text("¿Dónde está mi paquete?")
            await expect(page.get_by_role("heading", name="¿Qué tal fue la entrega?")).to_have_count(0)
            await page.evaluate("window.notReloaded = true")

            delivered = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0)
            r = await admin.post(
                f"/v1/shipments/{shipment['id']}/events",
                json={"status": "delivered", "occurred_at": delivered.isoformat(), "location": {"city": "Lyon"}},
            )
            assert r.status_code == 201, r.text
            feedback_url = (await admin.get(f"/v1/shipments/{shipment['id']}")).json()["feedback_url"]
        await expect(page.locator("#status")).to_have_text("Entregado", timeout=5000)
        assert await page.evaluate("window.notReloaded") is True  # it came over the websocket
        await expect(page.get_by_role("heading", name="¿Qué tal fue la entrega?")).to_be_visible()
        await page.get_by_label("5 – Excelente").check()
        await page.get_by_label("¿Quiere contarnos algo?").fill("Muy rápido")
        await page.screenshot(path=tmp_path / "tracking-rating-es.png", full_page=True)
        await page.get_by_role("button", name="Enviar mi valoración").click()
        await expect(page.get_by_role("status")).to_contain_text("Hemos recibido su valoración")

        await page.goto(f"{server.url}/t/{path}")  # the form is gone once rated
        await expect(page.locator("#status")).to_have_text("Entregado")
        await expect(page.get_by_role("button", name="Enviar mi valoración")).to_have_count(0)
        again = await page.request.post(
            f"{server.url}/f/{feedback_url.split('/f/', 1)[1]}", form={"rating": "1"}, headers={"Accept-Language": "es"}
        )
        assert again.status == 409 and "ya ha sido valorada" in await again.text()
        await page.screenshot(path=tmp_path / "tracking-rated-es.png", full_page=True)
    finally:
        await context.close()
