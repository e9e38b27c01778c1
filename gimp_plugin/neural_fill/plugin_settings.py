"""The plug-in's settings: `neural_fill.json` beside it, written by install.py, and the CURVE keys it copied.

    {"endpoint": "ipc:///run/user/1000/neural-fill/daemon.sock", "timeout": 30, "curve": false,
     "daemon_command": ["/home/me/neural-fill/.venv/bin/neural-fill", "daemon", "--bind",
                        "ipc:///run/user/1000/neural-fill/daemon.sock"]}

Every field may be missing: the endpoint is then the daemon's default and CURVE is on for tcp:// endpoints
(daemon/service/endpoints.py). A file that is not valid JSON is an error that names it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from wire import endpoints

SETTINGS_FILE = "neural_fill.json"
KEYS_DIR = "keys"
DEFAULT_TIMEOUT = 30.0  # seconds of silence from the daemon before it is taken as gone (it pings back meanwhile)


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    endpoint: str = field(default_factory=endpoints.default_endpoint)
    timeout: float = DEFAULT_TIMEOUT
    curve: bool | None = None  # None: as the endpoint says (on for tcp://)
    daemon_command: tuple[str, ...] = ()  # how to start the daemon when none answers; empty = never start one
    keys_dir: Path | None = None


def load_settings(plugin_dir: Path) -> Settings:
    path = Path(plugin_dir) / SETTINGS_FILE
    if not path.exists():
        return Settings()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SettingsError(f"cannot read the Neural Fill settings {path}: {error}") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{path} must hold a JSON object")
    try:
        curve = raw.get("curve")
        return Settings(endpoint=str(raw.get("endpoint") or endpoints.default_endpoint()),
                        timeout=float(raw.get("timeout", DEFAULT_TIMEOUT)),
                        curve=None if curve is None else bool(curve),
                        daemon_command=tuple(str(part) for part in raw.get("daemon_command") or ()),
                        keys_dir=Path(plugin_dir) / KEYS_DIR)
    except (TypeError, ValueError) as error:
        raise SettingsError(f"{path} has a field of the wrong type: {error}") from None
