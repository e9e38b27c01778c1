"""What fills that have not started may hold, without sockets: the room a header takes (daemon/service/room.py) and
an upload's memory and deadline (daemon/service/uploads.py)."""

from __future__ import annotations

import pytest

from daemon.service.protocol import CHUNK_BYTES, ErrorCode, ProtocolError, decode, fill_request, parse_fill
from daemon.service.room import Held, Room, size_text
from daemon.service.uploads import MIN_RATE, Uploads
from tests.support.daemon_helpers import resident_bytes


def refusal(room: Room, size: int, client: Held, everyone: Held) -> ProtocolError:
    with pytest.raises(ProtocolError) as refused:
        room.check("job", size, client, everyone)
    return refused.value


@pytest.mark.parametrize("size, text", [(0, "0 bytes"), (300, "300 bytes"), (16_384, "16 KB"), (20_000, "20 KB"),
                                        (5 << 19, "2.5 MB"), (512 << 20, "512 MB"), (2_400_000_000, "2.2 GB")])
def test_sizes_read_as_people_write_them(size, text):
    assert size_text(size) == text


def test_a_small_fill_refused_says_what_it_needs_in_kilobytes_not_zero_megabytes():
    refused = refusal(Room(16, 40_000), 16_384, Held(1, 16_384), Held(1, 16_384))
    assert refused.code == ErrorCode.QUEUE_FULL
    assert "needs 16 KB" in refused.message and "hold 16 KB of the 20 KB one client may hold" in refused.message
    assert "0 MB" not in refused.message


def test_a_client_gets_half_the_slots_and_half_the_bytes_and_everyone_the_rest():
    room = Room(16, 1000)
    room.check("job", 500, Held(7, 0), Held(15, 500))  # fits exactly: the last slot and the last bytes
    assert "the most one client may have (half the daemon's 16 queue slots" in \
        refusal(room, 1, Held(8, 8), Held(8, 8)).message
    assert "one client may hold" in refusal(room, 400, Held(1, 101), Held(1, 101)).message
    assert "queue is full (16 fills" in refusal(room, 1, Held(0, 0), Held(16, 16)).message
    assert "in all" in refusal(room, 400, Held(0, 0), Held(2, 601)).message
    assert Room(1, 1000).client_slots == 1  # a one-slot queue still takes a fill
    never = refusal(room, 501, Held(), Held())  # more than a client may ever hold: no use trying again
    assert never.code == ErrorCode.TOO_LARGE and "at most 500 bytes per client" in never.message


def request(size: int):
    """A fill header of `size` bytes of u8 grey pixels (and as many mask bytes)."""
    return parse_fill(decode(fill_request("big", size, 1, 1, "u8", b"", b"")[0]), max_pixels=size)


def test_an_upload_holds_what_has_arrived_not_what_its_header_declared_and_gives_it_back():
    uploads = Uploads()
    before = resident_bytes()
    uploads.start(b"client", request(512 << 20), options=None)  # 1 GB declared
    assert resident_bytes() - before < CHUNK_BYTES
    chunk = bytes(CHUNK_BYTES)
    for _ in range(64):
        assert uploads.add(b"client", "big", chunk) is None
    grown = resident_bytes() - before
    assert 63 * CHUNK_BYTES < grown < 66 * CHUNK_BYTES, f"{grown >> 20} MB for 64 MB of chunks"
    uploads.forget(b"client", "big")
    assert resident_bytes() - before < 2 * CHUNK_BYTES  # unmapped


def test_a_complete_uploads_request_views_its_data():
    uploads = Uploads()
    uploads.start(b"client", request(3), options=None)
    uploads.add(b"client", "big", b"abc")
    done = uploads.add(b"client", "big", b"xyz")
    assert (bytes(done.request.pixels), bytes(done.request.mask), bytes(done.request.source)) == (b"abc", b"xyz", b"")
    assert uploads.held() == Held(0, 0)


def test_an_upload_has_its_patience_plus_its_datas_time_and_empty_chunks_buy_none():
    now = [0.0]
    uploads = Uploads(patience=30, clock=lambda: now[0])
    uploads.start(b"slow", request(4 * CHUNK_BYTES), options=None)
    uploads.start(b"steady", request(4 * CHUNK_BYTES), options=None)
    assert uploads.held() == Held(2, 16 * CHUNK_BYTES) and uploads.held(b"slow") == Held(1, 8 * CHUNK_BYTES)
    for second in range(1, 32):  # an empty chunk each second (the probe's keep-alive), a full one each 8 s
        now[0] = float(second)
        uploads.add(b"slow", "big", b"")
        if second % 8 == 0:
            uploads.add(b"steady", "big", bytes(CHUNK_BYTES))
        assert uploads.stalled() == ([] if second <= 30 else [(b"slow", "big")])
    # 3 MiB came: 3 s more than the patience at MIN_RATE (1 MiB/s), however the chunks were spaced.
    assert MIN_RATE == CHUNK_BYTES
    now[0] = 33.0
    assert uploads.stalled() == []
    now[0] = 33.1
    assert uploads.stalled() == [(b"steady", "big")] and len(uploads) == 0
    assert "1.0 MB" in uploads.too_slow and "30 s from its header" in uploads.too_slow


def test_closing_hands_back_every_upload_in_flight():
    uploads = Uploads()
    uploads.start(b"a", request(10), options=None)
    uploads.start(b"b", request(10), options=None)
    assert sorted(uploads.close()) == [(b"a", "big"), (b"b", "big")] and len(uploads) == 0
