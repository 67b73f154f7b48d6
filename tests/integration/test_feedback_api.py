"""Satisfaction after delivery: the feedback link, keyless ratings, single use,
expiry, forgery, rate limits, the complaint case and the shipper's reading."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from api.shell.settings import Settings
from tests.integration.conftest import ADMIN_SECRET, Api, problem, shipment_body


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def delivered(api: Api, *, days_ago: float = 1, late: bool = False) -> tuple[str, object, dict]:
    """A shipment delivered `days_ago`, on time (or after its promise); its account, customer and body."""
    account_id, customer = await api.customer()
    delivered_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_ago)
    promised_by = delivered_at - timedelta(hours=2) if late else delivered_at + timedelta(days=2)
    created = await customer.post("/v1/shipments", json=shipment_body(promised_by=_iso(promised_by)))
    assert created.status_code == 201, created.text
    assert created.json()["feedback_url"] is None  # not delivered yet
    shipment_id = created.json()["id"]
    r = await customer.post(
        f"/v1/shipments/{shipment_id}/events", json={"status": "delivered", "occurred_at": _iso(delivered_at)}
    )
    assert r.status_code == 201, r.text
    shipment = (await customer.get(f"/v1/shipments/{shipment_id}")).json()
    return account_id, customer, shipment


def token_of(shipment: dict) -> str:
    url = shipment["feedback_url"]
    assert url.startswith("http://127.0.0.1:8000/f/"), url
    return url.rsplit("/", 1)[1]


async def test_a_delivered_shipment_has_a_stable_feedback_link_that_the_recipient_uses_once_without_a_key(api: Api):
    _, customer, shipment = await delivered(api)
    token = token_of(shipment)
    again = (await customer.get(f"/v1/shipments/{shipment['id']}")).json()
    assert again["feedback_url"] == shipment["feedback_url"]  # the same link however often it is read

    view = await api.client.get(f"/v1/feedback/{token}")
    assert view.status_code == 200, view.text
    assert view.json()["shipper"] == "Acme" and view.json()["answered"] is False
    assert "recipient" not in view.json() and "tracking_number" not in view.json()

    r = await api.client.post(f"/v1/feedback/{token}", json={"rating": 5, "comment": "  Lovely, thanks  "})
    assert r.status_code == 201, r.text
    assert (r.json()["rating"], r.json()["comment"], r.json()["on_time"]) == (5, "Lovely, thanks", True)

    second = await api.client.post(f"/v1/feedback/{token}", json={"rating": 1})
    assert second.status_code == 409 and problem(second)["type"].endswith("/already-rated")
    assert (await api.client.get(f"/v1/feedback/{token}")).json()["answered"] is True

    read = await customer.get(f"/v1/shipments/{shipment['id']}/feedback")
    assert read.status_code == 200 and read.json()["rating"] == 5

    feed = (await customer.get("/v1/changes")).json()["items"]
    received = [c for c in feed if c["type"] == "feedback_received"]
    assert [c["feedback"]["rating"] for c in received] == [5]


async def test_a_late_delivery_is_rated_as_late(api: Api, db: asyncpg.Connection):
    _, _, shipment = await delivered(api, late=True)
    r = await api.client.post(f"/v1/feedback/{token_of(shipment)}", json={"rating": 3})
    assert r.status_code == 201, r.text
    assert r.json()["on_time"] is False
    assert await db.fetchval("select on_time from feedback where shipment_id = $1", shipment["id"]) is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": 0}, "$.rating"),
        ({"rating": 6}, "$.rating"),
        ({"rating": "5"}, "$.rating"),
        ({"rating": 4.5}, "$.rating"),
        ({}, "$.rating"),
        ({"rating": 4, "comment": "x" * 2001}, "$.comment"),
        ({"rating": 4, "comment": "a\x00b"}, "$.comment"),
        ({"rating": 4, "extra": 1}, "$.extra"),
    ],
)
async def test_a_bad_rating_is_a_400_naming_the_field_and_nothing_is_written(
    api: Api, db: asyncpg.Connection, body: dict, field: str
):
    _, _, shipment = await delivered(api)
    r = await api.client.post(f"/v1/feedback/{token_of(shipment)}", json=body)
    assert r.status_code == 400, r.text
    assert [e["path"] for e in problem(r)["errors"]] == [field]
    assert await db.fetchval("select count(*) from feedback") == 0


async def test_a_forged_or_altered_link_is_a_404_that_says_nothing_more(api: Api):
    _, _, shipment = await delivered(api)
    token = token_of(shipment)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for forged in (flipped, "A" * 40, token + "A", "not-a-token"):
        r = await api.client.post(f"/v1/feedback/{forged}", json={"rating": 5})
        assert r.status_code == 404, (forged, r.text)
        assert problem(r)["detail"] == "no such feedback link; check that the whole link was copied"


async def test_a_link_expires_thirty_days_after_the_delivery(api: Api, db: asyncpg.Connection):
    _, _, shipment = await delivered(api, days_ago=31)
    token = token_of(shipment)
    for r in (
        await api.client.get(f"/v1/feedback/{token}"),
        await api.client.post(f"/v1/feedback/{token}", json={"rating": 5}),
    ):
        assert r.status_code == 410, r.text
        assert problem(r)["type"].endswith("/feedback-link-expired")
    assert await db.fetchval("select count(*) from feedback") == 0


async def test_a_low_rating_opens_a_complaint_case_when_the_account_asks(api: Api, db: asyncpg.Connection):
    account_id, customer, shipment = await delivered(api)
    await db.execute(
        "insert into case_auto_open (account_id, trigger, type, priority) values ($1, 'low_rating', 'complaint', 'high')",
        account_id,
    )
    r = await api.client.post(f"/v1/feedback/{token_of(shipment)}", json={"rating": 2, "comment": "box crushed"})
    assert r.status_code == 201, r.text
    case = await db.fetchrow("select type, opened_by, priority from cases where shipment_id = $1", shipment["id"])
    assert tuple(case) == ("complaint", "low_rating", "high")
    kinds = [c["type"] for c in (await customer.get("/v1/changes")).json()["items"]]
    assert kinds[-2:] == ["feedback_received", "case_opened"]


async def test_a_good_rating_opens_no_case(api: Api, db: asyncpg.Connection):
    account_id, _, shipment = await delivered(api)
    await db.execute(
        "insert into case_auto_open (account_id, trigger, type, priority) values ($1, 'low_rating', 'complaint', 'high')",
        account_id,
    )
    assert (await api.client.post(f"/v1/feedback/{token_of(shipment)}", json={"rating": 3})).status_code == 201
    assert await db.fetchval("select count(*) from cases") == 0


async def test_two_ratings_posted_at_once_make_one_rating(api: Api, db: asyncpg.Connection):
    _, _, shipment = await delivered(api)
    token = token_of(shipment)
    answers = await asyncio.gather(*(api.client.post(f"/v1/feedback/{token}", json={"rating": r}) for r in (1, 5)))
    assert sorted(a.status_code for a in answers) == [201, 409]
    assert await db.fetchval("select count(*) from feedback") == 1
    assert await db.fetchval("select count(*) from changes where kind = 'feedback_received'") == 1


async def test_only_the_shippers_account_and_the_desk_read_the_rating(api: Api):
    _, customer, shipment = await delivered(api)
    await api.client.post(f"/v1/feedback/{token_of(shipment)}", json={"rating": 4})
    _, other = await api.customer("Other")
    carrier = await api.role("carrier", carrier="dhl")
    support = await api.role("support")
    assert (await other.get(f"/v1/shipments/{shipment['id']}/feedback")).status_code == 404
    assert (await carrier.get(f"/v1/shipments/{shipment['id']}/feedback")).status_code == 404
    assert (await support.get(f"/v1/shipments/{shipment['id']}/feedback")).json()["rating"] == 4
    unrated = (await customer.post("/v1/shipments", json=shipment_body())).json()
    r = await customer.get(f"/v1/shipments/{unrated['id']}/feedback")
    assert r.status_code == 404 and problem(r)["detail"] == "the recipient has not rated this shipment"


@pytest.fixture
async def app_settings() -> Settings:
    return Settings(
        bootstrap_admin_key=ADMIN_SECRET,
        pool_min_size=1,
        pool_max_size=5,
        deadline_poll_seconds=3600,
        feedback_per_address_per_minute=30,
        feedback_per_link_per_minute=6,
    )


async def test_a_link_tried_too_often_is_a_429_with_retry_after(api: Api):
    _, _, shipment = await delivered(api)
    token = token_of(shipment)
    codes = [(await api.client.get(f"/v1/feedback/{token}")).status_code for _ in range(7)]
    assert codes == [200] * 6 + [429]
    r = await api.client.post(f"/v1/feedback/{token}", json={"rating": 5})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert problem(r)["type"].endswith("/too-many-requests")
    # another link from the same address still answers, up to the address's own limit
    _, _, other = await delivered(api)
    assert (await api.client.get(f"/v1/feedback/{token_of(other)}")).status_code == 200


async def test_one_address_trying_many_links_is_stopped(api: Api):
    codes = [(await api.client.get(f"/v1/feedback/guess{i:04d}")).status_code for i in range(31)]
    assert codes[:30] == [404] * 30 and codes[30] == 429


async def test_the_recipient_rates_through_the_page_in_their_language_once(api: Api, db: asyncpg.Connection):
    _, _, shipment = await delivered(api)
    path = "/f/" + token_of(shipment)
    page = await api.client.get(path, headers={"Accept-Language": "fr-FR, es;q=0.8, en;q=0.5"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "¿Qué tal fue la entrega?" in page.text and 'lang="es"' in page.text
    assert page.text.count('type="radio" name="rating"') == 5 and '<label for="comment">' in page.text
    assert "http" not in page.text.replace(f"{shipment['feedback_url']}", "")  # nothing from another host

    missing = await api.client.post(path, data={"comment": "no rating"})
    assert missing.status_code == 400 and "Please choose a rating from 1 to 5." in missing.text
    assert "no rating" in missing.text  # the comment is kept for the second try

    sent = await api.client.post(path, data={"rating": "2", "comment": "<script>alert(1)</script>"})
    assert sent.status_code == 200 and "Your rating has been received" in sent.text
    assert (await db.fetchrow("select rating, comment from feedback")) == (2, "<script>alert(1)</script>")

    again = await api.client.post(path, data={"rating": "5"})
    assert again.status_code == 409 and "already been rated" in again.text
    assert "already been rated" in (await api.client.get(path)).text


async def test_the_page_escapes_the_shippers_name_and_refuses_bad_links_in_plain_words(api: Api):
    account = await api.admin.post("/v1/accounts", json={"name": "<b>Evil & Co</b>", "timezone": "UTC"})
    key = await api.new_key("customer", account.json()["id"])
    customer = api.as_key(key["secret"])
    created = (await customer.post("/v1/shipments", json=shipment_body())).json()
    when = _iso(datetime.now(UTC) - timedelta(hours=3))
    await customer.post(f"/v1/shipments/{created['id']}/events", json={"status": "delivered", "occurred_at": when})
    shipment = (await customer.get(f"/v1/shipments/{created['id']}")).json()
    page = await api.client.get("/f/" + token_of(shipment))
    assert "&lt;b&gt;Evil &amp; Co&lt;/b&gt;" in page.text and "<b>Evil" not in page.text

    forged = await api.client.get("/f/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert forged.status_code == 404 and "could not find this link" in forged.text
