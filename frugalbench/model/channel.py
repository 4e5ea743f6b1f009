"""The child side of the parent/child protocol: JSON events on a private copy of stdout.

``open_channel()`` moves the process's own stdout to stderr, so that prints from MMSeg or a
submission cannot corrupt the event stream; only ``emit`` writes to the parent.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

_channel: IO[str] | None = None


def open_channel() -> None:
    global _channel
    sys.stdout.flush()
    _channel = os.fdopen(os.dup(1), 'w', buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def serve(argv: list[str], handler: Callable[[dict[str, Any]], None], expected: tuple[type[Exception], ...],
          doing: str) -> int:
    """A child's entry point: run ``handler`` on the JSON request named by ``argv[0]``.

    Expected failures are reported as their message; anything else (foreign code, MMSeg) as
    ``<doing> failed: <type>: <message>``, with the traceback in the child's log.
    """
    open_channel()
    request = json.loads(Path(argv[0]).read_text())
    try:
        handler(request)
    except expected as exc:
        emit('error', message=str(exc))
        return 1
    except Exception as exc:  # noqa: BLE001 - one line to the parent, the traceback to the log
        traceback.print_exc()
        emit('error', message=f'{doing} failed: {type(exc).__name__}: {exc}'[:500])
        return 1
    return 0


REPLY_FD_ENV = 'FRUGALBENCH_REPLY_FD'   # a pipe on which the parent answers events that wait for it


def reply_channel() -> int | None:
    """The descriptor the parent answers on, when it set one up."""
    value = os.environ.get(REPLY_FD_ENV)
    return int(value) if value else None


def wait_for_reply(timeout_s: float) -> bytes:
    """Block until the parent answers (one byte); b'' when it did not within ``timeout_s``."""
    import select
    handle = reply_channel()
    if handle is None:
        return b''
    ready, _, _ = select.select([handle], [], [], timeout_s)
    return os.read(handle, 1) if ready else b''


def emit(event: str, **data: Any) -> None:
    """Send one event to the parent."""
    assert _channel is not None, 'open_channel() first'
    _channel.write(json.dumps({'event': event, **data}) + '\n')
    _channel.flush()


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
