"""The child side of the parent/child channel: frames (`frugalbench.frames`) on private descriptors.

``open_channel()`` moves the process's stdin and stdout to private descriptors and points fd 0
at /dev/null and fd 1 at stderr, so that reads and prints from MMSeg or a submission can neither
consume the parent's requests nor corrupt the replies; only `receive` and `send` use them. The
parent trusts nothing that arrives here (it checks every frame); this side trusts the parent.
"""
from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from frugalbench.frames import PREFIX, Frame, decode_header, encode

_in: int | None = None
_out: int | None = None


def open_channel() -> None:
    global _in, _out
    sys.stdout.flush()
    _in, _out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def _read_exactly(count: int) -> bytes:
    assert _in is not None, 'open_channel() first'
    parts, left = [], count
    while left:
        chunk = os.read(_in, min(left, 1 << 20))
        if not chunk:
            raise EOFError('the parent closed the channel')
        parts.append(chunk)
        left -= len(chunk)
    return b''.join(parts)


def receive() -> Frame:
    """The parent's next frame (blocks)."""
    header_len, payload_len = PREFIX.unpack(_read_exactly(PREFIX.size))
    header = decode_header(_read_exactly(header_len))
    return Frame(kind=header.pop('kind'), header=header, payload=_read_exactly(payload_len))


def send(kind: str, payload: bytes = b'', **header: Any) -> None:
    """One frame to the parent."""
    assert _out is not None, 'open_channel() first'
    data = memoryview(encode(kind, payload, **header))
    while data:
        data = data[os.write(_out, data):]


def emit(event: str, **data: Any) -> None:
    """Send one event (a frame without payload) to the parent."""
    send(event, **data)


def send_file(name: str, data: bytes) -> None:
    """Send a file the parent keeps (outputs travel over the channel, never through the file system)."""
    send('file', data, name=name)


def serve(argv: list[str], handler: Callable[[dict[str, Any]], None], expected: tuple[type[Exception], ...],
          doing: str) -> int:
    """A child's entry point: run ``handler`` on the parent's ``request`` frame.

    Expected failures are reported as their message; anything else (foreign code, MMSeg) as
    ``<doing> failed: <type>: <message>``, with the traceback in the child's log.
    """
    del argv  # requests arrive on the channel
    open_channel()
    frame = receive()
    if frame.kind != 'request':
        emit('error', message=f'{doing}: expected a request, got {frame.kind!r}')
        return 1
    try:
        handler(frame.header)
    except expected as exc:
        emit('error', message=str(exc))
        return 1
    except Exception as exc:  # noqa: BLE001 - one line to the parent, the traceback to the log
        traceback.print_exc()
        emit('error', message=f'{doing} failed: {type(exc).__name__}: {exc}'[:500])
        return 1
    return 0


def encode_config(value: Any) -> Any:
    """Config values as JSON, tuples tagged so they survive the trip; anything else is refused."""
    if isinstance(value, tuple):
        return {'__tuple__': [encode_config(v) for v in value]}
    if isinstance(value, list):
        return [encode_config(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode_config(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f'config value of type {type(value).__name__} is not plain data: {value!r:.80}')


def decode_config(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {'__tuple__'}:
            return tuple(decode_config(v) for v in value['__tuple__'])
        return {k: decode_config(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_config(v) for v in value]
    return value
