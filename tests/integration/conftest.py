"""The app in-process on a real database of the test's own, and keys to call it with."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from itertools import count

import asyncpg
import httpx
import msgspec
import pytest

from api.app import create_app
from api.shell import keys
from api.shell.settings import Settings

ADMIN_SECRET = "test-admin-secret-0123456789"

_tracking = count(1)


class Api:
    """Clients for each role on one running app."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.admin = self.as_key(ADMIN_SECRET)

    def as_key(self, secret: str) -> httpx.AsyncClient:
        return _Keyed(self.client, secret)

    async def new_account(self, name: str = "Acme", timezone: str = "UTC") -> str:
        r = await self.admin.post("/v1/accounts", json={"name": name, "timezone": timezone})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def new_key(self, role: str, account_id: str | None = None, carrier: str | None = None) -> dict:
        body: dict = {"role": role}
        if account_id:
            body["account_id"] = account_id
        if carrier:
            body["carrier"] = carrier
        r = await self.admin.post("/v1/keys", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    async def customer(self, name: str = "Acme") -> tuple[str, httpx.AsyncClient]:
        account_id = await self.new_account(name)
        key = await self.new_key("customer", account_id)
        return account_id, self.as_key(key["secret"])

    async def role(self, role: str, **kwargs) -> httpx.AsyncClient:
        return self.as_key((await self.new_key(role, **kwargs))["secret"])


class _Keyed:
    """The shared client, sending one key's Authorization header."""

    def __init__(self, client: httpx.AsyncClient, secret: str) -> None:
        self._client = client
        self.headers = {"Authorization": f"Bearer {secret}"}

    def __getattr__(self, method: str):
        call = getattr(self._client, method)

        async def send(url: str, **kwargs):
            headers = {**self.headers, **kwargs.pop("headers", {})}
            return await call(url, headers=headers, **kwargs)

        return send


def new_tracking_number() -> str:
    return f"TN{next(_tracking):08d}"


def shipment_body(**overrides) -> dict:
    body = {
        "carrier": "dhl",
        "tracking_number": new_tracking_number(),
        "promised_by": "2030-01-10T18:00:00+01:00",
        "reference": "order-1",
        "recipient": {"name": "Ana Ruiz", "email": "ana@example.com", "phone": "+34 600 000 000"},
        "origin": {"city": "Zaragoza", "country": "ES"},
        "destination": {"city": "Lyon", "country": "FR"},
    }
    body.update(overrides)
    return body


@pytest.fixture
async def app_settings() -> Settings:
    # The deadline sweep runs once at start (on an empty database) and then
    # waits an hour, so it never races a test; tests of it call it themselves.
    return Settings(bootstrap_admin_key=ADMIN_SECRET, pool_min_size=1, pool_max_size=5, deadline_poll_seconds=3600)


@contextlib.asynccontextmanager
async def running(database_url: str, settings: Settings) -> AsyncIterator[Api]:
    """An app on the database, its lifespan running (background loops included),
    and clients for it; stopped on leaving, as a process would be."""
    conn = await asyncpg.connect(database_url)
    try:
        await keys.ensure_admin_key(conn, ADMIN_SECRET)
    finally:
        await conn.close()
    app = create_app(settings, database_url=database_url)
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        # entered and left in one task, as the lifespan's task group requires
        async with app.lifespan():
            started.set()
            await stop.wait()

    # the app runs in the test's own event loop, as it would under uvicorn
    lifespan = asyncio.create_task(run_lifespan())
    await asyncio.wait_for(started.wait(), 10)
    try:
        await asyncio.wait_for(app.state.listener.connected.wait(), 10)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client)
    finally:
        stop.set()
        await lifespan


@pytest.fixture
async def api(database_url: str, app_settings: Settings) -> AsyncIterator[Api]:
    async with running(database_url, app_settings) as api:
        yield api


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection of the test's own, to look at what was written."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


def problem(response: httpx.Response) -> dict:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = msgspec.json.decode(response.content)
    assert body["status"] == response.status_code
    return body
