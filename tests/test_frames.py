"""The wire format between the harness and its children: whole frames out, every violation refused."""
from __future__ import annotations

import struct

import pytest

from frugalbench.frames import MAX_HEADER_BYTES, FrameBuffer, FrameError, encode


def test_frames_survive_any_split_of_the_byte_stream() -> None:
    data = encode('answer', b'\x01\x02\x03', id=7, height=1, width=3) + encode('done')
    buffer = FrameBuffer(max_payload=16)
    frames = []
    for byte in data:          # one byte at a time: the worst a pipe can do
        buffer.feed(bytes([byte]))
        while (frame := buffer.pop()) is not None:
            frames.append(frame)
    assert [(f.kind, f.header, f.payload) for f in frames] == [
        ('answer', {'id': 7, 'height': 1, 'width': 3}, b'\x01\x02\x03'), ('done', {}, b'')]
    headers = (b'{"kind":"answer","id":7,"height":1,"width":3}', b'{"kind":"done"}')
    assert buffer.pending == 0 and buffer.header_bytes == sum(map(len, headers))


def test_a_payload_over_the_cap_is_refused_before_it_is_buffered() -> None:
    buffer = FrameBuffer(max_payload=10)
    with pytest.raises(FrameError, match='payload of 11 bytes'):
        buffer.feed(struct.pack('>II', 2, 11))


@pytest.mark.parametrize('raw, reason', [
    (struct.pack('>II', MAX_HEADER_BYTES + 1, 0), 'header of'),
    (struct.pack('>II', 0, 0), 'header of 0 bytes'),
])
def test_impossible_headers_are_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        FrameBuffer(max_payload=10).feed(raw)


@pytest.mark.parametrize('header', [b'\xff\xfe', b'[1, 2]', b'{"no_kind": 1}', b'{"kind": 3}', b'{"kind": "x", "v": NaN}'])
def test_headers_that_are_not_a_json_object_with_a_kind_are_refused(header: bytes) -> None:
    buffer = FrameBuffer(max_payload=10)
    buffer.feed(struct.pack('>II', len(header), 0) + header)
    with pytest.raises(FrameError, match='not'):
        buffer.pop()
