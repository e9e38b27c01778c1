"""The daemon's systemd user unit: daemon/service/neural-fill.service with ExecStart pointing at this checkout.

Standard library only: install.py uses it before anything is installed.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "neural-fill.service"
UNIT_NAME = "neural-fill.service"
MARKER = "# Installed by Neural Fill install.py"


def user_unit_path(home: Path) -> Path:
    return Path(home) / ".config" / "systemd" / "user" / UNIT_NAME


def render_unit(command: list[str]) -> str:
    """The template with its ExecStart replaced by `command` (quoted for systemd, which splits like a shell)."""
    text = TEMPLATE.read_text(encoding="utf-8")
    exec_start = "ExecStart=" + " ".join(shlex.quote(part) for part in command)
    text, count = re.subn(r"^ExecStart=.*$", lambda _: exec_start, text, count=1, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"{TEMPLATE} has no ExecStart line")
    return f"{MARKER}\n{text}"


def is_ours(path: Path) -> bool:
    try:
        return Path(path).read_text(encoding="utf-8").startswith(MARKER)
    except OSError:
        return False
