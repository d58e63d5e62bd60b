"""``ddpm-tui serve`` in a real browser: time to first screen, key-to-screen latency, memory, screenshots.

Uses the same served app and browser tab as ``tests/test_browser.py`` (Debian's chromium-headless-shell
driven by Playwright) and writes a screenshot of each of the first three screens:

    .venv/bin/python benchmarks/serve_browser.py [--tabs 3] [--presses 12] [--output outputs/serve]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import ServedApp  # noqa: E402
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, TITLES, Tab, sync_api  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", type=int, default=3, help="tabs opened one after another (time to first screen)")
    parser.add_argument("--presses", type=int, default=12, help="screen keys pressed (latency)")
    parser.add_argument("--output", type=Path, default=Path("outputs/serve"))
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    if CHROMIUM is None:
        sys.exit("no Chromium: apt-get install chromium-headless-shell")

    with tempfile.TemporaryDirectory() as folder, sync_api.sync_playwright() as playwright:
        server = ServedApp(Path(folder))
        try:
            server_idle = rss_mb(server.process.pid)
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            first_screen = []
            for _ in range(args.tabs):
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                started = time.monotonic()
                tab = Tab(page, server.url, args.output)
                tab.wait_for(TITLES["1"])
                first_screen.append(time.monotonic() - started)
                if len(first_screen) < args.tabs:
                    page.close()
                    server.wait_for(lambda: server.apps() == [], "the tab's app to end")
            tab.page.locator("#terminal").click()
            keys = [("2", "3", "1")[i % 3] for i in range(args.presses)]
            latency = [tab.press(key) for key in keys]
            (app,) = server.apps()
            for key, name in (("2", "train"), ("3", "sample"), ("1", "noise")):
                tab.press(key)
                tab.page.wait_for_timeout(1000)
                tab.page.screenshot(path=args.output / f"{name}.png")
            app_rss, server_rss = rss_mb(app), rss_mb(server.process.pid)
            browser.close()
        finally:  # a failed measurement leaves no server or app behind
            if server.process.poll() is None:
                server.stop(2)

    print(
        f"time to first screen (page load to the Noise title, {args.tabs} tabs): "
        f"median {statistics.median(first_screen):.2f} s, max {max(first_screen):.2f} s"
    )
    print(
        f"key to screen ({args.presses} presses of 1/2/3): median {1000 * statistics.median(latency):.0f} ms, "
        f"max {1000 * max(latency):.0f} ms"
    )
    print(f"memory: server {server_idle:.0f} MB idle, {server_rss:.0f} MB serving; one app {app_rss:.0f} MB")
    print(f"screenshots: {', '.join(str(args.output / n) for n in ('noise.png', 'train.png', 'sample.png'))}")


if __name__ == "__main__":
    main()
