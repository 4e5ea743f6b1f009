"""The child-process runner: limits are enforced and reported, frames flow and are checked, failures
explain, and nothing a child starts outlives its run."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from frugalbench.errors import ChildProcessError_
from frugalbench.isolation import Confinement, Limits, network_can_be_cut, run_child

CHILD = 'frugalbench_test_child'
CHILD_CODE = '''
import json, os, socket, subprocess, sys, time
from pathlib import Path
from frugalbench.model import channel
from frugalbench.model.channel import emit, serve

class Known(Exception):
    pass

def daemon(*argv):
    """A grandchild in a session of its own that outlives this process unless the harness kills it."""
    return subprocess.Popen(list(argv), start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=()).pid

def handle(request):
    mode = request['mode']
    if mode == 'events':
        emit('progress', done=1, total=2)
        print('not an event')
        emit('done', value=42)
    elif mode == 'sleep':
        time.sleep(600)
    elif mode == 'allocate':
        blocks = []
        while True:
            blocks.append(bytearray(50 * 1024 * 1024))
            time.sleep(0.01)
    elif mode == 'network':
        try:
            socket.create_connection(('1.1.1.1', 53), timeout=2)
            emit('done', network='reachable')
        except OSError as exc:
            emit('done', network=f'blocked: {exc}')
    elif mode == 'confined':
        protected = Path(request['protected'])
        Path('mine.txt').write_text('ok')   # its own folder is writable (a private tmpfs)
        wrote = []
        for target in (request['outside'], 'submission/planted.txt'):
            try:
                Path(target).write_text('escaped')
                wrote.append(target)
            except OSError:
                pass
        listing = os.listdir(protected) if protected.exists() else None
        emit('done', uid=os.getuid(), cwd=os.getcwd(), listing=listing, wrote=wrote,
             submission=sorted(os.listdir('submission')))
    elif mode == 'daemon':
        emit('started', pid=daemon('sleep', '1000'))
        emit('done')
    elif mode == 'hold_pipe':
        pid = os.fork()
        if pid == 0:            # keeps the channel (and stdin) open, in a session of its own
            os.setsid()
            time.sleep(1000)
            os._exit(0)
        emit('started', pid=pid)
        emit('done')
    elif mode == 'forks':
        pids = []
        for _ in range(200):
            try:
                pids.append(daemon('sleep', '1000'))
            except OSError:
                break
        emit('done', started=len(pids))
    elif mode == 'fill_tmp':
        with open('/tmp/filler', 'wb') as out:
            for _ in range(int(request['mb'])):
                out.write(b'x' * (1 << 20))
        emit('done')
    elif mode == 'flood':
        for index in range(300_000):
            emit('progress', done=index)
    elif mode == 'garbage':
        os.write(channel._out, b'\\xff' * 64)
        time.sleep(5)
    elif mode == 'after_done':
        emit('done')
        emit('done', forged=True)
    elif mode == 'chatty':
        for _ in range(50):
            sys.stderr.write('x' * (1 << 20))
        emit('done')
    elif mode == 'error':
        raise Known('the model is broken')
    elif mode == 'crash':
        sys.stderr.write('RuntimeError: boom\\n')
        sys.stderr.flush()
        os._exit(3)

sys.exit(serve(sys.argv[1:], handle, (Known,), 'the test child'))
'''


@pytest.fixture
def child_code(tmp_path: Path) -> Path:
    """A folder holding the child module (shown to a confined child as submission/)."""
    code = tmp_path / 'code'
    code.mkdir()
    (code / f'{CHILD}.py').write_text(CHILD_CODE)
    code.chmod(0o755)
    return code


def _run(mode: str, code: Path, tmp_path: Path, *, confine: bool = False, on_event=None, **limits: object):
    request = {'mode': mode, **limits.pop('request', {})}  # type: ignore[dict-item]
    return run_child(CHILD, request, limits=Limits(**limits), log_path=tmp_path / 'child.log',
                     on_event=on_event, doing='the test child',
                     extra_env={'PYTHONPATH': 'submission' if confine else str(code)},
                     confine=Confinement(code, protected=(tmp_path / 'protected',)) if confine else None)


def _alive(pid: int) -> bool:
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'


def _needs_root() -> None:
    if sys.platform != 'linux' or os.geteuid() != 0:
        pytest.skip('confinement and control groups need root on Linux')


def test_events_are_collected_and_prints_do_not_reach_the_channel(child_code: Path, tmp_path: Path) -> None:
    seen: list[dict] = []
    result = _run('events', child_code, tmp_path, on_event=seen.append)
    assert [e['event'] for e in seen] == ['progress', 'done']
    assert result.last('done')['value'] == 42
    assert result.returncode == 0 and result.peak_rss_mb > 0
    assert 'not an event' in (tmp_path / 'child.log').read_text()


def test_timeout_stops_the_child_and_says_how_to_raise_it(child_code: Path, tmp_path: Path) -> None:
    with pytest.raises(ChildProcessError_, match=r'timed out after 1 s; raise it with --timeout'):
        _run('sleep', child_code, tmp_path, timeout_s=1.0)


def test_memory_limit_stops_the_child(child_code: Path, tmp_path: Path) -> None:
    with pytest.raises(ChildProcessError_, match=r'memory limit exceeded .*--memory-limit'):
        _run('allocate', child_code, tmp_path, memory_mb=300, timeout_s=60)


def test_network_is_cut_where_the_platform_allows(child_code: Path, tmp_path: Path) -> None:
    possible, how = network_can_be_cut()
    if not possible:
        pytest.skip(f'network cannot be cut here: {how}')
    result = _run('network', child_code, tmp_path)
    assert result.last('done')['network'].startswith('blocked')
    assert result.enforced['network'].startswith('new network namespace')


def test_reported_error_becomes_the_reason(child_code: Path, tmp_path: Path) -> None:
    with pytest.raises(ChildProcessError_, match='the model is broken'):
        _run('error', child_code, tmp_path)


def test_crash_points_to_the_log_with_its_last_line(child_code: Path, tmp_path: Path) -> None:
    with pytest.raises(ChildProcessError_, match=r'exited with status 3; see its log .*RuntimeError: boom'):
        _run('crash', child_code, tmp_path)


def test_a_child_writing_to_stderr_cannot_fill_the_disk(child_code: Path, tmp_path: Path) -> None:
    from frugalbench.isolation import MAX_LOG_BYTES
    _run('chatty', child_code, tmp_path)
    log = (tmp_path / 'child.log').read_bytes()
    assert MAX_LOG_BYTES <= len(log) < MAX_LOG_BYTES + 1024 and log.endswith(b'MB]\n')


def test_a_flood_of_messages_is_cut(child_code: Path, tmp_path: Path) -> None:
    with pytest.raises(ChildProcessError_, match='flooded the channel'):
        _run('flood', child_code, tmp_path)


def test_bytes_that_are_not_frames_fail_the_run(child_code: Path, tmp_path: Path) -> None:
    with pytest.raises(ChildProcessError_, match='broke the channel protocol'):
        _run('garbage', child_code, tmp_path)


def test_nothing_is_accepted_after_done(child_code: Path, tmp_path: Path) -> None:
    with pytest.raises(ChildProcessError_, match="sent 'done' after done"):
        _run('after_done', child_code, tmp_path)


def test_a_background_daemon_does_not_outlive_the_run(child_code: Path, tmp_path: Path) -> None:
    _needs_root()
    result = _run('daemon', child_code, tmp_path)
    pid = result.last('started')['pid']
    assert not _alive(pid)
    assert result.enforced['processes_killed_at_end'] >= 1
    assert 'every process of the group is killed' in result.enforced['processes']


def test_a_daemon_holding_the_channel_open_cannot_hold_the_harness(child_code: Path, tmp_path: Path) -> None:
    _needs_root()
    started = time.monotonic()
    result = _run('hold_pipe', child_code, tmp_path, timeout_s=30)
    assert time.monotonic() - started < 20
    assert not _alive(result.last('started')['pid'])


def test_forking_past_the_process_limit_fails_and_leaves_nothing(child_code: Path, tmp_path: Path) -> None:
    _needs_root()
    seen: list[dict] = []
    with pytest.raises(ChildProcessError_, match=r'process limit reached \(40 processes'):
        _run('forks', child_code, tmp_path, pids=40, on_event=seen.append)
    leftovers = [p for p in os.listdir('/proc') if p.isdigit() and _alive(int(p))
                 and Path(f'/proc/{p}/cmdline').read_bytes() == b'sleep\x001000\x00']
    assert leftovers == []


def test_writing_to_the_private_tmp_counts_against_the_memory_limit(child_code: Path, tmp_path: Path) -> None:
    _needs_root()
    with pytest.raises(ChildProcessError_, match=r'memory limit exceeded \(300 MB, counting what it wrote'):
        _run('fill_tmp', child_code, tmp_path, confine=True, memory_mb=300, request={'mb': 1000})


def test_confined_child_runs_as_its_own_user_and_sees_no_protected_files(child_code: Path, tmp_path: Path) -> None:
    from frugalbench.confinement import CHILD_UID_BASE, CONFINED_VIEW
    from frugalbench.settings import PROJECT_ROOT
    _needs_root()
    protected = PROJECT_ROOT / f'.protected-{tmp_path.name}'   # outside /tmp, unless the checkout is there
    protected.mkdir()
    try:
        (protected / 'secret.png').write_bytes(b'ground truth')
        outside = PROJECT_ROOT / f'escaped-{tmp_path.name}.txt'
        result = run_child(CHILD, {'mode': 'confined', 'protected': str(protected), 'outside': str(outside)},
                           limits=Limits(), log_path=tmp_path / 'c.log', extra_env={'PYTHONPATH': 'submission'},
                           confine=Confinement(child_code, protected=(protected,)))
        done = result.last('done')
        assert done['uid'] >= CHILD_UID_BASE and done['cwd'] == str(CONFINED_VIEW)
        assert done['listing'] in ([], None) and done['wrote'] == [] and done['submission'] == [f'{CHILD}.py']
        assert not outside.exists() and not (child_code / 'planted.txt').exists()
        assert 'unique to this child' in result.enforced['user']
        assert os.listdir(protected)  # hidden from the child only
    finally:
        for path in protected.iterdir():
            path.unlink()
        protected.rmdir()


def test_two_children_get_different_users(child_code: Path, tmp_path: Path) -> None:
    _needs_root()
    uids = {_run('confined', child_code, tmp_path, confine=True,
                 request={'protected': str(tmp_path), 'outside': '/nonexistent/x'}).last('done')['uid']
            for _ in range(2)}
    assert len(uids) == 2


def test_a_protected_folder_inside_a_shown_python_tree_is_still_hidden() -> None:
    from frugalbench.confinement import already_hidden
    covered = {Path('/root'): [Path('/root/project')], Path('/srv/data'): []}
    assert already_hidden(Path('/root/.cache/frugalbench/work'), covered)   # the mask hides it
    assert not already_hidden(Path('/root/project/data'), covered)          # shown: hide it too
    assert already_hidden(Path('/srv/data/camvid/testannot'), covered)
