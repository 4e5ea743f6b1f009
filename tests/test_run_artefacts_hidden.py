"""The model process sees no artefact of any run, wherever it lives (issue 15, item 4): overlay images
(with their ground-truth panels) under the project's data/ folder while FRUGALBENCH_DATA points
elsewhere, and the overlay and training work folders that runs stored in the results database name,
outside every configured folder. Needs root on Linux (confinement)."""
from __future__ import annotations

import json
import shutil
import sys
import uuid
from pathlib import Path

import pytest

from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.settings import PROJECT_ROOT, default_db_path
from frugalbench.store import connect, save_run
from frugalbench.store.trainings import save_training

PROBE = '''
from pathlib import Path
leaks = []
for path in {readable!r}:
    try:
        Path(path).read_bytes()
        leaks.append('read ' + path)
    except OSError:
        pass
if leaks:
    raise RuntimeError('LEAK: ' + '; '.join(leaks))
'''


def _needs_root() -> None:
    import os
    if sys.platform != 'linux' or os.geteuid() != 0:
        pytest.skip('confinement (mount namespace, privilege drop) needs root on Linux')


@pytest.fixture
def planted(isolated: Path) -> dict[str, Path]:
    """Artefacts of earlier runs: one under the project's data/ (not $FRUGALBENCH_DATA, which is in
    tmp here), and an overlay and a training log outside every configured folder, named only by
    the runs stored in the database."""
    tag = uuid.uuid4().hex[:8]
    default_overlay = PROJECT_ROOT / 'data' / 'overlays' / f'probe-{tag}' / '000.png'
    elsewhere = PROJECT_ROOT / f'.artefacts-{tag}'
    old_overlay = elsewhere / 'olddata' / 'overlays' / f'old-{tag}' / '000.png'
    old_log = elsewhere / 'oldwork' / 'train' / f'old-{tag}' / 'logs' / 'segment-0.log'
    for path in (default_overlay, old_overlay, old_log):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'ground truth panel')
    with connect(default_db_path()) as connection:
        save_run(connection, {'run_id': f'old-{tag}', 'status': 'failed', 'created_at': '2026-11-01T00:00:00',
                              'submission': 'old', 'benchmark': 'tiny',
                              'overlays': [{'image': 'a.png', 'path': str(old_overlay)}]})
        record = json.loads((PROJECT_ROOT / 'submissions' / 'fastscnn_camvid_10img' / 'training_record.json')
                            .read_text())
        save_training(connection, {**record, 'training_id': f'old-{tag}',
                                   'work_folder': str(old_log.parent.parent)})
    try:
        yield {'default overlay': default_overlay, 'stored overlay': old_overlay, 'stored training log': old_log}
    finally:
        shutil.rmtree(default_overlay.parent, ignore_errors=True)
        shutil.rmtree(elsewhere, ignore_errors=True)


def test_the_model_process_cannot_read_any_runs_artefacts_wherever_they_live(
        tiny_benchmark, make_submission, planted: dict[str, Path], isolated: Path) -> None:
    _needs_root()
    assert not planted['default overlay'].is_relative_to(isolated)  # FRUGALBENCH_DATA points elsewhere
    assert all(p.read_bytes() for p in planted.values())  # the probe would find them if it could look
    folder = make_submission()
    (folder / 'probe.py').write_text(PROBE.format(readable=[str(p) for p in planted.values()]))
    (folder / 'config.py').write_text((folder / 'config.py').read_text()
                                      + "custom_imports = dict(imports=['probe'], allow_failed_imports=False)\n")
    document = evaluate_submission(folder, EvaluationOptions(measure=False)).document
    assert document['status'] == 'ok', document['failure_reason']
    hidden = document['limits']['filesystem']
    for path in (PROJECT_ROOT / 'data', planted['stored overlay'].parent.parent,
                 planted['stored training log'].parents[2]):
        # listed, or inside the private /tmp (a checkout cloned there): invisible either way
        assert str(path) in hidden or Path('/tmp') in path.resolve().parents, f'{path} not hidden: {hidden}'
