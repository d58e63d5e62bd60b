"""``ddpm-tui serve``: the app in a web browser, one app per tab, safe by default (see :mod:`ddpm_tui.web`)."""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial

import core

from ..console import err_console, fail
from ..flags import add_flag, number

NAME = "serve"
HELP = "serve the app to a web browser (127.0.0.1 only unless --host and --public_url say otherwise)"

OUTPUT_DIR = "outputs"
"""Where the served apps' training runs and samples go, as for ``ddpm-tui`` in a terminal."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    add_flag(parser, "port", type=partial(number, kind=int), default=8000, help="port to listen on (default 8000)")
    add_flag(
        parser,
        "public_url",
        default=None,
        help="the URL browsers use to reach the server; required with any --host other than loopback",
    )


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl+C or SIGTERM; bad flags, a port in use or an unwritable outputs folder fail at once."""
    from ..web import LOOPBACK_HOSTS, check_port_free, origin_of

    loopback = args.host in LOOPBACK_HOSTS
    if not loopback and args.public_url is None:
        fail(
            f"--host {args.host} needs --public_url, the address browsers will open (e.g. http://{args.host}:{args.port})"
        )
    core.check_writable(OUTPUT_DIR)
    check_port_free(args.host, args.port)
    host_in_url = f"[{args.host}]" if ":" in args.host else args.host
    public_url = args.public_url or f"http://{host_in_url}:{args.port}"
    origin_of(public_url)  # a bad --public_url fails here, before the server starts
    if not loopback:
        err_console.print(
            f"warning: anyone who can reach {args.host}:{args.port} controls the app (there is no "
            "authentication); put an authenticating proxy in front of it (see README)",
            markup=False,
            soft_wrap=True,
        )
    sys.stdout.flush()
    sys.stderr.flush()
    # The server needs neither torch nor the core: it replaces this process with a lean one (about 40 MB
    # instead of 700), keeping its pid, so Ctrl+C and SIGTERM reach it as before.
    server = [sys.executable, "-m", "ddpm_tui.web", args.host, str(args.port), public_url]
    os.execv(sys.executable, server)
