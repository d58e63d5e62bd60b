"""``ddpm_tui.web`` and ``ddpm-tui serve`` over real websockets: the Origin check, one app process per
connection, no orphans.

The browser itself is driven in ``test_browser.py``; these tests speak the page's websocket protocol
(textual-serve's JSON envelopes in, the app's terminal output out) with aiohttp.
"""

from __future__ import annotations

import re
import signal
import socket
import time

import aiohttp
import pytest

from ddpm_tui.cli import main
from ddpm_tui.web import QUIT_GRACE_S, allowed_origins, end_app

ANSI = re.compile(r"\x1b\[[0-9;?<>]*[A-Za-z]")
NOISE_TITLE = "Noise: the forward process"
TRAIN_TITLE = "Train: learn to predict the noise"


async def screen_text_until(websocket: aiohttp.ClientWebSocketResponse, needle: str, timeout: float = 60) -> str:
    """Read the app's terminal output (ANSI codes removed) until ``needle`` appears."""
    text = ""
    deadline = time.monotonic() + timeout
    while needle not in text:
        message = await websocket.receive(timeout=max(0.1, deadline - time.monotonic()))
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            raise AssertionError(f"the app closed before showing {needle!r}")
        if message.type == aiohttp.WSMsgType.BINARY:
            text += ANSI.sub("", message.data.decode("utf-8", "replace"))
    return text


def connect(session: aiohttp.ClientSession, url: str, origin: str | None):
    headers = {"Origin": origin} if origin else {}
    return session.ws_connect(f"{url}/ws?width=100&height=32", headers=headers)


def wait_until(condition, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_allowed_origins_are_the_servers_own_urls():
    assert allowed_origins(8000, "https://ddpm.example.org/app/") == {
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://[::1]:8000",
        "https://ddpm.example.org",
    }


async def test_the_page_works_offline_and_points_at_this_server(served_app):
    async with aiohttp.ClientSession() as session, session.get(served_app.url) as response:
        page = await response.text()
    assert response.status == 200
    assert "googleapis" not in page and "fonts/RobotoMono-VariableFont_wght.ttf" in page
    assert f'data-session-websocket-url="ws://127.0.0.1:{served_app.port}/ws"' in page


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:1", None])
async def test_a_foreign_or_missing_origin_is_refused_with_403(served_app, origin):
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await connect(session, served_app.url, origin)
    assert refused.value.status == 403
    assert served_app.apps() == []


async def test_each_connection_is_its_own_app_and_closing_it_ends_the_process(served_app):
    async with aiohttp.ClientSession() as session:
        first = await connect(session, served_app.url, served_app.url)
        second = await connect(session, served_app.url, f"http://localhost:{served_app.port}")
        await screen_text_until(first, NOISE_TITLE)
        await screen_text_until(second, NOISE_TITLE)
        assert len(served_app.apps()) == 2
        await first.send_json(["stdin", "2"])
        await screen_text_until(first, TRAIN_TITLE)
        await first.close()
        assert wait_until(lambda: len(served_app.apps()) == 1), served_app.apps()
        await second.send_json(["stdin", "3"])
        await screen_text_until(second, "Sample: from noise to images")
        await second.close()
        assert wait_until(lambda: served_app.apps() == [])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl+C"])
async def test_stopping_the_server_ends_every_app(served_app, signum):
    async with aiohttp.ClientSession() as session:
        tabs = [await connect(session, served_app.url, served_app.url) for _ in range(2)]
        for tab in tabs:
            await screen_text_until(tab, NOISE_TITLE)
        apps = served_app.apps()
        assert len(apps) == 2
        started = time.monotonic()
        served_app.stop(signum)
        assert time.monotonic() - started < 8
    assert served_app.process.returncode == 0
    for pid in apps:
        assert not alive(pid), f"app process {pid} outlived the server"


async def test_an_app_that_does_not_quit_is_killed_after_the_grace_period():
    from textual_serve.app_service import AppService
    from textual_serve.download_manager import DownloadManager

    async def ignore(*_: object) -> None:
        return None

    service = AppService(
        "exec sleep 60", write_bytes=ignore, write_str=ignore, close=ignore, download_manager=DownloadManager()
    )
    await service.start(80, 24)
    started = time.monotonic()
    await end_app(service)
    assert service._process.returncode == -signal.SIGKILL
    assert QUIT_GRACE_S <= time.monotonic() - started < QUIT_GRACE_S + 2


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


SERVE_BAD_INPUTS = [
    (["--port", "0"], "--port must be between 1 and 65535, not 0"),
    (["--port", "70000"], "--port must be between 1 and 65535"),
    (["--port", "eighty"], "expected an integer"),
    (["--host", "0.0.0.0"], "--host 0.0.0.0 needs --public_url"),
    (["--host", "0.0.0.0", "--public_url", "ftp://box"], "must be an http:// or https:// URL"),
    (["--host", "no-such-host.invalid", "--public_url", "http://x"], "cannot resolve --host"),
]


@pytest.mark.parametrize("argv,message", SERVE_BAD_INPUTS, ids=[" ".join(a) for a, _ in SERVE_BAD_INPUTS])
def test_bad_serve_flags_are_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main(["serve", *argv]))
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_a_port_in_use_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"cannot listen on 127.0.0.1:{port}" in err, err


def test_an_unwritable_outputs_folder_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").write_text("a file, not a folder")
    assert main(["serve"]) == 2
    assert "cannot write to output folder outputs" in capsys.readouterr().err


async def test_a_run_started_in_a_tab_outlives_it_and_another_tab_attaches(served_app):
    import core

    run = served_app.log.parent / "outputs"
    async with aiohttp.ClientSession() as session:
        tab = await connect(session, served_app.url, served_app.url)
        await screen_text_until(tab, NOISE_TITLE)
        await tab.send_json(["stdin", "2"])
        await screen_text_until(tab, TRAIN_TITLE)
        await tab.send_json(["stdin", "\x13"])  # Ctrl+S: start the form's run (the defaults)
        await screen_text_until(tab, "outputs: running", timeout=90)
        await tab.close()
        assert wait_until(lambda: served_app.apps() == [])
        status = core.read_status(run)
        try:
            assert status is not None and status.active, "closing the tab stopped the training run"
            again = await connect(session, served_app.url, served_app.url)
            await screen_text_until(again, NOISE_TITLE)
            await again.send_json(["stdin", "2"])
            await screen_text_until(again, "outputs: running")
            await again.close()
        finally:
            core.send_request(run, "stop")
            assert wait_until(lambda: not core.read_status(run).active, timeout=60)
