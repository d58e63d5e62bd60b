"""``ddpm-tui serve`` in a real headless browser: Debian's chromium-headless-shell driven by Playwright.

The page draws the terminal on a canvas, so the tests read what the app sends: the websocket frames the
page receives, with ANSI codes removed. Playwright never downloads a browser here: it is pointed at the
system's Chromium (``.ci/run`` installs Debian's chromium-headless-shell); without one these tests skip.
On a failure the page's screenshot is saved beside the test's temporary files.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install -e '.[dev]')")

CHROMIUM = os.environ.get("DDPM_TUI_CHROMIUM") or shutil.which("chromium-headless-shell") or shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium found: apt-get install chromium-headless-shell (or set DDPM_TUI_CHROMIUM)"
)

# Chromium on a machine without internet: no background connections, no sandbox (CI runs as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ANSI = re.compile(r"\x1b\[[0-9;?<>]*[A-Za-z]")
TITLES = {
    "1": "Noise: the forward process",
    "2": "Train: learn to predict the noise",
    "3": "Sample: from noise to images",
}


class Tab:
    """One browser tab on the served app, collecting the text of every frame the app sends it."""

    def __init__(self, page, url: str, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.text = ""
        page.on("websocket", lambda ws: ws.on("framereceived", self.receive))
        page.goto(url)

    def receive(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self.text += ANSI.sub("", payload.decode("utf-8", "replace"))

    def wait_for(self, needle: str, timeout: float = 60) -> float:
        """Seconds until the app has sent ``needle``; on a timeout, a screenshot and a failure."""
        started = time.monotonic()
        while needle not in self.text:
            if time.monotonic() - started > timeout:
                shot = self.shots / f"failure-{len(list(self.shots.glob('*.png')))}.png"
                self.page.screenshot(path=shot)
                pytest.fail(f"the page never showed {needle!r} (screenshot: {shot})")
            self.page.wait_for_timeout(50)
        return time.monotonic() - started

    def press(self, key: str) -> float:
        """Press ``key`` in the terminal and wait for that screen's title: the key-to-screen latency."""
        self.text = ""
        self.page.keyboard.press(key)
        return self.wait_for(TITLES[key])


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_tab(browser, served_app, tmp_path: Path) -> Tab:
    tab = Tab(browser.new_page(viewport={"width": 1280, "height": 800}), served_app.url, tmp_path)
    tab.wait_for(TITLES["1"])
    tab.page.locator("#terminal").click()
    return tab


def test_the_page_shows_the_app_and_keys_switch_screens(browser, served_app, tmp_path):
    tab = open_tab(browser, served_app, tmp_path)
    tab.press("2")
    tab.press("3")
    tab.press("1")


def test_keys_work_without_a_click_and_again_after_the_tab_regains_focus(browser, served_app, tmp_path):
    """A learner told "press 3" presses 3: the terminal has the keyboard as soon as the first screen is drawn."""
    tab = Tab(browser.new_page(viewport={"width": 1280, "height": 800}), served_app.url, tmp_path)
    tab.wait_for(TITLES["1"])
    tab.press("3")
    tab.page.evaluate("document.activeElement.blur()")  # as when the learner clicks into another window
    tab.page.evaluate("window.dispatchEvent(new Event('focus'))")  # and comes back to the tab
    tab.press("2")


def test_two_tabs_are_two_apps_and_closing_a_tab_ends_its_app(browser, served_app, tmp_path):
    first = open_tab(browser, served_app, tmp_path)
    second = open_tab(browser, served_app, tmp_path)
    assert len(served_app.apps()) == 2
    second.text = ""
    first.press("2")
    second.page.wait_for_timeout(500)
    assert TITLES["2"] not in second.text, "a key pressed in one tab reached the other"
    first.page.close()
    served_app.wait_for(lambda: len(served_app.apps()) == 1, "the closed tab's app to end", timeout=10)
    second.press("3")


@pytest.fixture
def other_local_site() -> Iterator[str]:
    """Another web server on this machine (a page the user might visit), serving one blank page."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<p>hello</p>")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_page_from_another_local_site_cannot_open_the_apps_websocket(browser, served_app, other_local_site):
    """The attack the Origin check stops: a page the user visits opening ws://127.0.0.1:PORT/ws and typing
    into the app. Chromium itself keeps public sites away from loopback, but not another local page (a
    notebook server, a dev server), so the page here comes from another port of 127.0.0.1."""
    attempt = """url => new Promise(done => {
        const ws = new WebSocket(url);
        ws.onopen = () => done("open");
        ws.onerror = () => done("refused");
    })"""
    websocket = f"ws://127.0.0.1:{served_app.port}/ws"
    page = browser.new_page()
    page.goto(other_local_site)
    assert page.evaluate(attempt, websocket) == "refused"
    served_app.wait_for(
        lambda: f"refused a websocket from origin '{other_local_site}'" in served_app.log.read_text(), "the refusal"
    )
    assert served_app.apps() == []
    own = browser.new_page()
    own.goto(served_app.url)
    assert own.evaluate(attempt, websocket) == "open"
