"""Hostile files in a submission folder (issue 15, item 1): the parent never follows a link out of
the folder (the manifest included), reads at most a stated size, refuses YAML aliases, caps long
text at storage, and never stores or prints what a file outside the folder holds. Also item 6's
threat model: a training record in a folder is 'recorded' when its checkpoint hash matches, never
'verified' (a record can be forged)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from frugalbench.errors import SubmissionError
from frugalbench.evaluation import EvaluationOptions, evaluate_submission, training_section
from frugalbench.store import connect
from frugalbench.submission import (
    MAX_MANIFEST_BYTES,
    load_submission,
    read_manifest_loosely,
    read_training_record,
)
from frugalbench.text import MAX_STORED_TEXT

SECRET = 'TOPSECRET-7f3a9c'


def _secret_manifest(tmp_path: Path) -> Path:
    """A root-only file outside any submission folder that looks like a manifest full of secrets."""
    path = tmp_path / 'outside' / 'secret.yaml'
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({'name': SECRET, 'benchmark': SECRET, 'technique': SECRET,
                                    'parent': SECRET, 'description': SECRET}))
    path.chmod(0o600)
    return path


def _database_text(db: Path) -> str:
    """Every value of every table, as one string."""
    with connect(db) as connection:
        tables = [row[0] for row in connection.execute('SHOW TABLES').fetchall()]
        return '\n'.join(str(connection.execute(f'SELECT * FROM {t}').fetchall()) for t in tables)


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'frugalbench', *args], capture_output=True, text=True,
                          env={**os.environ, 'COLUMNS': '400', **(env or {})}, timeout=300)


# --- links ---------------------------------------------------------------------------------------

def test_a_manifest_linked_to_a_file_outside_is_refused_and_its_content_never_stored_or_printed(
        make_submission, tmp_path: Path, isolated: Path) -> None:
    folder = make_submission()
    (folder / 'submission.yaml').unlink()
    (folder / 'submission.yaml').symlink_to(_secret_manifest(tmp_path))
    db = isolated / 'data' / 'hostile.duckdb'
    result = _cli('evaluate', str(folder), '--db', str(db), '--format', 'json')
    assert result.returncode == 1, result.stderr  # failed, and recorded as failed
    document = json.loads(result.stdout)
    assert document['status'] == 'failed'
    assert 'is a symbolic link' in document['failure_reason']
    assert document['benchmark'] == 'unknown' and document['manifest'] == {}
    assert SECRET not in result.stdout + result.stderr
    assert SECRET not in _database_text(db)
    validate = _cli('submissions', 'validate', str(folder))
    assert validate.returncode == 1 and 'symbolic link' in validate.stdout
    assert SECRET not in validate.stdout + validate.stderr


def test_a_manifest_linked_inside_the_folder_is_refused_too(make_submission) -> None:
    folder = make_submission()
    (folder / 'real.yaml').write_text((folder / 'submission.yaml').read_text())
    (folder / 'submission.yaml').unlink()
    (folder / 'submission.yaml').symlink_to('real.yaml')
    with pytest.raises(SubmissionError, match='is a symbolic link'):
        load_submission(folder)


def test_a_submission_folder_that_is_a_link_is_refused(make_submission, tmp_path: Path) -> None:
    link = tmp_path / 'linked_submission'
    link.symlink_to(make_submission())
    with pytest.raises(SubmissionError, match='is a symbolic link: pass the submission folder itself'):
        load_submission(link)


def test_a_manifest_hard_linked_to_a_file_outside_is_refused(make_submission, tmp_path: Path) -> None:
    folder = make_submission()
    outside = tmp_path / 'outside.yaml'
    os.link(folder / 'submission.yaml', outside)  # same content: only the second name is wrong
    with pytest.raises(SubmissionError, match='is a hard link'):
        load_submission(folder)
    assert read_manifest_loosely(folder) == {}


def test_a_manifest_that_is_a_fifo_is_refused_without_waiting(make_submission) -> None:
    folder = make_submission()
    (folder / 'submission.yaml').unlink()
    os.mkfifo(folder / 'submission.yaml')
    start = time.monotonic()
    with pytest.raises(SubmissionError, match='not a regular file'):
        load_submission(folder)
    assert time.monotonic() - start < 5


def test_a_training_record_linked_outside_leaves_the_budget_declared_without_reading_it(
        make_submission, tmp_path: Path) -> None:
    folder = make_submission()
    outside = tmp_path / 'record.json'
    outside.write_text(json.dumps({'training_id': SECRET}))
    (folder / 'training_record.json').symlink_to(outside)
    section = training_section(load_submission(folder), None)
    assert section['state'] == 'declared' and 'symbolic link' in section['note']
    assert SECRET not in json.dumps(section)


# --- size and YAML expansion ---------------------------------------------------------------------

def test_a_manifest_over_the_size_cap_is_refused_with_the_cap(make_submission) -> None:
    folder = make_submission()
    text = (folder / 'submission.yaml').read_text()
    (folder / 'submission.yaml').write_text(text + '#' * MAX_MANIFEST_BYTES + '\n')
    with pytest.raises(SubmissionError, match='at most 65,536 are read'):
        load_submission(folder)


ALIAS_BOMB = '\n'.join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f'a{i}: &a{i} [' + ', '.join([f'*a{i - 1}'] * 10) + ']' for i in range(1, 10)]
    + ['name: *a9', 'authors: [x]', 'description: d', 'technique: other', 'benchmark: tiny',
       'classes: [a]', 'config: config.py', 'checkpoint: model.pth', 'training: {images: 1, annotation: full}']) + '\n'


def test_an_alias_bomb_is_refused_at_once_in_little_memory(make_submission) -> None:
    folder = make_submission()
    (folder / 'submission.yaml').write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 1500  # 10**10 strings once expanded
    code = ('import re, sys\nfrom frugalbench.errors import SubmissionError\n'
            'from frugalbench.submission import load_submission, read_manifest_loosely\n'
            'assert read_manifest_loosely(sys.argv[1]) == {}\n'
            'try:\n    load_submission(sys.argv[1])\nexcept SubmissionError as exc:\n    print(exc)\n'
            "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n")
    start = time.monotonic()
    result = subprocess.run([sys.executable, '-c', code, str(folder)], capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    message, peak_kb = result.stdout.strip().rsplit('\n', 1)
    assert 'YAML anchor (&a0) at line 1: aliases and anchors are not allowed' in message
    assert int(peak_kb) < 200 * 1024, f'peak {int(peak_kb) / 1024:.0f} MB'  # pydantic + yaml: ~60 MB
    assert seconds < 30 and len(message) < 1000


def test_an_alias_without_anchor_text_is_refused_with_its_line(make_submission) -> None:
    folder = make_submission()
    (folder / 'submission.yaml').write_text((folder / 'submission.yaml').read_text() + 'parent: *elsewhere\n')
    with pytest.raises(SubmissionError, match=r'YAML alias \(\*elsewhere\) at line \d+'):
        load_submission(folder)


@pytest.mark.parametrize('text, problem', [
    ('name: ' + '[' * 30000 + '\n', 'nested too deeply'),
    ('name: x\ntraining: {images: ' + '9' * 50000 + ', annotation: full}\n', 'cannot convert'),
])
def test_pathological_yaml_is_a_clear_error_not_a_crash(make_submission, text: str, problem: str) -> None:
    folder = make_submission()
    (folder / 'submission.yaml').write_text(text)
    with pytest.raises(SubmissionError, match=problem):
        load_submission(folder)


# --- long text -----------------------------------------------------------------------------------

def test_long_text_of_a_failed_run_is_capped_at_storage(make_submission, isolated: Path) -> None:
    folder = make_submission()
    manifest = yaml.safe_load((folder / 'submission.yaml').read_text())
    manifest.update({'name': 'n' * 20000, 'k' * 40000: 1})  # an unknown field is named in the reason
    (folder / 'submission.yaml').write_text(yaml.safe_dump(manifest))
    db = isolated / 'data' / 'capped.duckdb'
    outcome = evaluate_submission(folder, EvaluationOptions(db_path=db, measure=False))
    assert outcome.document['status'] == 'failed'
    with connect(db) as connection:
        reason, name, document = connection.execute(
            'SELECT failure_reason, submission_name, document FROM runs').fetchone()
    assert len(reason) <= MAX_STORED_TEXT and reason.endswith('more characters not stored]')
    assert len(name) <= 200
    assert max(len(v) for v in _strings(json.loads(document))) <= MAX_STORED_TEXT
    assert outcome.document['failure_reason'] == reason  # what is printed is what is stored


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


# --- budgets shipped in the folder ----------------------------------------------------------------

def _record(checkpoint_sha: str, images: int = 2, annotation: str = 'points') -> dict:
    """A training record as `frugalbench train` writes it (the fields an evaluation reads), hand-made:
    anyone can write one, which is why a record in a folder is only ever 'recorded'."""
    return {'training_id': 'f' * 32, 'benchmark': 'tiny', 'seed': 0, 'iterations': 10, 'verified': True,
            'budget': {'images': images, 'annotation': annotation, 'subset_id': 'tiny-train-n2',
                       'annotator_seconds': 42.0},
            'totals': {'wall_seconds': 12.5, 'energy_joules': 3.0, 'energy_method': 'estimate-cpu-time-tdp',
                       'energy_measured': False},
            'hashes': {'checkpoint_sha256': checkpoint_sha}}


def test_a_record_whose_checkpoint_hash_matches_is_recorded_never_verified(make_submission) -> None:
    folder = make_submission()
    submission = load_submission(folder)
    (folder / 'training_record.json').write_text(json.dumps(_record(submission.checkpoint_sha256())))
    section = training_section(submission, None, submission.checkpoint_sha256())
    assert section['state'] == 'recorded' and section['verified'] is False
    assert (section['record']['images'], section['record']['annotation']) == (2, 'points')
    assert 'not re-run or re-verified' in section['note']


def test_a_record_of_another_checkpoint_leaves_the_budget_declared(make_submission) -> None:
    folder = make_submission()
    (folder / 'training_record.json').write_text(json.dumps(_record('0' * 64)))
    section = training_section(load_submission(folder), None)
    assert section['state'] == 'declared' and 'record' not in section
    assert 'describes another checkpoint' in section['note']


@pytest.mark.parametrize('content, problem', [
    ('{"training_id": ', 'not valid JSON'),
    ('[1, 2]', 'not a training record'),
    (json.dumps({'training_id': 'x', 'benchmark': 'tiny', 'budget': {'images': -3, 'annotation': 'full'},
                 'hashes': {'checkpoint_sha256': 'a' * 64}}), 'budget.images'),
])
def test_a_malformed_record_leaves_the_budget_declared_saying_why(make_submission, content: str,
                                                                   problem: str) -> None:
    folder = make_submission()
    (folder / 'training_record.json').write_text(content)
    with pytest.raises(SubmissionError, match=problem):
        read_training_record(folder)
    section = training_section(load_submission(folder), None)
    assert section['state'] == 'declared' and problem in section['note']


def test_compression_reads_the_parents_record_without_following_a_link(make_submission, tmp_path: Path) -> None:
    from frugalbench.compression.pipeline import finetune_budget
    folder = make_submission()
    submission = load_submission(folder)
    (folder / 'training_record.json').write_text(json.dumps(_record(submission.checkpoint_sha256(), images=3)))
    assert finetune_budget(submission, 10, 0.1)['images'] == 3
    outside = tmp_path / 'elsewhere.json'
    (folder / 'training_record.json').rename(outside)
    (folder / 'training_record.json').symlink_to(outside)
    with pytest.raises(SubmissionError, match='is a symbolic link'):
        finetune_budget(submission, 10, 0.1)
