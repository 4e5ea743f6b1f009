"""The child-process runner: limits are enforced and reported, events flow, failures explain."""
from __future__ import annotations

from pathlib import Path

import pytest

from frugalbench.errors import ChildProcessError_
from frugalbench.isolation import Limits, network_can_be_cut, run_child

CHILD = 'frugalbench_test_child'


@pytest.fixture
def child_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module the child runs, chosen by its first argument."""
    code = tmp_path / 'code'
    code.mkdir()
    (code / f'{CHILD}.py').write_text('''
import json, socket, sys, time
mode = sys.argv[1]
def emit(**event):
    print(json.dumps(event), flush=True)
if mode == 'events':
    emit(event='progress', done=1, total=2)
    print('not an event')
    emit(event='done', value=42)
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
        emit(event='done', network='reachable')
    except OSError as exc:
        emit(event='done', network=f'blocked: {exc}')
elif mode == 'confined':
    import os
    from pathlib import Path
    protected = Path(sys.argv[2])
    Path('mine.txt').write_text('ok')   # its own folder is its working directory, writable
    try:
        Path(sys.argv[3]).write_text('escaped')
        wrote = True
    except OSError:
        wrote = False
    emit(event='done', uid=os.getuid(), cwd=os.getcwd(), listing=os.listdir(protected), wrote_outside=wrote)
elif mode == 'error':
    emit(event='error', message='the model is broken')
elif mode == 'crash':
    raise RuntimeError('boom')
''')
    monkeypatch.setenv('PYTHONPATH', str(code))
    return code


def _run(mode: str, tmp_path: Path, **limits: object):
    return run_child(CHILD, [mode], limits=Limits(**limits), log_path=tmp_path / 'child.log',
                     extra_env={'PYTHONPATH': str(tmp_path / 'code')})


def test_events_are_collected_and_noise_ignored(child_module: Path, tmp_path: Path) -> None:
    seen = []
    result = run_child(CHILD, ['events'], limits=Limits(), log_path=tmp_path / 'c.log', on_event=seen.append,
                       extra_env={'PYTHONPATH': str(child_module)})
    assert [e['event'] for e in seen] == ['progress', 'done']
    assert result.last('done')['value'] == 42
    assert result.returncode == 0 and result.peak_rss_mb > 0


def test_timeout_stops_the_child_and_says_how_to_raise_it(child_module: Path, tmp_path: Path) -> None:
    with pytest.raises(ChildProcessError_, match=r'timed out after 1 s; raise it with --timeout'):
        _run('sleep', tmp_path, timeout_s=1.0)


def test_memory_limit_stops_the_child(child_module: Path, tmp_path: Path) -> None:
    with pytest.raises(ChildProcessError_, match=r'memory limit exceeded .* --memory-limit'):
        _run('allocate', tmp_path, memory_mb=300, timeout_s=60)


def test_network_is_cut_where_the_platform_allows(child_module: Path, tmp_path: Path) -> None:
    possible, how = network_can_be_cut()
    if not possible:
        pytest.skip(f'network cannot be cut here: {how}')
    result = _run('network', tmp_path)
    assert result.last('done')['network'].startswith('blocked')
    assert result.enforced['network'].startswith('new network namespace')


def test_reported_error_becomes_the_reason(child_module: Path, tmp_path: Path) -> None:
    with pytest.raises(ChildProcessError_, match='the model is broken'):
        _run('error', tmp_path)


def test_crash_points_to_the_log_with_its_last_line(child_module: Path, tmp_path: Path) -> None:
    with pytest.raises(ChildProcessError_, match=r'exited with status 1; see its log .*RuntimeError: boom'):
        _run('crash', tmp_path)


def test_confined_child_runs_as_nobody_in_its_folder_and_sees_no_protected_files(
        child_module: Path, tmp_path: Path, camvid_root: Path) -> None:
    import os
    import sys

    from frugalbench.isolation import CONFINED_VIEW, NOBODY, Confinement
    from frugalbench.settings import PROJECT_ROOT
    if sys.platform != 'linux' or os.geteuid() != 0:
        pytest.skip('confinement needs root on Linux')
    folder = tmp_path / 'child'
    (folder / 'code').mkdir(parents=True)
    (folder / 'code' / f'{CHILD}.py').write_text((child_module / f'{CHILD}.py').read_text())
    outside = PROJECT_ROOT / f'escaped-{tmp_path.name}.txt'
    result = run_child(CHILD, ['confined', str(camvid_root), str(outside)], limits=Limits(),
                       log_path=tmp_path / 'c.log', extra_env={'PYTHONPATH': 'code'},
                       confine=Confinement(folder, protected=(camvid_root,)))
    done = result.last('done')
    assert done == dict(event='done', uid=NOBODY, cwd=str(CONFINED_VIEW), listing=[], wrote_outside=False)
    assert (folder / 'mine.txt').read_text() == 'ok' and not outside.exists()
    assert result.enforced['user'].startswith('nobody') and str(camvid_root.resolve()) in result.enforced['filesystem']
    assert os.listdir(camvid_root)  # hidden from the child only


def test_a_protected_folder_inside_a_shown_python_tree_is_still_hidden(tmp_path: Path) -> None:
    from frugalbench.isolation import _already_hidden
    closed, shown = Path('/root'), Path('/root/project')
    masks = {closed: [shown]}
    assert _already_hidden(Path('/root/.cache/frugalbench/work'), [], masks)   # the mask hides it
    assert not _already_hidden(Path('/root/project/data'), [], masks)          # shown: hide it too
    assert _already_hidden(Path('/srv/data/camvid/testannot'), [Path('/srv/data')], masks)
