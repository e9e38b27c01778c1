"""The daemon over real sockets with the real weights: results, progress, cancel, bad input, many clients, the CLI.

Fills use the preview preset at a 64 px working size on small images, so each takes a fraction of a second.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import time

import msgpack
import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from daemon.cli import errors
from daemon.cli.main import main
from daemon.files import write_image
from daemon.service.client import Client, DaemonError, DaemonUnavailable
from daemon.service.endpoints import RUNTIME_ENV, default_endpoint, uses_curve
from daemon.service.pixels import mask_to_frame, to_frame
from daemon.service.protocol import (
    PROTOCOL_VERSION,
    REPLIES,
    REQUEST_FRAMES,
    ErrorCode,
    Message,
    decode,
    encode,
    fill_request,
)
from daemon.service.server import Daemon, DaemonConfigError, check_endpoint
from engine import fill
from engine.errors import Cancelled, MaskError, WeightsError
from engine.weights import DATA_DIR_ENV, WEIGHTS_FILENAME, vgg19_path
from tests.support.daemon_helpers import (
    ERROR_CODES,
    FAST,
    REPO,
    SLOW,
    VALID_FILL,
    free_port,
    is_valid_request,
    photo_and_hole,
    several_chunks,
    start_daemon,
)
from tests.support.images import centre_mask, noisy_photo

pytestmark = pytest.mark.weights  # every daemon loads the real VGG-19 at start


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    address = f"ipc://{tmp_path_factory.mktemp('daemon') / 'fill.sock'}"
    daemon, thread = start_daemon(address, allow_shutdown=True)
    yield address
    daemon.stop()
    thread.join(10)


@pytest.fixture
def client(endpoint):
    with Client(endpoint, timeout=10) as client:
        yield client


@pytest.fixture
def dealer(endpoint):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    yield sock
    sock.close()


def test_a_damaged_content_network_leaves_the_daemon_serving_and_network_fills_say_why(tmp_path, monkeypatch,
                                                                                       caplog):
    data = tmp_path / "data"
    data.mkdir()
    (data / WEIGHTS_FILENAME).symlink_to(vgg19_path())
    (data / "content_net.safetensors").write_bytes(b"not a weights file")  # a user's network, broken
    monkeypatch.setenv(DATA_DIR_ENV, str(data))
    address = f"ipc://{tmp_path / 'fill.sock'}"
    with caplog.at_level(logging.WARNING, logger="neural_fill.daemon"):
        daemon, thread = start_daemon(address)
    try:
        assert "the content network did not load" in caplog.text  # the preload tried, and said so
        image, mask = noisy_photo(64, 64), centre_mask(64, 64, 16)
        with Client(address, timeout=30) as client:
            with pytest.raises(DaemonError) as refused:
                client.fill(image, mask, "preview", {"working_size": 64})  # the default content is the network
            assert "content network weights" in refused.value.message
            filled = client.fill(image, mask, "preview", {"working_size": 64, "content": "patches"})
            assert np.array_equal(filled[mask == 0], image[mask == 0])
    finally:
        daemon.stop()
        thread.join(10)


def test_a_daemon_without_the_vgg19_weights_refuses_to_start_and_names_the_fix(tmp_path, monkeypatch):
    import engine.vgg

    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "empty"))
    monkeypatch.setattr(engine.vgg, "_CACHE", {})  # as in a fresh process: nothing loaded yet
    address = f"ipc://{tmp_path / 'fill.sock'}"
    daemon = Daemon(address, device="cpu")
    with pytest.raises(WeightsError, match="fetch-weights"):
        daemon.start()
    with zmq.Context() as context, context.socket(zmq.REQ) as probe:  # nothing is left listening
        probe.linger = 0
        probe.connect(address)
        probe.send(b"hello")
        assert not probe.poll(300)
    assert not (tmp_path / "fill.sock").exists() and not (tmp_path / "fill.sock.lock").exists()  # nor held


def receive(sock: zmq.Socket, timeout: float = 5.0) -> Message:
    assert sock.poll(int(timeout * 1000)), f"no reply within {timeout} s"
    return decode(sock.recv_multipart())


def reply(sock: zmq.Socket, timeout: float = 5.0) -> Message:
    """The next message that is not a progress event (those of a running job come in between)."""
    while (message := receive(sock, timeout)).op == "progress":
        pass
    return message


def send_fill(sock: zmq.Socket, job_id: str, image: np.ndarray, mask: np.ndarray, options) -> None:
    pixels, holes = to_frame(image), mask_to_frame(mask)
    for frames in fill_request(job_id, pixels.width, pixels.height, pixels.channels, pixels.sample, pixels.data,
                               holes.data, holes.sample, options=options.to_dict()):
        sock.send_multipart(frames)


# ------------------------------------------------------------------------------------------------ results


def test_hello_names_the_device_and_the_precision_its_fills_run_in(client):
    import torch

    from engine.device import precision_name, resolve_precision

    hello = client.hello()
    assert hello["device"] == "cpu"
    assert hello["precision"] == precision_name(resolve_precision("auto", torch.device("cpu")))
    image, mask = photo_and_hole(seed=1)
    for precision in ("float32", "bfloat16"):  # a client may ask for either; the result is the in-process one
        options = FAST.replace(precision=precision)
        assert np.array_equal(client.fill(image, mask, options=options), fill(image, mask, options))


def test_a_source_mask_travels_to_the_daemon_and_fills_as_in_process(client):
    assert "source" in client.hello()["features"]
    image, mask = photo_and_hole(seed=2)
    source = np.ones(mask.shape, bool)
    source[:, :24] = False  # never copy from the left part
    result = client.fill(image, mask, options=FAST, source=source)
    assert np.array_equal(result, fill(image, mask, FAST, source=source))
    assert not np.array_equal(result, fill(image, mask, FAST))  # it made a difference
    with pytest.raises(MaskError, match="the source mask is 32x64"):
        client.fill(image, mask, options=FAST, source=source[:, :32])


@pytest.mark.parametrize("layout", ["u8 rgb", "u16 grey", "f32 rgba"])
def test_a_fill_through_the_daemon_equals_the_in_process_fill(client, layout):
    image, mask = photo_and_hole(seed=1)
    if layout == "u16 grey":
        image = image[..., 0].astype(np.uint16) * 257
    elif layout == "f32 rgba":
        image = np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], axis=2)
        image = image.astype(np.float32) / 255
    options = FAST.replace(seed=5)
    result = client.fill(image, mask, options=options)
    assert result.dtype == image.dtype and result.shape == image.shape
    assert np.array_equal(result, fill(image, mask, options))


def test_progress_events_arrive_in_order_before_the_result(dealer):
    image, mask = photo_and_hole(seed=2)
    send_fill(dealer, "p1", image, mask, FAST)
    ops, fractions = [], []
    while not ops or ops[-1] not in ("result", "error"):
        message = receive(dealer)
        assert message.header["id"] == "p1"
        ops.append(message.op)
        if message.op == "progress":
            fractions.append(message.header["fraction"])
            assert {"stage", "scale", "scales", "iteration", "iterations"} <= set(message.header)
    assert ops[0] == "accepted" and ops[-1] == "result"
    assert set(ops[1:-1]) == {"progress"} and len(fractions) >= 3
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


# Each client's jobs go one after the other, so eight clients keep eight jobs interleaved in the queue whatever
# their number: three each are enough to mix every client's turn with the others'.
CLIENTS, JOBS_EACH = 8, 3


def test_eight_clients_with_three_jobs_each_get_their_own_results(endpoint):
    cases = {(c, j): photo_and_hole(seed=10 * c + j, size=48) for c in range(CLIENTS) for j in range(JOBS_EACH)}
    expected = {key: fill(image, mask, FAST) for key, (image, mask) in cases.items()}
    results, failures = {}, []

    def one_client(number: int) -> None:
        try:
            with Client(endpoint, timeout=60) as client:
                for job in range(JOBS_EACH):
                    results[number, job] = client.fill(*cases[number, job], options=FAST)
        except Exception as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=one_client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures
    assert results.keys() == expected.keys()
    for key in expected:
        assert np.array_equal(results[key], expected[key]), key


# ------------------------------------------------------------------------------------------------ cancel


def test_cancel_stops_a_running_fill_within_a_second_and_the_daemon_serves_the_next(client):
    image, mask = photo_and_hole(seed=3)
    asked: list[float] = []
    started = time.monotonic()

    def cancel() -> bool:
        if time.monotonic() - started > 0.5:
            asked.append(time.monotonic())
            return True
        return False

    with pytest.raises(Cancelled):
        client.fill(image, mask, options=SLOW, cancel=cancel)
    assert time.monotonic() - asked[0] < 1.5
    assert np.array_equal(client.fill(image, mask, options=FAST), fill(image, mask, FAST))


def test_the_socket_loop_answers_during_a_fill_and_a_queued_job_cancels_at_once(endpoint, dealer, client):
    image, mask = photo_and_hole(seed=4)
    send_fill(dealer, "long", image, mask, SLOW)
    assert receive(dealer).op == "accepted"
    send_fill(dealer, "waiting", image, mask, FAST)
    accepted = reply(dealer)
    assert accepted.op == "accepted" and accepted.header["position"] == 1
    deadline = time.monotonic() + 10  # the worker takes "long" off the queue when the machine lets it
    while client.status()["running"] is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.ping() < 0.2
    assert client.status()["running"] == "long" and client.status()["queued"] == 1
    sent = time.monotonic()
    dealer.send_multipart(encode({"op": "cancel", "id": "waiting"}))
    message = reply(dealer)
    assert (message.op, message.header["id"]) == ("cancelled", "waiting") and time.monotonic() - sent < 0.5
    dealer.send_multipart(encode({"op": "cancel", "id": "long"}))
    message = reply(dealer)
    assert (message.op, message.header["id"]) == ("cancelled", "long")


def test_job_ids_are_per_client_and_unique_while_live(endpoint, dealer):
    image, mask = photo_and_hole(seed=5)
    send_fill(dealer, "same", image, mask, SLOW)
    assert receive(dealer).op == "accepted"
    send_fill(dealer, "same", image, mask, FAST)
    message = reply(dealer)
    assert (message.op, message.header["code"]) == ("error", ErrorCode.DUPLICATE_JOB)
    with Client(endpoint) as other:  # another client may use the same id
        send_fill(other._link._socket, "same", image, mask, FAST)
        assert receive(other._link._socket).op == "accepted"
        dealer.send_multipart(encode({"op": "cancel", "id": "same"}))
        message = reply(dealer)
        assert message.op == "cancelled"
        message = reply(other._link._socket)
        assert message.op == "result"
    dealer.send_multipart(encode({"op": "cancel", "id": "same"}))
    assert receive(dealer).header["code"] == ErrorCode.NOT_FOUND


def test_a_job_whose_client_is_gone_is_cancelled(endpoint, client):
    image, mask = photo_and_hole(seed=6)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    send_fill(sock, "orphan", image, mask, SLOW)
    assert receive(sock).op == "accepted"
    sock.close()
    started = time.monotonic()
    client.fill(image, mask, options=FAST)  # would wait a minute or more behind the orphan
    assert time.monotonic() - started < 5


def test_the_daemon_log_names_the_preset_the_cli_was_given(endpoint, tmp_path, caplog):
    """The CLI sends whole options; the preset they came from travels beside them, for the daemon's log."""
    image, mask = photo_and_hole(seed=5)
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    write_image(images / "photo.png", image)
    write_image(masks / "photo.png", mask)
    small = ["--set", "working_size=64", "--set", "threads=2", "-q"]
    with caplog.at_level(logging.INFO, logger="neural_fill.daemon"):
        assert main(["fill", str(images / "photo.png"), "-m", str(masks / "photo.png"), "-o",
                     str(tmp_path / "out.png"), "--preset", "preview", *small, "--daemon", endpoint]) == 0
        assert main(["batch", "--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "batch"),
                     "--preset", "preview", *small,
                     "--daemon", endpoint]) == 0
    accepted = [record.getMessage() for record in caplog.records if "accepted" in record.getMessage()]
    assert len(accepted) == 2
    assert all("preset preview)" in line for line in accepted)  # not "default", the preset whole options get


# ------------------------------------------------------------------------------------------------ bad input


def test_an_empty_mask_is_bad_input_and_the_daemon_goes_on(client):
    image, mask = photo_and_hole(seed=7)
    with pytest.raises(DaemonError) as refused:
        client.fill(image, np.zeros_like(mask), options=FAST)
    assert refused.value.code == ErrorCode.BAD_INPUT and "selects nothing" in refused.value.message
    with pytest.raises(DaemonError) as refused:
        client.fill(image, mask, options={"scales": "many"})
    assert refused.value.code == ErrorCode.BAD_INPUT and "scales" in refused.value.message
    assert client.fill(image, mask, options=FAST).shape == image.shape


any_value = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                      st.floats(allow_subnormal=False),  # the engine turns subnormals off in this thread
                      st.text(max_size=8), st.binary(max_size=8), st.lists(st.integers(-5, 5), max_size=3),
                      st.dictionaries(st.text(max_size=4), st.integers(-9, 9), max_size=2))
blobs = st.lists(st.binary(max_size=32), max_size=3)


@st.composite
def bad_messages(draw) -> list[bytes]:
    kind = draw(st.sampled_from(["bytes", "map", "fill field", "fill frames", "data", "fill absurd"]))
    if kind == "bytes":  # anything at all, mostly not msgpack
        return draw(st.lists(st.binary(max_size=64), min_size=1, max_size=4))
    if kind == "map":  # msgpack maps with known and unknown ops, versions and fields
        header = draw(st.dictionaries(st.sampled_from(["v", "op", "id", "x"]) | st.text(max_size=4), any_value,
                                      max_size=5))
        header.setdefault("v", draw(st.sampled_from([PROTOCOL_VERSION, 0, 1, "1"])))
        header.setdefault("op", draw(st.sampled_from([*REQUEST_FRAMES, *REPLIES, "", "FILL"])))
        return [msgpack.packb(header), *draw(blobs)]
    header = dict(VALID_FILL)
    if kind == "fill field":  # one field missing or of a wrong type
        name = draw(st.sampled_from(sorted(VALID_FILL)))
        if draw(st.booleans()):
            del header[name]
        else:
            header[name] = draw(any_value)
    elif kind == "fill frames":  # a fill's data comes in `data` messages, not beside its header
        return [msgpack.packb(header), *draw(blobs.filter(bool))]
    elif kind == "data":  # a chunk with a bad id, or not exactly one frame
        chunk = {"v": PROTOCOL_VERSION, "op": "data", "id": draw(any_value | st.just("f"))}
        return [msgpack.packb(chunk), *draw(blobs)]
    else:  # absurd sizes
        header["width"] = draw(st.integers(-(2**63), 2**63 - 1))
        header["height"] = draw(st.integers(2**20, 2**40))
    return [msgpack.packb(header)]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.filter_too_much])
@given(frames=bad_messages())
def test_every_malformed_message_gets_an_error_reply(dealer, frames):
    assume(not is_valid_request(frames))
    dealer.send_multipart(frames)
    reply = receive(dealer)
    assert reply.op == "error" and reply.header["code"] in ERROR_CODES and reply.header["message"]


def test_the_daemon_still_answers_after_the_malformed_messages(client):
    assert client.ping() < 0.5


def test_status_says_what_the_daemon_does_and_stop_stops_it_over_ipc(tmp_path, capsys):
    daemon, thread = start_daemon(f"ipc://{tmp_path / 'control.sock'}")
    try:
        assert main(["status", "--daemon", daemon.endpoint]) == 0
        line = capsys.readouterr().out
        assert f"daemon at {daemon.endpoint}: neural-fill" in line and "device cpu" in line, line
        assert "idle, 0 queued, 0 uploading" in line
        assert main(["status", "--daemon", daemon.endpoint, "--json"]) == 0
        answer = json.loads(capsys.readouterr().out)
        assert (answer["device"], answer["queued"], answer["running"]) == ("cpu", 0, None)
        assert answer["protocol"] == PROTOCOL_VERSION and answer["endpoint"] == daemon.endpoint
        assert main(["stop", "--daemon", daemon.endpoint]) == 0  # its own user, through its private folder
        assert "stopped" in capsys.readouterr().out
        thread.join(10)
        assert not thread.is_alive()
    finally:
        daemon.stop()
        thread.join(5)
    started = time.monotonic()
    assert main(["status", "--daemon", daemon.endpoint]) == errors.EXIT_FAILURE  # nobody there now
    assert time.monotonic() - started < 10 and "no answer" in capsys.readouterr().err


def test_a_full_queue_and_an_unauthorised_shutdown_are_refused(tmp_path):
    # Plain loopback TCP: any local program may connect, so no client may stop the daemon (SIGTERM may).
    daemon, thread = start_daemon(f"tcp://127.0.0.1:{free_port()}", max_queue=1, insecure_loopback=True)
    image, mask = photo_and_hole(seed=8)
    try:
        with Client(daemon.endpoint, insecure_loopback=True) as client:
            sock = client._link._socket  # the raw socket: fills without waiting for their results
            send_fill(sock, "a", image, mask, SLOW)
            while receive(sock).op != "progress":  # "a" runs: the queue is empty again
                pass
            for job_id in ("b", "c"):
                send_fill(sock, job_id, image, mask, SLOW)
            replies = {}
            while len(replies) < 2:
                message = reply(sock)
                replies[message.header["id"]] = message
            assert [replies[j].op for j in "bc"] == ["accepted", "error"]
            assert replies["c"].header["code"] == ErrorCode.QUEUE_FULL
            with pytest.raises(DaemonError) as refused:
                client.shutdown()
            assert refused.value.code == ErrorCode.UNAUTHORISED
    finally:
        daemon.stop()  # cancels the running fill and the queued one
        thread.join(5)
    assert not thread.is_alive()


def test_a_failure_inside_a_job_is_that_jobs_internal_error(tmp_path, monkeypatch):
    import engine.pipeline

    def out_of_memory(*args, **kwargs):
        raise MemoryError("no room for the patch bank")

    monkeypatch.setattr(engine.pipeline, "fill", out_of_memory)
    daemon, thread = start_daemon(f"ipc://{tmp_path / 'failing.sock'}")
    image, mask = photo_and_hole(seed=11)
    try:
        with Client(daemon.endpoint, timeout=5) as client:
            for _ in range(2):  # the daemon lives on to fail the next one the same way
                with pytest.raises(DaemonError) as failed:
                    client.fill(image, mask, options=FAST)
                assert failed.value.code == ErrorCode.INTERNAL and "MemoryError" in failed.value.message
            assert client.status()["running"] is None
    finally:
        daemon.stop()
        thread.join(5)


def test_a_client_that_sends_without_reading_still_gets_every_reply(dealer):
    count = 4000  # twice what the ROUTER and DEALER queues hold together: the rest waits in the daemon's backlog
    for _ in range(count):
        dealer.send_multipart(encode({"op": "ping"}))
    time.sleep(0.5)
    assert sum(1 for _ in range(count) if receive(dealer).op == "pong") == count


def test_a_frame_over_the_size_limit_drops_its_sender_and_the_daemon_goes_on(tmp_path):
    # ZMQ_MAXMSGSIZE makes libzmq close the connection before the message is read: no reply is possible.
    daemon, thread = start_daemon(f"ipc://{tmp_path / 'tiny.sock'}", max_message_bytes=4096)
    image, mask = photo_and_hole(seed=10)
    try:
        with Client(daemon.endpoint, timeout=0.5) as client, pytest.raises(DaemonUnavailable):
            client.fill(image, mask, options=FAST)  # 12 kB of pixels
        with Client(daemon.endpoint, timeout=5) as client:
            assert client.ping() < 0.5
    finally:
        daemon.stop()
        thread.join(5)


# ------------------------------------------------------------------------------------------------ uploads


def status_of(sock: zmq.Socket) -> dict:
    sock.send_multipart(encode({"op": "status"}))
    while (message := receive(sock)).op != "status":
        pass
    return message.header


def test_an_image_of_several_chunks_comes_back_whole(client):
    image, mask = several_chunks()
    result = client.fill(image, mask, options=FAST)
    assert result.dtype == np.float32 and np.array_equal(result[mask == 0], image[mask == 0])
    assert np.array_equal(result, fill(image, mask, FAST))


def test_uploads_are_refused_beyond_their_room_and_a_stalled_one_gives_it_back(tmp_path):
    image, mask = photo_and_hole(seed=11)  # 64x64 RGB u8 and a u8 mask: 16,384 bytes of data
    stuck = fill_request("stuck", 64, 64, 3, "u8", bytes(64 * 64 * 3), bytes(64 * 64))[0]  # a header, no data
    daemon, thread = start_daemon(f"ipc://{tmp_path / 'budget.sock'}", waiting_bytes=40_000, upload_seconds=1.5)
    try:
        with Client(daemon.endpoint) as client, Client(daemon.endpoint) as other, Client(daemon.endpoint) as third:
            sock = client._link._socket
            sock.send_multipart(stuck)  # holds 16 KB of this client's 20 KB
            with pytest.raises(DaemonError) as refused:
                client.fill(image, mask, options=FAST)
            assert refused.value.code == ErrorCode.QUEUE_FULL and "one client may hold" in refused.value.message
            other._link._socket.send_multipart(stuck)  # 32 KB held in all, of 39 KB
            assert status_of(other._link._socket)["uploading"] == 2  # its header is in (connections are not ordered)
            with pytest.raises(DaemonError) as refused:
                third.fill(image, mask, options=FAST)
            assert refused.value.code == ErrorCode.QUEUE_FULL and "in all" in refused.value.message
            stalled = receive(sock)  # no chunk for 1.5 s: dropped, and said so
            assert (stalled.op, stalled.header["code"], stalled.header["id"]) == ("error", ErrorCode.STALLED, "stuck")
            assert receive(other._link._socket).header["code"] == ErrorCode.STALLED
            assert status_of(sock)["uploading"] == 0
            assert np.array_equal(client.fill(image, mask, options=FAST), fill(image, mask, FAST))  # room back
    finally:
        daemon.stop()
        thread.join(5)


def test_data_beyond_what_the_fill_declared_drops_its_upload(dealer):
    header, pixels, _ = fill_request("over", 16, 16, 3, "u8", bytes(16 * 16 * 3), bytes(16 * 16))
    dealer.send_multipart(header)
    dealer.send_multipart(pixels)
    dealer.send_multipart(encode({"op": "data", "id": "over"}, bytes(16 * 16 + 1)))  # a mask one byte too long
    refused = receive(dealer)
    assert (refused.op, refused.header["code"], refused.header["id"]) == ("error", ErrorCode.SIZE_MISMATCH, "over")
    assert status_of(dealer)["uploading"] == 0


def test_a_fill_cancelled_while_its_data_comes_is_cancelled_at_once(dealer):
    header, pixels, _ = fill_request("half", 16, 16, 3, "u8", bytes(16 * 16 * 3), bytes(16 * 16))
    dealer.send_multipart(header)
    dealer.send_multipart(pixels)
    dealer.send_multipart(encode({"op": "cancel", "id": "half"}))
    answer = receive(dealer)
    assert (answer.op, answer.header["id"]) == ("cancelled", "half")
    assert status_of(dealer)["uploading"] == 0


# ------------------------------------------------------------------------------------------------ start-up


@pytest.mark.parametrize("address", ["tcp://0.0.0.0:5557", "tcp://*:5557", "tcp://192.168.1.2:5557", "tcp://eth0:1"])
def test_listening_beyond_loopback_without_curve_is_refused(address):
    with pytest.raises(DaemonConfigError, match="without CURVE: anyone on the network"):
        Daemon(address, curve=False)
    with pytest.raises(DaemonConfigError, match="without CURVE: anyone on the network"):
        Daemon(address, insecure_loopback=True)


def test_the_daemon_command_refuses_a_public_address_without_curve_before_loading_anything(capsys):
    assert main(["daemon", "--bind", "tcp://0.0.0.0:5557", "--insecure-loopback"]) == errors.EXIT_BAD_INPUT
    assert "without CURVE: anyone on the network" in capsys.readouterr().err


def test_plain_loopback_tcp_only_when_asked_for_by_name():
    for address in ("tcp://127.0.0.1:5557", "tcp://localhost:5557", "tcp://[::1]:5557"):
        with pytest.raises(DaemonConfigError, match="--insecure-loopback"):
            check_endpoint(address)
        check_endpoint(address, insecure_loopback=True)
        check_endpoint(address, curve=True)
    assert uses_curve("tcp://127.0.0.1:5557") and not uses_curve("tcp://127.0.0.1:5557", insecure_loopback=True)
    assert not uses_curve(default_endpoint()) and default_endpoint().startswith("ipc://")


def test_an_ipc_socket_only_in_a_folder_no_one_else_can_write_to(tmp_path):
    check_endpoint(f"ipc://{tmp_path / 'fill.sock'}")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(DaemonConfigError, match="others can reach the socket's folder .*mode 777"):
        check_endpoint(f"ipc://{shared / 'fill.sock'}")
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(DaemonConfigError, match="is not a folder"):
        check_endpoint(f"ipc://{tmp_path / 'link' / 'fill.sock'}")
    with pytest.raises(DaemonConfigError, match="does not exist"):
        check_endpoint(f"ipc://{tmp_path / 'missing' / 'deeper' / 'fill.sock'}")
    if os.getuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
        with pytest.raises(DaemonConfigError, match="belongs to another user"):
            check_endpoint(f"ipc://{foreign / 'fill.sock'}")


def test_the_default_endpoint_serves_with_its_folder_made_private(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNTIME_ENV, str(tmp_path))
    daemon, thread = start_daemon(None)
    try:
        folder = tmp_path / "neural-fill"
        assert daemon.endpoint == f"ipc://{folder / 'daemon.sock'}" and not daemon.curve
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        with Client(timeout=10) as client:  # finds the default on its own
            assert client.ping() < 0.5
    finally:
        daemon.stop()
        thread.join(10)


def test_ipv6_loopback_is_served(tmp_path):
    daemon, thread = start_daemon(f"tcp://[::1]:{free_port()}")
    try:
        assert daemon.curve
        with Client(daemon.endpoint, timeout=10) as client:
            assert client.ping() < 0.5
    finally:
        daemon.stop()
        thread.join(10)


def test_no_daemon_is_reported_with_how_to_start_one(tmp_path):
    with Client(f"ipc://{tmp_path / 'nobody.sock'}", timeout=0.3) as client, \
            pytest.raises(DaemonUnavailable, match="neural-fill daemon"):
        client.ping()


def test_the_cli_fills_through_a_daemon_cancels_on_ctrl_c_and_the_daemon_stops_on_sigterm(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    daemon = subprocess.Popen([sys.executable, "-m", "daemon.cli", "daemon", "--bind", address], cwd=REPO,
                              stderr=subprocess.PIPE, text=True)
    try:
        image, mask = photo_and_hole(seed=9)
        write_image(tmp_path / "in.png", image)
        write_image(tmp_path / "mask.png", mask)
        common = ["fill", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"), "--preset", "preview",
                  "--working-size", "64", "--seed", "2", "-q"]
        assert main([*common, "-o", str(tmp_path / "local.png")]) == 0
        with Client(address, timeout=60) as client:
            assert client.hello()["op"] == "hello"  # waits for the daemon to load its networks
        done = subprocess.run([sys.executable, "-m", "daemon.cli", *common, "-o", str(tmp_path / "remote.png"),
                               "--daemon", address], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "remote.png").read_bytes() == (tmp_path / "local.png").read_bytes()

        # Ctrl-C in `fill --daemon` cancels the job on the daemon.
        slow = subprocess.Popen([sys.executable, "-m", "daemon.cli", *common, "--scales", "1", "--iterations", "1000",
                                 "--no-completion", "-o", str(tmp_path / "never.png"), "--daemon", address], cwd=REPO,
                                stderr=subprocess.PIPE, text=True)
        with Client(address) as client:
            while client.status()["running"] is None:
                time.sleep(0.05)
            slow.send_signal(signal.SIGINT)
            assert slow.wait(10) == errors.EXIT_CANCELLED
            assert "cancelled" in slow.stderr.read() and not (tmp_path / "never.png").exists()
            assert client.status()["running"] is None

            # A daemon stopped by SIGTERM is not a cancel of the user's: its client says the daemon stopped.
            orphan = subprocess.Popen([sys.executable, "-m", "daemon.cli", *common, "--scales", "1", "--iterations",
                                       "1000", "--no-completion", "-o", str(tmp_path / "orphan.png"), "--daemon",
                                       address], cwd=REPO,
                                      stderr=subprocess.PIPE, text=True)
            while client.status()["running"] is None:
                time.sleep(0.05)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
        assert "stopped" in daemon.stderr.read()
        assert orphan.wait(30) == errors.EXIT_FAILURE
        said = orphan.stderr.read()
        assert "the daemon stopped before this job finished" in said and "cancelled" not in said, said
        assert not (tmp_path / "orphan.png").exists()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
