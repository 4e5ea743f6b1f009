"""The bundled CamVid baseline on real CamVid test images: parity with plain MMSegmentation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import PixelData
from PIL import Image

from frugalbench.benchmarks import load_benchmark
from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.model import evaluation_pipeline

from support import reference_model

BASELINE = Path(__file__).resolve().parent.parent / 'submissions' / 'fastscnn_camvid'
HANDFUL = 4


def mmseg_reference_miou(n_images: int) -> float:
    """inference_model + MMSeg's own IoUMetric (via an Evaluator) on the same images."""
    from mmseg.apis import inference_model
    benchmark = load_benchmark('camvid')
    model = reference_model(BASELINE)
    model.cfg.test_pipeline = evaluation_pipeline(benchmark)
    evaluator = Evaluator(dict(type='IoUMetric', iou_metrics=['mIoU']))
    evaluator.dataset_meta = dict(classes=benchmark.classes)
    for sample in benchmark.samples('test')[:n_images]:
        result = inference_model(model, str(sample.image))
        label = np.array(Image.open(sample.annotation)).astype(np.int64)
        label[label == 11] = 255
        result.gt_sem_seg = PixelData(data=torch.from_numpy(label)[None])
        evaluator.process([result.to_dict()])
    return evaluator.evaluate(n_images)['mIoU'] / 100  # IoUMetric logs rounded percentages


@pytest.mark.camvid
def test_baseline_miou_matches_mmseg_on_a_handful_of_test_images(isolated: Path, camvid_root: Path) -> None:
    if not (BASELINE / 'model.pth').exists():
        pytest.skip('the CamVid baseline checkpoint is not in this checkout')
    outcome = evaluate_submission(BASELINE, EvaluationOptions(max_images=HANDFUL, measure=False))  # accuracy only
    assert outcome.ok, outcome.document['failure_reason']
    # IoUMetric.compute_metrics rounds to 0.01 %, hence the 0.0005 tolerance of the acceptance test
    assert outcome.document['accuracy']['miou'] == pytest.approx(mmseg_reference_miou(HANDFUL), abs=5e-4)
    assert outcome.document['accuracy']['num_images'] == HANDFUL


RESULTS = BASELINE.parent / 'results.yaml'


def stated_camvid_results() -> dict[str, dict]:
    import yaml
    return {k: v for k, v in yaml.safe_load(RESULTS.read_text()).items() if v['benchmark'] == 'camvid'}


def test_stated_camvid_baselines_cover_three_architectures_and_the_best_reaches_035() -> None:
    stated = stated_camvid_results()
    lightweight = {v['architecture'] for k, v in stated.items() if v.get('technique') == 'lightweight'}
    assert len(lightweight) >= 3, lightweight
    assert max(v['miou'] for v in stated.values()) >= 0.35


@pytest.mark.camvid
def test_best_camvid_baseline_evaluates_to_its_stated_miou_on_the_whole_test_split(
        isolated: Path, camvid_root: Path) -> None:
    best, stated = max(stated_camvid_results().items(), key=lambda item: item[1]['miou'])
    outcome = evaluate_submission(BASELINE.parent / best, EvaluationOptions(measure=False))
    assert outcome.ok, outcome.document['failure_reason']
    accuracy = outcome.document['accuracy']
    assert accuracy['num_images'] == stated['test_images'] == 233
    assert accuracy['miou'] == pytest.approx(stated['miou'], abs=5e-4)
    assert outcome.document['architecture'] == stated['architecture']
