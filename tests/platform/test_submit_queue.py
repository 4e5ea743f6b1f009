"""`frugalbench submit` and `frugalbench queue` as a user runs them: real archives, a real DuckDB file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import duckdb


def frugalbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'frugalbench', *args], check=False, capture_output=True,
                          text=True,
                          env=dict(os.environ), timeout=300)


def queue_json() -> list[dict]:
    result = frugalbench('queue', '--format', 'json')
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _tar_gz(folder: Path, path: Path) -> Path:
    with tarfile.open(path, 'w:gz') as bundle:
        bundle.add(folder, arcname=folder.name)
    return path


def _zip(folder: Path, path: Path, extra=None) -> Path:
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as bundle:
        for file in sorted(folder.rglob('*')):
            bundle.write(file, f'{folder.name}/{file.relative_to(folder).as_posix()}')
        if extra:
            extra(bundle)
    return path


def _stored(isolated: Path) -> list[str]:
    root = isolated / 'data' / 'platform' / 'submissions'
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_submit_a_folder_and_archives_duplicates_are_one_entry(tiny_benchmark, make_submission, isolated,
                                                               tmp_path) -> None:
    folder = make_submission('first')
    first = frugalbench('submit', str(folder), '--format', 'json')
    assert first.returncode == 0, first.stderr
    entry = json.loads(first.stdout)
    assert entry['state'] == 'queued' and entry['position'] == 1 and entry['new'] is True
    assert entry['name'] == 'first' and entry['benchmark'] == 'tiny'
    stored = Path(entry['stored_folder'])
    assert stored.is_relative_to(isolated / 'data' / 'platform' / 'submissions')
    assert sorted(p.name for p in stored.iterdir()) == ['config.py', 'model.pth', 'submission.yaml']

    again = json.loads(frugalbench('submit', str(_tar_gz(folder, tmp_path / 'first.tar.gz')),
                                   '--format', 'json').stdout)
    assert again['id'] == entry['id'] and again['new'] is False      # same content, one entry

    other = make_submission('second')
    second = frugalbench('submit', str(_zip(other, tmp_path / 'second.zip')))
    assert second.returncode == 0, second.stderr
    entries = queue_json()
    assert [(e['name'], e['state'], e['position']) for e in entries] == [('first', 'queued', 1),
                                                                         ('second', 'queued', 2)]
    for key in ('id', 'name', 'benchmark', 'state', 'run_id', 'reason', 'attempts', 'node', 'submitted_at'):
        assert key in entries[0]
    assert len(_stored(isolated)) == 2
    table = frugalbench('queue')
    assert table.returncode == 0 and 'second' in table.stdout

    cancelled = frugalbench('queue', 'cancel', entry['id'], '--format', 'json')
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)['state'] == 'cancelled'
    assert [(e['name'], e['state'], e['position']) for e in queue_json()] == [('first', 'cancelled', None),
                                                                              ('second', 'queued', 1)]
    twice = frugalbench('queue', 'cancel', entry['id'])
    assert twice.returncode == 2 and 'only a queued entry' in twice.stderr
    unknown = frugalbench('queue', 'cancel', 'nope')
    assert unknown.returncode == 2 and 'no queue entry' in unknown.stderr
    requeued = json.loads(frugalbench('submit', str(folder), '--format', 'json').stdout)
    assert requeued['id'] == entry['id'] and requeued['state'] == 'queued' and requeued['position'] == 2


def test_hostile_archives_are_refused_with_exit_2_no_entry_nothing_stored(tiny_benchmark, make_submission,
                                                                          isolated, tmp_path) -> None:
    folder = make_submission('victim')
    link = zipfile.ZipInfo('victim/link')
    link.create_system, link.external_attr = 3, (0o120777) << 16
    archives = {
        'link out': _zip(folder, tmp_path / 'link.zip', lambda b: b.writestr(link, '/etc/passwd')),
        '".."': _zip(folder, tmp_path / 'dotdot.zip', lambda b: b.writestr('victim/../../escape.txt', 'x')),
        'absolute path': _zip(folder, tmp_path / 'abs.zip', lambda b: b.writestr('/tmp/fb-abs.txt', 'x')),
        'zip bomb': _zip(folder, tmp_path / 'bomb.zip', lambda b: b.writestr('victim/z.bin', b'\0' * (30 << 20))),
    }
    fifo_tar = tmp_path / 'fifo.tar.gz'
    with tarfile.open(fifo_tar, 'w:gz') as bundle:
        bundle.add(folder, arcname='victim')
        info = tarfile.TarInfo('victim/pipe')
        info.type = tarfile.FIFOTYPE
        bundle.addfile(info)
    archives['FIFO'] = fifo_tar
    for problem, archive in archives.items():
        result = frugalbench('submit', str(archive))
        assert result.returncode == 2, (problem, result.stderr)
        assert 'refused' in result.stderr and 'Traceback' not in result.stderr, problem
    assert not (tmp_path / 'escape.txt').exists() and not Path('/tmp/fb-abs.txt').exists()
    assert _stored(isolated) == []
    assert list((isolated / 'data' / 'platform' / 'tmp').iterdir()) == []
    assert queue_json() == []


def test_an_invalid_submission_is_not_stored_nor_queued(tiny_benchmark, make_submission, isolated) -> None:
    result = frugalbench('submit', str(make_submission('bad', technique='magic')))
    assert result.returncode == 1 and 'technique' in result.stderr
    assert _stored(isolated) == [] and queue_json() == []
    with duckdb.connect(os.environ['FRUGALBENCH_DB'], read_only=True) if Path(
            os.environ['FRUGALBENCH_DB']).exists() else _null() as connection:
        if connection is not None:
            assert connection.execute('SELECT count(*) FROM submission_queue').fetchone()[0] == 0


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
