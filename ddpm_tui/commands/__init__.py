"""The headless commands, one module each: ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args)``.

Each is a thin Rich front end over :mod:`core`: it parses flags, calls the core, and prints what the core
returns or yields. Bad input is a :class:`ddpm_tui.console.UsageError` (or a core error), which the
command line prints as one line with exit status 2.
"""

from . import (
    compare,
    evaluate,
    inpaint,
    inspect,
    interpolate,
    invert,
    precompile,
    sample,
    serve,
    train,
    visualize,
    watch,
)

COMMANDS = (
    visualize,
    train,
    sample,
    evaluate,
    compare,
    watch,
    inspect,
    invert,
    interpolate,
    inpaint,
    precompile,
    serve,
)

__all__ = ["COMMANDS"]
