"""The wire modules (daemon/service/protocol.py, link.py, endpoints.py, locks.py): the copies install.py put beside
the plug-in, or a checkout's own when the plug-in runs from one."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from neural_fill_wire import endpoints, link, locks, protocol
except ImportError:  # running from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from daemon.service import endpoints, link, locks, protocol

__all__ = ["endpoints", "link", "locks", "protocol"]
