"""Compress a submission into a new submission folder: parent -> child process -> folder.

``compress_submission`` validates the parent, reads its config in a limited child (as
evaluation does), then builds, compresses and re-checks the model in another limited child
(``frugalbench.compression.child``): this process never executes submission code. It then
writes the new folder (``compression.submission``), whose manifest names the parent and
records what was done.
"""
from __future__ import annotations

import importlib.metadata
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from frugalbench.benchmarks import Benchmark, load_benchmark
from frugalbench.compression import submission as folder_writer
from frugalbench.compression.report import QUANTIZATION_SCHEMES
from frugalbench.errors import ChildProcessError_, UsageError
from frugalbench.isolation import Confinement, Limits, run_child
from frugalbench.model import path_in_view, protected_folders, read_config
from frugalbench.model.channel import decode_config
from frugalbench.settings import default_db_path, work_dir
from frugalbench.submission import MANIFEST_NAME, Manifest, Submission, load_submission, read_training_record
from frugalbench.training.budget import TRAINABLE_ANNOTATIONS
from frugalbench.training.config import DEFAULT_ETA_MIN, DEFAULT_OPTIMIZER
from frugalbench.training.record import RECORD_FILE

CHILD_MODULE = 'frugalbench.compression.child'
COUNTED = ('params', 'macs', 'flops')


@dataclass(frozen=True)
class CompressOptions:
    """Which methods to apply (in the order prune, low-rank, quantize) and under which limits."""

    prune: float | None = None         # fraction of weights (unstructured) or channels (structured) removed
    structured: bool = False
    low_rank: float | None = None      # fraction of each layer's parameters kept
    rank_energy: float | None = None   # kept-energy threshold of the singular values
    quantize: str | None = None        # 'int8'
    finetune: int | None = None        # recovery fine-tuning iterations through frugalbench train
    finetune_lr_scale: float = 0.1     # fine-tuning lr = the parent schedule's lr x this
    db_path: Path = field(default_factory=default_db_path)   # where the fine-tuning's record goes
    limits: Limits = field(default_factory=Limits)
    on_event: Callable[[dict], None] | None = None           # fine-tuning progress events

    def steps(self) -> list[dict[str, Any]]:
        """The methods as child steps; UsageError for impossible combinations or values."""
        steps: list[dict[str, Any]] = []
        if self.structured and self.prune is None:
            raise UsageError('--structured needs --prune RATIO')
        if self.prune is not None:
            _fraction('--prune', self.prune, upper_open=True)
            steps.append({'method': 'prune', 'ratio': self.prune, 'structured': self.structured})
        if self.low_rank is not None and self.rank_energy is not None:
            raise UsageError('give --low-rank RATIO or --rank-energy E, not both')
        if self.low_rank is not None:
            _fraction('--low-rank', self.low_rank, upper_open=True)
            steps.append({'method': 'low-rank', 'ratio': self.low_rank})
        if self.rank_energy is not None:
            _fraction('--rank-energy', self.rank_energy, upper_open=False)
            steps.append({'method': 'low-rank', 'energy': self.rank_energy})
        if self.quantize is not None:
            if self.quantize not in QUANTIZATION_SCHEMES:
                raise UsageError(f'--quantize {self.quantize!r} is not supported: '
                                 f'use {", ".join(QUANTIZATION_SCHEMES)}')
            steps.append({'method': 'quantize', 'scheme': self.quantize})
        if not steps:
            raise UsageError('name at least one method: --prune RATIO [--structured], --low-rank RATIO, '
                             '--rank-energy E or --quantize int8')
        if self.finetune is not None:
            if self.finetune < 1:
                raise UsageError('--finetune must be at least 1 iteration')
            if self.quantize is not None:
                raise UsageError('--finetune cannot be combined with --quantize: int8 weights are not trained. '
                                 'Fine-tune first (`frugalbench compress PARENT --prune ... --finetune N --out A`), '
                                 'then quantize the result (`frugalbench compress A --quantize int8 --out B`)')
        return steps


@dataclass(frozen=True)
class CompressionResult:
    folder: Path
    manifest: Manifest
    log: Path

    @property
    def record(self) -> dict[str, Any]:
        return dict(self.manifest.compression or {})


def _fraction(flag: str, value: float, upper_open: bool) -> None:
    if not 0 < value < 1 and not (value == 1 and not upper_open):
        raise UsageError(f'{flag} must be a fraction in (0, {"1)" if upper_open else "1]"}, got {value}')


def compress_submission(folder: Path, out: Path, options: CompressOptions) -> CompressionResult:
    """Write a compressed variant of the submission in ``folder`` as the new submission ``out``."""
    steps = options.steps()
    parent = load_submission(Path(folder))
    out = folder_writer.prepare_folder(out, parent)
    benchmark = load_benchmark(parent.manifest.benchmark)
    work = work_dir() / 'compress' / uuid.uuid4().hex
    work.mkdir(parents=True)
    config = read_config(parent, work, options.limits)
    config_data = decode_config(json.loads(config.text))
    request = {'config': json.loads(config.text), 'checkpoint': path_in_view(parent.checkpoint_path, parent),
               'code_dir': 'submission' if config.custom_code else None, 'steps': steps,
               'input_shape': list(input_shape(benchmark)), 'out_checkpoint': 'model.pth',
               'threads': options.limits.or_defaults().threads}
    log = work / 'compress.log'
    result = run_child(CHILD_MODULE, request, limits=options.limits, log_path=log, doing='compression',
                       confine=Confinement(parent.folder, protected_folders()),
                       max_payload=max(64 << 20, 4 * parent.checkpoint_path.stat().st_size))
    if 'model.pth' not in result.files:
        raise ChildProcessError_('the compression process ended without sending the compressed checkpoint')
    (work / 'model.pth').write_bytes(result.files['model.pth'])
    done = result.last('done') or {}
    model = decode_config(done['model'])
    # the parent's own code modules, if any; the harness registers FrugalbenchCompressed itself (a parent
    # written by an earlier version names its copied rebuild module here: not carried over)
    imports = [m for m in config.custom_imports if m != folder_writer.LEGACY_MODULE_NAME]
    schedule = config_data.get('train_schedule')
    if options.finetune is not None:
        schedule = finetune_schedule(schedule, options.finetune, options.finetune_lr_scale)
    text = folder_writer.config_text(parent.id, model, imports, schedule)
    compression = compression_record(parent, steps, done, work / 'model.pth')
    if options.finetune is not None:
        compression['finetune'] = finetune_budget(parent, options.finetune, options.finetune_lr_scale)
    manifest = folder_writer.manifest_for(parent, steps, compression)
    folder_writer.write_folder(out, parent, manifest, text, work / 'model.pth', copy_parent_code=bool(imports))
    if options.finetune is not None:
        finetune(out, compression['finetune'], options)
    return CompressionResult(folder=out, manifest=manifest, log=log)


def finetune_schedule(schedule: dict[str, Any] | None, iters: int, lr_scale: float) -> dict[str, Any]:
    """The parent's train_schedule for a short recovery: ``iters`` iterations, lr and eta_min scaled down."""
    schedule = dict(schedule or {})
    optimizer = dict(schedule.get('optimizer') or DEFAULT_OPTIMIZER)
    optimizer['lr'] = float(optimizer.get('lr', DEFAULT_OPTIMIZER['lr'])) * lr_scale
    schedule.update(iters=iters, optimizer=optimizer,
                    eta_min=float(schedule.get('eta_min', DEFAULT_ETA_MIN)) * lr_scale,
                    checkpoint_interval=max(1, min(int(schedule.get('checkpoint_interval') or iters), iters)))
    return schedule


def finetune_budget(parent: Submission, iters: int, lr_scale: float) -> dict[str, Any]:
    """Fine-tune under the parent's data and annotation budget: its verified training record when it
    has one, else its declared training data (the whole train split with full masks by default)."""
    shipped = read_training_record(parent.folder)  # no link followed, size-capped; malformed: SubmissionError
    if shipped is not None:
        budget = shipped.budget.model_dump()
        source = f'{parent.id}/{RECORD_FILE}'
    else:
        declared = parent.manifest.training
        budget = {'images': declared.images, 'annotation': declared.annotation}
        source = f'{parent.id}/{MANIFEST_NAME} (declared)'
    annotation = budget.get('annotation') or 'full'
    if annotation not in TRAINABLE_ANNOTATIONS:
        annotation = 'full'
    return {'iters': iters, 'lr_scale': lr_scale, 'images': budget.get('images'), 'annotation': annotation,
            'seed': int(budget.get('seed') or 0), 'budget_from': source,
            'trainer': 'frugalbench train --init-checkpoint (the compressed weights)'}


def finetune(folder: Path, plan: dict[str, Any], options: CompressOptions) -> None:
    """Recovery fine-tuning of the compressed variant in ``folder``, in place, by ``frugalbench train``."""
    from frugalbench.training import TrainOptions, train_submission
    variant = load_submission(folder)
    train_submission(folder, TrainOptions(
        benchmark=variant.manifest.benchmark, images=plan['images'], annotation=plan['annotation'],
        seed=plan['seed'], iters=plan['iters'], db_path=options.db_path,
        init_checkpoint=variant.checkpoint_path,
        limits=options.limits),  # unset limits: the benchmark's training defaults
        on_event=options.on_event)


def input_shape(benchmark: Benchmark) -> tuple[int, int, int, int]:
    """(1, 3, H, W) as the evaluation feeds the model: the benchmark's eval size, else its first test image."""
    if benchmark.eval_size is not None:
        width, height = benchmark.eval_size
        return (1, 3, int(height), int(width))
    samples = benchmark.samples('test')
    if not samples:
        raise UsageError(f'benchmark {benchmark.name!r} has no test image to size the compute counts with')
    with Image.open(samples[0].image) as image:
        width, height = image.size
    return (1, 3, height, width)


def compression_record(parent: Submission, steps: list[dict[str, Any]], done: dict[str, Any],
                       checkpoint: Path) -> dict[str, Any]:
    """What goes under ``compression:`` in the manifest."""
    compute = done.get('compute', {})
    record: dict[str, Any] = {
        'method': folder_writer.method_label(steps),
        'steps': done.get('steps', []),
        'compute': {'input_shape': compute.get('input_shape'),
                    'parent': _counts(compute.get('before', [])), 'compressed': _counts(compute.get('after', [])),
                    'counted': 'params of the model without auxiliary heads; MACs (mmengine) and FLOPs (torch) '
                               "of model(x, mode='tensor') at input_shape"},
        'checkpoint_bytes': {'parent': parent.checkpoint_path.stat().st_size,
                             'compressed': checkpoint.stat().st_size},
        'auxiliary_heads_dropped': bool(done.get('auxiliary_heads_dropped')),
        'rebuild': folder_writer.REBUILD_RECORD,
        'verification': done.get('verification'),
        'versions': _versions(steps),
    }
    return record


def _counts(measurements: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {m['name']: m.get('value') for m in measurements if m.get('name') in COUNTED}
    return {name: (int(value) if isinstance(value, float) and value.is_integer() else value)
            for name, value in counts.items()}


def _versions(steps: list[dict[str, Any]]) -> dict[str, str]:
    names = ['torch', 'frugalbench'] + (['torch-pruning'] if any(s.get('structured') for s in steps) else [])
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = 'unknown'
    return versions
