"""The wire protocol without sockets: envelopes, fill checks, and malformed input always a ProtocolError."""

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.service.protocol import (
    CHUNK_BYTES,
    PROTOCOL_VERSION,
    ErrorCode,
    ProtocolError,
    decode,
    encode,
    error_reply,
    fill_request,
    parse_fill,
)

MAX_PIXELS = 10_000


def test_a_fill_request_round_trips():
    header, *data = fill_request("job-1", 4, 3, 3, "u16", bytes(4 * 3 * 3 * 2), bytes(12), options={"seed": 2})
    request = parse_fill(decode(header), MAX_PIXELS)
    assert (request.job_id, request.width, request.height, request.channels, request.sample) == \
        ("job-1", 4, 3, 3, "u16")
    assert request.options == {"seed": 2} and request.preset == "default"
    assert [decode(frames).op for frames in data] == ["data", "data"]  # the pixels, then the mask
    assert sum(len(decode(frames).blobs[0]) for frames in data) == request.data_bytes == 4 * 3 * 3 * 2 + 12


def test_large_pixels_go_in_chunks_that_views_not_copies_carry():
    pixels = bytes(range(256)) * (3 * CHUNK_BYTES // 256 + 1)
    _, *data = fill_request("big", len(pixels), 1, 1, "u8", pixels, bytes(len(pixels)))
    blobs = [frames[1] for frames in data]
    assert max(len(blob) for blob in blobs) == CHUNK_BYTES and len(blobs) == 8  # 4 of pixels, 4 of mask
    assert b"".join(bytes(blob) for blob in blobs[:4]) == pixels
    assert all(isinstance(blob, memoryview) for blob in blobs)


@pytest.mark.parametrize("frames, code", [
    ([], ErrorCode.BAD_MESSAGE),
    ([b"\xc1"], ErrorCode.BAD_MESSAGE),  # never valid msgpack
    ([msgpack.packb([1, 2])], ErrorCode.BAD_MESSAGE),
    ([msgpack.packb({"v": 99, "op": "ping"})], ErrorCode.UNSUPPORTED_VERSION),
    ([msgpack.packb({"v": True, "op": "ping"})], ErrorCode.UNSUPPORTED_VERSION),  # True == 1 in Python
    ([msgpack.packb({"v": 1.0, "op": "ping"})], ErrorCode.UNSUPPORTED_VERSION),
    ([msgpack.packb({"v": PROTOCOL_VERSION, "op": "explode"})], ErrorCode.UNKNOWN_OP),
    ([msgpack.packb({"v": PROTOCOL_VERSION, "op": "ping"}), b"extra"], ErrorCode.BAD_MESSAGE),
    (encode({"op": "fill", "id": "x"}, b"pixels"), ErrorCode.BAD_MESSAGE),  # its data comes in `data` messages
    (encode({"op": "data", "id": "x"}), ErrorCode.BAD_MESSAGE),
    (encode({"op": "data", "id": "x"}, b"a", b"b"), ErrorCode.BAD_MESSAGE),
])
def test_bad_envelopes_have_codes(frames, code):
    with pytest.raises(ProtocolError) as caught:
        decode(frames)
    assert caught.value.code == code


def test_a_too_deeply_nested_header_says_so():
    with pytest.raises(ProtocolError, match="nested too deeply") as caught:
        decode([b"\x81\xa1v" + b"\x91" * 2000 + b"\x90"])
    assert caught.value.code == ErrorCode.BAD_MESSAGE


@pytest.mark.parametrize("change, code, words", [
    ({"width": "4"}, ErrorCode.BAD_FIELD, "'width'"),
    ({"width": True}, ErrorCode.BAD_FIELD, "'width'"),
    ({"channels": 5}, ErrorCode.BAD_FIELD, "channels"),
    ({"sample": "f64"}, ErrorCode.BAD_FIELD, "sample"),
    ({"width": 1000, "height": 1000}, ErrorCode.TOO_LARGE, "at most 10000"),
    ({"options": ["seed"]}, ErrorCode.BAD_FIELD, "options"),
    ({"id": ""}, ErrorCode.BAD_FIELD, "'id'"),
])
def test_bad_fill_fields_are_named(change, code, words):
    header = msgpack.unpackb(fill_request("job", 4, 3, 3, "u8", bytes(36), bytes(12))[0][0])
    header.update(change)
    with pytest.raises(ProtocolError, match=words) as caught:
        parse_fill(decode([msgpack.packb(header)]), MAX_PIXELS)
    assert caught.value.code == code


def test_error_replies_carry_code_message_and_job():
    reply = decode(error_reply(ErrorCode.QUEUE_FULL, "the queue is full", "job-9"))
    assert reply.header == {"v": PROTOCOL_VERSION, "op": "error", "code": "queue_full",
                            "message": "the queue is full", "id": "job-9"}


headers = st.dictionaries(st.sampled_from(["v", "op", "id", "width", "height", "channels", "sample", "options"]),
                          st.one_of(st.integers(-2**40, 2**40), st.text(max_size=8), st.none(), st.booleans(),
                                    st.lists(st.integers(-2**40, 2**40), max_size=3), st.binary(max_size=8)))


@settings(max_examples=300, deadline=None)
@given(first=st.one_of(st.binary(max_size=64), headers.map(msgpack.packb)),
       rest=st.lists(st.binary(max_size=64), max_size=3))
def test_malformed_input_only_ever_raises_protocol_errors(first, rest):
    try:
        message = decode([first, *rest])
        if message.op == "fill":
            parse_fill(message, MAX_PIXELS)
    except ProtocolError as error:
        assert error.code in vars(ErrorCode).values() and error.message


def test_the_default_room_holds_the_largest_fill_with_a_source_mask():
    # 4 float channels, a float mask and a float source mask at the pixel limit: one client's default room.
    from daemon.service.room import Held, Room, largest_upload
    from daemon.service.uploads import Uploads

    messages = fill_request("big", 100, 100, 4, "f32", bytes(100 * 100 * 16), bytes(100 * 100 * 4),
                            mask_sample="f32", source=bytes(100 * 100 * 4), source_sample="f32")
    request = parse_fill(decode(messages[0]), max_pixels=100 * 100)
    assert request.data_bytes == sum(len(frames[1]) for frames in messages[1:]) == 100 * 100 * 24
    Room(16, 2 * largest_upload(100 * 100)).check("big", request.data_bytes, Held(), Held())  # no queue_full
    uploads = Uploads()
    uploads.start(b"client", request, options=None)
    for frames in messages[1:]:
        done = uploads.add(b"client", "big", frames[1])
    assert done is not None and len(done.request.source) == 100 * 100 * 4
