"""The recipient's tracking page over HTTP (its live behaviour in a real browser
is in tests/browser/): the link from the shipment, the words, what it hides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.conftest import Api, shipment_body


async def _shipment(api: Api, **overrides) -> tuple[object, dict]:
    _, customer = await api.customer("Acme Parts")
    created = await customer.post(
        "/v1/shipments", json=shipment_body(metadata={"internal": "secret-sku-991"}, **overrides)
    )
    assert created.status_code == 201, created.text
    return customer, created.json()


async def test_the_shipment_links_to_its_tracking_page_which_says_where_it_is_in_the_readers_language(api: Api):
    customer, shipment = await _shipment(api)
    url = shipment["tracking_url"]
    assert url.startswith("http://127.0.0.1:8000/t/")
    path = url.removeprefix("http://127.0.0.1:8000")
    await customer.post(
        f"/v1/shipments/{shipment['id']}/events",
        json={
            "status": "in_transit",
            "occurred_at": "2029-12-01T10:00:00Z",
            "location": {"city": "Zaragoza", "country": "ES"},
        },
    )
    english = await api.client.get(path)
    assert english.status_code == 200 and 'lang="en"' in english.text
    assert "On its way" in english.text and "Zaragoza" in english.text and "Acme Parts" in english.text
    assert "Arrives by" in english.text
    spanish = await api.client.get(path, headers={"Accept-Language": "es-ES,es;q=0.9"})
    assert "En camino" in spanish.text and "Llega antes del" in spanish.text
    # the shipper's own data stays off the page
    assert "secret-sku-991" not in english.text and shipment["account_id"] not in english.text
    assert "Ana Ruiz" not in english.text  # the recipient's name, phone, email: not on a page anyone with the link sees
    assert "https://" not in english.text and "//cdn" not in english.text


async def test_a_late_shipment_says_so_in_words(api: Api):
    _, shipment = await _shipment(api, promised_by="2026-01-10T18:00:00Z")
    page = await api.client.get(shipment["tracking_url"].removeprefix("http://127.0.0.1:8000"))
    assert "Late: it was promised by" in page.text and 'id="late"' in page.text
    assert '<time datetime="2026-01-10T18:00:00+00:00">' in page.text  # the promise too in the reader's zone
    assert "Arrives by" not in page.text  # never "arrives by" a time already past


async def test_a_forged_link_is_a_404_page(api: Api):
    _, shipment = await _shipment(api)
    token = shipment["tracking_url"].rsplit("/", 1)[1]
    forged = await api.client.get(f"/t/{token[:-1]}{'A' if token[-1] != 'A' else 'B'}")
    assert forged.status_code == 404 and "could not find this tracking link" in forged.text
    # a feedback token is no tracking token
    assert (await api.client.get("/t/" + "A" * 40)).status_code == 404


async def test_after_delivery_the_page_takes_the_rating_and_then_no_longer_asks(api: Api):
    customer, shipment = await _shipment(api)
    await customer.post(
        f"/v1/shipments/{shipment['id']}/events",
        json={"status": "delivered", "occurred_at": (datetime.now(UTC) - timedelta(hours=3)).isoformat()},
    )
    path = shipment["tracking_url"].removeprefix("http://127.0.0.1:8000")
    page = await api.client.get(path)
    assert "Delivered" in page.text and 'name="rating"' in page.text
    action = page.text.split('<form method="post" action="', 1)[1].split('"', 1)[0]
    assert action.startswith("/f/")
    rated = await api.client.post(action, data={"rating": "4"})
    assert rated.status_code == 200 and "Your rating has been received" in rated.text
    assert 'name="rating"' not in (await api.client.get(path)).text


async def test_an_exceptions_reason_is_the_headline_only_while_the_exception_stands(api: Api):
    customer, shipment = await _shipment(api)
    path = shipment["tracking_url"].removeprefix("http://127.0.0.1:8000")
    events = f"/v1/shipments/{shipment['id']}/events"
    await customer.post(
        events, json={"status": "exception", "reason": "damaged", "occurred_at": "2029-12-01T10:00:00Z"}
    )
    page = await api.client.get(path)
    assert "Why: " in page.text
    # a later exception scan that gives no reason leaves the standing one in place
    await customer.post(events, json={"status": "exception", "occurred_at": "2029-12-01T11:00:00Z"})
    assert "Why: " in (await api.client.get(path)).text
    await customer.post(events, json={"status": "in_transit", "occurred_at": "2029-12-01T12:00:00Z"})
    page = await api.client.get(path)
    assert "Why: " not in page.text and "On its way" in page.text
