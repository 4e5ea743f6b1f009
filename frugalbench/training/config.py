"""The MMEngine training config: the submission's model + the harness's data, schedule and hooks.

The submission contributes its ``model`` (and ``custom_imports``) and an optional
``train_schedule``; everything about data comes from the harness: the budgeted images, the
derived annotation set, the benchmark's training pipeline. The result is plain data (a dict)
that the training child turns into an MMEngine ``Config``.

``train_schedule`` in a submission config (every key optional except ``iters``, which
``--iters`` may give instead)::

    train_schedule = dict(
        iters=3000,                 # training iterations
        batch_size=8,
        crop_size=(256, 256),       # (height, width) of the random crops; default: eval size
        optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01),
        poly_power=0.9,             # PolyLR from the optimizer's lr down to eta_min
        eta_min=1e-5,
        scale_range=(0.5, 2.0),     # random rescaling around the benchmark's eval size
        num_workers=0,              # data-loading processes
        checkpoint_interval=250,    # iterations between resumable checkpoints
        clip_grad=None,             # e.g. dict(max_norm=1.0)
    )
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from frugalbench.benchmarks import Benchmark
from frugalbench.errors import SubmissionError, UsageError

DEFAULT_BATCH_SIZE = 8
DEFAULT_OPTIMIZER: dict[str, Any] = {'type': 'AdamW', 'lr': 1e-3, 'weight_decay': 0.01}
DEFAULT_POLY_POWER = 0.9
DEFAULT_ETA_MIN = 1e-5
DEFAULT_SCALE_RANGE = (0.5, 2.0)
DEFAULT_CROP = (512, 512)            # only when the benchmark has no eval size
CHECKPOINTS_PER_RUN = 10             # default interval: iters / 10 ...
MAX_CHECKPOINT_INTERVAL = 250        # ... but at least this often
CHECKPOINTS_KEPT = 2
LOG_INTERVAL = 10
CAT_MAX_RATIO = 0.75                 # RandomCrop: retry crops dominated by one class
SCHEDULE_KEYS = ('iters', 'batch_size', 'crop_size', 'optimizer', 'poly_power', 'eta_min',
                 'scale_range', 'num_workers', 'checkpoint_interval', 'clip_grad')
AUXILIARY_PREFIX = 'auxiliary_head.'


@dataclass(frozen=True)
class Schedule:
    """How long and how the model is trained (the submission's ``train_schedule``, resolved)."""

    iters: int
    batch_size: int = DEFAULT_BATCH_SIZE
    crop_size: tuple[int, int] = DEFAULT_CROP   # (height, width)
    optimizer: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_OPTIMIZER))
    poly_power: float = DEFAULT_POLY_POWER
    eta_min: float = DEFAULT_ETA_MIN
    scale_range: tuple[float, float] = DEFAULT_SCALE_RANGE
    num_workers: int = 0
    checkpoint_interval: int = 1
    clip_grad: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data['crop_size'] = list(self.crop_size)
        data['scale_range'] = list(self.scale_range)
        return data


@dataclass(frozen=True)
class TrainingData:
    """The budgeted training set on disk: image links, derived annotations and the stem list."""

    images_dir: Path
    annotations_dir: Path
    stems_file: Path


def default_checkpoint_interval(iters: int) -> int:
    return max(1, min(MAX_CHECKPOINT_INTERVAL, iters // CHECKPOINTS_PER_RUN))


def resolve_schedule(config: dict[str, Any], benchmark: Benchmark, iters: int | None = None,
                     checkpoint_interval: int | None = None) -> Schedule:
    """The config's ``train_schedule`` with defaults filled in and ``iters`` overridden."""
    raw = config.get('train_schedule') or {}
    if not isinstance(raw, dict):
        raise SubmissionError('`train_schedule` in the config must be a dict(iters=..., batch_size=..., ...)')
    unknown = sorted(set(raw) - set(SCHEDULE_KEYS))
    if unknown:
        raise SubmissionError(f'`train_schedule` has unknown key(s) {unknown}; allowed: {", ".join(SCHEDULE_KEYS)}')
    total = iters if iters is not None else raw.get('iters')
    if total is None:
        raise UsageError('the config has no `train_schedule = dict(iters=...)`: add one, or pass --iters')
    total = _positive_int(total, 'iters')
    default_crop = (benchmark.eval_size[1], benchmark.eval_size[0]) if benchmark.eval_size else DEFAULT_CROP
    interval = checkpoint_interval if checkpoint_interval is not None else raw.get('checkpoint_interval')
    schedule = Schedule(
        iters=total,
        batch_size=_positive_int(raw.get('batch_size', DEFAULT_BATCH_SIZE), 'batch_size'),
        crop_size=_pair(raw.get('crop_size', default_crop), 'crop_size', int),
        optimizer=_optimizer(raw.get('optimizer', DEFAULT_OPTIMIZER)),
        poly_power=_number(raw.get('poly_power', DEFAULT_POLY_POWER), 'poly_power'),
        eta_min=_number(raw.get('eta_min', DEFAULT_ETA_MIN), 'eta_min'),
        scale_range=_pair(raw.get('scale_range', DEFAULT_SCALE_RANGE), 'scale_range', float),
        num_workers=_non_negative_int(raw.get('num_workers', 0), 'num_workers'),
        checkpoint_interval=_positive_int(interval if interval is not None
                                          else default_checkpoint_interval(total), 'checkpoint_interval'),
        clip_grad=_optional_dict(raw.get('clip_grad'), 'clip_grad'))
    if schedule.scale_range[0] > schedule.scale_range[1]:
        raise SubmissionError('`train_schedule.scale_range` must be (low, high) with low <= high')
    return schedule


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f'{key} must be a positive integer, got {value!r}')
    return value


def _non_negative_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SubmissionError(f'`train_schedule.{key}` must be an integer >= 0, got {value!r}')
    return value


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SubmissionError(f'`train_schedule.{key}` must be a number >= 0, got {value!r}')
    return float(value)


def _pair(value: Any, key: str, kind: type) -> tuple[Any, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value)):
        raise SubmissionError(f'`train_schedule.{key}` must be a pair of positive numbers, got {value!r}')
    if kind is int and not all(isinstance(v, int) for v in value):
        raise SubmissionError(f'`train_schedule.{key}` must be a pair of integers, got {value!r}')
    return kind(value[0]), kind(value[1])


def _optimizer(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get('type'), str):
        raise SubmissionError("`train_schedule.optimizer` must be a dict with a `type`, e.g. "
                              "dict(type='AdamW', lr=1e-3, weight_decay=0.01)")
    if not isinstance(value.get('lr'), (int, float)) or isinstance(value.get('lr'), bool):
        raise SubmissionError('`train_schedule.optimizer` needs a numeric `lr` (the PolyLR start)')
    return dict(value)


def _optional_dict(value: Any, key: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise SubmissionError(f'`train_schedule.{key}` must be a dict or None, got {value!r}')
    return dict(value) if value is not None else None


def train_pipeline(benchmark: Benchmark, schedule: Schedule,
                   guard: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The training-time data pipeline that the harness fixes for a benchmark.

    Random rescaling around the evaluation size (native scale when the benchmark has none),
    random crops, flips and photometric distortion. Labels are read from the derived
    annotation set, whose ``label_map`` is already applied. ``guard`` (training under a
    zero-shot split): a ``ZeroShotLabelGuard`` just before packing, on what the model is fed.
    """
    steps: list[dict[str, Any]] = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
    if benchmark.eval_size is not None:
        steps.append(dict(type='RandomResize', scale=tuple(benchmark.eval_size),
                          ratio_range=tuple(schedule.scale_range), keep_ratio=True))
    steps += [
        dict(type='RandomCrop', crop_size=tuple(schedule.crop_size), cat_max_ratio=CAT_MAX_RATIO,
             ignore_index=benchmark.ignore_index),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PhotoMetricDistortion'),
    ]
    if guard is not None:
        steps.append(dict(type='ZeroShotLabelGuard', **guard))
    steps.append(dict(type='PackSegInputs'))
    return steps


def training_model(config: dict[str, Any], benchmark: Benchmark,
                   schedule: Schedule) -> tuple[dict[str, Any], list[str]]:
    """The submission's model section prepared for training from random initialisation.

    Returns the model dict and notes on what was changed: pretrained weights and
    ``init_cfg=dict(type='Pretrained', ...)`` are dropped (the child has no network, and the
    harness trains from random initialisation); the data preprocessor pads to the crop size.
    """
    model = copy.deepcopy(config.get('model'))
    if not isinstance(model, dict) or not model:
        raise SubmissionError('the config has no `model` section: define the model to train')
    preprocessor = model.get('data_preprocessor')
    if not isinstance(preprocessor, dict):
        raise SubmissionError("the config's model has no data_preprocessor: add data_preprocessor=dict("
                              "type='SegDataPreProcessor', mean=..., std=..., bgr_to_rgb=True, "
                              "pad_val=0, seg_pad_val=255) so training and evaluation normalise alike")
    preprocessor['size'] = tuple(schedule.crop_size)
    preprocessor['seg_pad_val'] = benchmark.ignore_index
    notes: list[str] = []
    if model.pop('pretrained', None):
        notes.append('model.pretrained dropped (training starts from random initialisation)')
    notes += _drop_pretrained_init(model, 'model')
    for head_key in ('decode_head', 'auxiliary_head'):
        _check_ignore_index(model.get(head_key), head_key, benchmark.ignore_index)
    return model, notes


def _drop_pretrained_init(node: Any, where: str) -> list[str]:
    notes = []
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
            notes.append(f'{where}.init_cfg (Pretrained {init.get("checkpoint")}) dropped')
        for key, value in node.items():
            if key != 'init_cfg':
                notes += _drop_pretrained_init(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            notes += _drop_pretrained_init(value, f'{where}[{index}]')
    return notes


def _check_ignore_index(head: Any, key: str, ignore_index: int) -> None:
    heads = head if isinstance(head, (list, tuple)) else [head]
    for item in heads:
        if isinstance(item, dict) and item.get('ignore_index', 255) != ignore_index:
            raise SubmissionError(f'model.{key}.ignore_index is {item.get("ignore_index")}, the benchmark '
                                  f'ignores label {ignore_index}: set ignore_index={ignore_index}')


def build_training_config(config: dict[str, Any], benchmark: Benchmark, schedule: Schedule,
                          data: TrainingData, work_dir: Path, seed: int,
                          guard: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The full MMEngine config (plain data) and the notes from ``training_model`` and from filling
    the model's class information (``frugalbench.zero_shot.fill``); ``guard``: see ``train_pipeline``."""
    from frugalbench.zero_shot.fill import fill_class_information
    from frugalbench.zero_shot.splits import dataset_meta
    model, notes = training_model(config, benchmark, schedule)
    notes += fill_class_information(model, dataset_meta(benchmark))
    workers = schedule.num_workers
    cfg: dict[str, Any] = {
        'default_scope': 'mmseg',
        'model': model,
        'train_dataloader': dict(
            batch_size=schedule.batch_size, num_workers=workers, persistent_workers=workers > 0,
            sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=dict(
                type='BaseSegDataset', data_root='', ann_file=str(data.stems_file),
                data_prefix=dict(img_path=str(data.images_dir), seg_map_path=str(data.annotations_dir)),
                img_suffix=benchmark.img_suffix, seg_map_suffix=benchmark.seg_suffix,
                reduce_zero_label=False, ignore_index=benchmark.ignore_index,
                metainfo=dict(classes=tuple(benchmark.classes)),
                pipeline=train_pipeline(benchmark, schedule, guard))),
        'train_cfg': dict(type='IterBasedTrainLoop', max_iters=schedule.iters, val_interval=schedule.iters + 1),
        'optim_wrapper': dict(type='OptimWrapper', optimizer=dict(schedule.optimizer),
                              clip_grad=schedule.clip_grad),
        'param_scheduler': [dict(type='PolyLR', eta_min=schedule.eta_min, power=schedule.poly_power,
                                 begin=0, end=schedule.iters, by_epoch=False)],
        'default_hooks': dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=LOG_INTERVAL, log_metric_by_epoch=False),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=schedule.checkpoint_interval,
                            max_keep_ckpts=CHECKPOINTS_KEPT, save_last=True),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        'log_processor': dict(by_epoch=False, window_size=LOG_INTERVAL),
        'env_cfg': dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo')),
        'randomness': dict(seed=seed),
        'log_level': 'INFO',
        'work_dir': str(work_dir),
        'load_from': None,
        'resume': True,
        'launcher': 'none',
    }
    custom = config.get('custom_imports')
    if custom:
        cfg['custom_imports'] = custom
    return cfg, notes
