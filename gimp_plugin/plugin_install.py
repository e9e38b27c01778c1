"""Putting the plug-in into one GIMP 3 profile, and taking it out again.

    PROFILE/plug-ins/neural_fill/
        neural_fill.py ...        the plug-in (gimp_plugin/neural_fill/*.py)
        neural_fill_wire/         daemon/service/{protocol,link,endpoints,locks}.py, copied: the one source
        neural_fill.json          endpoint, timeout, CURVE on/off, how to start the daemon (plugin_settings.py)
        keys/                     the CURVE client pair and the daemon's public key (tcp:// endpoints, --curve)
        vendor/py3.13/ ...        pyzmq + msgpack for GIMP's Python when it lacks them (vendoring.py)

Standard library only (install.py runs before anything is installed). All or nothing: the folder is built beside
the old one (.neural_fill.installing) and swapped in only when the code, the settings, the keys and the vendored
wheels are all there, so a failure leaves the old plug-in, or none, and no folder this install made. Safe to run
again: vendored wheels that match are kept.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from engine.atomic import replace_dir, write_atomically

PLUGIN_NAME = "neural_fill"
WIRE_PACKAGE = "neural_fill_wire"
SETTINGS_FILE = "neural_fill.json"
KEYS_DIR = "keys"
VENDOR_DIR = "vendor"
MARKER = "Neural Fill install.py"  # in the settings file: what --uninstall may remove
SOURCE = Path(__file__).resolve().parent / PLUGIN_NAME
# daemon/service/: standard library, pyzmq and msgpack only
WIRE_SOURCES = ("protocol.py", "link.py", "endpoints.py", "locks.py")
CLIENT_KEY_FILES = ("server.key", "client.key", "client.key_secret")


@dataclass(frozen=True)
class PluginSettings:
    endpoint: str
    curve: bool
    daemon_command: Sequence[str]  # empty: the plug-in never starts a daemon
    timeout: float = 30.0

    def to_json(self, made_folders: Sequence[str] = ()) -> str:
        """`made_folders`: the profile's folders the first install made (relative; "." is the profile itself),
        which --uninstall removes again when they are empty."""
        return json.dumps({"installed_by": MARKER, "endpoint": self.endpoint, "timeout": self.timeout,
                           "curve": self.curve, "daemon_command": list(self.daemon_command),
                           "made_folders": list(made_folders)}, indent=2) + "\n"


def plugin_dir(profile: Path) -> Path:
    return Path(profile) / "plug-ins" / PLUGIN_NAME


def install_code(profile: Path, settings: PluginSettings, service_dir: Path, keys_dir: Path | None = None,
                 dry_run: bool = False, say: Callable[[str], None] = print,
                 vendor: Callable[[Path], None] | None = None) -> Path:
    """Put the plug-in, the wire modules, the settings (and the client keys) into the profile, with `vendor(folder)`
    adding GIMP's missing packages to the folder before it goes in; returns the plug-in folder."""
    target = plugin_dir(profile)
    say(f"{'would install' if dry_run else 'installing'} the plug-in into {target}")
    if dry_run:
        if vendor is not None:
            vendor(target)
        return target
    made = [folder for folder in (Path(profile), target.parent) if not folder.exists()]
    record = _made_folders(profile) + [os.path.relpath(folder, profile) for folder in made]
    staging = target.with_name(f".{target.name}.installing")
    shutil.rmtree(staging, ignore_errors=True)  # left over by an interrupted run
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if (target / VENDOR_DIR).is_dir():  # wheels vendored before: kept when they still match
            shutil.copytree(target / VENDOR_DIR, staging / VENDOR_DIR, symlinks=True)
        _write_code(staging, settings.to_json(record), Path(service_dir), keys_dir)
        if vendor is not None:
            vendor(staging)
        replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(made):  # the plug-ins folder (and a --create'd profile) this install made
            with suppress(OSError):
                folder.rmdir()
        raise
    return target


def _write_code(folder: Path, settings: str, service_dir: Path, keys_dir: Path | None) -> None:
    wire = folder / WIRE_PACKAGE
    wire.mkdir(parents=True, exist_ok=True)
    for path in sorted(SOURCE.glob("*.py")):
        if path.name != "__init__.py":
            _copy(path, folder / path.name)
    (folder / f"{PLUGIN_NAME}.py").chmod(0o755)  # GIMP runs the file named as its folder
    for name in WIRE_SOURCES:
        _copy(service_dir / name, wire / name)
    write_atomically(wire / "__init__.py", '"""Copied from daemon/service/ by install.py: do not edit here."""\n')
    write_atomically(folder / SETTINGS_FILE, settings)
    if keys_dir is not None:
        copy_client_keys(Path(keys_dir), folder / KEYS_DIR)


def copy_client_keys(keys_dir: Path, destination: Path) -> None:
    destination.mkdir(mode=0o700, parents=True, exist_ok=True)
    destination.chmod(0o700)
    for name in CLIENT_KEY_FILES:
        _copy(keys_dir / name, destination / name)
        (destination / name).chmod(0o600 if name.endswith("_secret") else 0o644)


def _installed_settings(profile: Path) -> dict | None:
    """The settings file of a plug-in folder install.py made; None for any other folder."""
    try:
        settings = json.loads((plugin_dir(profile) / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return settings if isinstance(settings, dict) and settings.get("installed_by") == MARKER else None


def is_ours(profile: Path) -> bool:
    return _installed_settings(profile) is not None


def _made_folders(profile: Path) -> list[str]:
    made = (_installed_settings(profile) or {}).get("made_folders")
    return [str(name) for name in made] if isinstance(made, list) else []


def uninstall(profile: Path, dry_run: bool = False, say: Callable[[str], None] = print) -> bool:
    """Remove the plug-in folder if this installer put it there, and the folders its install made once they are
    empty; True when something was (or would be) removed."""
    target = plugin_dir(profile)
    if not target.exists():
        return False
    if not is_ours(profile):
        say(f"leaving {target} alone: it was not installed by install.py")
        return False
    say(f"{'would remove' if dry_run else 'removing'} {target}")
    if not dry_run:
        made = _made_folders(profile)
        shutil.rmtree(target)
        for name in sorted(made, key=lambda name: -len(Path(name).parts)):  # the deepest first
            folder = (Path(profile) / name).resolve()
            inside = folder == Path(profile).resolve() or Path(profile).resolve() in folder.parents
            if inside and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
                say(f"removed the empty folder {folder}, which the install had made")
    return True


def _copy(source: Path, destination: Path) -> None:
    write_atomically(destination, source.read_bytes())
