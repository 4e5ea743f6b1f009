"""Hostile or broken submissions: each yields a failed run with a specific reason, and nothing else
in the database changes. (The pickled-code checkpoint, wrong classes and '../..' paths are in
test_evaluation.py.)"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import torch

from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.isolation import Limits, network_can_be_cut
from frugalbench.settings import default_db_path
from frugalbench.store import connect, list_run_documents


def _fail(folder: Path, **options: object) -> str:
    document = evaluate_submission(folder, EvaluationOptions(measure=False, **options)).document
    assert document['status'] == 'failed'
    return document['failure_reason']


def test_config_that_sleeps_forever_is_stopped_at_the_timeout(tiny_benchmark, make_submission) -> None:
    folder = make_submission()
    (folder / 'config.py').write_text("_nap = __import__('time').sleep(3600)\n" + (folder / 'config.py').read_text())
    started = time.monotonic()
    reason = _fail(folder, limits=Limits(timeout_s=3))
    assert 'timed out after 3 s' in reason
    assert time.monotonic() - started < 60


def test_config_that_opens_a_socket_when_read_fails(tiny_benchmark, make_submission) -> None:
    if not network_can_be_cut()[0]:
        import pytest
        pytest.skip('the network cannot be cut on this platform')
    folder = make_submission()
    (folder / 'config.py').write_text("_probe = __import__('socket').create_connection(('1.1.1.1', 80), timeout=5)\n"
                                      + (folder / 'config.py').read_text())
    reason = _fail(folder)
    assert 'the config could not be read' in reason and 'unreachable' in reason.lower()


def test_model_returning_nan_fails(tiny_benchmark, make_submission) -> None:
    folder = make_submission()
    state = torch.load(folder / 'model.pth', weights_only=True)
    state['decode_head.conv_seg.weight'] = torch.full_like(state['decode_head.conv_seg.weight'], float('nan'))
    torch.save(state, folder / 'model.pth')
    assert 'NaN/Inf values' in _fail(folder)


def test_killing_an_evaluation_leaves_no_partial_run(tiny_benchmark, make_submission) -> None:
    good = evaluate_submission(make_submission('good'), EvaluationOptions(measure=False)).document
    victim = make_submission('victim')
    process = subprocess.Popen([sys.executable, '-m', 'frugalbench', 'evaluate', str(victim), '--format', 'json'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(8)  # in the middle: config read, model child running or measuring
    process.send_signal(signal.SIGKILL)
    process.wait()
    with connect(default_db_path()) as connection:
        documents = list_run_documents(connection)
        counts = [connection.execute(f'SELECT count(*) FROM {t}').fetchone()[0]
                  for t in ('runs', 'image_areas', 'class_scores')]
    assert [d['run_id'] for d in documents] == [good['run_id']]
    assert counts == [1, 3, 3]
    duckdb.connect(str(default_db_path()), read_only=True).close()
    # a re-run completes what was interrupted
    assert evaluate_submission(victim, EvaluationOptions(measure=False)).ok


# --- confinement: what the model process can see and write (root on Linux) -------------------

PROBE = '''
import os, sys
from pathlib import Path
leaks = []
for path in {readable!r}:
    try:
        Path(path).read_bytes()
        leaks.append('read ' + path)
    except OSError:
        pass
for folder in {listable!r}:
    try:
        if os.listdir(folder):
            leaks.append('listed ' + folder)
    except OSError:
        pass
for target in {writable!r}:
    try:
        Path(target).write_text('escaped')
    except OSError:
        pass
if leaks:
    raise RuntimeError('LEAK: ' + '; '.join(leaks))
'''


def _with_custom_module(folder: Path, name: str, code: str) -> Path:
    (folder / f'{name}.py').write_text(code)
    (folder / 'config.py').write_text((folder / 'config.py').read_text()
                                      + f"custom_imports = dict(imports=['{name}'], allow_failed_imports=False)\n")
    return folder


def _needs_root() -> None:
    import os

    import pytest
    if sys.platform != 'linux' or os.geteuid() != 0:
        pytest.skip('confinement (mount namespace, privilege drop) needs root on Linux')


def test_model_process_cannot_read_annotations_or_write_outside_its_folder(
        tiny_benchmark, make_submission, camvid_root: Path, isolated: Path) -> None:
    _needs_root()
    from frugalbench.benchmarks import load_benchmark
    from frugalbench.settings import PROJECT_ROOT
    tiny = load_benchmark(tiny_benchmark).samples('test')
    camvid = load_benchmark('camvid').samples('test')[:2]
    annotations = [str(s.annotation) for s in tiny + camvid]
    escapes = [PROJECT_ROOT / f'escaped-{isolated.name}.txt', isolated / 'escaped.txt',
               default_db_path().parent / 'escaped.txt', camvid_root / 'escaped.txt']
    folder = _with_custom_module(make_submission(), 'probe', PROBE.format(
        readable=annotations + [str(default_db_path())],
        listable=[str(Path(a).parent) for a in annotations] + [str(isolated / 'work')],
        writable=[str(p) for p in escapes]))
    # the probe really finds the files when it is not confined (as root, it can read them all)
    assert all(Path(a).read_bytes() for a in annotations)
    document = evaluate_submission(folder, EvaluationOptions(measure=False)).document
    assert document['status'] == 'ok', document['failure_reason']
    assert document['custom_code'] is True
    assert 'unique to this child' in document['limits']['user']
    assert str(camvid_root.resolve()) in document['limits']['filesystem']
    assert [p for p in escapes if p.exists()] == []


def test_config_that_writes_into_the_results_folder_when_read_fails(tiny_benchmark, make_submission) -> None:
    _needs_root()
    target = default_db_path().parent / 'planted.txt'
    folder = make_submission()
    (folder / 'config.py').write_text(f"_planted = open({str(target)!r}, 'w')\n" + (folder / 'config.py').read_text())
    reason = _fail(folder)
    # hidden folders are empty and read-only; a folder under /tmp is not even there (private /tmp)
    assert 'the config could not be read' in reason and 'planted.txt' in reason
    assert 'Read-only file system' in reason or 'No such file or directory' in reason
    assert not target.exists()


def test_model_process_allocating_past_the_memory_limit_fails(tiny_benchmark, make_submission,
                                                               isolated: Path) -> None:
    import yaml
    hog = '''
import sys, time
if getattr(sys.modules['__main__'].__spec__, 'name', '') == 'frugalbench.model.worker':
    blocks = []
    while True:
        blocks.append(bytearray(64 * 1024 * 1024))
        time.sleep(0.01)
'''
    # the limit comes from the benchmark's defaults (no --memory-limit given)
    definition_file = isolated / 'data' / 'benchmarks' / 'tiny.yaml'
    definition = yaml.safe_load(definition_file.read_text())
    definition['limits'] = {'evaluation_memory_mb': 1200}
    definition_file.write_text(yaml.safe_dump(definition))
    folder = _with_custom_module(make_submission(), 'hog', hog)
    reason = _fail(folder)
    assert 'memory limit exceeded (1200 MB' in reason
    with connect(default_db_path()) as connection:
        [stored] = list_run_documents(connection)
    assert stored['status'] == 'failed' and stored['failure_reason'] == reason


def test_answers_forged_by_the_models_own_code_are_checked_before_scoring(tiny_benchmark, make_submission) -> None:
    """Code in the model process can replace what it answers; the parent's one reader checks every
    answer (size, shape, values) and fails the run rather than scoring anything malformed."""
    forgeries = {
        'wrong size': "lambda *a: (2, 2, bytes(4), None)",   # label_map: height, width, labels, confidence
        'out of range': "lambda *a: (64, 64, bytes([200]) * 4096, None)",
        'short payload': "lambda *a: (64, 64, bytes(10), None)",
    }
    expected = {'wrong size': 'the prediction is 2 x 2 pixels', 'out of range': 'class index 200',
                'short payload': 'holds 10 bytes for 4096 pixels'}
    for name, forgery in forgeries.items():
        cheat = f"""
import sys
if getattr(sys.modules['__main__'].__spec__, 'name', '') == 'frugalbench.model.worker':
    sys.modules['__main__'].label_map = {forgery}   # the running worker module
"""
        folder = _with_custom_module(make_submission(name.replace(' ', '_')), 'cheat', cheat)
        assert expected[name] in _fail(folder), name
