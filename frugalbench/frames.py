"""Frames: the one wire format between the harness and its child processes.

A frame is ``>II`` (header length, payload length), a UTF-8 JSON object (the header, with a
``kind``), then the payload bytes (an image, a label map, a file). Both sides use this module;
only the parent *trusts* nothing it reads: `FrameBuffer` refuses a header over
``MAX_HEADER_BYTES``, a payload over the caller's cap, a header that is not a JSON object with
a string ``kind``, and anything after the stream ended. Every refusal is a `FrameError` with one
line naming what was wrong.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

PREFIX = struct.Struct('>II')
MAX_HEADER_BYTES = 1 << 20


class FrameError(Exception):
    """A frame that breaks the protocol (size, encoding, schema)."""


@dataclass(frozen=True)
class Frame:
    kind: str
    header: dict[str, Any]
    payload: bytes = b''

    def get(self, key: str, default: Any = None) -> Any:
        return self.header.get(key, default)


def encode(kind: str, payload: bytes = b'', **header: Any) -> bytes:
    """One frame as bytes (``kind`` and the other header fields must be JSON-safe)."""
    text = json.dumps({'kind': kind, **header}, allow_nan=False, separators=(',', ':')).encode()
    if len(text) > MAX_HEADER_BYTES:
        raise FrameError(f'{kind} header is {len(text)} bytes (the limit is {MAX_HEADER_BYTES})')
    return PREFIX.pack(len(text), len(payload)) + text + payload


def _reject_constant(name: str) -> float:
    raise ValueError(f'{name} is not a number')


def decode_header(data: bytes) -> dict[str, Any]:
    try:
        header = json.loads(data.decode('utf-8'), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(f'a message header is not UTF-8 JSON ({type(exc).__name__})') from None
    if not isinstance(header, dict) or not isinstance(header.get('kind'), str):
        raise FrameError('a message header is not a JSON object with a string "kind"')
    return header


class FrameBuffer:
    """Bytes in, whole frames out (``feed`` then ``pop``), with size caps checked before buffering."""

    def __init__(self, max_payload: int) -> None:
        self.max_payload = max_payload
        self.header_bytes = 0   # of every frame popped so far
        self._data = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._data += chunk
        self._check_prefix()

    @property
    def pending(self) -> int:
        return len(self._data)

    def _check_prefix(self) -> None:
        if len(self._data) < PREFIX.size:
            return
        header_len, payload_len = PREFIX.unpack_from(self._data)
        if header_len == 0 or header_len > MAX_HEADER_BYTES:
            raise FrameError(f'a message header of {header_len} bytes (the limit is {MAX_HEADER_BYTES})')
        if payload_len > self.max_payload:
            raise FrameError(f'a message payload of {payload_len} bytes (the limit here is {self.max_payload})')

    def pop(self) -> Frame | None:
        """The next complete frame, or None while more bytes are needed."""
        if len(self._data) < PREFIX.size:
            return None
        header_len, payload_len = PREFIX.unpack_from(self._data)
        end = PREFIX.size + header_len + payload_len
        if len(self._data) < end:
            return None
        header = decode_header(bytes(self._data[PREFIX.size:PREFIX.size + header_len]))
        payload = bytes(self._data[PREFIX.size + header_len:end])
        self.header_bytes += header_len
        del self._data[:end]
        self._check_prefix()
        return Frame(kind=header.pop('kind'), header=header, payload=payload)
