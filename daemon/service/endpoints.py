"""Where the daemon listens, and who may reach it: the default endpoint and the rules every side applies.

Only an authenticated peer may take part in a ZMTP handshake with the daemon: libzmq's ROUTER aborts the whole
process when a peer claims the routing id it is about to give another (docs/security.md), before our code sees a
byte. So:
- on Linux and macOS the default is an ipc:// socket in a folder only the user can enter ($XDG_RUNTIME_DIR/neural-fill,
  or a 0700 folder of the user's own in the temp dir); the daemon and every client refuse a folder that is not
  the user's own and private, and clients refuse a socket another user listens on (check_socket): another user
  who made the folder first could otherwise receive the user's photos and answer with pixels of their choice;
- every tcp:// endpoint speaks CURVE (only keys in the keys dir's clients/ get through ZAP), loopback included,
  unless plain loopback TCP is asked for by name (`--insecure-loopback`);
- nothing but CURVE may listen beyond loopback.

Standard library only: install.py and the GIMP plug-in (a copy beside it) use it too.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
import struct
import sys
import tempfile
from pathlib import Path

TCP_ENDPOINT = "tcp://127.0.0.1:5557"  # Windows' default, and the one sandboxed GIMPs (Flatpak, Snap) can reach
SOCKET_NAME = "daemon.sock"
RUNTIME_ENV = "XDG_RUNTIME_DIR"


class DaemonConfigError(ValueError):
    """A daemon setting that cannot work (an endpoint beyond loopback without keys, a queue of no jobs...)."""


def default_endpoint() -> str:
    """The endpoint the daemon, the CLI, batch and the plug-in use when none is named."""
    if os.name == "nt":  # no ipc:// on Windows
        return TCP_ENDPOINT
    return f"ipc://{default_socket_dir() / SOCKET_NAME}"


def default_socket_dir() -> Path:
    runtime = os.environ.get(RUNTIME_ENV)
    if runtime and Path(runtime).is_absolute() and Path(runtime).is_dir():
        return Path(runtime) / "neural-fill"
    return Path(tempfile.gettempdir()) / f"neural-fill-{os.getuid()}"


def is_tcp(endpoint: str) -> bool:
    return endpoint.partition("://")[0] == "tcp"


def ipc_path(endpoint: str) -> Path | None:
    """The socket file of an ipc:// endpoint (None for any other)."""
    scheme, _, address = endpoint.partition("://")
    return Path(address) if scheme == "ipc" and address else None


def uses_curve(endpoint: str, curve: bool | None = None, insecure_loopback: bool = False) -> bool:
    """Whether a daemon or client on `endpoint` speaks CURVE: as asked (`curve`), or by default on every tcp://
    endpoint unless plain loopback TCP is asked for."""
    if curve is not None:
        return curve
    return is_tcp(endpoint) and not insecure_loopback


def tcp_host(endpoint: str) -> str:
    """The host of a tcp:// endpoint, without an IPv6 literal's brackets."""
    return endpoint.partition("://")[2].rsplit(":", 1)[0].strip("[]")


def is_ipv6(endpoint: str) -> bool:
    """A tcp:// endpoint on an IPv6 literal: libzmq reaches it only with its ipv6 option on."""
    return is_tcp(endpoint) and ":" in tcp_host(endpoint)


def check_endpoint(endpoint: str, curve: bool = False, insecure_loopback: bool = False) -> None:
    """Refuse an endpoint that would let an unauthenticated peer in: tcp:// without CURVE unless it is loopback and
    asked for by name, an ipc:// socket in a folder others can reach."""
    scheme, _, address = endpoint.partition("://")
    if scheme == "inproc":
        return
    if scheme == "ipc":
        path = ipc_path(endpoint)
        if path is None:
            raise DaemonConfigError(f"cannot listen on {endpoint!r}: name the socket's path (ipc:///PATH)")
        check_private_dir(path.parent)
        return
    if scheme != "tcp" or ":" not in address:
        raise DaemonConfigError(f"cannot listen on {endpoint!r}: use ipc://PATH or tcp://127.0.0.1:PORT")
    if curve:
        return
    if not is_loopback(tcp_host(endpoint)):
        raise DaemonConfigError(f"cannot listen on {endpoint} without CURVE: anyone on the network could send it "
                                "work (keep CURVE on, the default for tcp://, or use tcp://127.0.0.1:PORT)")
    if not insecure_loopback:
        raise DaemonConfigError(f"{endpoint} without CURVE would let every local user's programs reach the daemon, "
                                "and any of them could crash it (docs/security.md): keep CURVE on (the default for "
                                "tcp://), use the default ipc:// socket, or ask for plain TCP with "
                                "--insecure-loopback")


def check_private_dir(folder: Path) -> None:
    """The folder of an ipc:// socket must be a real folder of this user's that no one else can enter: another user
    could otherwise put their own socket (or a link) in its place, or reach the daemon's."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        raise DaemonConfigError(f"the socket's folder {folder} does not exist") from None
    if not stat.S_ISDIR(info.st_mode):
        raise DaemonConfigError(f"the socket's folder {folder} is not a folder (a link is not taken): remove it, "
                                "and the daemon makes the folder it needs")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise DaemonConfigError(f"the socket's folder {folder} belongs to another user (uid {info.st_uid}), who could "
                                "listen there in your daemon's place: nothing is sent to it. Have it removed (by "
                                f"that user or root), or set {RUNTIME_ENV} to a folder of your own, or use another "
                                "endpoint")
    if info.st_mode & 0o077:
        raise DaemonConfigError(f"others can reach the socket's folder {folder} (mode {stat.S_IMODE(info.st_mode):o}):"
                                f" make it yours alone (chmod 700 {folder}), or use a folder only you can enter, such "
                                f"as the default {default_socket_dir()}")


def check_socket(endpoint: str) -> bool:
    """What a client checks before it connects to an ipc:// endpoint (any other passes): the folder as the daemon
    checks it, and, where the system says who listens on the socket, that it is this user (root is not trusted by
    others either). Raises DaemonConfigError naming the folder or socket. A missing folder is made (0700) first:
    libzmq retries a connect until a daemon listens, and whoever made the folder meanwhile would be answered; False
    when it cannot be (its parent is missing too: no daemon can be there)."""
    path = ipc_path(endpoint)
    if path is None or not hasattr(os, "getuid"):
        return True
    make_socket_dir(endpoint)
    if not os.path.lexists(path.parent):
        return False
    check_private_dir(path.parent)
    uid = listener_uid(path)
    if uid is not None and uid != os.getuid():
        raise DaemonConfigError(f"the socket {path} is served by another user's program (uid {uid}), not your daemon:"
                                f" nothing is sent to it. Stop that program, remove the socket, then start your daemon")
    return True


def listener_uid(path: Path) -> int | None:
    """The user id of whoever listens on the Unix socket `path`, where the system says: Linux (SO_PEERCRED), macOS
    (LOCAL_PEERCRED). None when no one listens, or the system cannot tell (the folder check then stands alone)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)  # a listener whose backlog is full: not worth a hang
        try:
            probe.connect(str(path))  # sends nothing: only the kernel's word on who accepted
            if hasattr(socket, "SO_PEERCRED"):
                _, uid, _ = struct.unpack("i2I", probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
                return uid
            if sys.platform == "darwin":  # getsockopt(SOL_LOCAL, LOCAL_PEERCRED): struct xucred {version, uid...}
                version, uid = struct.unpack_from("=2I", probe.getsockopt(0, 0x001, 76))
                return uid if version == 0 else None
        except OSError:  # no one listens (a stale socket), or a path the system cannot take
            return None
    return None


def make_socket_dir(endpoint: str) -> None:
    """Make an ipc:// socket's folder, 0700, when it is missing (the default's is, on a first start)."""
    path = ipc_path(endpoint)
    if path is None:
        return
    folder = path.parent
    try:
        folder.mkdir(mode=0o700)
    except (FileExistsError, FileNotFoundError):  # there already, or its parent is not: check_private_dir says
        return
    folder.chmod(0o700)  # mkdir's mode is masked by the umask


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # '*', an interface name, a host name: all may reach beyond this machine
        return False
