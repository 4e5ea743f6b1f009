"""Leaderboard uploads: complete archives in platform/uploads/ are submitted (or refused) with a result file."""
from __future__ import annotations

import json
import os
import tarfile
import uuid
import zipfile
from pathlib import Path

from frugalbench.platform import queue, uploads


def test_uploads_are_submitted_or_refused_and_removed(tiny_benchmark, make_submission, isolated) -> None:
    db = Path(os.environ['FRUGALBENCH_DB'])
    folder = make_submission('uploaded')
    uploads.uploads_dir().mkdir(parents=True)
    good, bad, partial = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    with tarfile.open(uploads.uploads_dir() / f'{good}.tar.gz', 'w:gz') as bundle:
        bundle.add(folder, arcname='uploaded')
    with zipfile.ZipFile(uploads.uploads_dir() / f'{bad}.zip', 'w') as bundle:
        bundle.writestr('uploaded/submission.yaml', 'name: x')
        bundle.writestr('../../outside.txt', 'x')
    (uploads.uploads_dir() / f'{partial}.part').write_bytes(b'still arriving')
    messages = uploads.ingest_uploads(db)
    assert len(messages) == 2
    accepted, refused = uploads.upload_result(good), uploads.upload_result(bad)
    assert accepted['state'] == 'queued' and accepted['entry_id']
    assert refused['state'] == 'refused' and '".."' in refused['message'] and refused['entry_id'] is None
    assert uploads.upload_result(partial) is None and uploads.upload_result('../x') is None
    assert sorted(p.name for p in uploads.uploads_dir().iterdir()) == [f'{partial}.part', 'results']
    assert [e['id'] for e in queue.list_entries(db)] == [accepted['entry_id']]
    assert not (isolated / 'outside.txt').exists()
    assert json.loads((uploads.results_dir() / f'{good}.json').read_text())['new'] is True
