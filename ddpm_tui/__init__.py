"""ddpm-tui: learn diffusion models by building one, in the terminal."""

__version__ = "0.1.0"
