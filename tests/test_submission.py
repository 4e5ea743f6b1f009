"""Manifest validation: every problem names the field and the fix."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from frugalbench.errors import SubmissionError
from frugalbench.submission import load_submission


def test_valid_submission_loads_with_resolved_paths(make_submission) -> None:
    folder = make_submission()
    submission = load_submission(folder)
    assert submission.id == 'tiny_fastscnn'
    assert submission.checkpoint_path == (folder / 'model.pth').resolve()
    assert submission.manifest.training.images == 4
    assert len(submission.checkpoint_sha256()) == 64


def test_missing_field_is_named_with_its_expected_form(make_submission) -> None:
    folder = make_submission()
    text = (folder / 'submission.yaml').read_text().replace('technique: lightweight\n', '')
    (folder / 'submission.yaml').write_text(text)
    with pytest.raises(SubmissionError, match=r"field 'technique' is missing; expected one of lightweight"):
        load_submission(folder)


def test_malformed_yaml_names_the_line(make_submission) -> None:
    folder = make_submission()
    (folder / 'submission.yaml').write_text('name: [unclosed\nauthors: x\n')
    with pytest.raises(SubmissionError, match=r'not valid YAML at line \d+'):
        load_submission(folder)


def test_unknown_field_lists_the_allowed_ones(make_submission) -> None:
    folder = make_submission(checkpiont='model.pth')
    with pytest.raises(SubmissionError, match=r"unknown field 'checkpiont' \(allowed: name, authors"):
        load_submission(folder)


def test_checkpoint_path_leaving_the_folder_is_refused(make_submission) -> None:
    folder = make_submission(checkpoint='../../something')
    with pytest.raises(SubmissionError, match=r"field 'checkpoint'.*without \"\.\.\""):
        load_submission(folder)


def test_absolute_path_is_refused(make_submission) -> None:
    folder = make_submission(config='/etc/passwd')
    with pytest.raises(SubmissionError, match=r"field 'config'.*relative to the submission folder"):
        load_submission(folder)


def test_link_pointing_outside_is_refused(make_submission, tmp_path: Path) -> None:
    folder = make_submission(checkpoint='weights.pth')
    outside = tmp_path / 'outside.pth'
    outside.write_bytes(b'x')
    os.symlink(outside, folder / 'weights.pth')
    with pytest.raises(SubmissionError, match=r'points outside the submission folder'):
        load_submission(folder)


def test_missing_checkpoint_names_the_file(make_submission) -> None:
    folder = make_submission(write_checkpoint=False)
    with pytest.raises(SubmissionError, match=r"file 'model.pth' not found"):
        load_submission(folder)


def test_bundled_submissions_are_valid() -> None:
    root = Path(__file__).resolve().parent.parent / 'submissions'
    folders = [p for p in root.iterdir() if (p / 'submission.yaml').exists()]
    assert folders, 'the repository bundles at least one submission'
    for folder in folders:
        if not (folder / 'model.pth').exists():
            continue
        assert load_submission(folder).manifest.name
