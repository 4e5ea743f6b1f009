"""Kernel control groups for one child process tree: limits, accounting, and killing every process.

One interface (``ControlGroup``) over the two kernel APIs:

    V2Group   cgroup v2 (one folder): memory.max, pids.max, memory.peak, cpu.stat, cgroup.kill
    V1Group   cgroup v1 (a folder per hierarchy): memory, pids and freezer required, cpuacct used
              when mounted; killing freezes the group, SIGKILLs every process, then thaws it

``create_group`` prefers v2 when its hierarchy offers memory and pids (pure v2 hosts), else v1.
A group is ``frugalbench/<owner pid>-<name>`` below this process's own group in each hierarchy
(below the hierarchy's root when that is not writable), so ``sweep_stale_groups`` can kill and
remove the groups of a harness that died. The memory limit counts what the group's processes
write to tmpfs and shm (the kernel charges those pages to the writer's group); hitting it gets a
process OOM-killed. Sizes are bytes; ``enforced()`` shows them in MB of 2**20 bytes, as the rest
of frugalbench does.

Use, in the parent: ``group, why = create_group(...)``; start the child with a ``preexec_fn``
that calls ``group.join_self()`` before dropping privileges; at the end ``group.remove()``.
"""
from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from frugalbench.errors import FrugalbenchError

PARENT = 'frugalbench'
V1_REQUIRED = frozenset({'memory', 'pids', 'freezer'})
V1_OPTIONAL = frozenset({'cpuacct'})
V2_REQUIRED = ('memory', 'pids')
FREEZE_WAIT_S = 1.0     # longest wait for one freeze; a task stuck in the kernel may never freeze
_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}')
_OWNED = re.compile(r'(\d+)-')


class CgroupError(FrugalbenchError):
    """A control group could not be emptied or removed."""


class _Unusable(Exception):
    """Control groups of one version cannot be used here (the message says why)."""


@dataclass(frozen=True)
class GroupLimits:
    """Limits of one group (None: not limited, still accounted)."""

    memory_bytes: int | None = None   # anonymous memory and the tmpfs/shm pages the group writes
    pids_max: int | None = None       # processes and threads


@dataclass(frozen=True)
class Hierarchy:
    """One mounted cgroup hierarchy and this process's own group in it."""

    version: str                  # 'v1' or 'v2'
    mount: Path
    controllers: frozenset[str]   # v1: from the mount options; v2: empty (read cgroup.controllers)
    own: Path                     # this process's group folder (the mount when unknown)


class ControlGroup:
    """A group (one folder per hierarchy) that holds one child process tree."""

    version = ''

    def __init__(self, name: str, folders: dict[str, Path], limits: GroupLimits) -> None:
        self.name = name                              # frugalbench/<owner pid>-<name>
        self.limits = limits
        self._folders = folders                       # controller -> its folder
        self._paths = tuple(dict.fromkeys(folders.values()))
        self._join = tuple(os.fsencode(path / 'cgroup.procs') for path in self._paths)
        self._removed = False

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.name!r}, {[str(p) for p in self._paths]})'

    def child_join_paths(self) -> tuple[bytes, ...]:
        """The cgroup.procs files a process writes its pid (or 0, itself) into to join."""
        return self._join

    def join_self(self) -> None:
        """Join the group: first thing in the child's preexec_fn, before it drops privileges."""
        for path in self._join:   # os.open/os.write only: safe in a preexec_fn
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, b'0')
            finally:
                os.close(fd)

    def add(self, pid: int) -> None:
        """Move a running process in (its children forked before stay out: prefer join_self)."""
        for path in self._paths:
            _write(path / 'cgroup.procs', str(pid))

    def pids(self) -> list[int]:
        """Every process in the group and its subgroups, in every hierarchy (zombies excluded)."""
        found: set[int] = set()
        for path in self._paths:
            for folder, _, _ in os.walk(path):
                found.update(int(pid) for pid in (_read(Path(folder) / 'cgroup.procs') or '').split())
        return sorted(found)

    def peak_memory_bytes(self) -> int | None:
        """The group's highest memory use (page cache included); None when the kernel does not say."""
        raise NotImplementedError

    def cpu_seconds(self) -> float | None:
        """CPU time of every process the group has held; None when not accounted."""
        raise NotImplementedError

    def memory_limit_hit(self) -> bool:
        """Whether the memory limit made an allocation fail (an OOM kill)."""
        raise NotImplementedError

    def pids_limit_hit(self) -> bool:
        """Whether a fork or clone failed on the process-count limit."""
        return _keyed(self._file('pids', 'pids.events')).get('max', 0) > 0

    def kill_all(self, timeout_s: float = 5.0) -> int:
        """SIGKILL every process until the group is empty or ``timeout_s`` ran out; how many were signalled.

        Each round freezes the group (so nothing forks in between), signals everything listed,
        thaws it (the frozen die as they wake) and waits a little for the group to empty.
        """
        deadline = time.monotonic() + timeout_s
        killed: set[int] = set()
        if not self.pids():
            return 0
        try:
            while True:
                self._freeze(min(deadline, time.monotonic() + FREEZE_WAIT_S))
                for pid in self.pids():
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed.add(pid)
                    except ProcessLookupError:
                        pass
                self._thaw()
                if _wait_until(lambda: not self.pids(), min(deadline, time.monotonic() + 0.5)):
                    return len(killed)
                if time.monotonic() >= deadline:
                    return len(killed)
        finally:
            self._thaw()

    def remove(self) -> None:
        """Kill every process, then remove the group's folders (again: nothing to do)."""
        if self._removed:
            return
        self.kill_all()
        for path in self._paths:
            for folder, _, _ in os.walk(path, topdown=False):
                try:
                    os.rmdir(folder)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise CgroupError(f'cannot remove control group {folder}: {exc.strerror} '
                                      f'(processes left: {self.pids() or "none"})') from None
        self._removed = True

    def enforced(self) -> dict[str, str]:
        """What this group enforces, for a run's record."""
        memory, pids = self.limits.memory_bytes, self.limits.pids_max
        return {'cgroup': f'{self.version}: {", ".join(self._controllers())}',
                'memory': (f'{memory / 2**20:g} MB incl. tmpfs/shm (OOM kill)' if memory is not None
                           else 'accounted, not limited'),
                'pids': f'max {pids}' if pids is not None else 'counted, not limited',
                'kill': self._kill_method()}

    def __enter__(self) -> ControlGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _file(self, controller: str, name: str) -> Path | None:
        folder = self._folders.get(controller)
        return None if folder is None else folder / name

    def _controllers(self) -> list[str]:
        return [c for c in ('memory', 'pids', 'freezer', 'cpuacct') if c in self._folders]

    def _kill_method(self) -> str:
        return 'SIGKILL every process'

    def _freeze(self, deadline: float) -> None:
        """Stop every process in the group (nothing: this kind of group cannot be frozen)."""

    def _thaw(self) -> None:
        """Let the group run again."""


class V1Group(ControlGroup):
    """A cgroup v1 group: a folder in the memory, pids, freezer (and cpuacct) hierarchies."""

    version = 'v1'

    def peak_memory_bytes(self) -> int | None:
        return _int(self._file('memory', 'memory.max_usage_in_bytes'))

    def cpu_seconds(self) -> float | None:
        usage = _int(self._file('cpuacct', 'cpuacct.usage'))
        return None if usage is None else usage / 1e9

    def memory_limit_hit(self) -> bool:
        """Whether the kernel OOM-killed a process of the group (failcnt only before Linux 4.13)."""
        counts = _keyed(self._file('memory', 'memory.oom_control'))
        if 'oom_kill' in counts:
            return counts['oom_kill'] > 0 or counts.get('under_oom', 0) > 0
        return any(_int(self._file('memory', name)) or 0 for name in ('memory.failcnt', 'memory.memsw.failcnt'))

    def _apply(self) -> None:
        memory, pids = self.limits.memory_bytes, self.limits.pids_max
        if memory is not None:
            _write(self._folders['memory'] / 'memory.limit_in_bytes', str(memory))
            try:   # memory + swap: swap must not extend the limit (absent without swap accounting)
                _write(self._folders['memory'] / 'memory.memsw.limit_in_bytes', str(memory))
            except OSError:
                pass
        if pids is not None:
            _write(self._folders['pids'] / 'pids.max', str(pids))

    def _kill_method(self) -> str:
        return 'freezer, then SIGKILL every process' if 'freezer' in self._folders else 'SIGKILL every process'

    def _freeze(self, deadline: float) -> None:
        state = self._file('freezer', 'freezer.state')
        if state is None or not state.exists():
            return
        _write(state, 'FROZEN')
        _wait_until(lambda: (_read(state) or '').strip() != 'FREEZING', deadline)

    def _thaw(self) -> None:
        state = self._file('freezer', 'freezer.state')
        if state is not None and state.exists():
            _write(state, 'THAWED')


class V2Group(ControlGroup):
    """A cgroup v2 group: one folder with the memory and pids controllers."""

    version = 'v2'

    def __init__(self, name: str, folder: Path, limits: GroupLimits) -> None:
        super().__init__(name, {'memory': folder, 'pids': folder, 'cpu': folder}, limits)
        self.folder = folder

    def peak_memory_bytes(self) -> int | None:
        return _int(self.folder / 'memory.peak')   # Linux 5.19 and later

    def cpu_seconds(self) -> float | None:
        usage = _keyed(self.folder / 'cpu.stat').get('usage_usec')
        return None if usage is None else usage / 1e6

    def memory_limit_hit(self) -> bool:
        """Whether an allocation failed at memory.max (``oom``) or the kernel OOM-killed in the group."""
        events = _keyed(self.folder / 'memory.events')
        return events.get('oom', 0) > 0 or events.get('oom_kill', 0) > 0

    def kill_all(self, timeout_s: float = 5.0) -> int:
        """cgroup.kill (Linux 5.14+: kills what forks meanwhile too), else the freeze-and-kill rounds."""
        kill = self.folder / 'cgroup.kill'
        if not kill.exists():
            return super().kill_all(timeout_s)
        victims: set[int] = set()

        def empty() -> bool:
            left = self.pids()
            victims.update(left)
            return not left

        if not empty():
            _write(kill, '1')
            _wait_until(empty, time.monotonic() + timeout_s)
        return len(victims)

    def _apply(self) -> None:
        memory, pids = self.limits.memory_bytes, self.limits.pids_max
        if memory is not None:
            _write(self.folder / 'memory.max', str(memory))
            for name, value in (('memory.swap.max', '0'), ('memory.oom.group', '1')):
                try:   # optional: no swap accounting / older kernels
                    _write(self.folder / name, value)
                except OSError:
                    pass
        if pids is not None:
            _write(self.folder / 'pids.max', str(pids))

    def _controllers(self) -> list[str]:
        return ['memory', 'pids', 'cpu.stat', *(['cgroup.kill'] if (self.folder / 'cgroup.kill').exists() else [])]

    def _kill_method(self) -> str:
        return 'cgroup.kill' if (self.folder / 'cgroup.kill').exists() else 'cgroup.freeze, then SIGKILL every process'

    def _freeze(self, deadline: float) -> None:
        freeze = self.folder / 'cgroup.freeze'
        if freeze.exists():
            _write(freeze, '1')
            _wait_until(lambda: _keyed(self.folder / 'cgroup.events').get('frozen') == 1, deadline)

    def _thaw(self) -> None:
        freeze = self.folder / 'cgroup.freeze'
        if freeze.exists():
            _write(freeze, '0')


def create_group(name: str, limits: GroupLimits) -> tuple[ControlGroup | None, str]:
    """A fresh group, and one line on the choice; (None, why) when cgroups are not usable here.

    ``name`` (letters, digits, ``_.-``) is made unique; the group is ``frugalbench/<pid>-<name>``.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f'control group name {name!r}: use letters, digits, "_", "." and "-"')
    if sys.platform != 'linux':
        return None, 'not Linux: no control groups'
    if os.geteuid() != 0:
        return None, 'not root: creating control groups needs privileges'
    return _create(_discover(), name, limits)


def sweep_stale_groups() -> list[str]:
    """Kill and remove the groups whose owner process is gone; the names removed."""
    if sys.platform != 'linux' or os.geteuid() != 0:
        return []
    v1: dict[str, dict[str, Path]] = {}
    stale: list[ControlGroup] = []
    for hierarchy in _discover():
        for base in dict.fromkeys((hierarchy.own, hierarchy.mount)):
            try:
                entries = sorted(os.listdir(base / PARENT))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                owner = _OWNED.match(entry)
                if owner is None or _alive(int(owner[1])) or not (base / PARENT / entry).is_dir():
                    continue
                if hierarchy.version == 'v2':
                    stale.append(V2Group(f'{PARENT}/{entry}', base / PARENT / entry, GroupLimits()))
                else:
                    keys = hierarchy.controllers or {str(hierarchy.mount)}
                    v1.setdefault(entry, {}).update(dict.fromkeys(keys, base / PARENT / entry))
    stale += [V1Group(f'{PARENT}/{entry}', folders, GroupLimits()) for entry, folders in v1.items()]
    for group in stale:
        group.remove()
    return sorted({group.name for group in stale})


def hierarchies(mountinfo: str, self_cgroup: str) -> list[Hierarchy]:
    """The cgroup hierarchies in /proc/self/mountinfo text, with our groups from /proc/self/cgroup text."""
    own: dict[frozenset[str] | None, str] = {}   # v1: its controllers (name=... included); v2: None
    for line in self_cgroup.splitlines():
        number, names, group = line.split(':', 2)
        own[None if number == '0' and not names else frozenset(names.split(','))] = group
    found: dict[object, Hierarchy] = {}
    for line in mountinfo.splitlines():
        left, _, right = line.partition(' - ')
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ('cgroup', 'cgroup2'):
            continue
        root, mount = _unescape(fields[3]), Path(_unescape(fields[4]))
        if tail[0] == 'cgroup2':
            key: frozenset[str] | None = None
        else:
            options = set(tail[2].split(','))
            key = next((k for k in own if k is not None and k <= options), frozenset(
                o for o in options if o in V1_REQUIRED | V1_OPTIONAL | {'cpu'}))
        path = own.get(key)   # relative to the hierarchy's root; the mount may show a subtree of it
        if path is not None and root != '/':
            path = path[len(root):] if path == root or path.startswith(root + '/') else None
        folder = mount / path.lstrip('/') if path else mount
        controllers = frozenset() if key is None else frozenset(c for c in key if not c.startswith('name='))
        found.setdefault(key, Hierarchy('v2' if key is None else 'v1', mount, controllers, folder))
    return list(found.values())


def _discover() -> list[Hierarchy]:
    try:
        return hierarchies(Path('/proc/self/mountinfo').read_text(), Path('/proc/self/cgroup').read_text())
    except OSError:
        return []


def _create(found: list[Hierarchy], name: str, limits: GroupLimits) -> tuple[ControlGroup | None, str]:
    reasons = []
    for make in (_make_v2, _make_v1):
        try:
            group = make(found, name, limits)
        except _Unusable as exc:
            reasons.append(str(exc))
            continue
        return group, f'cgroup {group.version}' + (f' ({reasons[0]})' if reasons else '')
    return None, '; '.join(reasons)


def _make_v2(found: list[Hierarchy], name: str, limits: GroupLimits) -> V2Group:
    hierarchy = next((h for h in found if h.version == 'v2'), None)
    if hierarchy is None:
        raise _Unusable('no cgroup v2 hierarchy')
    offered = (_read(hierarchy.mount / 'cgroup.controllers') or '').split()
    missing = [c for c in V2_REQUIRED if c not in offered]
    if missing:
        raise _Unusable(f'cgroup v2 at {hierarchy.mount} lacks {", ".join(missing)}')
    enable = ' '.join(f'+{c}' for c in V2_REQUIRED)
    problems = []
    for base in dict.fromkeys((hierarchy.own, hierarchy.mount)):   # a group holding processes refuses
        try:
            if not set(V2_REQUIRED) <= set((_read(base / 'cgroup.subtree_control') or '').split()):
                _write(base / 'cgroup.subtree_control', enable)
            _mkdir(base / PARENT, exist_ok=True)
            _write(base / PARENT / 'cgroup.subtree_control', enable)
            folder = _mkdir(base / PARENT / _fresh_entry([base], name))
        except OSError as exc:
            problems.append(f'{base}: {exc.strerror}')
            continue
        group = V2Group(f'{PARENT}/{folder.name}', folder, limits)
        _apply_or_remove(group)
        return group
    raise _Unusable(f'cgroup v2: cannot create a group with memory and pids ({"; ".join(problems)})')


def _make_v1(found: list[Hierarchy], name: str, limits: GroupLimits) -> V1Group:
    wanted = V1_REQUIRED | V1_OPTIONAL
    used = [h for h in found if h.version == 'v1' and h.controllers & wanted]
    missing = sorted(V1_REQUIRED - {c for h in used for c in h.controllers})
    if missing:
        raise _Unusable(f'cgroup v1 lacks {", ".join(missing)}' if used else 'no cgroup v1 memory, pids or freezer hierarchy')
    entry = _fresh_entry([base for h in used for base in (h.own, h.mount)], name)
    folders: dict[str, Path] = {}
    made: list[Path] = []
    for hierarchy in used:
        problems = []
        for base in dict.fromkeys((hierarchy.own, hierarchy.mount)):
            try:
                _mkdir(base / PARENT, exist_ok=True)
                made.append(_mkdir(base / PARENT / entry))
            except OSError as exc:
                problems.append(f'{base}: {exc.strerror}')
                continue
            folders.update(dict.fromkeys(hierarchy.controllers & wanted, made[-1]))
            break
        else:
            if hierarchy.controllers & V1_REQUIRED:
                for folder in made:
                    os.rmdir(folder)
                raise _Unusable(f'cgroup v1 {", ".join(sorted(hierarchy.controllers))}: cannot create a group '
                                f'({"; ".join(problems)})')
    group = V1Group(f'{PARENT}/{entry}', folders, limits)
    _apply_or_remove(group)
    return group


def _apply_or_remove(group: V1Group | V2Group) -> None:
    try:
        group._apply()
    except OSError as exc:
        group.remove()
        raise _Unusable(f'cgroup {group.version}: cannot set the limits ({exc.filename}: {exc.strerror})') from None


def _fresh_entry(bases: Iterable[Path], name: str) -> str:
    """``<our pid>-<name>``, with a ``.N`` suffix if that is taken in any of ``bases``."""
    bases = list(bases)
    stem, number = f'{os.getpid()}-{name}', 1
    entry = stem
    while any((base / PARENT / entry).exists() for base in bases):
        number += 1
        entry = f'{stem}.{number}'
    return entry


def _mkdir(path: Path, exist_ok: bool = False) -> Path:
    """Create a group folder (the kernel fills it with its files); tests replace this."""
    path.mkdir(exist_ok=exist_ok)
    return path


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a process that still runs (a zombie does not)."""
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return False
    return stat.rpartition(')')[2].split()[0] not in ('Z', 'X')


def _wait_until(done: Callable[[], bool], deadline: float) -> bool:
    pause = 0.002
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
    return True


def _write(path: Path, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def _read(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _int(path: Path | None) -> int | None:
    text = _read(path)
    return None if text is None else int(text.split()[0])


def _keyed(path: Path | None) -> dict[str, int]:
    """``key value`` lines (memory.events, pids.events, cpu.stat, memory.oom_control)."""
    pairs = (line.split() for line in (_read(path) or '').splitlines())
    return {pair[0]: int(pair[1]) for pair in pairs if len(pair) == 2 and pair[1].lstrip('-').isdigit()}


def _unescape(text: str) -> str:
    return re.sub(r'\\([0-7]{3})', lambda m: chr(int(m[1], 8)), text)
