"""Calibrated stacking (Chao et al., ECCV 2016): fit the constant taken off seen-class scores on val.

    python -m frugalbench.zero_shot.calibrate SUBMISSION --split NAME [--write] [--format table|json]

For a model with frugalbench's attribute head (harness code only: a config with ``custom_imports``
is refused, nothing of the submission runs here), every val image is predicted once with
calibration 0; per pixel the best seen-class score and the best unseen-class score are kept. For each
candidate constant g, a pixel goes to its best unseen class when that score beats the best seen
score minus g; the g with the highest val hIoU (dataset-level areas, ``metrics.split_scores``) wins,
the smallest on ties. ``--write`` puts it into the config as ``calibration=<g>``. The val split's
labels of all classes are read for this one scalar; training never saw them (docs/zero-shot.md).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from frugalbench.zero_shot.metrics import split_scores
from frugalbench.zero_shot.splits import dataset_meta, unseen_indices

CANDIDATES = 200       # constants tried: quantiles of (best seen - best unseen) over val pixels
PIXEL_STRIDE = 2       # every 2nd row and column of each val image (a quarter of the pixels)
CALIBRATION = re.compile(r'calibration=[-+0-9.eE]+')


def collect(folder: Path, split: str, benchmark_name: str | None = None, val_split: str = 'val',
            max_images: int | None = None) -> dict[str, Any]:
    """Predict the val images; per pixel the label, best seen/unseen class and their scores."""
    import torch
    from mmcv.transforms import Compose

    from frugalbench.benchmarks import load_benchmark
    from frugalbench.isolation import Limits
    from frugalbench.model import evaluation_pipeline, read_config
    from frugalbench.model.channel import decode_config
    from frugalbench.model.worker import build_model, decode, load_weights
    from frugalbench.settings import work_dir
    from frugalbench.submission import load_submission
    from frugalbench.zero_shot.fill import fill_class_information

    submission = load_submission(folder)
    benchmark = load_benchmark(benchmark_name or submission.manifest.benchmark)
    work = work_dir() / 'calibrate' / submission.id
    work.mkdir(parents=True, exist_ok=True)
    config = read_config(submission, work, Limits())
    if config.custom_code:
        raise SystemExit('calibrate runs harness modules only: this config imports submission code')
    data = decode_config(config.data)
    fill_class_information(data['model'], dataset_meta(benchmark))
    head = data['model']['decode_head']
    if head.get('type') != 'FrugalbenchAttributeHead':
        raise SystemExit('calibrate needs a model whose decode head is FrugalbenchAttributeHead')
    head.update(calibration=0.0, score_unseen=True, unseen=unseen_indices(benchmark, split))
    model = build_model(data, None, 'cpu')
    load_weights(model, submission.checkpoint_path)
    pipeline = Compose(evaluation_pipeline(benchmark)[1:])
    unseen = unseen_indices(benchmark, split)
    seen = [i for i in range(benchmark.num_classes) if i not in unseen]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ('label', 'seen_class', 'seen_score',
                                                          'unseen_class', 'unseen_score')}
    samples = benchmark.samples(val_split)[:max_images]
    for sample in samples:
        result = decode(pipeline, sample.image.read_bytes())
        with torch.no_grad():
            scores = model.test_step({'inputs': [result['inputs']], 'data_samples': [result['data_samples']]})[0]
        logits = scores.seg_logits.data[:, ::PIXEL_STRIDE, ::PIXEL_STRIDE].numpy()
        label = benchmark.read_label(sample)[::PIXEL_STRIDE, ::PIXEL_STRIDE]
        for name, index in (('seen', seen), ('unseen', unseen)):
            part = logits[index]
            best = part.argmax(axis=0)
            parts[f'{name}_class'].append(np.asarray(index)[best].ravel().astype(np.uint8))
            parts[f'{name}_score'].append(part.max(axis=0).ravel().astype(np.float32))
        parts['label'].append(label.ravel())
    return {'benchmark': benchmark, 'unseen': unseen, 'images': len(samples),
            **{k: np.concatenate(v) for k, v in parts.items()}}


def scores_at(data: dict[str, Any], gamma: float) -> dict[str, Any]:
    """Val seen/unseen/hIoU when ``gamma`` is taken off the seen-class scores."""
    benchmark = data['benchmark']
    n = benchmark.num_classes
    pred = np.where(data['unseen_score'] > data['seen_score'] - gamma, data['unseen_class'], data['seen_class'])
    label = data['label']
    valid = label != benchmark.ignore_index
    pred, label = pred[valid].astype(np.int64), label[valid].astype(np.int64)
    intersect = np.bincount(label[pred == label], minlength=n)[:n]
    union = np.bincount(pred, minlength=n)[:n] + np.bincount(label, minlength=n)[:n] - intersect
    return split_scores(intersect, union, data['unseen'])


def fit(data: dict[str, Any]) -> dict[str, Any]:
    """The constant with the highest val hIoU (smallest on ties), and the scores at 0 for comparison."""
    gap = (data['seen_score'] - data['unseen_score']).astype(np.float64)
    candidates = np.unique(np.concatenate([[0.0], np.quantile(np.clip(gap, 0, None), np.linspace(0, 1, CANDIDATES))]))
    best_gamma, best = 0.0, scores_at(data, 0.0)
    at_zero = best
    for gamma in candidates:
        scores = scores_at(data, float(gamma))
        if (scores['hiou'] or 0.0) > (best['hiou'] or 0.0):
            best_gamma, best = float(gamma), scores
    return {'calibration': round(best_gamma, 6), 'val': _public(best), 'val_without_calibration': _public(at_zero),
            'val_images': data['images'], 'candidates': len(candidates), 'pixel_stride': PIXEL_STRIDE}


def _public(scores: dict[str, Any]) -> dict[str, Any]:
    return {k: scores[k] for k in ('seen_miou', 'unseen_miou', 'hiou')}


def write_calibration(config_path: Path, gamma: float) -> None:
    """Replace ``calibration=<number>`` in the config (exactly one occurrence)."""
    text = config_path.read_text()
    if len(CALIBRATION.findall(text)) != 1:
        raise SystemExit(f'{config_path} must hold exactly one `calibration=<number>` to write into')
    config_path.write_text(CALIBRATION.sub(f'calibration={gamma!r}', text))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog='python -m frugalbench.zero_shot.calibrate', description=__doc__.split('\n')[0])
    parser.add_argument('submission', type=Path)
    parser.add_argument('--split', required=True, help='the zero-shot split the model was trained under')
    parser.add_argument('--benchmark', default=None)
    parser.add_argument('--max-images', type=int, default=None, help='only the first N val images')
    parser.add_argument('--write', action='store_true', help='write the fitted constant into config.py')
    parser.add_argument('--format', choices=('table', 'json'), default='table')
    args = parser.parse_args(argv)
    result = fit(collect(args.submission, args.split, args.benchmark, max_images=args.max_images))
    if args.write:
        from frugalbench.submission import load_submission
        write_calibration(load_submission(args.submission).config_path, result['calibration'])
        result['written'] = True
    if args.format == 'json':
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f'{key}: {value}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
