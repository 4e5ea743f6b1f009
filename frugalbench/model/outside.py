"""Measurements the parent takes of the model process from outside, driven by its events.

Instructions: when the model child is ready to run the counted forward passes it emits
``instructions_ready`` and waits; the parent attaches ``perf stat -p`` to the child's real PID
(from ``Popen``, never a PID the child reports), enables the counter and answers on the reply
pipe; the child runs the passes, emits ``instructions_done`` and waits again while the parent
stops perf. The count therefore cannot be touched by code running in the model process.
"""
from __future__ import annotations

import os
from typing import Any

from frugalbench.measurements.instructions import PerfAttach, PerfCount, per_image
from frugalbench.measurements.protocol import Protocol
from frugalbench.measurements.record import Measurement

GO, SKIP = b'1', b'0'


class OutsideInstructionCounter:
    """Answers the model child's instruction-count events; ``measurement`` holds the result."""

    def __init__(self, protocol: Protocol, reply_fd: int) -> None:
        self.protocol = protocol
        self.reply_fd = reply_fd
        self.pid: int | None = None
        self.measurement: Measurement | None = None
        self._perf: PerfAttach | None = None
        self._images = 0

    def attach_to(self, pid: int) -> None:
        self.pid = pid

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get('event')
        if kind == 'instructions_ready':
            self._start(int(event.get('images') or 0))
        elif kind == 'instructions_done':
            self._finish()

    def _start(self, images: int) -> None:
        self._images = images
        if self.pid is None or images <= 0:
            self.measurement = per_image(PerfCount(self.protocol.instructions.event, None, '', None,
                                                   'the model process asked to count no images'), 1)
            self._answer(SKIP)
            return
        self._perf = PerfAttach(self.pid, event=self.protocol.instructions.event,
                                timeout_s=self.protocol.instructions.attach_timeout_seconds)
        self._perf.start()
        self._answer(GO)

    def _finish(self) -> None:
        count = self._perf.stop() if self._perf is not None else PerfCount(
            self.protocol.instructions.event, None, '', None, 'the parent did not attach perf')
        self.measurement = per_image(count, max(1, self._images), method_extra={
            'threads': self.protocol.instructions.threads, 'forward': "model(x, mode='tensor')",
            'counted_by': 'the parent: perf stat -p on the model process (its PID from Popen)'})
        self._answer(GO)

    def _answer(self, byte: bytes) -> None:
        try:
            os.write(self.reply_fd, byte)
        except OSError:
            pass  # the child is gone; its exit status tells why
