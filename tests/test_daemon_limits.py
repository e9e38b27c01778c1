"""What fills that have not started may take from a real daemon (issue 31): header-only uploads hold no memory, an
upload kept alive by empty chunks is dropped at its deadline, one client's full queue leaves room for another,
queued jobs count against the byte room, the work and precision a fill may ask for, and a client mid-upload told
`stopped` when the daemon gets SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import time

import pytest
import zmq

from daemon.service.client import Client, DaemonError
from daemon.service.protocol import CHUNK_BYTES, ErrorCode, encode, fill_request
from daemon.service.server import DEFAULT_MAX_PIXELS
from tests.support.daemon_helpers import FAST, SLOW, photo_and_hole, resident_bytes, several_chunks, start_daemon
from tests.test_daemon import receive, reply, send_fill, status_of
from tests.test_daemon_attacks import start_daemon_process, stop_process, wait_until_serving

pytestmark = pytest.mark.weights  # every daemon loads the real VGG-19 at start


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    """A daemon with the default limits (the pixel limit included)."""
    daemon, thread = start_daemon(f"ipc://{tmp_path_factory.mktemp('limits') / 'fill.sock'}",
                                  max_pixels=DEFAULT_MAX_PIXELS)
    yield daemon.endpoint
    daemon.stop()
    thread.join(10)


@contextlib.contextmanager
def dealer(endpoint: str):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close()


def replies(sock: zmq.Socket, count: int) -> dict[str, object]:
    """The next `count` replies that are not progress events, by job id."""
    answers = {}
    while len(answers) < count:
        message = reply(sock, timeout=20)
        answers[message.header["id"]] = message
    return answers


def test_header_only_uploads_at_the_default_limits_hold_no_memory(endpoint):
    # The largest fill the default pixel limit allows, with a source mask: 2.2 GB declared, as in the probe.
    header = fill_request("big", 10_000, 10_000, 4, "f32", b"", b"", mask_sample="f32", source=b"",
                          source_sample="f32")[0]
    with dealer(endpoint) as first, dealer(endpoint) as second, dealer(endpoint) as third:
        for sock in (first, second, third):
            status_of(sock)  # connected, and the daemon's replies warm
        before = resident_bytes()
        first.send_multipart(header)
        second.send_multipart(header)
        deadline = time.monotonic() + 10
        while status_of(first)["uploading"] < 2:
            assert time.monotonic() < deadline, "the headers were not taken"
        grown = resident_bytes() - before
        assert grown < 2 * CHUNK_BYTES, f"two header-only uploads grew the daemon by {grown / 2**20:.1f} MB"
        third.send_multipart(header)  # the room they took is real: all of it
        refused = receive(third)
        assert refused.header["code"] == ErrorCode.QUEUE_FULL and "2.2 GB" in refused.header["message"]
        for sock in (first, second):
            sock.send_multipart(encode({"op": "cancel", "id": "big"}))
            assert receive(sock).op == "cancelled"


def test_one_clients_full_queue_leaves_room_for_another_whose_fill_completes(endpoint):
    image, mask = photo_and_hole(seed=41)
    with dealer(endpoint) as greedy, dealer(endpoint) as other:
        for number in range(16):
            send_fill(greedy, f"g{number}", image, mask, SLOW)
        answers = replies(greedy, 16)
        accepted = [job for job, message in answers.items() if message.op == "accepted"]
        refused = [message for message in answers.values() if message.op == "error"]
        # Half the 16 slots wait; one more may have started running before the last of them came.
        assert len(accepted) in (8, 9), [message.header for message in answers.values()]
        assert all(message.header["code"] == ErrorCode.QUEUE_FULL and "half the daemon's 16 queue slots"
                   in message.header["message"] for message in refused)
        send_fill(other, "mine", image, mask, FAST)
        assert reply(other).op == "accepted"
        for job in accepted:  # the greedy jobs run for minutes: gone, so that this test does not wait for them
            greedy.send_multipart(encode({"op": "cancel", "id": job}))
        assert reply(other, timeout=60).op == "result"


def test_too_much_work_and_float16_on_a_cpu_are_refused_before_any_data(endpoint):
    image, mask = photo_and_hole(seed=42)
    with Client(endpoint, timeout=10) as client:
        with pytest.raises(DaemonError, match="163 times the synthesis work of the 'paper' preset") as refused:
            client.fill(image, mask, options={"working_size": 2048, "scales": 5, "iterations": [1000]})
        assert refused.value.code == ErrorCode.BAD_INPUT
        if client.hello()["device"] == "cpu":
            with pytest.raises(DaemonError, match="float16 is emulated on a CPU") as refused:
                client.fill(image, mask, options={"precision": "float16"})
            assert refused.value.code == ErrorCode.BAD_INPUT
        assert client.status()["uploading"] == 0


def test_queued_jobs_count_against_the_byte_room_per_client_and_in_all(tmp_path):
    image, mask = photo_and_hole(seed=43)  # 64x64 RGB u8 and a u8 mask: 16 KB of data
    daemon, thread = start_daemon(f"ipc://{tmp_path / 'room.sock'}", waiting_bytes=40_000)  # 20 KB per client
    try:
        with dealer(daemon.endpoint) as first, dealer(daemon.endpoint) as second, \
                dealer(daemon.endpoint) as third:
            send_fill(first, "running", image, mask, SLOW)
            while receive(first).op != "progress":  # taken by the worker: it holds no room now
                pass
            send_fill(first, "queued", image, mask, SLOW)
            assert reply(first).op == "accepted"
            send_fill(first, "one too many", image, mask, SLOW)
            refused = reply(first).header
            assert refused["code"] == ErrorCode.QUEUE_FULL and refused["id"] == "one too many"
            assert "needs 16 KB" in refused["message"] and "hold 16 KB of the 20 KB one client may hold" in \
                refused["message"]
            send_fill(second, "queued", image, mask, SLOW)
            assert reply(second).op == "accepted"
            send_fill(third, "no room", image, mask, FAST)
            refused = reply(third).header
            assert refused["code"] == ErrorCode.QUEUE_FULL
            assert "hold 32 KB of the daemon's 39 KB in all" in refused["message"]
            assert status_of(third)["queued"] == 2
    finally:
        daemon.stop()
        thread.join(10)


def test_an_upload_kept_alive_by_empty_chunks_is_dropped_at_its_deadline(tmp_path):
    daemon, thread = start_daemon(f"ipc://{tmp_path / 'slow.sock'}", upload_seconds=1.5)
    header = fill_request("drip", 64, 64, 3, "u8", b"", b"")[0]
    try:
        with dealer(daemon.endpoint) as sock:
            sock.send_multipart(header)
            started = time.monotonic()
            while not sock.poll(250):  # an empty chunk every sixth of the deadline: the probe's keep-alive
                sock.send_multipart(encode({"op": "data", "id": "drip"}, b""))
                assert time.monotonic() - started < 10, "the dripping upload was never dropped"
            dropped = receive(sock).header
            assert (dropped["code"], dropped["id"]) == (ErrorCode.STALLED, "drip")
            assert "too slowly" in dropped["message"] and "1.5 s from its header" in dropped["message"]
            assert 1.5 <= time.monotonic() - started < 3.0
            assert status_of(sock)["uploading"] == 0
    finally:
        daemon.stop()
        thread.join(10)


def test_a_client_mid_upload_is_told_stopped_at_once_when_the_daemon_gets_sigterm(tmp_path):
    endpoint = f"ipc://{tmp_path / 'stop.sock'}"
    daemon = start_daemon_process("--bind", endpoint)
    image, _ = several_chunks()
    header, first_chunk, *_ = fill_request("half", 512, 384, 4, "f32", memoryview(image).cast("B"), bytes(512 * 384))
    try:
        wait_until_serving(daemon, endpoint)
        with dealer(endpoint) as sock:
            sock.send_multipart(header)
            sock.send_multipart(first_chunk)
            assert status_of(sock)["uploading"] == 1
            stopping = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            told = receive(sock).header
            assert (told["op"], told["code"], told["id"]) == ("error", ErrorCode.STOPPED, "half")
            assert time.monotonic() - stopping < 2  # not the client's timeout, nor the upload's deadline
        assert daemon.wait(10) == 0
    finally:
        stop_process(daemon)
