"""Who is behind an ipc:// socket, and who may listen on it (issue 31): clients refuse a socket folder that is not
the user's own and private, and a socket another user listens on, before a byte goes out; the daemon refuses such
a folder and a socket another daemon holds; the plug-in's auto-starts take turns.

The impostor is a plain Unix-socket listener run as another uid (`nobody`), which counts what reaches it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from daemon.cli import errors
from daemon.cli.main import main
from daemon.files import write_image
from daemon.service import locks
from daemon.service.client import Client, DaemonUnavailable
from daemon.service.endpoints import RUNTIME_ENV, DaemonConfigError, check_socket, default_endpoint, ipc_path
from daemon.service.link import UnsafeSocket
from daemon.service.server import Daemon
from tests.support.daemon_helpers import REPO, photo_and_hole, start_daemon

PLUGIN = REPO / "gimp_plugin" / "neural_fill"
sys.path.insert(0, str(PLUGIN))  # as GIMP does: the plug-in's modules import each other as top-level modules

import daemon_connection  # noqa: E402
import plugin_settings  # noqa: E402

OTHER_UID = 65534  # nobody
needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="listening as another user needs root")

# Listens on ./daemon.sock, as argv[1]'s uid from listen() on (the kernel names whoever called listen() as the
# listener), and counts the connections and bytes that reach it until its stdin closes.
IMPOSTOR = """
import os, select, socket, sys
uid = int(sys.argv[1])
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind("daemon.sock")
if os.getuid() != uid:
    os.setgid(uid)
    os.setuid(uid)
server.listen(16)
server.settimeout(0.05)
print("listening", flush=True)
connections, received, peers = 0, 0, []
while not select.select([sys.stdin], [], [], 0)[0]:
    try:
        peer, _ = server.accept()
        peer.setblocking(False)
        peers.append(peer)
        connections += 1
    except socket.timeout:
        pass
    for peer in peers:
        try:
            received += len(peer.recv(1 << 16))
        except BlockingIOError:
            pass
print(connections, received, flush=True)
"""


class Impostor:
    """The listener above in `folder`, as another user; stop() returns (connections, bytes received)."""

    def __init__(self, folder: Path, as_other_from_start: bool) -> None:
        run_as = {"user": OTHER_UID, "group": OTHER_UID} if as_other_from_start else {}
        self.process = subprocess.Popen([sys.executable, "-I", "-c", IMPOSTOR, str(OTHER_UID)], cwd=folder,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **run_as)
        assert self.process.stdout.readline().strip() == "listening"

    def stop(self) -> tuple[int, int]:
        self.process.stdin.close()
        connections, received = map(int, self.process.stdout.readline().split())
        self.process.wait(10)
        return connections, received


@pytest.fixture
def shared_temp(tmp_path, monkeypatch) -> Path:
    """A temp dir as /tmp is (anyone may make a folder there), which the default endpoint uses: no
    $XDG_RUNTIME_DIR, as on the probe's machine."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.delenv(RUNTIME_ENV)
    monkeypatch.setenv("TMPDIR", str(shared))  # for the commands this test runs
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    return shared


def refusals(endpoint: str, tmp_path: Path, capsys) -> dict[str, str]:
    """What each client says about `endpoint`: the Client, `status`, `stop`, `fill --daemon`, `batch --daemon` and
    the plug-in's connect (with a command to start a daemon, which must not run)."""
    said = {}
    with pytest.raises(UnsafeSocket) as caught:
        Client(endpoint, timeout=2)
    said["Client"] = str(caught.value)
    image, mask = photo_and_hole()
    write_image(tmp_path / "in.png", image)
    write_image(tmp_path / "mask.png", mask)
    (tmp_path / "images").mkdir(exist_ok=True)
    (tmp_path / "masks").mkdir(exist_ok=True)
    write_image(tmp_path / "images" / "a.png", image)
    write_image(tmp_path / "masks" / "a.png", mask)
    named = [] if endpoint == default_endpoint() else [endpoint]  # the default: found on their own
    commands = {
        "status": ["status", *(["--daemon", *named] if named else [])],
        "stop": ["stop", *(["--daemon", *named] if named else [])],
        "fill": ["fill", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"), "-o",
                 str(tmp_path / "out.png"), "-q", "--daemon", *named],
        "batch": ["batch", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"), "--out",
                  str(tmp_path / "out"), "-q", "--daemon", *named],
    }
    for name, arguments in commands.items():
        code = main(arguments)
        output = capsys.readouterr()
        said[name] = output.out + output.err
        assert code == errors.EXIT_FAILURE, (name, said[name])
    started = tmp_path / "started"
    settings = plugin_settings.Settings(endpoint=endpoint, timeout=2,
                                        daemon_command=(sys.executable, "-c", f"open({str(started)!r}, 'w')"))
    with pytest.raises(UnsafeSocket) as caught:
        daemon_connection.connect(settings, endpoint)
    said["plug-in"] = str(caught.value)
    time.sleep(0.5)
    assert not started.exists(), "the plug-in started a daemon beside the impostor"
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out" / "a.png").exists()
    return said


@needs_root
def test_a_folder_another_user_made_first_is_refused_and_the_impostor_hears_nothing(shared_temp, tmp_path, capsys):
    folder = ipc_path(default_endpoint()).parent
    assert folder.parent == shared_temp
    folder.mkdir(mode=0o700)
    os.chown(folder, OTHER_UID, OTHER_UID)  # the other user was first, as in the probe
    impostor = Impostor(folder, as_other_from_start=True)
    try:
        said = refusals(default_endpoint(), tmp_path, capsys)
    finally:
        connections, received = impostor.stop()
    assert (connections, received) == (0, 0)
    for client, text in said.items():
        assert str(folder) in text and f"belongs to another user (uid {OTHER_UID})" in text, client
        assert RUNTIME_ENV in text, client  # what to do instead
    with pytest.raises(DaemonConfigError, match="belongs to another user"):  # nor does the daemon listen there
        Daemon()


@needs_root
def test_a_socket_another_user_listens_on_in_a_private_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir(mode=0o700)
    endpoint = f"ipc://{folder / 'daemon.sock'}"
    impostor = Impostor(folder, as_other_from_start=False)  # bound by root here, listening as the other user
    try:
        said = refusals(endpoint, tmp_path, capsys)
    finally:
        connections, received = impostor.stop()
    assert received == 0 and connections >= 1  # each client asked the kernel who listens, and sent nothing
    for client, text in said.items():
        assert f"{folder / 'daemon.sock'} is served by another user's program (uid {OTHER_UID})" in text, client


# Run as the other user: whether check_socket trusts the socket in its own folder, where root listens.
CHECK_AS_OTHER = """
import sys
sys.path.insert(0, sys.argv[1])
from daemon.service.endpoints import DaemonConfigError, check_socket
try:
    print("trusted" if check_socket(sys.argv[2]) else "no folder")
except DaemonConfigError as error:
    print(error)
"""


@needs_root
def test_a_user_does_not_trust_roots_listener_either():
    base = Path(tempfile.mkdtemp(prefix="neural-fill-test-"))  # not under pytest's 0700 folders: the user must reach it
    try:
        base.chmod(0o711)  # the other user may pass through, not look
        folder = base / "theirs"
        folder.mkdir(mode=0o700)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(str(folder / "daemon.sock"))
            listener.listen(1)
            os.chmod(folder / "daemon.sock", 0o777)  # root lets the user connect (else there is no one to ask)
            os.chown(folder, OTHER_UID, OTHER_UID)
            done = subprocess.run([sys.executable, "-I", "-c", CHECK_AS_OTHER, str(REPO),
                                   f"ipc://{folder}/daemon.sock"], user=OTHER_UID, group=OTHER_UID,
                                  capture_output=True, text=True, timeout=60, cwd="/")
    finally:
        shutil.rmtree(base)
    assert done.returncode == 0, done.stderr
    assert "is served by another user's program (uid 0)" in done.stdout


def test_a_folder_others_can_enter_is_refused_by_clients_and_the_daemon(tmp_path, capsys):
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o755)
    endpoint = f"ipc://{folder / 'daemon.sock'}"
    with pytest.raises(UnsafeSocket, match=f"others can reach the socket's folder {folder} \\(mode 755\\)"):
        Client(endpoint)
    with pytest.raises(DaemonConfigError, match="mode 755"):
        Daemon(endpoint)
    assert main(["daemon", "--bind", endpoint]) == errors.EXIT_BAD_INPUT
    assert f"others can reach the socket's folder {folder} (mode 755): make it yours alone" in capsys.readouterr().err
    assert not (folder / "daemon.sock").exists()


def test_a_linked_folder_is_refused_and_a_missing_one_is_made_private(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    endpoint = f"ipc://{tmp_path / 'link' / 'daemon.sock'}"
    with pytest.raises(UnsafeSocket, match="is not a folder \\(a link is not taken\\)"):
        Client(endpoint)
    with pytest.raises(DaemonConfigError, match="is not a folder"):
        Daemon(endpoint)
    assert check_socket(f"ipc://{real / 'daemon.sock'}")  # a private folder of ours, no one listening: fine
    # A missing folder is made, the user's alone, before a client waits for a daemon there: no one else can then.
    with Client(f"ipc://{tmp_path / 'missing' / 'daemon.sock'}", timeout=0.2) as client:
        assert stat.S_IMODE((tmp_path / "missing").stat().st_mode) == 0o700
        with pytest.raises(DaemonUnavailable, match="no answer"):
            client.ping()
    started = time.monotonic()
    with pytest.raises(DaemonUnavailable, match="no Neural Fill daemon can be running .*: its folder's parent does "
                                                "not exist"):
        Client(f"ipc://{tmp_path / 'deeper' / 'missing' / 'daemon.sock'}", timeout=10)
    assert time.monotonic() - started < 1


# ------------------------------------------------------------------------------------------ one daemon per socket


def test_the_socket_lock_is_held_once_names_its_holder_and_goes_with_the_socket(tmp_path):
    endpoint = f"ipc://{tmp_path / 'daemon.sock'}"
    (tmp_path / "daemon.sock.lock").write_text("12345\n")  # left by a daemon that was killed: no holder
    first = locks.claim_socket(endpoint)
    assert (tmp_path / "daemon.sock.lock").read_text() == f"{os.getpid()}\n"
    with pytest.raises(locks.DaemonRunning, match=f"already running on {endpoint} \\(pid {os.getpid()}\\)"):
        locks.claim_socket(endpoint)
    (tmp_path / "daemon.sock").touch()
    locks.release_socket(first)
    assert list(tmp_path.iterdir()) == []
    locks.release_socket(locks.claim_socket(endpoint))  # free again


def test_a_lock_waited_for_is_had_once_its_holder_lets_go(tmp_path):
    path = tmp_path / "autostart.lock"
    held = locks.lock(path)
    assert locks.lock(path, wait=0.2) is None
    threading.Timer(0.3, held.release).start()
    started = time.monotonic()
    second = locks.lock(path, wait=10)
    assert second is not None and 0.2 < time.monotonic() - started < 5
    second.release()


def test_a_tcp_port_in_use_is_said_plainly(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        endpoint = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(DaemonConfigError, match=f"cannot listen on {endpoint}: the address is in use"):
            Daemon(endpoint, curve=True).start()
        assert main(["daemon", "--bind", endpoint]) == errors.EXIT_BAD_INPUT
    said = capsys.readouterr().err
    assert f"neural-fill: error: cannot listen on {endpoint}: the address is in use" in said
    assert "Traceback" not in said


@pytest.mark.weights
def test_a_second_daemon_on_the_socket_is_refused_and_the_first_serves_on(tmp_path, capsys):
    endpoint = f"ipc://{tmp_path / 'daemon.sock'}"
    daemon, thread = start_daemon(endpoint)
    try:
        with pytest.raises(locks.DaemonRunning):
            Daemon(endpoint).start()
        assert main(["daemon", "--bind", endpoint]) == errors.EXIT_BAD_INPUT
        said = capsys.readouterr().err
        assert f"a Neural Fill daemon is already running on {endpoint} (pid {os.getpid()})" in said
        with Client(endpoint, timeout=10) as client:
            assert client.status()["running"] is None
    finally:
        daemon.stop()
        thread.join(10)
    assert list(tmp_path.iterdir()) == []  # socket and lock file gone with a clean stop
    daemon, thread = start_daemon(endpoint)
    try:
        with Client(endpoint, timeout=10) as client:
            assert client.ping() < 1
    finally:
        daemon.stop()
        thread.join(10)


@pytest.mark.weights
def test_two_fills_started_at_once_start_one_daemon(tmp_path):
    """Two plug-in fills find no daemon at the same moment: one starts it (a real one), the other waits its turn
    and then finds it."""
    endpoint = default_endpoint()  # the plug-in's own folder: made by connect before it looks
    started = tmp_path / "started"
    start = (f"import os, sys; open({str(started)!r}, 'a').write(f'{{os.getpid()}}\\n'); sys.path.insert(0, "
             f"{str(REPO)!r}); from daemon.cli import main; sys.exit(main(['daemon', '--bind', {endpoint!r}]))")
    settings = plugin_settings.Settings(endpoint=endpoint, daemon_command=(sys.executable, "-c", start))
    results: list[object] = [None, None]

    def fill(number: int) -> None:
        try:
            connection = daemon_connection.connect(settings, endpoint)
            results[number] = connection.call({"op": "status"}, "status").header["queued"]
            connection.close()
        except Exception as error:  # reported below
            results[number] = error

    fills = [threading.Thread(target=fill, args=(number,)) for number in range(2)]
    try:
        for thread in fills:
            thread.start()
        for thread in fills:
            thread.join(120)
        assert results == [0, 0]
        assert len(started.read_text().split()) == 1
    finally:
        for pid in started.read_text().split() if started.exists() else ():
            with contextlib.suppress(ProcessLookupError):  # one refused to start (the failure above)
                os.kill(int(pid), signal.SIGTERM)
    deadline = time.monotonic() + 30
    while ipc_path(endpoint).exists():  # SIGTERM is a clean stop: the socket goes with the daemon
        assert time.monotonic() < deadline, "the daemon's socket outlived it"
        time.sleep(0.1)
