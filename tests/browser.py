"""Debian's Chromium under Playwright's sync API, for the walkthroughs in a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connections
from playwright.sync_api import Browser, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    """A launched Chromium, closed afterwards with what the test opened meanwhile."""
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # ordinary synchronous code, which Django would otherwise refuse inside a running loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
            # While that loop runs, the ORM's connections are not the ones pytest-django knows
            # (asgiref keeps them per context): close them here, or one left open stops the
            # test database from being dropped at the end of the run.
            connections.close_all()
