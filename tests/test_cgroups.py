"""Control groups: limits hold, accounting is plausible, and nothing a child starts outlives its group.

The tests marked by the ``group`` fixture use real control groups (root on Linux; skipped with the
reason elsewhere). The v2 code that cannot run on a v1 host is tested against a fake cgroup2
folder tree and recorded counter files.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from frugalbench import cgroups
from frugalbench.cgroups import (ControlGroup, GroupLimits, V1Group, V2Group, create_group, hierarchies,
                                 sweep_stale_groups)

MB = 1 << 20


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f'/proc/{pid}/stat').read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(')')[2].split()[0] not in ('Z', 'X')


def _wait_for(done: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def group_factory() -> Iterator[Callable[[str, GroupLimits], ControlGroup]]:
    """Real control groups, removed at the end (skips where they cannot be created)."""
    made: list[ControlGroup] = []

    def make(name: str, limits: GroupLimits) -> ControlGroup:
        group, why = create_group(name, limits)
        if group is None:
            pytest.skip(f'control groups not usable here: {why}')
        made.append(group)
        return group

    yield make
    for group in made:
        group.remove()


def _start(group: ControlGroup, *command: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(list(command), preexec_fn=group.join_self, **kwargs)


# --- real control groups ---------------------------------------------------------------------------


def test_kill_all_kills_background_and_double_forked_daemons(group_factory, tmp_path: Path) -> None:
    group = group_factory('daemons', GroupLimits(memory_bytes=256 * MB, pids_max=64))
    pidfile = tmp_path / 'pids'
    shell = _start(group, 'sh', '-c', f'sleep 1000 & echo $! >> {pidfile}; '
                                      f'setsid sh -c "sleep 1000 & echo \\$! >> {pidfile}"; exit 0')
    assert shell.wait(timeout=10) == 0
    assert _wait_for(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 2)
    daemons = [int(pid) for pid in pidfile.read_text().split()]
    assert all(_running(pid) for pid in daemons)
    assert set(daemons) <= set(group.pids())

    started = time.monotonic()
    assert group.kill_all(timeout_s=5) >= 2
    assert time.monotonic() - started < 5
    assert group.pids() == []
    assert _wait_for(lambda: not any(_running(pid) for pid in daemons), timeout_s=5)


def test_fork_bomb_is_capped_by_pids_max_and_nothing_survives_remove(group_factory) -> None:
    group = group_factory('forkbomb', GroupLimits(memory_bytes=512 * MB, pids_max=20))
    bomb = _start(group, sys.executable, '-c', '''
import os, sys, time
born = failed = 0
for _ in range(200):
    try:
        pid = os.fork()
    except OSError:
        failed += 1
        continue
    if pid == 0:
        time.sleep(1000)
        os._exit(0)
    born += 1
print(born, failed, flush=True)
time.sleep(1000)
''', stdout=subprocess.PIPE)
    assert bomb.stdout is not None
    born, failed = map(int, bomb.stdout.readline().split())
    assert born <= 19 and failed == 200 - born
    assert group.pids_limit_hit()
    members = group.pids()
    assert bomb.pid in members and len(members) <= 20

    group.remove()
    bomb.stdout.close()
    assert bomb.wait(timeout=5) == -signal.SIGKILL
    assert _wait_for(lambda: not any(_running(pid) for pid in members), timeout_s=5)
    assert group.pids() == []


def test_kill_all_wins_against_a_process_tree_that_keeps_forking(group_factory) -> None:
    group = group_factory('churn', GroupLimits(memory_bytes=512 * MB, pids_max=30))
    churn = _start(group, sys.executable, '-c', '''
import os, time
while True:
    try:
        if os.fork() == 0:
            continue          # every child forks too
    except OSError:
        time.sleep(0.001)
''')
    assert _wait_for(lambda: len(group.pids()) >= 10)
    time.sleep(0.2)
    assert group.kill_all(timeout_s=5) >= 10
    assert group.pids() == []
    assert churn.wait(timeout=5) == -signal.SIGKILL


def test_writing_past_the_limit_into_a_private_tmpfs_is_oom_killed(group_factory, tmp_path: Path) -> None:
    group = group_factory('tmpfs', GroupLimits(memory_bytes=100 * MB, pids_max=16))
    mountpoint = tmp_path / 'mnt'
    mountpoint.mkdir()
    filler = _start(group, sys.executable, '-c', '''
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
MS_REC, MS_PRIVATE, CLONE_NEWNS = 1 << 14, 1 << 18, 0x20000
if (libc.unshare(CLONE_NEWNS) or libc.mount(None, b'/', None, MS_REC | MS_PRIVATE, None)
        or libc.mount(b'tmpfs', sys.argv[1].encode(), b'tmpfs', 0, b'size=1g')):
    sys.exit(f'cannot mount a private tmpfs: errno {ctypes.get_errno()}')
chunk = b'x' * (1 << 20)
with open(sys.argv[1] + '/fill', 'wb', buffering=0) as out:
    for _ in range(300):
        out.write(chunk)
print('wrote 300 MB', flush=True)
''', str(mountpoint), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = filler.communicate(timeout=60)
    assert filler.returncode == -signal.SIGKILL, (filler.returncode, out, err)
    assert group.memory_limit_hit()
    peak = group.peak_memory_bytes()
    assert peak is not None and 90 * MB <= peak <= 101 * MB  # the tmpfs pages were charged, up to the limit
    assert not (mountpoint / 'fill').exists()                 # the tmpfs was private to the child


def test_peak_memory_and_cpu_time_are_plausible(group_factory) -> None:
    group = group_factory('meters', GroupLimits(memory_bytes=512 * MB, pids_max=16))
    worker = _start(group, sys.executable, '-c', '''
import time
block = b'x' * (50 << 20)
while time.process_time() < 0.5:
    pass
''')
    assert worker.wait(timeout=60) == 0
    peak, cpu = group.peak_memory_bytes(), group.cpu_seconds()
    assert peak is not None and 50 * MB <= peak <= 200 * MB
    assert cpu is not None and 0.45 <= cpu <= 10
    assert not group.memory_limit_hit() and not group.pids_limit_hit()


def test_enforced_says_what_the_group_limits(group_factory) -> None:
    group = group_factory('enforced', GroupLimits(memory_bytes=600 * MB, pids_max=256))
    enforced = group.enforced()
    assert enforced['memory'].startswith('600 MB incl. tmpfs/shm')
    assert enforced['pids'] == 'max 256'
    assert enforced['cgroup'].startswith(group.version)
    if group.version == 'v1':
        assert enforced['cgroup'].startswith('v1: memory, pids, freezer')
        assert enforced['kill'] == 'freezer, then SIGKILL every process'


def test_remove_is_idempotent_and_removes_every_folder(group_factory) -> None:
    group = group_factory('remove', GroupLimits(memory_bytes=64 * MB, pids_max=8))
    sleeper = _start(group, 'sleep', '1000')
    folders = [Path(os.fsdecode(path)).parent for path in group.child_join_paths()]
    assert all(folder.is_dir() for folder in folders)
    with group:
        pass
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
    assert not any(folder.exists() for folder in folders)
    group.remove()
    assert group.pids() == [] and group.kill_all() == 0


def test_sweep_removes_groups_whose_owner_died_and_keeps_live_ones(group_factory) -> None:
    live = group_factory('live', GroupLimits(pids_max=8))
    orphan = subprocess.run([sys.executable, '-c', '''
import os, subprocess
from frugalbench.cgroups import GroupLimits, create_group
group, why = create_group('orphaned', GroupLimits(pids_max=8))
sleeper = subprocess.Popen(['sleep', '1000'], preexec_fn=group.join_self,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(group.name, sleeper.pid, *[os.fsdecode(path) for path in group.child_join_paths()], flush=True)
os._exit(0)   # dies without removing its group
'''], capture_output=True, text=True, timeout=60, check=True)
    name, sleeper, *joins = orphan.stdout.split()
    folders = [Path(path).parent for path in joins]
    assert _running(int(sleeper)) and all(folder.is_dir() for folder in folders)

    removed = sweep_stale_groups()
    assert name in removed and live.name not in removed
    assert _wait_for(lambda: not _running(int(sleeper)), timeout_s=5)
    assert not any(folder.exists() for folder in folders)
    assert all(Path(os.fsdecode(path)).exists() for path in live.child_join_paths())


# --- discovery, and v2 on a fake cgroup2 tree ---------------------------------------------------------

HYBRID_MOUNTINFO = '''\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 /docker/abc /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
'''
HYBRID_SELF = '''\
9:name=systemd:/
8:pids:/docker/abc/inner
6:freezer:/
4:memory:/process_api/9e56
2:cpu,cpuacct:/
0::/
'''


def test_hierarchies_reads_mounts_and_our_own_groups() -> None:
    found = {h.mount.name: h for h in hierarchies(HYBRID_MOUNTINFO, HYBRID_SELF)}
    assert set(found) == {'cpu,cpuacct', 'memory', 'freezer', 'pids', 'systemd', 'unified'}
    assert found['memory'].own == Path('/sys/fs/cgroup/memory/process_api/9e56')
    assert found['pids'].own == Path('/sys/fs/cgroup/pids/inner')   # the mount shows /docker/abc
    assert found['cpu,cpuacct'].controllers == {'cpu', 'cpuacct'}
    assert found['systemd'].controllers == frozenset()
    assert found['unified'].version == 'v2' and found['unified'].own == Path('/sys/fs/cgroup/unified')


def _fake_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make group folders the way cgroupfs does: with their control files."""
    def mkdir(path: Path, exist_ok: bool = False) -> Path:
        path.mkdir(exist_ok=exist_ok)
        for name in ('cgroup.procs', 'cgroup.subtree_control', 'cgroup.kill', 'memory.max', 'memory.swap.max',
                     'memory.oom.group', 'pids.max'):
            (path / name).touch()
        return path
    monkeypatch.setattr(cgroups, '_mkdir', mkdir)


def _fake_v2_mount(root: Path, controllers: str) -> str:
    root.mkdir()
    (root / 'cgroup.controllers').write_text(controllers + '\n')
    (root / 'cgroup.subtree_control').touch()
    return f'30 23 0:26 / {root} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n'


def test_v2_group_is_made_below_the_root_with_its_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_kernel(monkeypatch)
    mount = tmp_path / 'cgroup'
    mountinfo = _fake_v2_mount(mount, 'cpuset cpu io memory hugetlb pids')
    found = hierarchies(mountinfo, '0::/user.slice/user-0.slice/session-1.scope\n')
    group, why = cgroups._create(found, 'run', GroupLimits(memory_bytes=600 * MB, pids_max=256))

    assert isinstance(group, V2Group) and why == 'cgroup v2'
    assert group.name == f'frugalbench/{os.getpid()}-run'
    assert group.folder == mount / 'frugalbench' / f'{os.getpid()}-run'
    assert (mount / 'cgroup.subtree_control').read_text() == '+memory +pids'
    assert (mount / 'frugalbench' / 'cgroup.subtree_control').read_text() == '+memory +pids'
    assert (group.folder / 'memory.max').read_text() == str(600 * MB)
    assert (group.folder / 'pids.max').read_text() == '256'
    assert (group.folder / 'memory.swap.max').read_text() == '0'
    assert (group.folder / 'memory.oom.group').read_text() == '1'
    assert group.child_join_paths() == (os.fsencode(group.folder / 'cgroup.procs'),)
    assert group.enforced() == {'cgroup': 'v2: memory, pids, cpu.stat, cgroup.kill',
                                'memory': '600 MB incl. tmpfs/shm (OOM kill)', 'pids': 'max 256',
                                'kill': 'cgroup.kill'}

    again, _ = cgroups._create(found, 'run', GroupLimits())
    assert again is not None and again.name == f'frugalbench/{os.getpid()}-run.2'


def test_v2_counters_are_read_from_their_files(tmp_path: Path) -> None:
    folder = tmp_path / 'group'
    folder.mkdir()
    (folder / 'cgroup.procs').write_text('')
    (folder / 'memory.peak').write_text('52428800\n')
    (folder / 'cpu.stat').write_text('usage_usec 612345\nuser_usec 600000\nsystem_usec 12345\n')
    (folder / 'memory.events').write_text('low 0\nhigh 0\nmax 12\noom 0\noom_kill 0\noom_group_kill 0\n')
    (folder / 'pids.events').write_text('max 3\n')
    group = V2Group('frugalbench/1-x', folder, GroupLimits())
    assert group.peak_memory_bytes() == 52428800
    assert group.cpu_seconds() == pytest.approx(0.612345)
    assert not group.memory_limit_hit()             # reclaim at memory.max ('max') is not a failure
    assert group.pids_limit_hit()
    (folder / 'memory.events').write_text('low 0\nhigh 0\nmax 40\noom 1\noom_kill 1\noom_group_kill 1\n')
    assert group.memory_limit_hit()


def test_v2_kill_all_writes_cgroup_kill_and_gives_up_at_the_timeout(tmp_path: Path) -> None:
    folder = tmp_path / 'group'
    folder.mkdir()
    (folder / 'cgroup.kill').touch()
    (folder / 'cgroup.procs').write_text('')
    group = V2Group('frugalbench/1-x', folder, GroupLimits())
    assert group.kill_all() == 0 and (folder / 'cgroup.kill').read_text() == ''   # empty: nothing to do
    (folder / 'cgroup.procs').write_text('4242\n')   # a fake kernel that never empties the group
    started = time.monotonic()
    assert group.kill_all(timeout_s=0.3) == 1
    assert 0.3 <= time.monotonic() - started < 2
    assert (folder / 'cgroup.kill').read_text() == '1'


def test_v1_oom_is_read_from_oom_control_and_failcnt_only_on_old_kernels(tmp_path: Path) -> None:
    group = V1Group('frugalbench/1-x', {'memory': tmp_path}, GroupLimits())
    (tmp_path / 'memory.failcnt').write_text('7\n')
    (tmp_path / 'memory.oom_control').write_text('oom_kill_disable 0\nunder_oom 0\noom_kill 0\n')
    assert not group.memory_limit_hit()
    (tmp_path / 'memory.oom_control').write_text('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n')
    assert group.memory_limit_hit()
    (tmp_path / 'memory.oom_control').write_text('oom_kill_disable 0\nunder_oom 0\n')   # before Linux 4.13
    assert group.memory_limit_hit()


def test_no_group_and_a_reason_when_no_hierarchy_has_memory_and_pids(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_kernel(monkeypatch)
    mountinfo = _fake_v2_mount(tmp_path / 'unified', 'hugetlb')
    group, why = cgroups._create(hierarchies(mountinfo, '0::/\n'), 'run', GroupLimits())
    assert group is None
    assert why == f'cgroup v2 at {tmp_path / "unified"} lacks memory, pids; no cgroup v1 memory, pids or freezer hierarchy'


def test_create_group_refuses_bad_names_and_says_why_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError):
        create_group('../escape', GroupLimits())
    monkeypatch.setattr(os, 'geteuid', lambda: 1000)
    group, why = create_group('run', GroupLimits())
    assert group is None and why.startswith('not ')
