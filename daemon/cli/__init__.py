"""The `neural-fill` command (`daemon.cli:entry` is the installed script, `python -m daemon.cli` the same)."""

from .main import entry, main

__all__ = ["entry", "main"]
