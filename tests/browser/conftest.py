"""Real headless Chromium for the page tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# An upper bound on waiting for what a person or responder would see, not a pause:
# a 2-core machine running the whole suite answers the first turn of a model slower.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


@contextlib.contextmanager
def staying_on(page: Page, *allowed: str) -> Iterator[None]:
    """Fail if, while the block runs, the page requests anything outside ``allowed``
    (URL prefixes): nothing may leave the machine or tell a third party who visits."""
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    yield
    others = [url for url in requests if not url.startswith(allowed)]
    assert others == [], f"the page contacted another host: {others}"
