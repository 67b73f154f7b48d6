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


# every visible form control has a name a screen reader says: a <label>, or aria-label(ledby)
UNLABELLED = """() => Array.from(document.querySelectorAll("input, select, textarea"))
  .filter(el => el.type !== "hidden")
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
  .filter(el => !(el.type === "radio" && el.closest("label")))
  .map(el => el.outerHTML)"""


async def assert_every_control_labelled(page: Page) -> None:
    unlabelled = await page.evaluate(UNLABELLED)
    assert not unlabelled, f"form controls without a label on {page.url}: {unlabelled}"


async def tab_to(page: Page, selector: str, presses: int = 25) -> None:
    """Moves the focus with the Tab key alone until `selector` has it: reachable by keyboard."""
    for _ in range(presses):
        await page.keyboard.press("Tab")
        if await page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with the Tab key on {page.url}")
