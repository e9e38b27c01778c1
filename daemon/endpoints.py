"""Where the daemon may listen: loopback TCP and ipc:// only unless CURVE is on, so nothing on the network can
send it work unauthenticated."""

from __future__ import annotations

import ipaddress

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"


class DaemonConfigError(ValueError):
    """A daemon setting that cannot work (an endpoint beyond loopback without keys, a queue of no jobs...)."""


def check_endpoint(endpoint: str, curve: bool = False) -> None:
    """Loopback TCP and ipc:// only, unless CURVE is on: anything else would serve the network without
    authentication."""
    scheme, _, address = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return
    if scheme != "tcp" or ":" not in address:
        raise DaemonConfigError(f"cannot listen on {endpoint!r}: use tcp://127.0.0.1:PORT or ipc://PATH")
    host = address.rsplit(":", 1)[0].strip("[]")
    if not curve and not is_loopback(host):
        raise DaemonConfigError(f"cannot listen on {endpoint}: CURVE keys are required to listen beyond loopback "
                                "(use tcp://127.0.0.1:PORT or an ipc:// path)")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # '*', an interface name, a host name: all may reach beyond this machine
        return False
