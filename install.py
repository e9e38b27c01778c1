#!/usr/bin/env python3
"""One command from a fresh checkout to a working Neural Fill, ending with a fill of the bundled example.

    python3 install.py              # venv in .venv, packages, VGG-19 weights, the GIMP plug-in into every GIMP 3
                                    # profile found, then fills examples/rocket.png
    python3 install.py --dry-run    # say what would be done, do nothing
    python3 install.py --uninstall  # take the plug-in (and the systemd unit) out again

Standard library only: it runs before anything is installed. Safe to run again: each step notices what is done.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import venv
from pathlib import Path

from daemon.service import unit as service_unit
from daemon.service.endpoints import TCP_ENDPOINT, default_endpoint, uses_curve  # standard library only, like the rest
from gimp_plugin import plugin_install, profiles, vendoring

ROOT = Path(__file__).resolve().parent
SANDBOXED = ("flatpak", "snap")  # GIMPs that cannot start a program of the host: no daemon autostart
KIND_NAMES = {"native": "GIMP installed on this system", "flatpak": "Flatpak GIMP", "snap": "Snap GIMP",
              "windows": "GIMP for Windows", "macos": "GIMP for macOS", "given": "given with --gimp-profile"}
EXAMPLE = ROOT / "examples" / "rocket.png"
EXAMPLE_MASK = ROOT / "examples" / "rocket-mask.png"
EXAMPLE_OUT = ROOT / "examples" / "rocket-filled.png"
MIN_PYTHON = (3, 10)


def venv_python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def venv_command(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/neural-fill.exe" if os.name == "nt" else "bin/neural-fill")


def run(command: list[str], dry_run: bool) -> None:
    print(("would run: " if dry_run else "+ ") + " ".join(str(part) for part in command), flush=True)
    if not dry_run:
        subprocess.run(command, check=True, cwd=ROOT)


def create_venv(venv_dir: Path, dry_run: bool) -> None:
    if venv_python(venv_dir).exists():
        print(f"virtual environment already at {venv_dir}")
        return
    print(f"{'would create' if dry_run else 'creating'} a virtual environment at {venv_dir}")
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


# ------------------------------------------------------------------------------------------- the GIMP plug-in

def gimp_installs(args: argparse.Namespace) -> list[profiles.GimpInstall]:
    """The profiles named with --gimp-profile, or every GIMP 3 profile found; --gimp-python overrides the guess."""
    system, machine = platform.system(), platform.machine()
    if args.gimp_profile:
        for path in args.gimp_profile:
            if not path.is_dir() and not args.create:
                raise ValueError(f"{path}: no such GIMP profile folder (a typo?); give --create to make it there")
        installs = [profiles.GimpInstall(path.resolve(), "given",
                                         profiles.python_for("given", path, os.environ, system, machine))
                    for path in args.gimp_profile]
    else:
        installs = profiles.find_installs(Path.home(), os.environ, system, machine)
    if args.gimp_python:
        target = profiles.PythonTarget(args.gimp_python, profiles.platform_tags(system, machine))
        installs = [profiles.GimpInstall(install.profile, install.kind, target) for install in installs]
    return installs


def endpoint_for(args: argparse.Namespace, kind: str = "") -> str:
    """The endpoint asked for, or the default: a sandboxed GIMP (Flatpak, Snap) reaches only TCP, with CURVE."""
    return args.endpoint or (TCP_ENDPOINT if kind in SANDBOXED else default_endpoint())


def daemon_invocation(args: argparse.Namespace) -> list[str]:
    """This checkout's daemon on the chosen endpoint: what the plug-in and the systemd unit start."""
    return [str(venv_command(args.venv.resolve())), "daemon", "--bind", endpoint_for(args),
            *(["--curve"] if args.curve else [])]


def daemon_command(args: argparse.Namespace, kind: str) -> list[str]:
    """How the plug-in may start the daemon when none answers: this checkout's own, for a GIMP that can run it."""
    installed = venv_command(args.venv.resolve()).exists() or not args.skip_env
    if args.no_autostart or kind in SANDBOXED or not installed:
        return []
    return daemon_invocation(args)


def client_keys(python: Path, dry_run: bool) -> Path | None:
    """The keys dir of the daemon (made now if missing), whose client pair the plug-in gets."""
    print(f"{'would make or read' if dry_run else '+ making or reading'} the CURVE keys")
    if dry_run:
        return None
    made = subprocess.run([str(python), "-c", "from daemon.service.keys import ensure_keys; print(ensure_keys())"],
                          cwd=ROOT, check=True, capture_output=True, text=True)
    return Path(made.stdout.strip())


def install_plugin(args: argparse.Namespace, python: Path) -> None:
    installs = gimp_installs(args)
    if not installs:
        print("No GIMP 3 profile found, so the plug-in was not installed: start GIMP 3 once (it makes its profile) "
              "and run this again, or name the profile with --gimp-profile DIR.")
        return
    curve = {install.kind: uses_curve(endpoint_for(args, install.kind), args.curve or None) for install in installs}
    keys = client_keys(python, args.dry_run) if any(curve.values()) else None
    pip_python = python if python.exists() else Path(sys.executable)
    for install in installs:
        print(f"GIMP 3 profile {install.profile} ({KIND_NAMES.get(install.kind, install.kind)})")
        settings = plugin_install.PluginSettings(endpoint_for(args, install.kind), curve[install.kind],
                                                 daemon_command(args, install.kind))
        if install.kind in SANDBOXED:
            print(f"  a {KIND_NAMES[install.kind]} cannot start the daemon from its sandbox: start it yourself with "
                  f"`{venv_command(args.venv)} daemon --bind {settings.endpoint}`, or run install.py again with "
                  "--systemd to have it start with your session")

        def vendor(folder: Path, install: profiles.GimpInstall = install) -> None:
            for line in vendor_for(install, folder, pip_python, args):
                print(f"  {line}")

        try:
            plugin_install.install_code(install.profile, settings, ROOT / "daemon" / "service", keys, args.dry_run,
                                        vendor=vendor)
        except vendoring.VendoringError as error:
            raise vendoring.VendoringError(f"the plug-in was not installed (nothing of it is left in "
                                           f"{install.profile}): pyzmq and msgpack for GIMP's Python could not be "
                                           f"vendored: {error}") from error
    if not args.dry_run:
        print("Next: restart GIMP (it reads plug-ins at start), open a photo, select what to remove, and choose "
              "Filters > Neural Fill.")


def vendor_for(install: profiles.GimpInstall, target: Path, pip_python: Path, args: argparse.Namespace) -> list[str]:
    """pyzmq + msgpack beside the plug-in for GIMP's Python, unless that Python has them itself."""
    known = install.python
    if known is not None and known.system_python is not None and \
            vendoring.system_python_has_packages(known.system_python):
        return [f"GIMP's Python ({known.system_python}) has pyzmq and msgpack: nothing to vendor"]
    if known is not None:
        targets = [known]
    else:  # not found: one folder per likely version, the plug-in picks its own
        tags = profiles.platform_tags(platform.system(), platform.machine())
        targets = [profiles.PythonTarget(version, tags) for version in profiles.fallback_versions(install.profile)]
    return [vendoring.vendor(target, each, python=pip_python, dry_run=args.dry_run, wheels_from=args.wheels_from)
            for each in targets]


def uninstall_plugin(args: argparse.Namespace) -> None:
    paths = [install.profile for install in gimp_installs(args)]
    removed = [path for path in paths if plugin_install.uninstall(path, args.dry_run)]
    if not removed:
        print("The plug-in is in no GIMP 3 profile found.")


# ------------------------------------------------------------------------------------------- the systemd unit

def install_unit(args: argparse.Namespace) -> None:
    path = service_unit.user_unit_path(Path.home())
    command = daemon_invocation(args)
    print(f"{'would write' if args.dry_run else 'writing'} the systemd user unit {path}")
    if args.dry_run:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(service_unit.render_unit(command), encoding="utf-8")
    systemctl(["daemon-reload"], ["enable", "--now", "neural-fill"])


def uninstall_unit(args: argparse.Namespace) -> None:
    path = service_unit.user_unit_path(Path.home())
    if not service_unit.is_ours(path):
        return
    print(f"{'would remove' if args.dry_run else 'removing'} the systemd user unit {path}")
    if not args.dry_run:
        systemctl(["disable", "--now", "neural-fill"])
        path.unlink()
        systemctl(["daemon-reload"])


def systemctl(*commands: list[str]) -> None:
    """Best effort: a machine without a user systemd (a container, a CI box) still gets the unit file."""
    if shutil.which("systemctl") is None:
        print("  systemctl is not here: enable the unit yourself with systemctl --user enable --now neural-fill")
        return
    for command in commands:
        done = subprocess.run(["systemctl", "--user", *command], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"  systemctl --user {' '.join(command)} failed: {done.stderr.strip() or done.returncode}")
            return


# ---------------------------------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv", help="where to create the environment")
    parser.add_argument("--skip-env", action="store_true",
                        help="do not make the environment, fetch the weights or run the example (the plug-in only)")
    parser.add_argument("--skip-example", action="store_true", help="do not run the example fill at the end")
    parser.add_argument("--example-preset", default="default", help="preset for the example fill")
    gimp = parser.add_argument_group("GIMP plug-in")
    gimp.add_argument("--gimp-profile", type=Path, action="append", metavar="DIR",
                      help="install into this GIMP 3 profile (repeatable) instead of every profile found")
    gimp.add_argument("--create", action="store_true",
                      help="make a --gimp-profile folder that does not exist (otherwise a missing one is refused)")
    gimp.add_argument("--no-gimp", action="store_true", help="do not install the GIMP plug-in")
    gimp.add_argument("--gimp-python", metavar="X.Y",
                      help="the Python version GIMP runs plug-ins with, when the guess is wrong (e.g. 3.12)")
    gimp.add_argument("--wheels-from", type=Path, metavar="DIR",
                      help="take the pyzmq and msgpack wheels from this folder instead of PyPI (offline)")
    gimp.add_argument("--endpoint", help=f"where the plug-in finds the daemon (default: {default_endpoint()}; "
                                         f"{TCP_ENDPOINT} with CURVE for Flatpak and Snap GIMPs)")
    gimp.add_argument("--curve", action="store_true",
                      help="CURVE on an ipc:// endpoint too (always on for tcp://): the plug-in gets the client keys")
    gimp.add_argument("--no-autostart", action="store_true",
                      help="the plug-in never starts the daemon itself (by default it does when none answers)")
    parser.add_argument("--systemd", action="store_true",
                        help="install and start the daemon as a systemd user service (Linux)")
    parser.add_argument("--uninstall", action="store_true",
                        help="remove the plug-in from the GIMP profiles and the systemd unit (the environment and "
                             "the weights stay)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    if sys.version_info < MIN_PYTHON:
        print(f"install.py: Python {'.'.join(map(str, MIN_PYTHON))} or newer is needed", file=sys.stderr)
        return 2
    args = parse_args(argv)
    python = venv_python(args.venv.resolve())
    try:
        if args.uninstall:
            uninstall_plugin(args)
            uninstall_unit(args)
            print(f"The environment {args.venv} and the VGG-19 weights are kept: delete them to remove everything.")
            return 0
        if not args.skip_env:
            create_venv(args.venv.resolve(), args.dry_run)
            install_packages(python, args.dry_run)
            fetch_weights(python, args.dry_run)
        if not args.no_gimp:
            install_plugin(args, python)
        if args.systemd:
            install_unit(args)
        if not (args.skip_env or args.skip_example):
            fill_example(python, args.example_preset, args.dry_run)
    except subprocess.CalledProcessError as error:
        print(f"install.py: step failed (exit {error.returncode}): {' '.join(map(str, error.cmd))}",
              file=sys.stderr)
        return 1
    except (vendoring.VendoringError, ValueError, OSError) as error:
        print(f"install.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
