"""Run submission code in a limited child process that never outlives its run.

The parent never executes a submission's config or model. A child runs ``python -P -m <module>``
with a minimal environment, in a control group of its own (`frugalbench.cgroups`: memory
counting what it writes to tmpfs, a process-count limit, CPU accounting), a wall-clock
deadline, a CPU-time limit, the network cut (root on Linux) and, when ``confine`` is given, the
file-system view of `frugalbench.confinement`. At the end of the run, whatever happened, every
process of the group is killed and the group removed; without control groups the child's
process group is killed and stray descendants are reported as not contained.

Channel: the parent writes frames (`frugalbench.frames`) to the child's stdin and reads frames
from its stdout; stderr goes to a log file. Every read and write has a deadline, so the harness
never blocks past the timeout, whatever the child's processes do with the pipes. Every frame is
checked (size, count, JSON, nothing after ``done``) and a child's ``error`` frame becomes a
`ChildProcessError_` with its message.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from frugalbench.cgroups import ControlGroup, GroupLimits, create_group, sweep_stale_groups
from frugalbench.confinement import CONFINED_VIEW, Confinement, MountPlan, confine, plan_confinement
from frugalbench.errors import ChildProcessError_
from frugalbench.frames import Frame, FrameBuffer, FrameError, encode

__all__ = ['Limits', 'Confinement', 'ChildResult', 'ChildSession', 'run_child', 'start_child', 'finish_child',
           'network_can_be_cut', 'CONFINED_VIEW']

CLONE_NEWNET, CLONE_NEWNS = 0x40000000, 0x00020000
PR_SET_PDEATHSIG = 1
EXIT_NO_NETNS, EXIT_NO_CONFINEMENT = 97, 98
PAGE_KB = os.sysconf('SC_PAGE_SIZE') // 1024
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')
POLL_S = 0.1                # how often limits are checked while waiting
DRAIN_S = 1.0               # after the child exits, how long its last frames may take to arrive
MAX_FRAMES = 200_000        # a child sending more is flooding the channel
MAX_HEADER_TOTAL = 32 << 20  # bytes of headers kept per child
MAX_MESSAGE_CHARS = 600     # a child's error message is cut here
MAX_LOG_BYTES = 8 << 20     # a child's stderr kept in its log (the rest is read and dropped)

DEFAULT_TIMEOUT_S = 1800.0
DEFAULT_MEMORY_MB = 8192
DEFAULT_PIDS = 128


@dataclass(frozen=True)
class Limits:
    """Resource limits for one child process (unset: the benchmark's default, else the global one)."""

    timeout_s: float | None = None
    memory_mb: int | None = None
    cpu_s: int | None = None       # default: 2 x timeout x cores
    cut_network: bool = True
    threads: int | None = None   # default: the benchmark's, else 1
    pids: int = DEFAULT_PIDS       # processes and threads in the child's group
    scratch_mb: int | None = None  # each private tmpfs; default: the memory limit (it is counted there)

    def or_defaults(self, timeout_s: float | None = None, memory_mb: int | None = None,
                    threads: int | None = None) -> Limits:
        """These limits with unset ones filled: from the given defaults, else the global defaults."""
        return replace(self, timeout_s=_first(self.timeout_s, timeout_s, DEFAULT_TIMEOUT_S),
                       memory_mb=int(_first(self.memory_mb, memory_mb, DEFAULT_MEMORY_MB)),
                       threads=int(_first(self.threads, threads, 1)))


def _first(*values: float | None) -> float:
    return next(v for v in values if v is not None)


@dataclass
class ChildResult:
    """What a child left behind: its frames, exit status, peaks and enforced limits."""

    returncode: int
    events: list[dict] = field(default_factory=list)
    peak_rss_mb: float = 0.0            # the child process, by the kernel (wait4 ru_maxrss)
    group_peak_mb: float | None = None  # the whole group (control group high-water mark)
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    enforced: dict[str, object] = field(default_factory=dict)
    log_path: Path | None = None
    files: dict[str, bytes] = field(default_factory=dict)

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


def _child_setup(limits: Limits, cut_network: bool, plan: MountPlan | None,
                 group: ControlGroup | None) -> Callable[[], None]:
    parent = os.getpid()

    def setup() -> None:  # runs in the child between fork and exec
        if group is not None:
            group.join_self()
        libc = ctypes.CDLL(None, use_errno=True)
        cpu = limits.cpu_s or int(2 * limits.timeout_s * (os.cpu_count() or 1))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        flags = (CLONE_NEWNET if cut_network else 0) | (CLONE_NEWNS if plan else 0)
        if flags and libc.unshare(flags) != 0:
            os._exit(EXIT_NO_NETNS if not plan else EXIT_NO_CONFINEMENT)
        if plan is not None:
            try:
                confine(libc, plan)
            except OSError as exc:
                os.write(2, f'frugalbench: could not confine the child: {exc}\n'.encode())
                os._exit(EXIT_NO_CONFINEMENT)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which clears it
        if os.getppid() != parent:
            os._exit(EXIT_NO_CONFINEMENT)  # the parent died before the signal was armed
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
        'MPLCONFIGDIR': str(home),
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


_swept = False


def _sweep_once() -> None:
    """Kill what a harness that died (SIGKILL, power loss) left in its groups: once per process."""
    global _swept
    if not _swept:
        _swept = True
        try:
            sweep_stale_groups()
        except OSError:
            pass


class ChildSession:
    """One running child: send frames, receive frames, and `close` (which kills everything it started).

    Use as a context manager. ``receive`` returns None once the child has exited cleanly and
    its last frames are read; every failure (deadline, memory or process limit, a malformed
    or excess frame, the child's own ``error`` frame, a crash) raises `ChildProcessError_`
    after the child's whole group has been killed.
    """

    def __init__(self, module: str, *, limits: Limits, log_path: Path, confine: Confinement | None = None,
                 extra_env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = (),
                 max_payload: int = 1 << 20, doing: str = 'the child process') -> None:
        self.limits = limits.or_defaults()
        self.doing = doing
        self.max_payload = max_payload
        self.log_path = log_path
        self.result = ChildResult(returncode=-1, log_path=log_path)
        self._buffer = FrameBuffer(max_payload)
        self._frames = 0
        self._done = False
        self._eof = False
        self._exited_at: float | None = None
        self._killed_for: str | None = None
        self._closed = False
        self._last_watch = 0.0
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._start(module, confine, extra_env, pass_fds)

    # --- start -------------------------------------------------------------------------------

    def _start(self, module: str, confinement: Confinement | None, extra_env: dict[str, str] | None,
               pass_fds: tuple[int, ...]) -> None:
        limits = self.limits
        cut, how = network_can_be_cut()
        cut = cut and limits.cut_network
        scratch_mb = limits.scratch_mb or int(limits.memory_mb)
        enforced: dict[str, object] = {
            'timeout_s': limits.timeout_s, 'memory_limit_mb': limits.memory_mb, 'threads': limits.threads,
            'cpu_limit_s': limits.cpu_s or int(2 * limits.timeout_s * (os.cpu_count() or 1)),
            'network': how if cut else f'not cut ({how})', 'isolated_home': True, 'dies_with_parent': True}
        if not limits.cut_network:
            enforced['network'] = 'not cut (disabled by caller)'
        _sweep_once()
        self.group, why = create_group(f'{module.rsplit(".", 1)[-1]}-{uuid.uuid4().hex[:12]}',
                                       GroupLimits(memory_bytes=int(limits.memory_mb) << 20, pids_max=limits.pids))
        enforced['control_group'] = self.group.enforced() if self.group is not None else f'none ({why})'
        enforced['processes'] = ('every process of the group is killed at the end of the run'
                                 if self.group is not None else
                                 'its process group is killed at the end; a descendant that left it is not')
        plan = plan_confinement(confinement, scratch_mb, enforced) if confinement is not None else None
        self.result.enforced = enforced
        if plan is not None:
            home, cwd = CONFINED_VIEW / 'home', '/'
        else:
            self._scratch = tempfile.TemporaryDirectory(prefix='frugalbench-child-')
            home = cwd_path = Path(self._scratch.name)
            cwd = str(cwd_path)
            if confinement is not None and confinement.submission is not None:
                (cwd_path / 'submission').symlink_to(confinement.submission.resolve())
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = self.log_path.open('wb')
        request_read, self._to_child = os.pipe()
        self._from_child, reply_write = os.pipe()
        self._stderr, stderr_write = os.pipe()
        self._log_bytes = 0
        self._started = time.monotonic()
        self._deadline = self._started + float(limits.timeout_s)
        try:
            self.process = subprocess.Popen(
                [sys.executable, '-P', '-s', '-m', module], stdin=request_read, stdout=reply_write,
                stderr=stderr_write, cwd=cwd, env=_child_env(home, limits.threads, extra_env),
                preexec_fn=_child_setup(limits, cut, plan, self.group), start_new_session=True,
                pass_fds=pass_fds)
        except BaseException:
            for fd in (request_read, reply_write, stderr_write, self._to_child, self._from_child, self._stderr):
                os.close(fd)
            self._log.close()
            self._remove_group()
            raise
        for fd in (request_read, reply_write, stderr_write):
            os.close(fd)
        for fd in (self._to_child, self._from_child, self._stderr):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.pid = self.process.pid

    def __enter__(self) -> ChildSession:
        return self

    def cpu_seconds(self) -> float | None:
        """CPU seconds of the child so far: its whole group where there is one, else the process itself."""
        if self.group is not None:
            seconds = self.group.cpu_seconds()
            if seconds is not None:
                return seconds
        try:
            text = Path(f'/proc/{self.pid}/stat').read_text()
        except OSError:
            return None
        fields = text[text.rindex(')') + 2:].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- channel -----------------------------------------------------------------------------

    def send(self, kind: str, payload: bytes = b'', **header: Any) -> None:
        """Write one frame to the child; a child that stops reading is stopped at the deadline."""
        data = memoryview(encode(kind, payload, **header))
        while data:
            self._check_deadline()
            readable, writable, _ = select.select([self._stderr], [self._to_child], [], self._wait_s(None))
            if readable:
                self._pump_log()
            if writable:
                try:
                    written = os.write(self._to_child, data[:1 << 16])
                except BrokenPipeError:
                    self._fail_from_exit(f'{self.doing} stopped reading its requests')
                except BlockingIOError:
                    continue
                data = data[written:]
            self._watch()

    def receive(self, timeout_s: float | None = None) -> Frame | None:
        """The next frame (``error`` frames raise); None when the child ended without more."""
        give_up = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            frame = self._pop()
            if frame is not None:
                return frame
            if self._eof:
                self._finish_exit()
                return None
            self._check_deadline()
            if give_up is not None and time.monotonic() >= give_up:
                self._fail(f'{self.doing} did not answer within {timeout_s:.0f} s', killed=True)
            readable, _, _ = select.select([self._from_child, self._stderr], [], [], self._wait_s(give_up))
            if self._stderr in readable:
                self._pump_log()
            if self._from_child in readable:
                self._read_available()
            self._watch()

    def expect(self, *kinds: str, timeout_s: float | None = None) -> Frame:
        """The next frame, which must be one of ``kinds``."""
        frame = self.receive(timeout_s)
        if frame is None:
            self._fail(f'{self.doing} exited without sending {" or ".join(kinds)}')
        if frame.kind not in kinds:
            self._fail(f'{self.doing} sent {frame.kind[:40]!r} where {" or ".join(kinds)} was expected')
        return frame

    def _wait_s(self, give_up: float | None) -> float:
        now = time.monotonic()
        ends = [self._deadline, now + POLL_S] + ([give_up] if give_up is not None else [])
        if self._exited_at is not None:
            ends.append(self._exited_at + DRAIN_S)
        return max(0.0, min(ends) - now)

    def _pump_log(self) -> None:
        """Copy what the child wrote to stderr into its log, up to ``MAX_LOG_BYTES`` (the rest is dropped)."""
        while True:
            try:
                chunk = os.read(self._stderr, 1 << 16)
            except (BlockingIOError, OSError):
                return
            if not chunk:
                return
            room = MAX_LOG_BYTES - self._log_bytes
            if room > 0:
                self._log.write(chunk[:room])
            if len(chunk) > room >= 0 or (room <= 0 and self._log_bytes == MAX_LOG_BYTES):
                self._log.write(b'\n[frugalbench: log cut here at %d MB]\n' % (MAX_LOG_BYTES >> 20))
            self._log_bytes += len(chunk)

    def _read_available(self) -> None:
        try:
            chunk = os.read(self._from_child, 1 << 20)
        except BlockingIOError:
            return
        if not chunk:
            self._eof = True
            return
        try:
            self._buffer.feed(chunk)
        except FrameError as exc:
            self._fail(f'{self.doing} broke the channel protocol: {exc}')

    def _pop(self) -> Frame | None:
        try:
            frame = self._buffer.pop()
        except FrameError as exc:
            self._fail(f'{self.doing} broke the channel protocol: {exc}')
        if frame is None:
            return None
        self._frames += 1
        if self._frames > MAX_FRAMES or self._buffer.header_bytes > MAX_HEADER_TOTAL:
            self._fail(f'{self.doing} flooded the channel (more than {MAX_FRAMES} messages or '
                       f'{MAX_HEADER_TOTAL >> 20} MB of headers)')
        if self._done:
            self._fail(f'{self.doing} sent {frame.kind[:40]!r} after done (refused)')
        if frame.kind == 'error':
            message = frame.get('message')
            self._fail(str(message)[:MAX_MESSAGE_CHARS] if isinstance(message, str) and message
                       else f'{self.doing} reported an error without a message')
        if frame.kind == 'done':
            self._done = True
        if frame.kind != 'file':
            self.result.events.append({**frame.header, 'event': frame.kind})
        return frame

    # --- limits and the end of the run --------------------------------------------------------

    def _check_deadline(self) -> None:
        if time.monotonic() > self._deadline:
            self._fail(f'timed out after {self.limits.timeout_s:.0f} s; raise it with --timeout if the model '
                       'is that slow', killed=True)

    def _watch(self) -> None:
        """Notice the child's exit (start the drain clock); without a group, watch its memory."""
        if self._exited_at is None:
            self._reap(block=False)
        elif time.monotonic() > self._exited_at + DRAIN_S:
            self._eof = True  # a descendant holds the pipe: stop listening
        if self.group is not None or self._exited_at is not None:
            return
        now = time.monotonic()
        if now - self._last_watch < POLL_S:
            return
        self._last_watch = now
        rss_mb = _tree_rss_kb(self.pid) / 1024
        self.result.peak_rss_mb = max(self.result.peak_rss_mb, rss_mb)
        if rss_mb > float(self.limits.memory_mb):
            self._fail(f'memory limit exceeded ({rss_mb:.0f} MB > {self.limits.memory_mb} MB); raise it '
                       'with --memory-limit if the model needs more', killed=True)

    def _reap(self, block: bool) -> bool:
        """Collect the child's exit status and rusage (True once it has exited)."""
        if self._exited_at is not None:
            return True
        give_up = time.monotonic() + (5.0 if block else 0.0)
        while True:
            try:
                pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status, usage = self.pid, 0, None
            if pid:
                self._exited_at = time.monotonic()
                self.process.returncode = self.result.returncode = os.waitstatus_to_exitcode(status)
                if usage is not None:
                    self.result.cpu_seconds = usage.ru_utime + usage.ru_stime
                    self.result.peak_rss_mb = max(self.result.peak_rss_mb, usage.ru_maxrss / 1024)
                self._kill_all()   # descendants must not keep the pipe (or anything else) open
                return True
            if time.monotonic() >= give_up:
                return False
            time.sleep(0.02)

    def _kill_all(self) -> None:
        if self.group is not None:
            killed = self.group.kill_all()
            if killed:
                self.result.enforced['processes_killed_at_end'] = \
                    int(self.result.enforced.get('processes_killed_at_end', 0)) + killed
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _finish_exit(self) -> None:
        """The stream ended: reap the child and raise if it did not end well."""
        self._reap(block=True)
        reason = self._limit_reason()
        if reason is not None:
            self._fail(reason)
        code = self.result.returncode
        if code == 0:
            return
        if code == EXIT_NO_NETNS:
            self._fail('could not cut the network for the child (unshare failed)')
        if code == EXIT_NO_CONFINEMENT:
            self._fail(f'could not confine {self.doing} (mount namespace or privilege drop failed): '
                       f'{self._log_tail()}')
        if code == -signal.SIGXCPU:
            why = f'exceeded its CPU-time limit ({self.result.enforced["cpu_limit_s"]} s)'
        elif code < 0:
            why = f'was killed by signal {signal.Signals(-code).name}'
        else:
            why = f'exited with status {code}'
        self._fail(f'{self.doing} {why}; see its log {self.log_path}: {self._log_tail()}')

    def _limit_reason(self) -> str | None:
        if self.group is None:
            return None
        if self.group.memory_limit_hit():
            return (f'memory limit exceeded ({self.limits.memory_mb} MB, counting what it wrote to its private '
                    '/tmp, /var/tmp and /dev/shm); raise it with --memory-limit if the model needs more')
        if self.group.pids_limit_hit():
            return (f'process limit reached ({self.limits.pids} processes and threads): a model process must '
                    'not start processes of its own')
        return None

    def _fail(self, reason: str, killed: bool = False) -> None:
        """Close the run and raise; a limit the run hit explains the failure better than its symptom."""
        if killed and self._killed_for is None:
            self._killed_for = reason
        self.close()
        limit = self.result.enforced.get('limit_hit')
        raise ChildProcessError_(self._killed_for or (limit if isinstance(limit, str) else None) or reason)

    def _fail_from_exit(self, fallback: str) -> None:
        self._reap(block=True)
        self._fail(self._limit_reason() or fallback)

    def close(self) -> ChildResult:
        """Kill every process the child started, reap it, remove its group; idempotent."""
        if self._closed:
            return self.result
        self._closed = True
        if not self._reap(block=False):
            self._kill_all()
            self._reap(block=True)
        self._kill_all()
        self._pump_log()
        for fd in (self._to_child, self._from_child, self._stderr):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
        if self.group is not None:
            reason = self._limit_reason()
            if reason is not None:
                self.result.enforced['limit_hit'] = reason
            self.result.group_peak_mb = _mb(self.group.peak_memory_bytes())
            cpu = self.group.cpu_seconds()
            if cpu is not None:
                self.result.cpu_seconds = max(self.result.cpu_seconds, cpu)
        self._remove_group()
        if self._scratch is not None:
            self._scratch.cleanup()
        self.result.wall_seconds = time.monotonic() - self._started
        return self.result

    def _remove_group(self) -> None:
        if self.group is not None:
            try:
                self.group.remove()
            except OSError as exc:
                self.result.enforced['control_group_cleanup'] = f'failed: {exc}'

    def _log_tail(self) -> str:
        if not self._log.closed:
            self._pump_log()
            self._log.flush()
        try:
            lines = [line for line in self.log_path.read_text(errors='replace').splitlines() if line.strip()]
        except OSError:
            return ''
        return lines[-1][:300] if lines else '(empty log)'


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / (1 << 20), 1)


def run_child(module: str, request: dict[str, Any], *, limits: Limits, log_path: Path,
              on_event: Callable[[dict], None] | None = None, extra_env: dict[str, str] | None = None,
              confine: Confinement | None = None, pass_fds: tuple[int, ...] = (), max_payload: int = 1 << 20,
              doing: str = 'the child process') -> ChildResult:
    """Run ``module`` on one request until it ends; raise ChildProcessError_ on limit or crash.

    Events (every frame but ``file``) are passed to ``on_event`` and kept in the result;
    ``file`` frames (``name`` + payload, at most ``max_payload`` bytes) are kept in ``files``.
    """
    child = start_child(module, request, limits=limits, log_path=log_path, extra_env=extra_env, confine=confine,
                        pass_fds=pass_fds, max_payload=max_payload, doing=doing)
    return finish_child(child, on_event)


def start_child(module: str, request: dict[str, Any], *, limits: Limits, log_path: Path,
                extra_env: dict[str, str] | None = None, confine: Confinement | None = None,
                pass_fds: tuple[int, ...] = (), max_payload: int = 1 << 20,
                doing: str = 'the child process') -> ChildSession:
    """Start ``module`` and send it its request; the caller works on, then calls ``finish_child``.

    The caller owns the session from here: it must reach ``finish_child`` or ``close`` it.
    """
    child = ChildSession(module, limits=limits, log_path=log_path, confine=confine, extra_env=extra_env,
                         pass_fds=pass_fds, max_payload=max_payload, doing=doing)
    try:
        child.send('request', **request)
    except BaseException:
        child.close()
        raise
    return child


def finish_child(child: ChildSession, on_event: Callable[[dict], None] | None = None) -> ChildResult:
    """Read a started child until it ends (see ``run_child``), then close it, whatever happens."""
    with child:
        while (frame := child.receive()) is not None:
            if frame.kind == 'file':
                name = frame.get('name')
                if not isinstance(name, str) or not name or name in child.result.files:
                    child._fail(f'{child.doing} sent a file without a name, or twice')
                child.result.files[name] = frame.payload
            elif on_event is not None:
                on_event({**frame.header, 'event': frame.kind})
        return child.close()
