#!/usr/bin/env python3
"""One command from a fresh checkout to a working Neural Fill, ending with a fill of the bundled example.

    python3 install.py            # venv in .venv, packages, VGG-19 weights, then fills examples/rocket.png
    python3 install.py --dry-run  # say what would be done, do nothing

Standard library only: it runs before anything is installed. Safe to run again: each step notices what is done.
(Installing the GIMP plug-in into GIMP profiles comes with the plug-in itself.)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
EXAMPLE = ROOT / "examples" / "rocket.png"
EXAMPLE_MASK = ROOT / "examples" / "rocket-mask.png"
EXAMPLE_OUT = ROOT / "examples" / "rocket-filled.png"
MIN_PYTHON = (3, 10)


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(command: list[str], dry_run: bool) -> None:
    print("+ " + " ".join(str(part) for part in command), flush=True)
    if not dry_run:
        subprocess.run(command, check=True, cwd=ROOT)


def create_venv(venv_dir: Path, dry_run: bool) -> None:
    if venv_python(venv_dir).exists():
        print(f"virtual environment already at {venv_dir}")
        return
    print(f"creating a virtual environment at {venv_dir}")
    if not dry_run:
        venv.EnvBuilder(with_pip=True).create(venv_dir)


def install_packages(python: Path, dry_run: bool) -> None:
    # Editable, with the test tools, so that README's test command works straight after this one.
    run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", ".[test]"], dry_run)


def fetch_weights(python: Path, dry_run: bool) -> None:
    run([str(python), "-m", "daemon.cli", "fetch-weights"], dry_run)


def fill_example(python: Path, preset: str, dry_run: bool) -> None:
    run([str(python), "-m", "daemon.cli", "fill", str(EXAMPLE), "--mask", str(EXAMPLE_MASK),
         "-o", str(EXAMPLE_OUT), "--preset", preset], dry_run)
    if not dry_run:
        print(f"\nDone. The example's masts are removed in {EXAMPLE_OUT.relative_to(ROOT)}.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv", help="where to create the environment")
    parser.add_argument("--skip-example", action="store_true", help="do not run the example fill at the end")
    parser.add_argument("--example-preset", default="default", help="preset for the example fill")
    parser.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    if sys.version_info < MIN_PYTHON:
        print(f"install.py: Python {'.'.join(map(str, MIN_PYTHON))} or newer is needed", file=sys.stderr)
        return 2
    args = parse_args(argv)
    python = venv_python(args.venv.resolve())
    try:
        create_venv(args.venv.resolve(), args.dry_run)
        install_packages(python, args.dry_run)
        fetch_weights(python, args.dry_run)
        if not args.skip_example:
            fill_example(python, args.example_preset, args.dry_run)
    except subprocess.CalledProcessError as error:
        print(f"install.py: step failed (exit {error.returncode}): {' '.join(map(str, error.cmd))}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
