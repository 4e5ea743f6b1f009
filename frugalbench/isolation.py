"""Run submission code in a limited child process.

The parent never executes a submission's config or model. Children run ``python -m <module>``
with: a fresh temporary HOME and working folder, a minimal environment (no frugalbench data
variables), a wall-clock timeout, a resident-memory watchdog, a CPU-time limit, the network
cut (a new network namespace, where the platform allows it: root on Linux), and death with
the parent (``PR_SET_PDEATHSIG``). What was actually enforced is returned with the result.

A *confined* child (``confine=Confinement(...)``, root on Linux) also gets a private mount
namespace in which the protected folders (benchmark data, results, work folders) are empty and
read-only, ``/tmp``, ``/var/tmp`` and ``/dev/shm`` are private and throw-away, and its own folder
is its working directory; it then runs as ``nobody`` with ``no_new_privs``, so it can neither
undo those mounts nor write anywhere else. Its arguments name files relative to its folder.

Protocol: the child prints JSON events, one per line, on stdout; logs go to stderr, which
is kept in a log file.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from frugalbench.errors import ChildProcessError_

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
NOBODY = 65534
CONFINED_VIEW = Path('/tmp/frugalbench-child')   # where a confined child sees its own folder
PRIVATE_TMP = (Path('/tmp'), Path('/var/tmp'), Path('/dev/shm'))
EXIT_NO_NETNS, EXIT_NO_CONFINEMENT = 97, 98
PAGE_KB = os.sysconf('SC_PAGE_SIZE') // 1024


DEFAULT_TIMEOUT_S = 1800.0
DEFAULT_MEMORY_MB = 8192


@dataclass(frozen=True)
class Limits:
    """Resource limits for one child process (unset: the benchmark's default, else the global one)."""

    timeout_s: float | None = None
    memory_mb: int | None = None
    cpu_s: int | None = None  # default: 2 x timeout x cores
    cut_network: bool = True
    threads: int = 1

    def or_defaults(self, timeout_s: float | None = None, memory_mb: int | None = None) -> Limits:
        """These limits with unset ones filled: from the given defaults, else the global defaults."""
        return replace(self, timeout_s=_first(self.timeout_s, timeout_s, DEFAULT_TIMEOUT_S),
                       memory_mb=int(_first(self.memory_mb, memory_mb, DEFAULT_MEMORY_MB)))


def _first(*values: float | None) -> float:
    return next(v for v in values if v is not None)


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


@dataclass(frozen=True)
class Confinement:
    """A child that lives in ``folder`` and must not see ``protected`` folders."""

    folder: Path
    protected: tuple[Path, ...] = ()


@dataclass(frozen=True)
class _MountPlan:
    """What the child does between fork and exec to confine itself (computed in the parent)."""

    folder: str
    hide: tuple[str, ...]          # replaced by empty read-only tmpfs
    private: tuple[str, ...]       # replaced by empty writable tmpfs
    mask: tuple[tuple[str, tuple[str, ...]], ...]  # (closed folder, what to show inside it), see _reveal
    drop_to_nobody: bool


def network_can_be_cut() -> tuple[bool, str]:
    """Whether a child can get its own, empty network namespace here."""
    if sys.platform != 'linux':
        return False, 'not Linux'
    if os.geteuid() != 0:
        return False, 'not root: unshare(CLONE_NEWNET) needs privileges'
    return True, 'new network namespace (loopback only, down)'


def _python_paths() -> list[Path]:
    """What a child needs to read to start Python and import frugalbench, torch and mmseg."""
    import frugalbench
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent,
             Path(frugalbench.__file__).resolve().parent.parent}
    return sorted(p.resolve() for p in paths)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _closed_ancestor(path: Path) -> Path | None:
    """The topmost folder above ``path`` that ``nobody`` cannot enter (None: it can reach it)."""
    for folder in reversed(path.parents):
        if not folder.stat().st_mode & 0o001:
            return folder
    return None


def _already_hidden(folder: Path, hidden: list[Path], masks: dict[Path, list[Path]]) -> bool:
    """Whether ``folder`` is inside a hidden folder, or inside a masked one but not in what it shows."""
    if any(_inside(folder, h) for h in hidden):
        return True
    return any(_inside(folder, closed) and not any(_inside(folder, p) for p in shown)
               for closed, shown in masks.items())


def _plan_confinement(confine: Confinement, enforced: dict[str, object]) -> _MountPlan | None:
    """Decide what can be hidden here; record it (and what could not be done) in ``enforced``."""
    if sys.platform != 'linux' or os.geteuid() != 0:
        enforced['filesystem'] = ('not confined (needs root on Linux): the model process can read what '
                                  'this user can read, including benchmark annotations')
        enforced['user'] = f'uid {os.geteuid()} (not dropped)'
        return None
    python = _python_paths()
    private = [p for p in PRIVATE_TMP if p.is_dir() and not any(_inside(q, p) for q in python)]
    if Path('/tmp') not in private:
        enforced['filesystem'] = 'not confined: the Python environment lives under /tmp'
        enforced['user'] = 'root (not dropped)'
        return None
    # Python under a closed folder (e.g. pyenv in /root): show the child that folder as an empty
    # one holding only the Python trees, so it can run as nobody and still sees nothing else there.
    masks: dict[Path, list[Path]] = {}
    for path in python:
        closed = _closed_ancestor(path)
        if closed is not None:
            masks.setdefault(closed, []).append(path)
    hide, kept = [], []
    for folder in sorted({p.resolve() for p in confine.protected if p.exists()}):
        if folder.is_file():
            folder = folder.parent
        if any(_inside(p, folder) for p in python):
            kept.append(f'{folder} (holds the Python environment)')
        elif not _already_hidden(folder, [*hide, *private], masks):
            hide.append(folder)
    drop = all(path.stat().st_mode & 0o005 == 0o005 for path in python)
    enforced['filesystem'] = ('private mount namespace; hidden (empty, read-only): '
                              + ', '.join(str(h) for h in [*hide, *masks])
                              + '; private /tmp; writable: its own folder'
                              + (f'; not hidden: {"; ".join(kept)}' if kept else ''))
    enforced['user'] = (f'nobody ({NOBODY}), no_new_privs' if drop else
                        'root (not dropped: the Python environment is not readable by nobody)')
    return _MountPlan(folder=str(confine.folder.resolve()), hide=tuple(str(h) for h in hide),
                      private=tuple(str(p) for p in private),
                      mask=tuple((str(k), tuple(str(p) for p in v)) for k, v in masks.items()),
                      drop_to_nobody=drop)


def _mount(libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    encode = (lambda text: None if text is None else text.encode())
    if libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f'mount {source} on {target}: {os.strerror(error)}')


def _confine(libc: ctypes.CDLL, plan: _MountPlan) -> None:
    """In the child, after unshare(CLONE_NEWNS): hide, privatise, bind its folder, drop privileges."""
    handle = os.open(plan.folder, os.O_PATH | os.O_DIRECTORY)  # still reachable once its parents are hidden
    _mount(libc, None, '/', None, MS_REC | MS_PRIVATE)          # nothing propagates back to the host
    for folder in plan.hide:
        _mount(libc, 'tmpfs', folder, 'tmpfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 'size=16k,mode=0755')
    for closed, shown in plan.mask:
        _reveal(libc, closed, shown)
    for folder in plan.private:
        _mount(libc, 'tmpfs', folder, 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=1777')
    CONFINED_VIEW.mkdir()
    _mount(libc, f'/proc/self/fd/{handle}', str(CONFINED_VIEW), None, MS_BIND | MS_REC)
    os.close(handle)
    os.chdir(CONFINED_VIEW)
    if plan.drop_to_nobody:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), 'prctl(PR_SET_NO_NEW_PRIVS) failed')


def _reveal(libc: ctypes.CDLL, closed: str, shown: tuple[str, ...]) -> None:
    """Replace ``closed`` by an empty folder that holds only read-only views of ``shown``."""
    handles = [os.open(path, os.O_PATH | os.O_DIRECTORY) for path in shown]
    _mount(libc, 'tmpfs', closed, 'tmpfs', MS_NOSUID | MS_NODEV, 'size=64k,mode=0755')
    for path, handle in zip(shown, handles):
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(libc, f'/proc/self/fd/{handle}', path, None, MS_BIND | MS_REC)
        _mount(libc, None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC)
        os.close(handle)
    _mount(libc, None, closed, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _child_setup(limits: Limits, cut_network: bool, plan: _MountPlan | None) -> Callable[[], None]:
    parent = os.getpid()

    def setup() -> None:  # runs in the child between fork and exec
        libc = ctypes.CDLL(None, use_errno=True)
        cpu = limits.cpu_s or int(2 * limits.timeout_s * (os.cpu_count() or 1))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        flags = (CLONE_NEWNET if cut_network else 0) | (CLONE_NEWNS if plan else 0)
        if flags and libc.unshare(flags) != 0:
            os._exit(EXIT_NO_NETNS if not plan else EXIT_NO_CONFINEMENT)
        if plan is not None:
            try:
                _confine(libc, plan)
            except OSError as exc:
                os.write(2, f'frugalbench: could not confine the child: {exc}\n'.encode())
                os._exit(EXIT_NO_CONFINEMENT)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which clears it
        if os.getppid() != parent:
            os._exit(EXIT_NO_CONFINEMENT)  # the parent died before the signal was armed
    return setup


def _chown_tree(folder: Path, uid: int) -> None:
    os.chown(folder, uid, uid)
    for path in folder.rglob('*'):
        os.chown(path, uid, uid, follow_symlinks=False)


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
              extra_env: dict[str, str] | None = None, confine: Confinement | None = None,
              pass_fds: tuple[int, ...] = (), on_start: Callable[[int], None] | None = None) -> ChildResult:
    """Run ``python -m module args`` under ``limits``; raise ChildProcessError_ on limit or crash.

    With ``confine``, the child works in ``confine.folder`` (its HOME is ``home/`` there) and
    ``args`` should name files relative to it; otherwise it works in a fresh temporary folder.
    ``pass_fds`` are inherited (e.g. energy counters that only root can open); ``on_start`` gets
    the child's real PID (to measure it from outside).
    """
    limits = limits.or_defaults()
    cut, how = network_can_be_cut()
    cut = cut and limits.cut_network
    log_path.parent.mkdir(parents=True, exist_ok=True)
    enforced: dict[str, object] = {
        'timeout_s': limits.timeout_s, 'memory_limit_mb': limits.memory_mb,
        'cpu_limit_s': limits.cpu_s or int(2 * limits.timeout_s * (os.cpu_count() or 1)),
        'network': how if cut else f'not cut ({how})', 'isolated_home': True, 'dies_with_parent': True}
    if not limits.cut_network:
        enforced['network'] = 'not cut (disabled by caller)'
    plan = _plan_confinement(confine, enforced) if confine is not None else None
    with tempfile.TemporaryDirectory(prefix='frugalbench-child-') as scratch, log_path.open('wb') as log:
        if confine is not None:
            home = confine.folder / 'home'
            home.mkdir(parents=True, exist_ok=True)
            child_home = CONFINED_VIEW / 'home' if plan else home.resolve()
            cwd = str(confine.folder)
            if plan and plan.drop_to_nobody:
                _chown_tree(confine.folder, NOBODY)
        else:
            child_home, cwd = Path(scratch), scratch
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, '-m', module, *args], stdout=subprocess.PIPE, stderr=log,
            cwd=cwd, env=_child_env(child_home, limits.threads, extra_env),
            preexec_fn=_child_setup(limits, cut, plan), start_new_session=True, pass_fds=pass_fds)
        result = ChildResult(returncode=-1, enforced=enforced, log_path=log_path)
        if on_start is not None:
            on_start(process.pid)
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


def read_child_output(path: Path, folder: Path) -> bytes:
    """The bytes of a file a child wrote in ``folder``, refusing links and non-regular files.

    The parent may read what the child may not (e.g. the ground truth): a child that left a
    link where its output belongs must not make the parent read a file for it.
    """
    parent, root = os.path.realpath(path.parent), os.path.realpath(folder)
    if parent != root and not parent.startswith(root + os.sep):
        raise ChildProcessError_(f'{path.name}: its folder leads out of the child folder (refused)')
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise ChildProcessError_(f'the child process did not write {path.name}') from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ChildProcessError_(f'the child process left a link instead of {path.name} (refused: outputs '
                                     'must be files it wrote)') from None
        raise ChildProcessError_(f'cannot read {path.name} written by the child: {exc.strerror}') from None
    with os.fdopen(handle, 'rb') as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise ChildProcessError_(f'the child process left something other than a file as {path.name}')
        return stream.read()


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
    if result.returncode == EXIT_NO_NETNS:
        raise ChildProcessError_('could not cut the network for the child (unshare failed)')
    if result.returncode == EXIT_NO_CONFINEMENT:
        raise ChildProcessError_(f'could not confine the child process (mount namespace or privilege drop '
                                 f'failed): {_log_tail(log_path)}')
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
