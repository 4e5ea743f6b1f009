"""The model stage: read a submission's config and run its model, each in a confined child.

The parent process (this module) never executes submission code. `read_config` executes the
config in a throw-away child and keeps it as data; `start_model` starts the model worker (which
loads torch and MMSeg while the config is read), `ModelProcess.load` sends it the config, and
from then on the model only answers queries: the parent sends an encoded test image, times the
answer on its own clock and checks it with `read_answer` (size, shape, values) before anything
scores it. Benchmark data, results and work folders are hidden from every child
(``protected_folders``): the model process never sees an annotation file.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from frugalbench.benchmarks import Benchmark, list_benchmarks
from frugalbench.confinement import unreadable_entries
from frugalbench.errors import ChildProcessError_, FrugalbenchError, OutputError, SubmissionError
from frugalbench.frames import Frame
from frugalbench.isolation import ChildResult, ChildSession, Confinement, Limits, finish_child, start_child
from frugalbench.settings import data_dir, default_db_path, work_dir
from frugalbench.submission import Submission
from frugalbench.zero_shot.splits import dataset_meta

CONFIG_READ_TIMEOUT_S = 120.0  # reading a config takes seconds; a hang is stopped here
MAX_CONFIG_BYTES = 4 << 20
MAX_IMAGE_BYTES = 64 << 20

__all__ = ['ModelConfig', 'ModelProcess', 'read_config', 'start_config_reader', 'config_from', 'start_model', 'read_answer', 'read_confidence',
           'evaluation_pipeline',
           'protected_folders', 'path_in_view', 'check_readable']


@dataclass(frozen=True)
class ModelConfig:
    """A submission's config, executed in a child and kept as plain data."""

    text: str            # the canonical JSON dump
    sha256: str          # hash of ``text``
    custom_imports: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> ModelConfig:
        """Parse the child's dump; the parent alone decides from it whether submission code runs."""
        try:
            data = json.loads(text)
        except ValueError:
            raise SubmissionError('the config reader sent something that is not JSON (refused)') from None
        if not isinstance(data, dict):
            raise SubmissionError('the config is not a mapping')
        custom = data.get('custom_imports')
        imports = custom.get('imports') if isinstance(custom, dict) else None
        if custom is not None and not (isinstance(imports, list) and all(isinstance(m, str) for m in imports)):
            raise SubmissionError("custom_imports must be dict(imports=['module', ...]) in the config")
        return cls(text=text, sha256=hashlib.sha256(text.encode()).hexdigest(),
                   custom_imports=tuple(imports or ()))

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.text)

    @property
    def custom_code(self) -> bool:
        return bool(self.custom_imports)

    def architecture(self) -> str | None:
        """'<backbone type> + <decode head type>' from the config (compressed variants keep their
        parent's), for grouping runs of one architecture; None when the config does not say."""
        model = self.data.get('model') or {}
        if not isinstance(model, dict):
            return None
        parts = [(model.get(key) or {}).get('type') if isinstance(model.get(key), dict) else None
                 for key in ('backbone', 'decode_head')]
        return ' + '.join(str(p) for p in parts if p) or None


def evaluation_pipeline(benchmark: Benchmark) -> list[dict]:
    """The test-time data pipeline the benchmark fixes (a submission's own is ignored).

    The model process receives encoded images, decodes each as ``LoadImageFromFile`` does and
    runs the steps after it.
    """
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


def check_readable(submission: Submission) -> None:
    """The model process runs as a user of its own: every file it needs must be readable by others."""
    unreadable = unreadable_entries(submission.folder)
    if unreadable:
        raise SubmissionError(f'the model process cannot read {", ".join(unreadable)}: it runs as an unprivileged '
                              f'user of its own; make the folder readable: chmod -R o+rX {submission.folder}')


def path_in_view(path: Path, submission: Submission) -> str:
    """``path`` (inside the submission) as the child sees it: relative to its ``submission/`` view."""
    return str(Path('submission') / path.resolve().relative_to(submission.folder.resolve()))


def read_config(submission: Submission, work: Path, limits: Limits,
                protected: tuple[Path, ...] | None = None) -> ModelConfig:
    """Execute the config in a throw-away, confined child and return it as data."""
    return config_from(start_config_reader(submission, work, limits, protected))


def start_config_reader(submission: Submission, work: Path, limits: Limits,
                        protected: tuple[Path, ...] | None = None) -> ChildSession:
    """Start ``read_config``'s child and return at once: the caller works on, then calls ``config_from``."""
    check_readable(submission)
    return start_child('frugalbench.model.config_reader',
                       {'config': path_in_view(submission.config_path, submission)},
                       limits=replace(limits, timeout_s=min(limits.or_defaults().timeout_s, CONFIG_READ_TIMEOUT_S)),
                       log_path=work / 'config_reader.log', max_payload=MAX_CONFIG_BYTES,
                       confine=Confinement(submission.folder, protected if protected is not None
                                           else protected_folders()),
                       doing='reading the config')


def config_from(reader: ChildSession) -> ModelConfig:
    """The config a started reader sends, as data (the reader is closed whatever happens)."""
    result = finish_child(reader)
    data = result.files.get('config.json')
    if data is None or result.last('done') is None:
        raise ChildProcessError_('the config reader ended without sending the config')
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise SubmissionError('the config reader sent a config that is not UTF-8 text (refused)') from None
    return ModelConfig.from_text(text)


def read_answer(frame: Frame, query_id: int, shape: tuple[int, int], num_classes: int,
                ignore_index: int) -> np.ndarray:
    """The one reader of model answers: a label map of ``shape`` with values that are classes or ignore."""
    height, width = frame.get('height'), frame.get('width')
    if frame.kind != 'answer' or frame.get('id') != query_id:
        raise OutputError(f'the model answered {frame.kind[:40]!r} (id {str(frame.get("id"))[:20]}) to query '
                          f'{query_id}: answers must come in order, one per query')
    if (height, width) != shape:
        raise OutputError(f'the prediction is {str(height)[:12]} x {str(width)[:12]} pixels; the image is '
                          f'{shape[0]} x {shape[1]} (predictions must be at the image\'s own size)')
    if len(frame.payload) != shape[0] * shape[1]:
        raise OutputError(f'the prediction holds {len(frame.payload)} bytes for {shape[0] * shape[1]} pixels '
                          '(one uint8 class index per pixel)')
    labels = np.frombuffer(frame.payload, dtype=np.uint8).reshape(shape)
    bad = (labels >= num_classes) & (labels != ignore_index)
    if bad.any():
        raise OutputError(f'the prediction holds class index {int(labels[bad].max())} ({int(bad.sum())} pixels); '
                          f'valid values are 0-{num_classes - 1} (or {ignore_index}, ignore)')
    return labels


def read_confidence(frame: Frame, shape: tuple[int, int], bins: int) -> np.ndarray:
    """The confidence histogram of an answer (``query`` with ``confidence_bins``): ``bins`` non-negative
    integer pixel counts that sum to the label map's pixels, or OutputError naming what is wrong."""
    counts = frame.get('confidence')
    if not isinstance(counts, list) or len(counts) != bins:
        size = len(counts) if isinstance(counts, list) else type(counts).__name__
        raise OutputError(f'the model answered without a confidence histogram of {bins} bins (got {str(size)[:20]}); '
                          'the gate of a cascade needs one per answer')
    if not all(type(c) is int and c >= 0 for c in counts):
        raise OutputError('the confidence histogram holds values that are not non-negative integers (refused)')
    if sum(counts) != shape[0] * shape[1]:
        raise OutputError(f'the confidence histogram counts {sum(counts)} pixels for a {shape[0]} x {shape[1]} '
                          'label map (refused)')
    return np.array(counts, dtype=np.int64)


class ModelProcess:
    """The parent's handle on a running model worker: load it, query it, count it, close it."""

    def __init__(self, session: ChildSession, benchmark: Benchmark, limits: Limits) -> None:
        self.session = session
        self.benchmark = benchmark
        self.limits = limits
        self._next_id = 0

    @property
    def pid(self) -> int:
        return self.session.pid

    def cpu_seconds(self) -> float | None:
        """CPU seconds the kernel accounted to the model process (its whole group where there is one)."""
        return self.session.cpu_seconds()

    def load(self, submission: Submission, config: ModelConfig, device: str) -> None:
        """Send the config and wait until the model is built and its weights loaded."""
        request = dict(checkpoint=path_in_view(submission.checkpoint_path, submission), device=device,
                       threads=self.limits.threads, num_classes=self.benchmark.num_classes,
                       pipeline=evaluation_pipeline(self.benchmark)[1:],  # after decoding
                       code_dir='submission' if config.custom_code else None,
                       dataset_meta=dataset_meta(self.benchmark))  # class names etc.: docs/zero-shot.md
        self.session.send('request', config.text.encode(), **request)
        self.session.expect('ready')

    def answer(self, image: bytes, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
        """The model's label map for one encoded image, and the seconds it took on the parent's clock."""
        labels, _, seconds = self.answer_with_confidence(image, shape, 0)
        return labels, seconds

    def answer_with_confidence(self, image: bytes, shape: tuple[int, int],
                               bins: int) -> tuple[np.ndarray, np.ndarray | None, float]:
        """``answer``, plus (``bins`` > 0) the answer's validated confidence histogram (``read_confidence``)."""
        query_id = self._next_id
        self._next_id += 1
        extra = {'confidence_bins': bins} if bins else {}
        started = time.perf_counter()
        self.session.send('query', image, id=query_id, **extra)
        frame = self.session.expect('answer')
        seconds = time.perf_counter() - started
        labels = read_answer(frame, query_id, shape, self.benchmark.num_classes, self.benchmark.ignore_index)
        return labels, (read_confidence(frame, shape, bins) if bins else None), seconds

    def count(self, image: bytes) -> list[dict[str, Any]]:
        """Compute counts (MACs, FLOPs) the model process took of its own model, at this image's size."""
        self.session.send('count', image)
        items = self.session.expect('counted').get('items')
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise OutputError('the model process sent compute counts in the wrong form (refused)')
        return items

    def repeat(self, image: bytes, times: int, threads: int) -> None:
        """Forward passes only, for a counter attached from outside."""
        self.session.send('repeat', image, times=times, threads=threads)
        self.session.expect('repeated')

    def finish(self) -> tuple[ChildResult, dict[str, Any]]:
        """Say goodbye, wait for the worker to end, kill whatever it left; its result and ``done`` frame."""
        self.session.send('bye')
        done = self.session.expect('done')
        if self.session.receive() is not None:
            raise OutputError('the model process sent messages after done (refused)')
        return self.session.close(), done.header

    def close(self) -> ChildResult:
        return self.session.close()


def start_model(submission: Submission, benchmark: Benchmark, work: Path, limits: Limits,
                protected: tuple[Path, ...] | None = None,
                extra_env: dict[str, str] | None = None) -> ModelProcess:
    """Start the confined model worker; it imports torch and MMSeg while the caller reads the config."""
    check_readable(submission)
    max_answer = max(MAX_IMAGE_BYTES, 16 << 20)
    session = ChildSession('frugalbench.model.worker', limits=limits, log_path=work / 'worker.log',
                           confine=Confinement(submission.folder, protected if protected is not None
                                               else protected_folders()),
                           extra_env=extra_env, max_payload=max_answer, doing='the model process')
    return ModelProcess(session, benchmark, limits)
