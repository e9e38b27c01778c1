"""Put pyzmq and msgpack wheels matched to GIMP's Python beside the plug-in, in vendor/pyX.Y.

Standard library only. pip runs in whatever Python install.py has (it need not match GIMP's): --target with
--python-version/--abi/--platform makes it fetch wheels for GIMP's Python instead. pyzmq has compiled parts and no
pure-Python fallback, so a wheel for the wrong version or platform would not import inside GIMP.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from engine.atomic import replace_dir

from .profiles import PythonTarget

REQUIREMENTS = ("pyzmq>=25", "msgpack>=1.0")
IMPORT_NAMES = ("zmq", "msgpack")
STAMP_NAME = ".neural-fill-vendor.json"
PIP_TIMEOUT = 900  # seconds: two wheels, but a slow network or a proxy can take a while
# Settings from the user's pip configuration that contradict `pip install --target`.
CONFLICTING_PIP_ENV = ("PIP_USER", "PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_REQUIRE_VIRTUALENV")

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class VendoringError(RuntimeError):
    pass


def vendor_dir_name(version: str) -> str:
    """The folder under <plugin>/vendor/ that the plug-in adds to sys.path when it runs under Python `version`."""
    return f"py{version}"


def pip_command(
    python: str | Path,
    target: Path,
    version: str,
    platforms: tuple[str, ...],
    wheels_from: Path | None = None,
) -> list[str]:
    """pip install of REQUIREMENTS as wheels for CPython `version` on `platforms`, into `target`."""
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--target", str(target),
               "--only-binary=:all:", "--implementation", "cp", "--python-version", version,
               "--abi", "cp" + version.replace(".", "")]
    for tag in platforms:
        command += ["--platform", tag]
    if wheels_from is not None:
        command += ["--no-index", "--find-links", str(wheels_from)]
    return command + list(REQUIREMENTS)


def vendor(
    plugin_dir: Path,
    target: PythonTarget,
    python: str | Path = sys.executable,
    run: Runner = subprocess.run,
    dry_run: bool = False,
    wheels_from: Path | None = None,
) -> str:
    """Install REQUIREMENTS for `target` into plugin_dir/vendor/pyX.Y unless a matching stamp says it is there.

    pip writes into pyX.Y.tmp, which is renamed only when both packages are in it: a failed or interrupted
    download leaves no half-filled pyX.Y. Returns one line saying what was done; raises VendoringError."""
    vendor_root = plugin_dir / "vendor"
    final = vendor_root / vendor_dir_name(target.version)
    what = f"pyzmq+msgpack for Python {target.version} ({', '.join(target.platforms)})"
    stamp = _stamp(target)
    if _read(final / STAMP_NAME) == stamp:
        return f"already vendored {what} in {final}"
    if dry_run:
        return f"would vendor {what} into {final}"

    staging = final.with_name(final.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)  # left over by an interrupted run
    vendor_root.mkdir(parents=True, exist_ok=True)
    command = pip_command(python, staging, target.version, target.platforms, wheels_from)
    try:
        _run_pip(command, run)
        missing = [name for name in IMPORT_NAMES if not (staging / name).is_dir()]
        if missing:
            raise VendoringError(f"pip succeeded but {', '.join(missing)} is missing from {staging}")
        (staging / STAMP_NAME).write_text(stamp, encoding="utf-8")
        replace_dir(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return f"vendored {what} into {final}"


def system_python_has_packages(python: Path, run: Runner = subprocess.run) -> bool:
    """True when `python` imports zmq and msgpack already (then a native GIMP using it needs no vendored copy)."""
    try:
        result = run([str(python), "-c", "import " + ", ".join(IMPORT_NAMES)], capture_output=True, text=True,
                     timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _stamp(target: PythonTarget) -> str:
    """What a vendor folder was made for; a different requirement or platform list makes vendor() redo it."""
    record = {"requirements": list(REQUIREMENTS), "python": target.version, "abi": target.abi,
              "platforms": list(target.platforms)}
    return json.dumps(record, indent=1, sort_keys=True) + "\n"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _run_pip(command: list[str], run: Runner) -> None:
    env = {key: value for key, value in os.environ.items() if key.upper() not in CONFLICTING_PIP_ENV}
    try:
        result = run(command, capture_output=True, text=True, env=env, timeout=PIP_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as error:
        raise VendoringError(f"could not run pip: {error}") from error
    if result.returncode != 0:
        lines = [line.strip() for line in ((result.stderr or "") + (result.stdout or "")).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR:")]
        reason = (errors or lines or ["no output"])[-1].removeprefix("ERROR:").strip()
        raise VendoringError(f"pip exited with {result.returncode}: {reason}")
