"""The training pipeline: submission + budget -> training child (resumable) -> checkpoint + record.

``train_submission`` picks the budgeted images and derives their annotations (this process),
reads the submission's config in a limited child (as evaluation does), builds the MMEngine
config, and trains in another limited child (``frugalbench.training.child``) under an energy
meter. Intermediate checkpoints live in a work folder outside the submission; running the same
command again after an interruption resumes from the last one. The final weights are written
as a plain state dict, with the training record, into the output folder and the database.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from frugalbench.benchmarks import Benchmark, Sample, load_benchmark
from frugalbench.benchmarks.annotations import DERIVATION_VERSION
from frugalbench.benchmarks.prepare import ensure_prepared
from frugalbench.errors import ChildProcessError_, ModelError, SubmissionError, UsageError
from frugalbench.evaluation import check_classes
from frugalbench.isolation import ChildResult, Limits, run_child
from frugalbench.measurements import provenance
from frugalbench.measurements.energy import open_meter
from frugalbench.measurements.protocol import load_protocol
from frugalbench.model import read_config
from frugalbench.model.channel import decode_config, encode_config
from frugalbench.settings import default_db_path, work_dir
from frugalbench.store import store_training_or_spool
from frugalbench.submission import MANIFEST_NAME, Submission, _inside, _read_manifest, file_sha256
from frugalbench.training.budget import TRAINABLE_ANNOTATIONS, Budget, choose_subset, prepare_training_data
from frugalbench.training.config import Schedule, TrainingData, build_training_config, resolve_schedule
from frugalbench.training.record import RECORD_FILE, TrainingRecord, totals_of
from frugalbench.training.segments import COMPLETED, FAILED, INTERRUPTED, SegmentLog
from frugalbench.zero_shot.splits import apply_split, read_guard, split_of, unseen_indices

CHILD_MODULE = 'frugalbench.training.child'
FINAL_CHECKPOINT = 'final.pth'
INIT_CHECKPOINT = 'init.pth'       # a copy of --init-checkpoint, fixed for the whole training
RUN_FILE = 'run.json'            # what this work folder trains; a different request may not resume it
EMIT_SECONDS = 1.0
KEPT_MEASUREMENTS = ('energy_run', 'co2e_run')

EventCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TrainOptions:
    """What to train on, under which budget, where to write, and under which limits."""

    benchmark: str | None = None      # default: the manifest's benchmark
    images: int | None = None         # data budget; None: the whole train split
    annotation: str = 'full'          # full | coarse | scribble | points
    seed: int = 0                     # picks the subset and the point positions; seeds training
    iters: int | None = None          # overrides train_schedule['iters']
    checkpoint_interval: int | None = None  # overrides train_schedule['checkpoint_interval']
    out: Path | None = None           # default: the submission folder itself
    db_path: Path = field(default_factory=default_db_path)
    device: str = 'cpu'
    restart: bool = False             # discard the work folder's checkpoints and start over
    init_checkpoint: Path | None = None  # start from these weights (plain state dict) instead of random
    zero_shot: str | None = None      # a zero-shot split of the benchmark: no unseen-class pixel is trained on
    zero_shot_mode: str = 'ignore'    # ignore (unseen pixels -> ignore index) | drop-images (also drop them)
    limits: Limits = field(default_factory=Limits)  # unset limits: the benchmark's training defaults


def training_folder(submission_id: str, benchmark: str, sid: str, annotation: str, seed: int,
                    init_sha256: str | None = None, zero_shot: str | None = None) -> Path:
    """The work folder of one training: ``<work>/train/<submission>-<benchmark>-<subset>-<annotation>-s<seed>``
    (``-init<sha>`` appended when it starts from given weights, ``-zs-<split>`` under a zero-shot split)."""
    suffix = f'-init{init_sha256[:8]}' if init_sha256 else ''
    suffix += f'-zs-{zero_shot}' if zero_shot else ''
    return work_dir() / 'train' / f'{submission_id}-{benchmark}-{sid}-{annotation}-s{seed}{suffix}'


def train_submission(folder: Path, options: TrainOptions, on_event: EventCallback | None = None) -> TrainingRecord:
    """Train a submission under a data/annotation budget; returns the stored training record."""
    notify = on_event or (lambda event: None)
    if options.annotation not in TRAINABLE_ANNOTATIONS:
        raise UsageError(f'training needs mask annotations: choose --annotation from '
                         f'{", ".join(TRAINABLE_ANNOTATIONS)} (not {options.annotation!r})')
    submission = load_for_training(Path(folder))
    benchmark = load_benchmark(options.benchmark or submission.manifest.benchmark)
    check_classes(submission, benchmark)
    options = replace(options, limits=options.limits.or_defaults(benchmark.limits.training_timeout_s,
                                                                 benchmark.limits.training_memory_mb))
    out = _output_folder(submission, options.out)
    notify({'event': 'stage', 'stage': 'preparing data'})
    ensure_prepared(benchmark, _stage_progress(notify))
    if options.zero_shot is not None:
        split_of(benchmark, options.zero_shot)  # an unknown split: a usage error before any work
    samples, sid = choose_subset(benchmark, options.images, options.seed)
    init_sha = _init_checkpoint_sha256(options.init_checkpoint)
    run_dir = training_folder(submission.id, benchmark.name, sid, options.annotation, options.seed, init_sha,
                              options.zero_shot)
    with exclusive(run_dir):
        return _train(submission, benchmark, samples, sid, run_dir, out, options, init_sha, notify)


def _init_checkpoint_sha256(path: Path | None) -> str | None:
    if path is None:
        return None
    if not Path(path).is_file():
        raise UsageError(f'initial checkpoint {path} does not exist: pass the state dict to start from')
    return file_sha256(Path(path))


def _stage_progress(notify: EventCallback) -> Callable[[str, int], Callable[[], None]]:
    """``ensure_prepared``'s progress protocol, reported as stage events."""
    def start(description: str, total: int) -> Callable[[], None]:
        notify({'event': 'stage', 'stage': f'{description} ({total} images)'})
        return lambda: None
    return start


@contextlib.contextmanager
def exclusive(run_dir: Path) -> Iterator[None]:
    """Hold the lock of a training's work folder (released by the kernel if this process dies)."""
    lock_path = run_dir.parent / f'{run_dir.name}.lock'
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open('a') as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f'another `frugalbench train` is running this training ({run_dir}): '
                             'wait for it to finish, or stop it and run the command again to resume') from None
        yield


@dataclass(frozen=True)
class _Plan:
    """Everything decided before the training process starts."""

    submission: Submission
    benchmark: Benchmark
    out: Path
    run_dir: Path
    config_sha256: str
    schedule: Schedule
    budget: Budget
    initialisation: dict[str, Any]
    request_path: Path
    zero_shot: dict[str, Any] | None = None


def _train(submission: Submission, benchmark: Benchmark, samples: list[Sample], sid: str, run_dir: Path,
           out: Path, options: TrainOptions, init_sha: str | None, notify: EventCallback) -> TrainingRecord:
    plan = _plan(submission, benchmark, samples, sid, run_dir, out, options, init_sha, notify)
    segments = SegmentLog(run_dir / 'segments.json')
    result = _run_segment(plan.request_path, run_dir, segments, plan.schedule, options, notify)
    notify({'event': 'stage', 'stage': 'writing checkpoint and record'})
    checkpoint = _publish_checkpoint(run_dir / FINAL_CHECKPOINT, out, submission)
    record = _record(plan, options, segments, result, checkpoint)
    _check_complete(record, plan.schedule)
    (out / RECORD_FILE).write_text(json.dumps(record.to_dict(), indent=2) + '\n')
    store_training_or_spool(options.db_path, record.to_dict())  # a held database: wait, then spool
    return record


def _plan(submission: Submission, benchmark: Benchmark, samples: list[Sample], sid: str, run_dir: Path,
          out: Path, options: TrainOptions, init_sha: str | None, notify: EventCallback) -> _Plan:
    """Read the config, resolve the schedule, write the budgeted data and the child's request
    (``init_sha``: sha256 of ``options.init_checkpoint``, hashed once by the caller)."""
    if options.restart and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    notify({'event': 'stage', 'stage': 'reading config'})
    config = read_config(submission, run_dir, options.limits)
    config_data = decode_config(json.loads(config.text))
    schedule = resolve_schedule(config_data, benchmark, options.iters, options.checkpoint_interval)
    claim = {'config_sha256': config.sha256, 'schedule': schedule.to_dict(), 'subset_id': sid,
             'annotation': options.annotation, 'seed': options.seed, 'device': options.device,
             'benchmark_sha256': benchmark.definition_hash, 'derivation_version': DERIVATION_VERSION}
    if options.zero_shot:
        claim['zero_shot'] = {'split': options.zero_shot, 'mode': options.zero_shot_mode}
    if init_sha:
        claim['init_checkpoint_sha256'] = init_sha
        shutil.copyfile(options.init_checkpoint, run_dir / INIT_CHECKPOINT)  # it may be overwritten by the result
    _claim_folder(run_dir, claim)
    notify({'event': 'stage', 'stage': f'deriving {options.annotation} annotations'})
    budget, data = prepare_training_data(benchmark, samples, sid, options.annotation, options.seed, run_dir)
    zero_shot, guard = None, None
    if options.zero_shot:
        notify({'event': 'stage', 'stage': f'removing the unseen classes of zero-shot split {options.zero_shot}'})
        data, zero_shot, guard = _apply_zero_shot(benchmark, data, run_dir, options)
    mm_config, init_notes = build_training_config(config_data, benchmark, schedule, data,
                                                  run_dir / 'mmengine', options.seed, guard)
    request = {'config': encode_config(mm_config), 'final_checkpoint': str(run_dir / FINAL_CHECKPOINT),
               'threads': options.limits.or_defaults().threads, 'emit_seconds': EMIT_SECONDS,
               'code_dir': str(submission.folder) if config.custom_code else None,
               'init_checkpoint': str(run_dir / INIT_CHECKPOINT) if init_sha else None}
    request_path = run_dir / 'train_request.json'
    request_path.write_text(json.dumps(request))
    initialisation = ({'weights': 'checkpoint', 'checkpoint_sha256': init_sha,
                       'source': str(options.init_checkpoint), 'changes': init_notes} if init_sha
                      else {'weights': 'random', 'changes': init_notes})
    return _Plan(submission=submission, benchmark=benchmark, out=out, run_dir=run_dir,
                 config_sha256=config.sha256, schedule=schedule, budget=budget, initialisation=initialisation,
                 request_path=request_path, zero_shot=zero_shot)


def _apply_zero_shot(benchmark: Benchmark, data: TrainingData, run_dir: Path,
                     options: TrainOptions) -> tuple[TrainingData, dict[str, Any], dict[str, Any]]:
    """The training labels without the split's unseen classes, what was removed, and the label guard."""
    name = str(options.zero_shot)
    unseen = unseen_indices(benchmark, name)
    folder = run_dir / f'annotations-zs-{name}'
    removed = apply_split(data.annotations_dir, folder, benchmark.seg_suffix, unseen, benchmark.ignore_index,
                          options.zero_shot_mode)
    guard_dir = run_dir / 'zero_shot_guard'
    guard_dir.mkdir(exist_ok=True)
    summary = {'split': name, 'unseen': [benchmark.classes[i] for i in unseen], 'unseen_indices': unseen,
               'mode': options.zero_shot_mode, **removed, 'guard_folder': str(guard_dir)}
    return (replace(data, annotations_dir=folder, stems_file=folder / 'stems.txt'), summary,
            {'unseen': unseen, 'report_dir': str(guard_dir)})


def _record(plan: _Plan, options: TrainOptions, segments: SegmentLog, result: ChildResult,
            checkpoint: dict[str, Any]) -> TrainingRecord:
    done = result.last('done') or {}
    benchmark = plan.benchmark
    return TrainingRecord(
        training_id=uuid.uuid4().hex,
        created_at=datetime.now(timezone.utc).isoformat(timespec='seconds'),
        submission=plan.out.name, source_submission=plan.submission.id,
        benchmark=benchmark.name, benchmark_sha256=benchmark.definition_hash,
        protocol_version=benchmark.protocol_version, synthetic=benchmark.synthetic,
        budget=plan.budget.to_dict(), seed=options.seed, schedule=plan.schedule.to_dict(),
        iterations=int(done.get('iterations', 0)),
        resumed_from_iterations=[s.start_iteration for s in segments.segments
                                 if s.resumed_from and s.start_iteration is not None],
        final_loss=done.get('final_loss'), params=int(done.get('params', 0)),
        initialisation=plan.initialisation,
        totals=totals_of(segments.segments),
        segments=[_segment_summary(s) for s in segments.segments],
        device=options.device, threads=options.limits.or_defaults().threads, limits=result.enforced,
        hardware={**provenance.hardware(), 'fingerprint': provenance.hardware_fingerprint()},
        versions=provenance.software_versions(),
        hashes={'config_sha256': plan.config_sha256, 'checkpoint_sha256': checkpoint['sha256'],
                'benchmark_sha256': benchmark.definition_hash},
        checkpoint={k: v for k, v in checkpoint.items() if k != 'sha256'},
        work_folder=str(plan.run_dir), log=str(result.log_path), zero_shot=_zero_shot_summary(plan))


def _zero_shot_summary(plan: _Plan) -> dict[str, Any] | None:
    """The split the training ran under, with what the training pipeline's label guard saw."""
    if plan.zero_shot is None:
        return None
    summary = {k: v for k, v in plan.zero_shot.items() if k != 'guard_folder'}
    summary['guard'] = read_guard(Path(plan.zero_shot['guard_folder']))
    return summary


def load_for_training(folder: Path) -> Submission:
    """A submission folder whose checkpoint may not exist yet (training writes it)."""
    if not folder.is_dir():
        raise SubmissionError(f'{folder} is not a folder: pass a submission folder such as submissions/<id>')
    manifest = _read_manifest(folder / MANIFEST_NAME)
    return Submission(id=folder.resolve().name, folder=folder.resolve(), manifest=manifest,
                      config_path=_inside(folder, manifest.config, 'config'),
                      checkpoint_path=folder.resolve() / manifest.checkpoint)


def _output_folder(submission: Submission, out: Path | None) -> Path:
    """The folder that receives the checkpoint and record: the submission, or a copy of it."""
    if out is None or out.resolve() == submission.folder:
        return submission.folder
    out = out.resolve()
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise UsageError(f'--out {out} is a non-empty folder that is not a submission: choose a new folder')
    skip = {submission.manifest.checkpoint, RECORD_FILE}
    shutil.copytree(submission.folder, out, dirs_exist_ok=True,
                    ignore=lambda src, names: [n for n in names if n in skip or n == '__pycache__'])
    return out


def _claim_folder(run_dir: Path, request: dict[str, Any]) -> None:
    """Record what this work folder trains; refuse to resume a different training in it."""
    path = run_dir / RUN_FILE
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored != request:
            changed = sorted(k for k in set(stored) | set(request) if stored.get(k) != request.get(k))
            raise UsageError(f'{run_dir} holds a training with a different {", ".join(changed)}: pass '
                             '--restart to discard its checkpoints and start over')
        return
    path.write_text(json.dumps(request, indent=2) + '\n')


def _run_segment(request_path: Path, run_dir: Path, segments: SegmentLog, schedule: Schedule,
                 options: TrainOptions, notify: EventCallback) -> ChildResult:
    """One training process under the energy meter; the segment log follows it."""
    segment = segments.begin()
    meter = open_meter(load_protocol(), options.device)
    extra_env = {'CUDA_VISIBLE_DEVICES': ''} if options.device == 'cpu' else None

    def on_event(event: dict[str, Any]) -> None:
        segments.observe(event)
        notify(event)

    try:
        with meter:
            result = run_child(CHILD_MODULE, json.loads(request_path.read_text()), limits=options.limits,
                               doing='the training process',
                               log_path=run_dir / 'logs' / f'segment-{segment.index}.log',
                               on_event=on_event, extra_env=extra_env)
    except ChildProcessError_ as exc:
        segments.finish(status=FAILED, failure=str(exc))
        raise
    except BaseException:
        segments.finish(status=INTERRUPTED)
        raise
    trained = max(0, (segment.last_iteration or 0) - (segment.start_iteration or 0))
    energy = [m.to_dict() for m in meter.measurements(images=max(1, trained * schedule.batch_size))
              if m.name in KEPT_MEASUREMENTS]
    for item in energy:
        item['details']['training_process_cpu_seconds'] = round(result.cpu_seconds, 3)
    segments.finish(status=COMPLETED, wall_seconds=result.wall_seconds, cpu_seconds=result.cpu_seconds,
                    peak_rss_mb=result.peak_rss_mb, energy=energy)
    return result


def _publish_checkpoint(source: Path, out: Path, submission: Submission) -> dict[str, Any]:
    """Check the child's final checkpoint (weights-only, tensors only) and write it into ``out``."""
    import pickle

    import torch
    if not source.is_file():
        raise ModelError(f'the training process wrote no final checkpoint ({source})')
    try:
        state = torch.load(source, map_location='cpu', weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as exc:
        raise ModelError(f'the final checkpoint {source} is not a weights-only state dict: {exc}') from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f'the final checkpoint {source} is not a plain state dict of tensors')
    target = out / submission.manifest.checkpoint
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + '.partial')
    shutil.copyfile(source, partial)
    partial.replace(target)  # replaces a link too, never writes through it
    dtypes = sorted({str(v.dtype).replace('torch.', '') for v in state.values() if v.is_floating_point()})
    return {'file': submission.manifest.checkpoint, 'bytes': target.stat().st_size, 'sha256': file_sha256(target),
            'floating_dtypes': dtypes, 'tensors': len(state), 'auxiliary_heads_dropped': True,
            'weights_only_loadable': True}


def _segment_summary(segment: Any) -> dict[str, Any]:
    return {'index': segment.index, 'status': segment.status, 'started_at': segment.started_at,
            'start_iteration': segment.start_iteration, 'last_iteration': segment.last_iteration,
            'resumed_from': segment.resumed_from, 'wall_seconds': segment.wall_seconds,
            'cpu_seconds': segment.cpu_seconds, 'peak_rss_mb': segment.peak_rss_mb,
            'measured_from_outside': segment.measured_from_outside, 'energy': segment.energy,
            'failure': segment.failure}


def _check_complete(record: TrainingRecord, schedule: Schedule) -> None:
    if record.iterations != schedule.iters:
        raise ModelError(f'the training process stopped at iteration {record.iterations} of {schedule.iters}; '
                         f'see its log {record.log}')

