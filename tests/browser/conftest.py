"""A real browser on a served ontime: Playwright for Python driving Debian's
Chromium (/usr/bin/chromium; `make test` installs it when missing, and no
browser is ever downloaded), one `ontime serve` process on the test's own
database. Screenshots go to the test's temporary directory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.e2e.conftest import ADMIN_SECRET, Server, StartServers, log_dir, start_servers  # noqa: F401 (fixtures)

CHROMIUM = Path(os.environ.get("ONTIME_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_INSTALLED = CHROMIUM.exists()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_INSTALLED:
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="en-GB", timezone_id="Europe/Madrid")
    opened = await context.new_page()
    # nothing a page loads may come from another host
    foreign: list[str] = []
    opened.on(
        "request",
        lambda r: (
            foreign.append(r.url) if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:")) else None
        ),
    )
    yield opened
    await context.close()
    assert not foreign, f"the page fetched from another host: {foreign}"


@pytest.fixture
async def server(database_url: str, start_servers: StartServers) -> Server:  # noqa: F811 (the fixture above)
    (served,) = await start_servers(database_url, 1, ONTIME_DEADLINE_POLL_SECONDS="0.2")
    return served
