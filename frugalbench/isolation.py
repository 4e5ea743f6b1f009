"""Run submission code in a limited child process.

The parent never executes a submission's config or model. Children run ``python -m <module>``
with: a fresh temporary HOME and working folder, a minimal environment (no frugalbench data
variables), a wall-clock timeout, a resident-memory watchdog, a CPU-time limit, the network
cut (a new network namespace, where the platform allows it: root on Linux), and death with
the parent (``PR_SET_PDEATHSIG``). What was actually enforced is returned with the result.

Protocol: the child prints JSON events, one per line, on stdout; logs go to stderr, which
is kept in a log file.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from frugalbench.errors import ChildProcessError_

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PAGE_KB = os.sysconf('SC_PAGE_SIZE') // 1024


@dataclass(frozen=True)
class Limits:
    """Resource limits for one child process."""

    timeout_s: float = 1800.0
    memory_mb: int = 8192
    cpu_s: int | None = None  # default: 2 x timeout x cores
    cut_network: bool = True
    threads: int = 1


@dataclass
class ChildResult:
    """What a child left behind: its events, exit status, peaks and enforced limits."""

    returncode: int
    events: list[dict] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    enforced: dict[str, object] = field(default_factory=dict)
    log_path: Path | None = None

    def last(self, event: str) -> dict | None:
        for item in reversed(self.events):
            if item.get('event') == event:
                return item
        return None


def network_can_be_cut() -> tuple[bool, str]:
    """Whether a child can get its own, empty network namespace here."""
    if sys.platform != 'linux':
        return False, 'not Linux'
    if os.geteuid() != 0:
        return False, 'not root: unshare(CLONE_NEWNET) needs privileges'
    return True, 'new network namespace (loopback only, down)'


def _child_setup(limits: Limits, cut_network: bool) -> Callable[[], None]:
    def setup() -> None:  # runs in the child between fork and exec
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        cpu = limits.cpu_s or int(2 * limits.timeout_s * (os.cpu_count() or 1))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if cut_network and libc.unshare(CLONE_NEWNET) != 0:
            os._exit(97)
    return setup


def _child_env(home: Path, threads: int, extra: dict[str, str] | None) -> dict[str, str]:
    env = {
        'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
        'HOME': str(home),
        'TMPDIR': str(home),
        'LANG': 'C.UTF-8',
        'PYTHONDONTWRITEBYTECODE': '1',
        'PYTHONUNBUFFERED': '1',
        'OMP_NUM_THREADS': str(threads),
        'MKL_NUM_THREADS': str(threads),
        'OMP_WAIT_POLICY': 'PASSIVE',
        'TORCH_FORCE_WEIGHTS_ONLY_LOAD': '1',
        'NO_ALBUMENTATIONS_UPDATE': '1',
    }
    for key in ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE', 'CUDA_VISIBLE_DEVICES', 'LD_LIBRARY_PATH'):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra or {})
    return env


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and its descendants, in kB (0 when gone)."""
    total, pids = 0, [pid]
    while pids:
        current = pids.pop()
        try:
            with open(f'/proc/{current}/statm') as handle:
                total += int(handle.read().split()[1]) * PAGE_KB
            with open(f'/proc/{current}/task/{current}/children') as handle:
                pids.extend(int(child) for child in handle.read().split())
        except (OSError, ValueError):
            continue
    return total


def run_child(module: str, args: list[str], *, limits: Limits, log_path: Path,
              on_event: Callable[[dict], None] | None = None,
              extra_env: dict[str, str] | None = None, cwd: Path | None = None) -> ChildResult:
    """Run ``python -m module args`` under ``limits``; raise ChildProcessError_ on limit or crash."""
    cut, how = network_can_be_cut()
    cut = cut and limits.cut_network
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='frugalbench-child-') as home, log_path.open('wb') as log:
        enforced: dict[str, object] = {
            'timeout_s': limits.timeout_s, 'memory_limit_mb': limits.memory_mb,
            'cpu_limit_s': limits.cpu_s or int(2 * limits.timeout_s * (os.cpu_count() or 1)),
            'network': how if cut else f'not cut ({how if not limits.cut_network else how})',
            'isolated_home': True, 'dies_with_parent': True}
        if not limits.cut_network:
            enforced['network'] = 'not cut (disabled by caller)'
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, '-m', module, *args], stdout=subprocess.PIPE, stderr=log,
            cwd=str(cwd or home), env=_child_env(Path(home), limits.threads, extra_env),
            preexec_fn=_child_setup(limits, cut), start_new_session=True)
        result = ChildResult(returncode=-1, enforced=enforced, log_path=log_path)
        killed_for: list[str] = []
        reaped = threading.Event()
        watchdog = threading.Thread(target=_watch, args=(process, limits, started, result, killed_for, reaped),
                                    daemon=True)
        watchdog.start()
        assert process.stdout is not None
        for raw in process.stdout:
            event = _parse_event(raw)
            if event is None:
                continue
            result.events.append(event)
            if on_event is not None:
                on_event(event)
        _, status, usage = os.wait4(process.pid, 0)  # only this thread reaps the child
        reaped.set()
        process.returncode = os.waitstatus_to_exitcode(status)
        watchdog.join(timeout=5)
        result.cpu_seconds = usage.ru_utime + usage.ru_stime
        result.peak_rss_mb = max(result.peak_rss_mb, usage.ru_maxrss / 1024)  # kernel's high-water mark
        result.returncode = process.returncode
        result.wall_seconds = time.monotonic() - started
    _raise_for_failure(result, killed_for, log_path)
    return result


def _watch(process: subprocess.Popen, limits: Limits, started: float, result: ChildResult,
           killed_for: list[str], reaped: threading.Event) -> None:
    # Never process.poll() here: it would reap the child and take its rusage from os.wait4.
    while not reaped.is_set():
        rss_mb = _tree_rss_kb(process.pid) / 1024
        result.peak_rss_mb = max(result.peak_rss_mb, rss_mb)
        if rss_mb > limits.memory_mb:
            killed_for.append(f'memory limit exceeded ({rss_mb:.0f} MB > {limits.memory_mb} MB); '
                              f'raise it with --memory-limit if the model needs more')
        elif time.monotonic() - started > limits.timeout_s:
            killed_for.append(f'timed out after {limits.timeout_s:.0f} s; raise it with --timeout '
                              f'if the model is that slow')
        if killed_for:
            _kill_group(process)
            return
        reaped.wait(0.05)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _parse_event(raw: bytes) -> dict | None:
    try:
        event = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return event if isinstance(event, dict) else None


def _raise_for_failure(result: ChildResult, killed_for: list[str], log_path: Path) -> None:
    if killed_for:
        raise ChildProcessError_(killed_for[0])
    error = result.last('error')
    if error is not None:
        raise ChildProcessError_(str(error.get('message', 'the child reported an error')))
    if result.returncode == 0:
        return
    if result.returncode == 97:
        raise ChildProcessError_('could not cut the network for the child (unshare failed)')
    if result.returncode == -signal.SIGXCPU:
        reason = f'exceeded its CPU-time limit ({result.enforced["cpu_limit_s"]} s)'
    elif result.returncode < 0:
        reason = f'killed by signal {signal.Signals(-result.returncode).name}'
    else:
        reason = f'exited with status {result.returncode}'
    raise ChildProcessError_(f'the model process {reason}; see its log {log_path}: {_log_tail(log_path)}')


def _log_tail(log_path: Path) -> str:
    try:
        lines = [line for line in log_path.read_text(errors='replace').splitlines() if line.strip()]
    except OSError:
        return ''
    return lines[-1][:300] if lines else '(empty log)'
