"""The installed package's version, for `--version` and the daemon's hello."""

from __future__ import annotations


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neural-fill")
    except PackageNotFoundError:  # running from a source checkout that was never installed
        return "0+unknown"
