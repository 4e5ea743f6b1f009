"""Containment (issue 13): hostile submissions built here, evaluated confined as root. Nothing a
submission starts outlives its run, escapes its limits, or touches another run."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.isolation import Limits

pytestmark = pytest.mark.skipif(sys.platform != 'linux' or os.geteuid() != 0,
                                reason='control groups and confinement need root on Linux')

IN_WORKER = "getattr(sys.modules['__main__'].__spec__, 'name', '') == 'frugalbench.model.worker'"


def _with_module(folder: Path, code: str, name: str = 'hostile') -> Path:
    (folder / f'{name}.py').write_text(code)
    (folder / 'config.py').write_text((folder / 'config.py').read_text()
                                      + f"custom_imports = dict(imports=['{name}'], allow_failed_imports=False)\n")
    return folder


def _evaluate(folder: Path, **options: object) -> dict:
    return evaluate_submission(folder, EvaluationOptions(measure=False, **options)).document


def _processes(marker: str) -> list[int]:
    """Live (not zombie) processes whose command line holds ``marker``."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f'/proc/{entry}/cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace')
            state = Path(f'/proc/{entry}/stat').read_text().rsplit(')', 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != 'Z':
            found.append(int(entry))
    return found


def test_a_daemon_started_by_the_config_does_not_outlive_the_run(tiny_benchmark, make_submission) -> None:
    folder = make_submission()
    marker = f'sleep 1001.{os.getpid()}'
    (folder / 'config.py').write_text(f"_daemon = __import__('os').system('{marker} >/dev/null 2>&1 &')\n"
                                      + (folder / 'config.py').read_text())
    document = _evaluate(folder)
    assert document['status'] == 'ok', document['failure_reason']
    assert _processes(marker) == []


def test_a_daemon_forked_from_forward_does_not_outlive_the_run(tiny_benchmark, make_submission) -> None:
    marker = f'sleep 1002.{os.getpid()}'
    code = f'''
import subprocess, sys
if {IN_WORKER}:
    from mmseg.models.segmentors import EncoderDecoder
    original = EncoderDecoder.test_step
    def test_step(self, data):
        subprocess.Popen(['sh', '-c', '{marker}'], start_new_session=True)
        return original(self, data)
    EncoderDecoder.test_step = test_step
'''
    document = _evaluate(_with_module(make_submission(), code))
    assert document['status'] == 'ok', document['failure_reason']
    assert document['limits']['processes_killed_at_end'] >= 1
    assert _processes(marker) == []


def test_a_process_left_by_one_run_cannot_touch_the_next(tiny_benchmark, make_submission) -> None:
    """The attacker's daemon watches for later model processes and overwrites what they read; the
    victim's mIoU must equal its clean run's."""
    victim = make_submission('victim')
    clean = _evaluate(victim)['accuracy']['miou']
    attack = '''
import glob, os, subprocess, sys, time
if os.fork() == 0:
    os.setsid()
    end = time.time() + 120
    while time.time() < end:
        for path in glob.glob('/proc/[0-9]*/root/tmp/frugalbench-child/submission/model.pth') + \\
                glob.glob('/tmp/frugalbench-child/*'):
            try:
                open(path, 'wb').write(b'garbage')
            except OSError:
                pass
        time.sleep(0.05)
    os._exit(0)
'''
    _evaluate(_with_module(make_submission('attacker'), attack))
    again = _evaluate(victim, force=True)
    assert again['status'] == 'ok', again['failure_reason']
    assert again['accuracy']['miou'] == clean


def test_a_daemon_holding_the_channel_ends_within_the_timeout(tiny_benchmark, make_submission) -> None:
    code = f'''
import os, sys, time
if {IN_WORKER} and os.fork() == 0:
    os.setsid()          # keeps every inherited descriptor, the channel included
    time.sleep(3600)
'''
    started = time.monotonic()
    document = _evaluate(_with_module(make_submission(), code), limits=Limits(timeout_s=30))
    assert time.monotonic() - started < 30 + 10
    assert document['status'] == 'ok', document['failure_reason']


def test_filling_the_private_tmp_fails_with_the_memory_limit(tiny_benchmark, make_submission) -> None:
    code = f'''
import sys
if {IN_WORKER}:
    with open('/dev/shm/filler', 'wb') as out:
        for _ in range(3000):
            out.write(b'x' * (1 << 20))
'''
    document = _evaluate(_with_module(make_submission(), code), limits=Limits(memory_mb=900))
    assert document['status'] == 'failed'
    assert 'memory limit exceeded (900 MB, counting what it wrote to its private /tmp' in document['failure_reason']


def test_filling_the_disk_fails_with_the_cap_named(tiny_benchmark, make_submission) -> None:
    """Every place the model process may write is a private tmpfs counted by its memory limit."""
    code = f'''
import os, sys
if {IN_WORKER}:
    targets = [os.path.expanduser('~/filler'), 'filler', '/var/tmp/filler', '/tmp/filler']
    written = 0
    for target in targets:
        try:
            with open(target, 'wb') as out:
                for _ in range(2000):
                    out.write(b'x' * (1 << 20))
                    written += 1
        except OSError:
            continue
'''
    document = _evaluate(_with_module(make_submission(), code), limits=Limits(memory_mb=900))
    assert document['status'] == 'failed'
    assert 'memory limit exceeded (900 MB' in document['failure_reason']


def test_a_sparse_file_in_the_submission_is_not_copied(tiny_benchmark, make_submission, isolated: Path) -> None:
    folder = make_submission()
    with open(folder / 'padding.bin', 'wb') as sparse:
        sparse.truncate(3 << 30)
    document = _evaluate(folder, keep_work=True)
    assert document['status'] == 'ok', document['failure_reason']
    assert 'shown read-only (not copied)' in document['limits']['filesystem']
    work = isolated / 'work' / 'runs' / document['run_id']
    assert work.is_dir() and all(p.stat().st_size < (1 << 20) for p in work.rglob('*') if p.is_file())


def test_forking_two_hundred_processes_fails_and_leaves_none(tiny_benchmark, make_submission) -> None:
    marker = f'sleep 1003.{os.getpid()}'
    code = f'''
import subprocess, sys
if {IN_WORKER}:
    for _ in range(200):
        subprocess.Popen(['sh', '-c', '{marker}'], start_new_session=True)
'''
    document = _evaluate(_with_module(make_submission(), code))
    assert document['status'] == 'failed'
    assert 'process limit reached' in document['failure_reason']
    assert _processes(marker) == []


def test_the_work_folder_is_removed_after_a_failed_run(tiny_benchmark, make_submission, isolated: Path) -> None:
    folder = make_submission()
    (folder / 'model.pth').write_bytes(b'not a checkpoint')
    document = _evaluate(folder)
    assert document['status'] == 'failed'
    assert not (isolated / 'work' / 'runs' / document['run_id']).exists()
