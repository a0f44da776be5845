"""A live refurb server on a free port and a headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from refurb.app import create_app
from refurb.config import Settings
from refurb.db import make_engine
from refurb.models import metadata

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(self, tmp_path: Any) -> None:
        self.engine = make_engine(url=f"sqlite:///{tmp_path / 'browser.db'}")
        metadata.create_all(self.engine)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        settings = Settings(database_url=str(self.engine.url), check_schema_on_start=False, ingest_enabled=False,
                            public_base_url=self.base)
        self.app = create_app(settings, engine=self.engine, start_background=False)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 15
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.engine.dispose()


@pytest.fixture
def live(tmp_path) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    with LiveServer(tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("REFURB_TEST_REQUIRE_SERVICES"):
            pytest.fail("chromium is not installed: .ci/system-deps.sh should have installed it")
        pytest.skip("Debian chromium is not installed (apt-get install chromium chromium-driver)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.js_errors = []
    pg.on("pageerror", lambda e: pg.js_errors.append(str(e)))
    yield pg
    context.close()


def login(page: Any, base: str, username: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
