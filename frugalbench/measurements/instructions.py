"""User-space instructions retired, counted by Linux ``perf`` (hardware PMU counters).

At one thread the count of a forward pass is deterministic to about 0.1 % where wall time
varies by 5-25 % on a shared machine, so it is the compute measure to compare runs with.
Where ``perf`` is missing or the PMU is not exposed (many VMs: perf prints
``<not supported>``) the value is None with the reason.

Two ways to count:

* `count_command`: ``perf stat -e instructions:u -x, -- CMD`` around a whole command;
* `PerfAttach`: attach to a running process (``perf stat -p PID``) with its events
  disabled (``-D -1``), enable them through perf's control FIFO when the measured region
  starts (perf acknowledges, so nothing is missed or added), disable them when it ends,
  then stop perf with SIGINT and parse its CSV output. The process can be the worker that
  runs the model (from the parent) or the current process itself.
"""
from __future__ import annotations

import functools
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from frugalbench.measurements.protocol import Protocol
from frugalbench.measurements.record import Measurement

DEFAULT_EVENT = 'instructions:u'
NO_PERF = 'perf is not installed (Debian: apt-get install linux-perf)'


@dataclass(frozen=True)
class PerfCount:
    """One event's line of ``perf stat -x,`` output; ``value`` is None with ``reason`` when not counted."""

    event: str
    value: float | None
    unit: str
    running_percent: float | None
    reason: str | None = None


def parse_perf_csv(text: str, event: str) -> PerfCount:
    """Find ``event``'s line in ``perf stat -x,`` output (fields: value, unit, event, run time, %)."""
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        fields = line.split(',')
        if len(fields) < 3 or fields[2] != event:
            continue
        raw, unit = fields[0].strip(), fields[1].strip()
        running = _float_or_none(fields[4]) if len(fields) > 4 else None
        if raw.startswith('<'):
            why = raw.strip('<>')
            hint = (' (the CPU\'s performance counters are not exposed to this machine, '
                    'as in many VMs)' if why == 'not supported' else '')
            return PerfCount(event, None, unit, running, f'perf reports {event} <{why}>{hint}')
        value = _float_or_none(raw)
        if value is None:
            return PerfCount(event, None, unit, running, f'cannot parse perf value {raw!r} for {event}')
        return PerfCount(event, value, unit, running)
    return PerfCount(event, None, '', None, f'perf printed no line for {event}: {text.strip()[:200]!r}')


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def perf_executable() -> str | None:
    return shutil.which('perf')


@functools.lru_cache(maxsize=8)
def perf_version() -> str | None:
    exe = perf_executable()
    if exe is None:
        return None
    result = subprocess.run([exe, '--version'], capture_output=True, text=True, timeout=30)
    return result.stdout.strip().removeprefix('perf version ').strip() or None


@functools.lru_cache(maxsize=8)
def perf_unavailable_reason(event: str = DEFAULT_EVENT) -> str | None:
    """None when ``perf`` counts ``event`` here; otherwise why not (checked once per process)."""
    count, _ = count_command(['true'], event=event)
    return count.reason


def count_command(argv: list[str], event: str = DEFAULT_EVENT) -> tuple[PerfCount, int | None]:
    """Run ``argv`` under ``perf stat -e event``; returns the count and the command's exit code."""
    exe = perf_executable()
    if exe is None:
        return PerfCount(event, None, '', None, NO_PERF), None
    with tempfile.TemporaryDirectory(prefix='frugalbench-perf-') as tmp:
        out = Path(tmp) / 'perf.csv'
        result = subprocess.run([exe, 'stat', '-e', event, '-x', ',', '-o', str(out), '--', *argv],
                                capture_output=True, text=True)
        text = out.read_text() if out.exists() else ''
    if not text:
        failure = f'perf stat failed: {result.stderr.strip()[:200]}'
        return PerfCount(event, None, '', None, failure), result.returncode
    return parse_perf_csv(text, event), result.returncode


def per_image(count: PerfCount, images: int, *, method_extra: dict[str, Any] | None = None,
              name: str = 'instructions_per_image') -> Measurement:
    """Turn a perf count over ``images`` images into a per-image measurement."""
    method = f'perf stat -e {count.event}'
    details: dict[str, Any] = {'event': count.event, 'images': images, 'total': count.value,
                               'running_percent': count.running_percent, **(method_extra or {})}
    if count.value is None:
        return Measurement.unavailable(name, 'instructions', count.reason or 'not counted',
                                       method=method, tool_version=perf_version(), details=details)
    if images <= 0:
        raise ValueError('images must be positive')
    if count.running_percent is not None and count.running_percent < 100.0:
        details['note'] = 'the counter was multiplexed: perf scaled the count'
    return Measurement(name=name, value=count.value / images, unit='instructions', method=method,
                       tool_version=perf_version(), measured=True, details=details)


def threads_of(pid: int) -> int | None:
    """Number of threads of a process (``Threads:`` in /proc/PID/status)."""
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('Threads:'):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class PerfAttach:
    """Count ``event`` in process ``pid`` between `start` and `stop` (or as a context manager).

    ``count`` is set after `stop`; it carries the reason when nothing could be counted
    (perf missing, counter unsupported, perf refused to attach). Threads the process
    creates after `start` are counted too (perf inherits into new threads); attach after
    warm-up so the thread pool already exists.
    """

    def __init__(self, pid: int, event: str = DEFAULT_EVENT, timeout_s: float = 10.0) -> None:
        self.pid = pid
        self.event = event
        self.timeout_s = timeout_s
        self.count: PerfCount | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._ctl: int | None = None
        self._ack: int | None = None
        self._failure: str | None = None

    def start(self) -> None:
        exe = perf_executable()
        if exe is None:
            self._failure = NO_PERF
            return
        self._tmp = tempfile.TemporaryDirectory(prefix='frugalbench-perf-')
        tmp = Path(self._tmp.name)
        ctl, ack, out = tmp / 'ctl', tmp / 'ack', tmp / 'perf.csv'
        os.mkfifo(ctl)
        os.mkfifo(ack)
        # O_RDWR on a FIFO never blocks on open, so a perf that fails to start cannot hang us
        self._ctl = os.open(ctl, os.O_RDWR)
        self._ack = os.open(ack, os.O_RDWR)
        self._proc = subprocess.Popen(
            [exe, 'stat', '-e', self.event, '-x', ',', '-o', str(out), '-D', '-1',
             '--control', f'fifo:{ctl},{ack}', '-p', str(self.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._command('enable')

    def _command(self, word: str) -> None:
        if self._failure is not None or self._ctl is None or self._ack is None or self._proc is None:
            return
        os.write(self._ctl, f'{word}\n'.encode())
        deadline = time.monotonic() + self.timeout_s
        reply = b''
        while b'\n' not in reply:  # perf answers 'ack\n' (plus a NUL byte)
            if self._proc.poll() is not None:
                self._failure = f'perf exited ({self._proc.returncode}) before acknowledging {word!r}'
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._failure = f'perf did not acknowledge {word!r} within {self.timeout_s} s'
                return
            ready, _, _ = select.select([self._ack], [], [], min(remaining, 0.1))
            if ready:
                reply += os.read(self._ack, 64)
        if not reply.startswith(b'ack'):
            self._failure = f'perf answered {reply!r} to {word!r}'

    def stop(self) -> PerfCount:
        self._command('disable')
        stderr = ''
        text = ''
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)
            try:
                _, stderr = self._proc.communicate(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                _, stderr = self._proc.communicate()
            out = Path(self._tmp.name) / 'perf.csv' if self._tmp else None
            text = out.read_text() if out and out.exists() else ''
        for fd in (self._ctl, self._ack):
            if fd is not None:
                os.close(fd)
        self._ctl = self._ack = None
        if self._tmp is not None:
            self._tmp.cleanup()
        if self._failure is not None:
            detail = f': {stderr.strip()[:200]}' if stderr.strip() else ''
            self.count = PerfCount(self.event, None, '', None, self._failure + detail)
        else:
            self.count = parse_perf_csv(text, self.event)
        return self.count

    def __enter__(self) -> PerfAttach:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def count_instructions(pid: int, protocol: Protocol) -> PerfAttach:
    """`PerfAttach` for the protocol's event (``instructions:u``) and attach timeout."""
    return PerfAttach(pid, event=protocol.instructions.event,
                      timeout_s=protocol.instructions.attach_timeout_seconds)
