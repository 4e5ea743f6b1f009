"""Train a bundled baseline submission on a benchmark's full train split (resumable).

    python scripts/train_baseline.py submissions/fastscnn_camvid --benchmark camvid

MMEngine's Runner trains the submission's model with the data pipeline that frugalbench
fixes for the benchmark and the schedule in the config's ``train_schedule``. Intermediate
checkpoints (not weights-only) go to a work folder outside the submission; a killed run
continues from the last one. The final weights are written into the submission as a plain
state dict without auxiliary heads (weights-only loadable).

This script predates ``frugalbench train`` (training issue), which will replace it.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')  # our own resume checkpoints only

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import frugalbench.mmseg_ext  # noqa: E402,F401  (registers MapLabels)
from frugalbench.benchmarks import Benchmark, load_benchmark  # noqa: E402
from frugalbench.settings import work_dir  # noqa: E402


def train_pipeline(benchmark: Benchmark, crop_size: tuple[int, int]) -> list[dict]:
    width, height = benchmark.eval_size or (480, 360)
    return [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='MapLabels', mapping=benchmark.label_map),
        dict(type='RandomResize', scale=(width, height), ratio_range=(0.5, 2.0), keep_ratio=True),
        dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
        dict(type='PackSegInputs'),
    ]


def write_stem_list(benchmark: Benchmark, out: Path) -> tuple[Path, Path]:
    samples = benchmark.samples('train')
    img_dir, ann_dir = samples[0].image.parent, samples[0].annotation.parent
    out.write_text(''.join(s.image.name[:-len(benchmark.img_suffix)] + '\n' for s in samples))
    return img_dir, ann_dir


def build_config(submission: Path, benchmark: Benchmark, run_dir: Path, seed: int) -> Config:
    cfg = Config.fromfile(str(submission / 'config.py'))
    schedule = cfg.train_schedule
    crop = tuple(schedule['crop_size'])
    stem_list = run_dir / 'train_stems.txt'
    img_dir, ann_dir = write_stem_list(benchmark, stem_list)
    cfg.default_scope = 'mmseg'
    cfg.custom_imports = dict(imports=['frugalbench.mmseg_ext'], allow_failed_imports=False)
    cfg.train_dataloader = dict(
        batch_size=schedule['batch_size'], num_workers=1, persistent_workers=True,
        sampler=dict(type='InfiniteSampler', shuffle=True),
        dataset=dict(
            type='BaseSegDataset', data_root='', ann_file=str(stem_list),
            data_prefix=dict(img_path=str(img_dir), seg_map_path=str(ann_dir)),
            img_suffix=benchmark.img_suffix, seg_map_suffix=benchmark.seg_suffix,
            metainfo=dict(classes=tuple(benchmark.classes)),
            pipeline=train_pipeline(benchmark, crop)))
    iters = schedule['iters']
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
    cfg.optim_wrapper = dict(type='OptimWrapper', optimizer=schedule['optimizer'])
    cfg.param_scheduler = [dict(type='PolyLR', eta_min=schedule['eta_min'], power=schedule['poly_power'],
                                begin=0, end=iters, by_epoch=False)]
    cfg.default_hooks = dict(
        timer=dict(type='IterTimerHook'),
        logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
        param_scheduler=dict(type='ParamSchedulerHook'),
        checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=250, max_keep_ckpts=2),
        sampler_seed=dict(type='DistSamplerSeedHook'))
    cfg.env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
    cfg.randomness = dict(seed=seed)
    cfg.log_level = 'INFO'
    cfg.work_dir = str(run_dir)
    cfg.load_from = None
    cfg.resume = True
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg.pop(key, None)
    return cfg


def export_state_dict(model: torch.nn.Module, out: Path) -> int:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()
             if not k.startswith('auxiliary_head.')}
    torch.save(state, out)
    return out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('submission', type=Path)
    parser.add_argument('--benchmark', default='camvid')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    benchmark = load_benchmark(args.benchmark)
    run_dir = work_dir() / f'{args.submission.resolve().name}-{benchmark.name}-seed{args.seed}'
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = build_config(args.submission, benchmark, run_dir, args.seed)
    start_wall, start_cpu = time.time(), time.process_time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    size = export_state_dict(runner.model, args.submission / 'model.pth')
    record = dict(benchmark=benchmark.name, split='train', images=len(benchmark.samples('train')),
                  annotation='full', seed=args.seed, iters=cfg.train_cfg['max_iters'],
                  batch_size=cfg.train_dataloader['batch_size'],
                  wall_seconds_this_process=round(time.time() - start_wall, 1),
                  cpu_seconds_this_process=round(time.process_time() - start_cpu, 1),
                  checkpoint_bytes=size, torch=torch.__version__, script='scripts/train_baseline.py')
    (args.submission / 'training_record.json').write_text(json.dumps(record, indent=2) + '\n')
    print(json.dumps(record))


if __name__ == '__main__':
    main()
