"""The app in a web browser: textual-serve's server, made safe to leave running on a laptop.

textual-serve (from the Textual authors) serves a page whose terminal (xterm.js) talks over a websocket to
one app process per browser tab. Three things are added here, and nothing else is changed:

- **Origin check.** A browser sends every websocket's ``Origin``; any page the user visits could otherwise
  open ``ws://127.0.0.1:PORT/ws`` and drive the app with key presses. The websocket is refused (HTTP 403)
  unless its Origin is this server's own URL.
- **No orphans.** Every app process is tracked; closing the tab, Ctrl+C or SIGTERM asks it to quit and
  kills it after a grace period. Training runs are not app processes: the Train screen starts them in their
  own session, so they keep running, exactly as when the terminal app quits.
- **Offline page.** The page's stylesheet link to Google Fonts is replaced by the Roboto Mono font that
  textual-serve ships, so the page never waits on the network.
- **Keys from the start.** The terminal takes the keyboard focus as soon as the app has drawn its first
  screen, and again whenever the tab regains focus, so "press 3" works without a click first.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
import signal
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from .console import console, fail

log = logging.getLogger("textual-serve")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
QUIT_GRACE_S = 3.0
"""How long an app process gets to quit when asked, before it is killed."""

GOOGLE_FONTS_LINK = re.compile(r"<link[^>]*fonts\.googleapis\.com[^>]*>", re.DOTALL)
BUNDLED_FONT = (
    '<style>@font-face { font-family: "Roboto Mono"; '
    'src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype"); }</style>'
)


def app_command() -> str:
    """The shell command each tab's app process runs: this interpreter and this package, ``exec``'d so that
    the process the server tracks is the app itself, not a shell around it."""
    return f"exec {shlex.quote(sys.executable)} -m ddpm_tui"


def origin_of(url: str) -> str:
    """The Origin a browser sends for pages under ``url``: ``scheme://host[:port]``, no path."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"--public_url must be an http:// or https:// URL with a host, not {url!r}")
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(port: int, public_url: str) -> frozenset[str]:
    """The Origins whose websockets are accepted: the loopback URLs of ``port`` and the public URL."""
    loopback = {f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"}
    return frozenset(loopback | {origin_of(public_url)})


def check_port_free(host: str, port: int) -> None:
    """Fail with one line, before anything starts, if ``host:port`` cannot be bound."""
    if not 1 <= port <= 65535:
        fail(f"--port must be between 1 and 65535, not {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        fail(f"cannot resolve --host {host}: {err.strerror or err}")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            fail(f"cannot listen on {host}:{port}: {err.strerror or err} (choose another --port)")


# The page's terminal reads keys through xterm.js's hidden textarea. Focus it once the app's first bytes
# have arrived (textual.js then marks the body "-first-byte"), and whenever the tab or window comes back.
FOCUS_SCRIPT = """<script>
(function () {
  function focusTerminal() {
    var input = document.querySelector("#terminal .xterm-helper-textarea");
    if (input && document.body.classList.contains("-first-byte") && document.activeElement !== input) {
      input.focus();
    }
  }
  new MutationObserver(focusTerminal).observe(document.body, {attributes: true, childList: true, subtree: true});
  window.addEventListener("focus", focusTerminal);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { focusTerminal(); } });
})();
</script>
</body>"""


class AppServer(Server):
    """Serves ``ddpm-tui`` with an Origin check, tracked app processes and an offline page."""

    def __init__(self, host: str, port: int, public_url: str) -> None:
        super().__init__(app_command(), host=host, port=port, title="ddpm-tui", public_url=public_url.rstrip("/"))
        self.allowed = allowed_origins(port, public_url)
        self.sessions: dict[AppService, web.WebSocketResponse] = {}

    # ----- the page -------------------------------------------------------------------------------

    def offline_template(self, name: str) -> str:
        """textual-serve's page template with its Google Fonts link replaced by the bundled font, and the
        script that gives the terminal the keyboard focus."""
        text = (Path(self.templates_path) / name).read_text()
        return GOOGLE_FONTS_LINK.sub(lambda _: BUNDLED_FONT, text).replace("</body>", FOCUS_SCRIPT, 1)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        aiohttp_jinja2.setup(app, loader=jinja2.FunctionLoader(self.offline_template))
        return app

    # ----- the websocket --------------------------------------------------------------------------

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One tab: refuse a foreign Origin (403), otherwise run an app process for as long as the tab."""
        origin = request.headers.get("Origin", "").lower()
        if origin not in self.allowed:
            log.warning("refused a websocket from origin %r (only %s may connect)", origin, self.public_url)
            raise web.HTTPForbidden(text=f"websocket refused: origin {origin!r} is not {self.public_url}\n")
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        service = AppService(
            self.command,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=websocket.close,
            download_manager=self.download_manager,
            debug=self.debug,
        )
        self.sessions[service] = websocket
        try:
            width = to_int(request.query.get("width", "80"), 80)
            height = to_int(request.query.get("height", "24"), 24)
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            pass
        finally:
            self.sessions.pop(service, None)
            await end_app(service)
            await websocket.close()
        return websocket

    # ----- start and stop -------------------------------------------------------------------------

    async def on_startup(self, app: web.Application) -> None:
        port = self.port
        console.print(f"ddpm-tui is served at [bold]{self.public_url}[/] (each browser tab runs its own app)")
        if self.host in LOOPBACK_HOSTS:
            console.print(
                f"From another computer, forward the port first: [bold]ssh -L {port}:127.0.0.1:{port} "
                f"{socket.gethostname()}[/], then open http://127.0.0.1:{port}"
            )
        console.print("Ctrl+C stops the server and its apps; training runs started from a tab keep running.")

    async def on_shutdown(self, app: web.Application) -> None:
        """Ctrl+C or SIGTERM: every app process quits (or is killed), every tab's websocket closes."""
        sessions = list(self.sessions.items())
        await asyncio.gather(*(end_app(service) for service, _ in sessions))
        await asyncio.gather(*(websocket.close() for _, websocket in sessions))

    def serve(self, debug: bool = False) -> None:
        """Run until Ctrl+C or SIGTERM."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_exit)
        web.run_app(
            self._make_app(),
            host=self.host,
            port=self.port,
            handle_signals=False,
            loop=loop,
            print=None,
            shutdown_timeout=QUIT_GRACE_S + 2,
        )


async def end_app(service: AppService) -> None:
    """Ask one app process to quit; kill it if it has not within :data:`QUIT_GRACE_S` seconds."""
    process = service._process  # textual-serve keeps the process private; it is pinned to 1.1.3
    if process is None:
        return
    if process.returncode is None:
        await service.send_meta({"type": "quit"})
        try:
            await asyncio.wait_for(process.wait(), QUIT_GRACE_S)
        except asyncio.TimeoutError:
            log.warning("app process %d did not quit; killing it", process.pid)
            process.kill()
            await process.wait()
    await service.stop()


if __name__ == "__main__":
    # ``python -m ddpm_tui.web HOST PORT PUBLIC_URL``, exec'd by ``ddpm-tui serve`` once its flags are checked.
    host, port, public_url = sys.argv[1:]
    AppServer(host, int(port), public_url).serve()
