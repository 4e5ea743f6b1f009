"""End-to-end evaluation on a tiny benchmark: a real MMSeg model in a real child process,
scored against an independent in-process MMSeg inference, stored in a real DuckDB file."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
from PIL import Image
import pytest
import torch

from frugalbench.accuracy import image_areas, summarize
from frugalbench.benchmarks import load_benchmark
from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.model import evaluation_pipeline
from frugalbench.settings import default_db_path
from frugalbench.store import connect, list_run_documents

from support import reference_model


def reference_miou(folder: Path, benchmark_name: str) -> float:
    """mIoU from plain mmseg.apis.inference_model with the benchmark's pipeline (no frugalbench child)."""
    from mmseg.apis import inference_model
    benchmark = load_benchmark(benchmark_name)
    model = reference_model(folder)
    model.cfg.test_pipeline = evaluation_pipeline(benchmark)
    areas = []
    for sample in benchmark.samples('test'):
        pred = inference_model(model, str(sample.image)).pred_sem_seg.data[0].numpy().astype(np.uint8)
        areas.append(image_areas(pred, benchmark.read_label(sample), benchmark.num_classes,
                                 benchmark.ignore_index))
    return summarize(areas, benchmark.classes).miou


@pytest.fixture(scope='module')
def measured_run(module_tiny_benchmark, module_make_submission, module_quick_protocol) -> tuple[Path, dict]:
    """One measured evaluation, stored in the module's own database, that the next two tests check
    (neither writes to that database)."""
    folder = module_make_submission()
    outcome = evaluate_submission(folder, EvaluationOptions(db_path=default_db_path(),
                                                            protocol_path=module_quick_protocol))
    assert outcome.ok, outcome.document.get('failure_reason')
    return folder, outcome.document


def test_ok_run_matches_plain_mmseg_inference_and_is_stored(module_tiny_benchmark, measured_run) -> None:
    folder, document = measured_run
    tiny_benchmark = module_tiny_benchmark
    assert document['accuracy']['miou'] == pytest.approx(reference_miou(folder, tiny_benchmark), abs=5e-4)
    assert set(document['accuracy']['per_class_iou']) == {'background', 'disc', 'bar'}
    expected_params = sum(v.numel() for k, v in torch.load(folder / 'model.pth').items()
                          if 'running' not in k and 'num_batches' not in k)
    assert document['compute']['params'] == expected_params
    assert document['limits']['timeout_s'] > 0
    assert document['architecture'] == 'FastSCNN + DepthwiseSeparableFCNHead'
    [instructions] = [m for m in document['measurements'] if m['name'] == 'instructions_per_image']
    assert instructions['details']['counted_by'].startswith('the parent: perf stat -p')  # not the model process
    assert instructions['measured'] or instructions['unavailable_reason']
    overlays = document['overlays']
    assert [o['image'] for o in overlays] == ['test0.png', 'test1.png', 'test2.png']
    assert all(np.array(Image.open(o['path'])).shape == (64, 3 * 64, 3) for o in overlays)
    low, high = document['accuracy']['miou_ci']
    assert low <= document['accuracy']['miou'] <= high
    with connect(default_db_path()) as connection:
        stored = list_run_documents(connection)
        areas = connection.execute('SELECT count(*) FROM image_areas').fetchone()[0]
        names = {row[0] for row in connection.execute('SELECT name FROM measurements').fetchall()}
    assert [d['run_id'] for d in stored] == [document['run_id']]
    assert areas == 3
    assert {'macs', 'flops', 'latency_b1', 'peak_rss', 'energy_per_image', 'model_size_on_disk'} <= names


def test_measurements_equal_the_reference_counters_on_the_same_forward(measured_run) -> None:
    from mmengine.analysis import get_model_complexity_info
    from torch.utils.flop_counter import FlopCounterMode

    from frugalbench.measurements.compute import InferenceForward
    folder, document = measured_run
    model = reference_model(folder).eval()
    x = torch.zeros(1, 3, 64, 64)
    macs = get_model_complexity_info(InferenceForward(model), inputs=(x,), show_table=False,
                                     show_arch=False)['flops']
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x, mode='tensor')
    assert document['compute']['macs'] == macs
    assert document['compute']['flops'] == counter.get_total_flops()
    assert document['energy']['method'] != 'unavailable' or document['energy']['unavailable_reason']
    assert document['energy']['measured'] is (document['energy']['method'] in ('rapl', 'nvml', 'pyjoules'))
    assert document['latency']['median_ms'] > 0 and document['memory']['peak_rss_mb'] > 10
    assert {'config_read', 'model_process', 'pass_compute', 'pass_queries'} <= set(document['timings'])
    assert document['measurement_protocol']['protocol_version'] == 2
    assert document['compute']['trusted'] is True and document['compute']['untrusted_reason'] is None
    weights = [t for k, t in model.state_dict().items()
               if not k.startswith('auxiliary_head.') and k.rsplit('.', 1)[-1] not in
               ('running_mean', 'running_var', 'num_batches_tracked')]
    assert document['compute']['params'] == sum(t.numel() for t in weights)
    assert document['accuracy']['determinism']['images'][0]['changed_pixels'] == 0


def test_unchanged_submission_reuses_the_stored_run_unless_forced(tiny_benchmark, make_submission) -> None:
    folder = make_submission()
    first = evaluate_submission(folder, EvaluationOptions(measure=False))
    second = evaluate_submission(folder, EvaluationOptions(measure=False))
    forced = evaluate_submission(folder, EvaluationOptions(force=True, measure=False))
    assert second.reused and second.document['run_id'] == first.document['run_id']
    assert not forced.reused and forced.document['run_id'] != first.document['run_id']
    assert forced.document['accuracy'] == first.document['accuracy']
    assert forced.document['compute']['params'] == first.document['compute']['params']


class _RunsCode:
    """Unpickling this would create a marker file: the harness must never unpickle it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def _failure(folder: Path) -> str:
    outcome = evaluate_submission(folder, EvaluationOptions(measure=False))
    assert outcome.document['status'] == 'failed'
    return outcome.document['failure_reason']


def test_checkpoint_with_pickled_code_is_refused_without_running_it(tiny_benchmark, make_submission,
                                                                    tmp_path: Path) -> None:
    marker = tmp_path / 'pwned'
    folder = make_submission()
    with (folder / 'model.pth').open('wb') as handle:
        pickle.dump({'weight': _RunsCode(marker)}, handle)
    reason = _failure(folder)
    assert 'pickled objects that are not plain tensors' in reason
    assert not marker.exists()


def test_wrong_class_names_fail_naming_the_class(tiny_benchmark, make_submission) -> None:
    folder = make_submission(classes=['background', 'circle', 'bar'])
    assert "class 1 is 'circle', the benchmark calls it 'disc'" in _failure(folder)


def test_wrong_class_count_in_the_model_fails(tiny_benchmark, make_submission) -> None:
    folder = make_submission(num_classes=5)
    assert 'predicts 5 classes but the benchmark has 3' in _failure(folder)


def test_checkpoint_of_another_model_fails(tiny_benchmark, make_submission) -> None:
    state = {'backbone.conv.weight': torch.zeros(3, 3)}
    assert 'does not match the model' in _failure(make_submission(state=state))


def test_failures_are_recorded_and_earlier_rows_untouched(tiny_benchmark, make_submission) -> None:
    good = evaluate_submission(make_submission('good'), EvaluationOptions(measure=False))
    missing = make_submission('missing', write_checkpoint=False)
    broken_yaml = make_submission('broken')
    (broken_yaml / 'submission.yaml').write_text('name: [oops\n')
    escaping = make_submission('escaping', checkpoint='../../something')
    reasons = {folder.name: _failure(folder) for folder in (missing, broken_yaml, escaping)}
    assert "'model.pth' not found" in reasons['missing']
    assert 'not valid YAML' in reasons['broken']
    assert 'without ".."' in reasons['escaping']
    with connect(default_db_path()) as connection:
        documents = {d['submission']: d for d in list_run_documents(connection)}
    assert documents['good'] == {**good.document, 'reused': False} | {'timings': documents['good']['timings']}
    assert {documents[name]['status'] for name in reasons} == {'failed'}
