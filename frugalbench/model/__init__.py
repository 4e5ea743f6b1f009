"""The model stage: read a submission's config and run its model, each in a limited child.

The parent process (this module) never executes submission code; it prepares requests,
starts children (frugalbench.isolation) and collects their events. Each child gets its own
folder holding copies of what it may read (the submission, the test images, the request) and
is confined there: benchmark data, results and work folders are hidden from it
(``protected_folders``), so the model process never sees an annotation file.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from frugalbench.benchmarks import Benchmark, list_benchmarks
from frugalbench.errors import FrugalbenchError
from frugalbench.isolation import ChildResult, Confinement, Limits, read_child_output, run_child
from frugalbench.measurements.energy import INHERITED_COUNTERS_ENV, open_rapl_counter_files
from frugalbench.measurements.protocol import load_protocol
from frugalbench.model.channel import REPLY_FD_ENV
from frugalbench.model.outside import OutsideInstructionCounter
from frugalbench.settings import data_dir, default_db_path, work_dir
from frugalbench.submission import Submission

CONFIG_READ_TIMEOUT_S = 120.0  # reading a config takes seconds; a hang is stopped here

__all__ = ['ModelConfig', 'Predictions', 'read_config', 'predict', 'evaluation_pipeline', 'protected_folders',
           'child_folder', 'path_in_copy']


@dataclass(frozen=True)
class ModelConfig:
    """A submission's config, executed in a child and kept as plain data."""

    path: Path          # the JSON dump
    sha256: str         # hash of the canonical JSON
    custom_imports: tuple[str, ...]

    @property
    def custom_code(self) -> bool:
        return bool(self.custom_imports)

    def architecture(self) -> str | None:
        """'<backbone type> + <decode head type>' from the config (compressed variants keep their
        parent's), for grouping runs of one architecture; None when the config does not say."""
        model = json.loads(self.path.read_text()).get('model') or {}
        parts = [(model.get(key) or {}).get('type') if isinstance(model.get(key), dict) else None
                 for key in ('backbone', 'decode_head')]
        return ' + '.join(str(p) for p in parts if p) or None


@dataclass(frozen=True)
class Predictions:
    """Label maps written by the model child, one PNG per image, in input order."""

    folder: Path
    count: int
    params: int
    child: ChildResult
    measurements: list[dict] = field(default_factory=list)   # Measurement.to_dict() items
    measurement_timings: dict[str, float] = field(default_factory=dict)
    protocol: dict[str, object] = field(default_factory=dict)

    def path(self, index: int) -> Path:
        return self.folder / f'{index:06d}.png'

    def label_map(self, index: int) -> np.ndarray:
        """The child's prediction for image ``index`` (a link or a missing file fails the run)."""
        data = read_child_output(self.path(index), self.folder.parent)
        return np.array(Image.open(io.BytesIO(data)))


def evaluation_pipeline(benchmark: Benchmark) -> list[dict]:
    """The test-time data pipeline the benchmark fixes (a submission's own is ignored)."""
    steps: list[dict] = [dict(type='LoadImageFromFile')]
    if benchmark.eval_size is not None:
        steps.append(dict(type='Resize', scale=tuple(benchmark.eval_size), keep_ratio=False))
    steps.append(dict(type='PackSegInputs'))
    return steps


def protected_folders(*extra: Path) -> tuple[Path, ...]:
    """Folders submission code must not see: every benchmark's data, the results (and their spool),
    and every artefact of any run (overlays, logs, work folders) wherever it lives: the configured
    folders, the project's default ones even when FRUGALBENCH_DATA / _WORK / _DB point elsewhere
    (``data/``, ``~/.cache/frugalbench``), and the overlay and work folders that the runs stored in
    the results databases (the configured, the default and any in ``extra``) name."""
    from frugalbench.settings import PROJECT_ROOT
    from frugalbench.store.runs import stored_artefact_folders
    default_data = PROJECT_ROOT / 'data'
    folders = [data_dir(), work_dir(), default_db_path().parent, default_data,
               Path.home() / '.cache' / 'frugalbench', *extra]
    databases = {default_db_path(), default_data / 'frugalbench.duckdb',
                 *(Path(p) for p in extra if Path(p).suffix == '.duckdb')}
    for database in sorted(databases):
        folders.extend(sorted(stored_artefact_folders(database)))
    try:
        benchmarks = list_benchmarks()
    except FrugalbenchError:
        benchmarks = []  # a broken user benchmark file is reported where it is used
    for benchmark in benchmarks:
        try:
            folders.append(benchmark.data_root())
        except FrugalbenchError:
            continue  # not prepared here: nothing to hide
    return tuple(folders)


def child_folder(parent: Path, name: str, submission: Submission) -> Path:
    """A fresh folder for one child holding a copy of the submission (in ``submission/``)."""
    folder = parent / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # symlinks stay links: one pointing out of the folder leads to a hidden or private path
    shutil.copytree(submission.folder, folder / 'submission', symlinks=True,
                    ignore=shutil.ignore_patterns('__pycache__'))
    return folder


def path_in_copy(path: Path, submission: Submission) -> str:
    """``path`` (inside the submission) as the child sees it: relative to its folder's copy."""
    return str(Path('submission') / path.resolve().relative_to(submission.folder.resolve()))


def read_config(submission: Submission, work: Path, limits: Limits,
                protected: tuple[Path, ...] | None = None) -> ModelConfig:
    """Execute the config in a throw-away, confined child and return it as data."""
    folder = child_folder(work, 'config_child', submission)
    result = run_child('frugalbench.model.config_reader',
                       [path_in_copy(submission.config_path, submission), 'config.json'],
                       limits=replace(limits, timeout_s=min(limits.or_defaults().timeout_s, CONFIG_READ_TIMEOUT_S)),
                       log_path=work / 'config_reader.log',
                       confine=Confinement(folder, protected if protected is not None else protected_folders()))
    out = work / 'config.json'
    text = read_child_output(folder / 'config.json', folder).decode()
    out.write_text(text)
    shutil.rmtree(folder, ignore_errors=True)
    done = result.last('done') or {}
    return ModelConfig(path=out, sha256=hashlib.sha256(text.encode()).hexdigest(),
                       custom_imports=tuple(done.get('custom_imports', ())))


def _stage_images(images: list[Path], folder: Path) -> list[str]:
    """Copy the test images (never their annotations) into the child's folder, named by index."""
    (folder / 'images').mkdir()
    names = []
    for index, image in enumerate(images):
        name = f'images/{index:06d}{image.suffix.lower()}'
        shutil.copyfile(image, folder / name)
        names.append(name)
    return names


def predict(submission: Submission, config: ModelConfig, benchmark: Benchmark, images: list[Path],
            work: Path, limits: Limits, device: str = 'cpu',
            on_progress: Callable[[int, int], None] | None = None, measure: bool = False,
            protocol_path: Path | None = None, protected: tuple[Path, ...] | None = None) -> Predictions:
    """Run the model over ``images`` in a confined child; only copies of the images reach it."""
    folder = child_folder(work, 'model_child', submission)
    shutil.copyfile(config.path, folder / 'config.json')
    if protocol_path is not None:
        shutil.copyfile(protocol_path, folder / 'protocol.yaml')
    (folder / 'predictions').mkdir()
    request = dict(config='config.json', checkpoint=path_in_copy(submission.checkpoint_path, submission),
                   images=_stage_images(images, folder), out_dir='predictions', device=device,
                   threads=limits.threads, num_classes=benchmark.num_classes,
                   pipeline=evaluation_pipeline(benchmark),
                   code_dir='submission' if config.custom_code else None,
                   measure=measure, protocol_path='protocol.yaml' if protocol_path else None)
    (folder / 'request.json').write_text(json.dumps(request))

    reply_read, reply_write = os.pipe() if measure else (None, None)
    outside = (OutsideInstructionCounter(load_protocol(protocol_path), reply_write)
               if reply_write is not None else None)

    def on_event(event: dict) -> None:
        if outside is not None:
            outside.on_event(event)
        if on_progress is None:
            return
        if event.get('event') == 'progress':
            on_progress(int(event['done']), int(event['total']))
        elif event.get('event') == 'stage':
            on_progress(0, 0)

    counters = open_rapl_counter_files() if measure else {}
    env = {INHERITED_COUNTERS_ENV: json.dumps(counters)} if counters else {}
    if reply_read is not None:
        env[REPLY_FD_ENV] = str(reply_read)
    inherited = (*counters.values(), *((reply_read,) if reply_read is not None else ()))
    try:
        result = run_child('frugalbench.model.worker', ['request.json'], limits=limits,
                           log_path=work / 'worker.log', on_event=on_event,
                           confine=Confinement(folder, protected if protected is not None else protected_folders()),
                           extra_env=env or None, pass_fds=inherited,
                           on_start=outside.attach_to if outside is not None else None)
    finally:
        for handle in (*inherited, *((reply_write,) if reply_write is not None else ())):
            os.close(handle)
    done = result.last('done') or {}
    measured = result.last('measurements') or {}
    items = list(measured.get('items', []))
    if outside is not None and outside.measurement is not None:
        items.append(outside.measurement.to_dict())
    return Predictions(folder=folder / 'predictions', count=len(images), params=int(done.get('params', 0)),
                       child=result, measurements=items,
                       measurement_timings=dict(measured.get('timings', {})),
                       protocol={k: measured[k] for k in ('protocol_version', 'protocol_sha256') if k in measured})
