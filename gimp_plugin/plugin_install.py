"""Putting the plug-in into one GIMP 3 profile, and taking it out again.

    PROFILE/plug-ins/neural_fill/
        neural_fill.py ...        the plug-in (gimp_plugin/neural_fill/*.py)
        neural_fill_wire/         daemon/service/{protocol,link,endpoints}.py, copied: the one source of the wire
        neural_fill.json          endpoint, timeout, CURVE on/off, how to start the daemon (plugin_settings.py)
        keys/                     the CURVE client pair and the daemon's public key (tcp:// endpoints, --curve)
        vendor/py3.13/ ...        pyzmq + msgpack for GIMP's Python when it lacks them (vendoring.py)

Standard library only (install.py runs before anything is installed). Safe to run again: files are replaced,
vendored wheels are kept when they match, stale plug-in files are removed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.atomic import write_atomically

PLUGIN_NAME = "neural_fill"
WIRE_PACKAGE = "neural_fill_wire"
SETTINGS_FILE = "neural_fill.json"
KEYS_DIR = "keys"
MARKER = "Neural Fill install.py"  # in the settings file: what --uninstall may remove
SOURCE = Path(__file__).resolve().parent / PLUGIN_NAME
WIRE_SOURCES = ("protocol.py", "link.py", "endpoints.py")  # daemon/service/: standard library, pyzmq and msgpack only
CLIENT_KEY_FILES = ("server.key", "client.key", "client.key_secret")


@dataclass(frozen=True)
class PluginSettings:
    endpoint: str
    curve: bool
    daemon_command: Sequence[str]  # empty: the plug-in never starts a daemon
    timeout: float = 30.0

    def to_json(self) -> str:
        return json.dumps({"installed_by": MARKER, "endpoint": self.endpoint, "timeout": self.timeout,
                           "curve": self.curve, "daemon_command": list(self.daemon_command)}, indent=2) + "\n"


def plugin_dir(profile: Path) -> Path:
    return Path(profile) / "plug-ins" / PLUGIN_NAME


def install_code(profile: Path, settings: PluginSettings, service_dir: Path, keys_dir: Path | None = None,
                 dry_run: bool = False, say: Callable[[str], None] = print) -> Path:
    """Copy the plug-in, the wire modules and the settings (and the client keys) into the profile."""
    target = plugin_dir(profile)
    say(f"{'would install' if dry_run else 'installing'} the plug-in into {target}")
    if dry_run:
        return target
    wire = target / WIRE_PACKAGE
    wire.mkdir(parents=True, exist_ok=True)
    code = sorted(path for path in SOURCE.glob("*.py") if path.name != "__init__.py")
    for stale in set(target.glob("*.py")) - {target / path.name for path in code}:
        stale.unlink()  # a module a newer version no longer has
    for path in code:
        _copy(path, target / path.name)
    (target / f"{PLUGIN_NAME}.py").chmod(0o755)  # GIMP runs the file named as its folder
    for name in WIRE_SOURCES:
        _copy(Path(service_dir) / name, wire / name)
    write_atomically(wire / "__init__.py", '"""Copied from daemon/service/ by install.py: do not edit here."""\n')
    write_atomically(target / SETTINGS_FILE, settings.to_json())
    if keys_dir is not None:
        copy_client_keys(Path(keys_dir), target / KEYS_DIR)
    return target


def copy_client_keys(keys_dir: Path, destination: Path) -> None:
    destination.mkdir(mode=0o700, parents=True, exist_ok=True)
    destination.chmod(0o700)
    for name in CLIENT_KEY_FILES:
        _copy(keys_dir / name, destination / name)
        (destination / name).chmod(0o600 if name.endswith("_secret") else 0o644)


def is_ours(profile: Path) -> bool:
    try:
        return json.loads((plugin_dir(profile) / SETTINGS_FILE).read_text(encoding="utf-8")).get("installed_by") \
            == MARKER
    except (OSError, ValueError, AttributeError):
        return False


def uninstall(profile: Path, dry_run: bool = False, say: Callable[[str], None] = print) -> bool:
    """Remove the plug-in folder if this installer put it there; True when something was (or would be) removed."""
    target = plugin_dir(profile)
    if not target.exists():
        return False
    if not is_ours(profile):
        say(f"leaving {target} alone: it was not installed by install.py")
        return False
    say(f"{'would remove' if dry_run else 'removing'} {target}")
    if not dry_run:
        shutil.rmtree(target)
    return True


def _copy(source: Path, destination: Path) -> None:
    write_atomically(destination, source.read_bytes())
