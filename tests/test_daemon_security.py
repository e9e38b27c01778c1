"""CURVE over real sockets: keys made on the first start, authorised clients served, others refused by ZAP,
public binds only with CURVE, shutdown by an authorised key. Traffic goes to 127.0.0.1 only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq.auth

from daemon.cli import errors
from daemon.cli.main import main
from daemon.files import read_image, write_image
from daemon.service.client import Client
from daemon.service.keys import CONFIG_DIR_ENV, KeysError, ensure_keys
from daemon.service.link import HandshakeRefused
from daemon.service.server import Daemon, DaemonConfigError
from engine import fill
from tests.support.daemon_helpers import (
    FAST,
    REPO,
    free_port,
    photo_and_hole,
    several_chunks,
    start_daemon,
)

sys.path.insert(0, str(REPO / "gimp_plugin" / "neural_fill"))  # as GIMP does: the plug-in's modules by bare name

import daemon_connection  # noqa: E402
import plugin_settings  # noqa: E402

pytestmark = pytest.mark.weights  # every daemon loads the real VGG-19 at start

SECRET_FILES = ("server.key_secret", "client.key_secret")


def stop(daemon: Daemon, thread: threading.Thread) -> None:
    daemon.stop()
    thread.join(10)
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("config") / "keys"


@pytest.fixture(scope="module")
def curve_endpoint(keys_dir):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    daemon, thread = start_daemon(endpoint, curve=True, keys_dir=keys_dir)
    yield endpoint
    stop(daemon, thread)


def stranger_keys(tmp_path: Path, keys_dir: Path) -> Path:
    """A fresh client pair the daemon has never seen, beside the daemon's real public key."""
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    zmq.auth.create_certificates(stranger, "client")
    shutil.copyfile(keys_dir / "server.key", stranger / "server.key")
    return stranger


def file_modes(folder: Path) -> dict[str, int]:
    return {str(path.relative_to(folder)): path.stat().st_mode & 0o777 for path in folder.rglob("*")}


def test_keys_are_made_on_the_first_start_private_and_reused_on_the_second(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "config"))
    keys = tmp_path / "config" / "keys"
    endpoint = f"ipc://{tmp_path / 'keys.sock'}"
    stop(*start_daemon(endpoint, curve=True))
    modes = file_modes(keys)
    assert modes == {"server.key": 0o644, "server.key_secret": 0o600, "client.key": 0o644,
                     "client.key_secret": 0o600, "clients": 0o700, "clients/client.key": 0o644}
    assert keys.stat().st_mode & 0o777 == 0o700
    first = {name: (keys / name).read_bytes() for name in SECRET_FILES}
    stop(*start_daemon(endpoint, curve=True))
    assert {name: (keys / name).read_bytes() for name in SECRET_FILES} == first
    assert file_modes(keys) == modes


def test_an_authorised_client_fills_over_curve_as_without_it(curve_endpoint, keys_dir, tmp_path):
    image, mask = photo_and_hole(seed=21)
    plain_daemon, plain_thread = start_daemon(f"ipc://{tmp_path / 'plain.sock'}")
    try:
        with Client(plain_daemon.endpoint, timeout=30) as plain:
            expected = plain.fill(image, mask, options=FAST)
    finally:
        stop(plain_daemon, plain_thread)
    with Client(curve_endpoint, timeout=30, keys_dir=keys_dir) as client:
        assert np.array_equal(client.fill(image, mask, options=FAST), expected)


def test_full_chunks_pass_the_frame_limit_with_what_curve_adds_to_them(curve_endpoint, keys_dir):
    image, mask = several_chunks()  # each chunk exactly 1 MiB before encryption
    with Client(curve_endpoint, timeout=30, keys_dir=keys_dir) as client:
        assert np.array_equal(client.fill(image, mask, options=FAST), fill(image, mask, FAST))


def test_the_fill_command_uses_curve_keys_from_the_config_dir(curve_endpoint, keys_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_DIR_ENV, str(keys_dir.parent))
    image, mask = photo_and_hole(seed=22)
    write_image(tmp_path / "in.png", image)
    write_image(tmp_path / "mask.png", mask)
    common = ["fill", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"), "--preset", "preview",
              "--working-size", "64", "-q", "--daemon", curve_endpoint]
    assert main([*common, "--curve", "-o", str(tmp_path / "out.png")]) == errors.EXIT_OK
    assert read_image(tmp_path / "out.png").shape == image.shape


def test_an_unauthorised_key_or_no_curve_is_told_as_such_and_the_daemon_serves_on(curve_endpoint, keys_dir,
                                                                                  tmp_path, capsys):
    stranger = stranger_keys(tmp_path, keys_dir)
    stale = tmp_path / "stale"  # the authorised client pair, beside a server key that is not the daemon's
    stale.mkdir()
    for name in ("client.key", "client.key_secret"):
        shutil.copyfile(keys_dir / name, stale / name)
    zmq.auth.create_certificates(stale, "server")
    for settings, said in (({"keys_dir": stranger}, f"the Neural Fill daemon at {curve_endpoint} refused this "
                                                    "client's key (CURVE): add the client's public key"),
                           # Told with libzmq's reason, or (when TCP reset the connection first) without it.
                           ({"curve": False}, "does not speak CURVE"),
                           ({"keys_dir": stale}, "check that the client's server.key is the daemon's current")):
        started = time.monotonic()
        with Client(curve_endpoint, timeout=1, **settings) as client, pytest.raises(HandshakeRefused) as refused:
            client.hello()
        assert said in str(refused.value)
        if "curve" in settings:
            assert "CURVE on one side only" in str(refused.value)
        assert time.monotonic() - started < 4  # the 1 s timeout, with room for a busy machine
    assert main(["status", "--daemon", curve_endpoint, "--insecure-loopback"]) == errors.EXIT_FAILURE
    said = capsys.readouterr().err
    assert "does not speak CURVE" in said and "CURVE on one side only" in said
    with Client(curve_endpoint, timeout=10, keys_dir=keys_dir) as client:
        assert client.hello()["op"] == "hello"


def test_a_curve_client_of_a_plain_daemon_is_told_so_and_the_plugin_starts_nothing(keys_dir, tmp_path):
    daemon, thread = start_daemon(f"ipc://{tmp_path / 'plain.sock'}")
    try:
        with Client(daemon.endpoint, timeout=1, keys_dir=keys_dir) as client, \
                pytest.raises(HandshakeRefused, match="this client speaks CURVE and the daemon does not"):
            client.hello()
        started = tmp_path / "started"
        settings = plugin_settings.Settings(endpoint=daemon.endpoint, curve=True, keys_dir=keys_dir,
                                            daemon_command=(sys.executable, "-c", f"open({str(started)!r}, 'w')"))
        with pytest.raises(HandshakeRefused, match="CURVE on one side only"):
            daemon_connection.connect(settings, daemon.endpoint)
        assert not started.exists()
        with Client(daemon.endpoint, timeout=10) as client:
            assert client.status()["running"] is None
    finally:
        stop(daemon, thread)


def test_a_client_without_keys_is_told_where_they_come_from(tmp_path):
    with pytest.raises(KeysError, match="start the daemon once"):
        Client("tcp://127.0.0.1:1", keys_dir=tmp_path / "nothing")


def test_a_public_bind_needs_curve(keys_dir):
    port = free_port()
    with pytest.raises(DaemonConfigError, match="without CURVE: anyone on the network"):
        Daemon(f"tcp://0.0.0.0:{port}", curve=False)
    daemon, thread = start_daemon(f"tcp://0.0.0.0:{port}", curve=True, keys_dir=keys_dir)
    try:
        with Client(f"tcp://127.0.0.1:{port}", timeout=10, keys_dir=keys_dir) as client:
            assert client.ping() < 1
    finally:
        stop(daemon, thread)


def test_an_authorised_curve_client_may_shut_the_daemon_down(tmp_path):
    keys = ensure_keys(tmp_path / "keys")
    port = free_port()
    daemon, thread = start_daemon(f"tcp://127.0.0.1:{port}", curve=True, keys_dir=keys)  # allow_shutdown is off
    try:
        with Client(f"tcp://127.0.0.1:{port}", timeout=10, keys_dir=keys) as client:
            client.shutdown()  # returns on `bye`
        thread.join(10)
        assert not thread.is_alive()
    finally:
        daemon.stop()
        thread.join(10)


def test_the_daemon_command_with_curve_listens_publicly_and_an_authorised_client_stops_it(tmp_path):
    port = free_port()
    env = {**os.environ, CONFIG_DIR_ENV: str(tmp_path / "config")}
    daemon = subprocess.Popen([sys.executable, "-m", "daemon.cli", "daemon", "--bind", f"tcp://0.0.0.0:{port}",
                               "--curve"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        keys = tmp_path / "config" / "keys"
        deadline = time.monotonic() + 60
        while not (keys / "clients" / "client.key").exists() and daemon.poll() is None:  # made before binding
            assert time.monotonic() < deadline, "no keys after 60 s"
            time.sleep(0.05)
        with Client(f"tcp://127.0.0.1:{port}", timeout=60, keys_dir=keys) as client:
            assert client.hello()["op"] == "hello"
            client.shutdown()
        assert daemon.wait(10) == 0
        assert "CURVE on" in daemon.stderr.read()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


def test_the_batch_command_fills_over_curve(curve_endpoint, keys_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_DIR_ENV, str(keys_dir.parent))
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    image, mask = photo_and_hole(seed=23)
    write_image(tmp_path / "images" / "a.png", image)
    write_image(tmp_path / "masks" / "a.png", mask)
    args = ["batch", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"), "--out",
            str(tmp_path / "out"), "--daemon", curve_endpoint, "--preset", "preview", "--set", "working_size=64",
            "-q", "--timeout", "5"]
    assert main([*args, "--curve"]) == errors.EXIT_OK
    result = read_image(tmp_path / "out" / "a.png")
    assert np.array_equal(result[mask == 0], image[mask == 0])
