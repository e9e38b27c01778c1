"""Peers that attack the daemon before it sees a message, run for real: the routing-id collision that makes libzmq
abort (docs/security.md), and another OS user. Under the defaults (an ipc:// socket in a private folder, CURVE on
every tcp:// endpoint) the attacker is refused and the daemon goes on.

The daemons run in processes of their own: an attack that worked would abort the process it hit."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time

import pytest
import zmq

from daemon.service.client import Client
from daemon.service.endpoints import default_endpoint, ipc_path
from tests.support.daemon_helpers import REPO, free_port, resident_bytes

pytestmark = pytest.mark.weights  # every daemon loads the real VGG-19 at start

# Claims the routing ids libzmq's ROUTER is about to hand out (its counter starts at the same value in every run,
# 0x006b8b4567), then connects ordinary clients, which get those ids: libzmq asserts and the process aborts. Prints
# how many replies its ordinary clients got.
ATTACK = """
import struct, sys, time
import zmq
context = zmq.Context()
endpoint = sys.argv[1]
sockets = []
for number in range(8):
    claimer = context.socket(zmq.DEALER)
    claimer.linger = 0
    claimer.ipv6 = True
    claimer.setsockopt(zmq.ROUTING_ID, b"\\x00" + struct.pack(">I", 0x6B8B4567 + number))
    claimer.connect(endpoint)
    sockets.append(claimer)
time.sleep(0.5)
hello = b"\\x82\\xa1v\\x01\\xa2op\\xa5hello"  # msgpack {"v": 1, "op": "hello"}
plain = []
for _ in range(3):
    client = context.socket(zmq.DEALER)
    client.linger = 0
    client.connect(endpoint)
    client.send(hello)
    plain.append(client)
replies = 0
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    for client in plain:
        if client.poll(50):
            client.recv_multipart()
            replies += 1
print(replies, flush=True)
"""

# A bare ROUTER as a daemon without authentication has it: what the attack does to it shows the attack is real.
BARE_ROUTER = """
import sys, zmq
router = zmq.Context().socket(zmq.ROUTER)
router.setsockopt(zmq.ROUTER_MANDATORY, 1)
router.bind(sys.argv[1])
print("bound", flush=True)
while True:
    if router.poll(100):
        client, *_ = router.recv_multipart()
        router.send_multipart([client, b"pong"])
"""


def attack(endpoint: str, seconds: float = 3.0, user: str | None = None) -> int:
    """Run the attack (as `user` when given) and return how many replies its clients got."""
    command = [sys.executable, "-c", ATTACK, endpoint, str(seconds)]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--reset-env", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def start_daemon_process(*arguments: str) -> subprocess.Popen:
    daemon = subprocess.Popen([sys.executable, "-m", "daemon.cli", "daemon", *arguments], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return daemon


def wait_until_serving(daemon: subprocess.Popen, endpoint: str) -> None:
    with Client(endpoint, timeout=120) as client:
        client.hello()  # waits for the networks to load
    assert daemon.poll() is None


def stop_process(daemon: subprocess.Popen) -> str:
    if daemon.poll() is None:
        daemon.terminate()
        daemon.wait(30)
    return daemon.stderr.read()


def test_the_attack_aborts_a_router_without_authentication():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    router = subprocess.Popen([sys.executable, "-c", BARE_ROUTER, endpoint], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert router.stdout.readline().strip() == "bound"
        attack(endpoint, seconds=2)
        try:
            router.wait(10)
        except subprocess.TimeoutExpired:
            pytest.skip(f"this libzmq ({zmq.zmq_version()}) no longer aborts on a claimed routing id")
        assert router.returncode != 0 and "Assertion failed" in router.stderr.read()
    finally:
        if router.poll() is None:
            router.kill()
            router.wait()


def junk_connections(port: int, count: int, seconds: float) -> int:
    """Open `count` raw TCP connections that send junk (libzmq takes a first byte other than 0xFF for an old ZMTP
    1.0 peer, which has no handshake timer); return how many the daemon has not closed after `seconds`."""
    connections = []
    for number in range(count):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(b"GET / HTTP/1.0\r\n\r\n" if number % 2 else bytes(range(1, 41)))
        connection.setblocking(False)
        connections.append(connection)
    return still_open(connections, seconds)


def still_open(connections: list[socket.socket], seconds: float, watch=lambda: None) -> int:
    """How many of the connections the daemon has not closed after `seconds` (then all are closed here);
    `watch` is called meanwhile."""
    deadline = time.monotonic() + seconds
    open_ = set(connections)
    while time.monotonic() < deadline:
        for connection in list(open_):
            try:
                if connection.recv(1 << 16) == b"":
                    open_.discard(connection)
            except BlockingIOError:
                pass
            except OSError:
                open_.discard(connection)
        watch()
        time.sleep(0.05)
    for connection in connections:
        connection.close()
    return len(open_)


@pytest.fixture(scope="module")
def curve_daemon():
    """A daemon on tcp:// with the defaults (CURVE), in its own process: (process, port)."""
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    daemon = start_daemon_process("--bind", endpoint)
    try:
        wait_until_serving(daemon, endpoint)
        yield daemon, port
    finally:
        log = stop_process(daemon)
    assert "Assertion failed" not in log and "CURVE on" in log


def test_under_the_default_tcp_curve_the_attack_is_refused_and_the_daemon_goes_on(curve_daemon):
    daemon, port = curve_daemon
    endpoint = f"tcp://127.0.0.1:{port}"
    assert attack(endpoint) == 0  # no handshake without an authorised key: no routing id, no reply
    assert daemon.poll() is None
    # Junk raw connections: CURVE refuses a ZMTP 1.0 peer at once (without CURVE they stay open for good).
    assert junk_connections(port, 300, seconds=10) == 0
    assert daemon.poll() is None
    with Client(endpoint, timeout=10) as client:
        assert client.ping() < 1


def big_frame_connections(port: int, count: int, declared: int, sent: int) -> list[socket.socket]:
    """Raw connections that each start a frame of `declared` bytes and send `sent` of them: half as ZMTP 1.0 peers
    (0xFF, a 64-bit length, no handshake), half as ZMTP 3 CURVE peers whose first command is that frame."""
    greeting = b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"CURVE".ljust(20, b"\x00") + bytes(32)
    connections = []
    for number in range(count):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.setblocking(False)
        length = declared.to_bytes(8, "big")
        start = b"\xff" + length + b"\x00" if number % 2 else greeting + b"\x06" + length
        with contextlib.suppress(OSError):  # as much as the socket takes now; a refusal is fine
            connection.send(start + bytes(sent))
        connections.append(connection)
    return connections


def test_outsiders_starting_big_frames_are_cut_off_before_they_hold_memory(curve_daemon):
    """60 connections that each start a 5 MB frame and never finish it (the probe's case: +294 MB, held for
    good). CURVE refuses the ZMTP 1.0 ones at once, and 5 MB is over the one-chunk frame limit for the others."""
    daemon, port = curve_daemon
    before, growth = resident_bytes(daemon.pid), [0]
    connections = big_frame_connections(port, 60, declared=5 << 20, sent=4 << 20)
    left_open = still_open(connections, 10, watch=lambda: growth.append(resident_bytes(daemon.pid) - before))
    assert left_open == 0
    assert max(growth) < 40 << 20, f"the daemon grew by {max(growth) >> 20} MB"
    assert daemon.poll() is None


# ------------------------------------------------------------------------------------------ another OS user


@pytest.fixture(scope="module")
def other_user():
    """A second OS user, made for these tests and removed afterwards (root only)."""
    if os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("making a second OS user needs root, useradd and setpriv")
    name = f"nftest{os.getpid() % 100000}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True,
                   capture_output=True)
    try:
        probe = subprocess.run(["setpriv", f"--reuid={name}", f"--regid={name}", "--clear-groups", sys.executable,
                                "-c", "import zmq"], capture_output=True, text=True, cwd="/")
        if probe.returncode != 0:
            pytest.skip(f"the second user cannot run this Python with pyzmq: {probe.stderr.strip()[-200:]}")
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True)
    assert name not in {entry.pw_name for entry in pwd.getpwall()}


def test_another_user_gets_nothing_from_the_default_daemons(other_user, tmp_path):
    """The default ipc:// socket (in a 0700 folder) and a tcp:// endpoint (CURVE, keys in a 0700 folder): the
    other user's attack and its ordinary requests get no reply, and the daemons serve their own user on."""
    ipc_endpoint = default_endpoint()
    tcp_endpoint = f"tcp://127.0.0.1:{free_port()}"
    daemons = {ipc_endpoint: start_daemon_process(), tcp_endpoint: start_daemon_process("--bind", tcp_endpoint)}
    try:
        for endpoint, daemon in daemons.items():
            wait_until_serving(daemon, endpoint)
        assert ipc_path(ipc_endpoint).parent.stat().st_mode & 0o077 == 0
        for endpoint, daemon in daemons.items():
            assert attack(endpoint, seconds=2, user=other_user) == 0, endpoint
            assert daemon.poll() is None, endpoint
            with Client(endpoint, timeout=10) as client:
                assert client.status()["running"] is None
    finally:
        logs = [stop_process(daemon) for daemon in daemons.values()]
    assert not any("Assertion failed" in log for log in logs)


def test_plain_loopback_tcp_says_at_start_what_it_allows():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    daemon = start_daemon_process("--bind", endpoint, "--insecure-loopback")
    try:
        with Client(endpoint, timeout=120, insecure_loopback=True) as client:
            assert client.hello()["op"] == "hello"  # a plain client is served: that is what the warning is about
    finally:
        log = stop_process(daemon)
    assert "--insecure-loopback: any program of any user of this machine may send this daemon work" in log
