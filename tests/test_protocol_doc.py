"""docs/protocol.md's conversation, sent as written to a real daemon: every answer must be the one the doc shows.

A client written from the doc alone must work at once; this keeps the doc and the daemon from drifting apart."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgpack
import pytest
import zmq

from tests.support.daemon_helpers import start_daemon

pytestmark = pytest.mark.weights  # the daemon loads the real VGG-19 at start
DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
ANY = "..."


def conversation() -> list[tuple[str, dict, bytes | int | None]]:
    """The doc's ```conversation block as (direction, header, data frame: bytes sent, length expected, or None)."""
    block = re.search(r"```conversation\n(.*?)```", DOC.read_text(), re.S).group(1)
    steps = []
    for line in block.strip().splitlines():
        direction, rest = line[0], line[1:].strip()
        header_text, _, frame = rest.partition(" + ")
        data: bytes | int | None = None
        if frame.startswith("bytes:"):
            data = expand(frame[len("bytes:"):])
        elif frame.endswith(" bytes"):
            data = int(frame.split()[0])
        steps.append((direction, json.loads(header_text), data))
    return steps


def expand(text: str) -> bytes:
    """The doc's byte notation: `XX*N` is the byte XX (hex) N times, `(...)*N` a group N times."""
    while "(" in text:
        text = re.sub(r"\(([^()]*)\)\*(\d+)", lambda m: " ".join([m.group(1)] * int(m.group(2))), text)
    out = bytearray()
    for token in text.split():
        byte, _, count = token.partition("*")
        out += bytes.fromhex(byte) * int(count or 1)
    return bytes(out)


def matches(expected: dict, got: dict) -> bool:
    return expected.keys() == got.keys() and all(v == ANY or got[k] == v for k, v in expected.items())


def test_the_docs_conversation_gets_the_docs_answers(tmp_path):
    daemon, thread = start_daemon(f"ipc://{tmp_path / 'doc.sock'}")
    context = zmq.Context.instance()
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(daemon.endpoint)
    sent_pixels: dict[str, bytes] = {}
    try:
        steps = conversation()
        assert len(steps) > 10 and {d for d, _, _ in steps} == {">", "<"}
        for direction, header, data in steps:
            if direction == ">":
                frames = [msgpack.packb(header), *([data] if isinstance(data, bytes) else [])]
                if header["op"] == "data":
                    sent_pixels[header["id"]] = data
                sock.send_multipart(frames)
                continue
            while True:
                assert sock.poll(60_000), f"no answer; the doc expects {header}"
                got, *frames = sock.recv_multipart()
                got = msgpack.unpackb(got)
                if got["op"] == "progress" and header["op"] != "progress":  # may come between accepted and result
                    assert {"id", "stage", "fraction", "region", "regions", "scale", "scales", "iteration",
                            "iterations"} <= got.keys()
                    continue
                break
            assert matches(header, got), f"the doc expects {header}, the daemon said {got}"
            if isinstance(data, int):
                assert [len(frame) for frame in frames] == [data]
            if got["op"] == "result":  # the doc's promise: every pixel outside the mask bit-identical
                sent = sent_pixels[got["id"]]
                pixels, mask = sent[:data], sent[data:]
                assert all(frames[0][i] == pixels[i] for i in range(data) if mask[i] == 0)
                assert any(frames[0][i] != pixels[i] for i in range(data) if mask[i] == 255)
    finally:
        sock.close()
        daemon.stop()
        thread.join(10)
