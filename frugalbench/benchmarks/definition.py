"""The benchmark definition schema and its loader.

A benchmark file (YAML) declares where the data is and how it is laid out, its splits,
classes, ignore index and evaluation size, the reference values that frugality scores are
normalised by (``references``), named budget tracks (``tracks``), and, for a benchmark the
project generates itself, the generator's settings (``generator``).
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import yaml
from PIL import Image
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from frugalbench.benchmarks.sources import MANUAL_STEPS as MANUAL_DOWNLOADS
from frugalbench.benchmarks.sources import SOURCES as DOWNLOADS
from frugalbench.errors import BenchmarkError
from frugalbench.settings import PROJECT_ROOT, data_dir

BUILTIN_DIR = Path(__file__).resolve().parent
PREPARED_DIR_NAME = 'prepared'  # $FRUGALBENCH_DATA/prepared/<name>.json: roots recorded by `data prepare`

# Annotation types a model may be trained with, strongest first (same names as submission.yaml).
AnnotationKind = Literal['full', 'coarse', 'scribble', 'points', 'image-tags', 'none']
ANNOTATION_KINDS: tuple[str, ...] = get_args(AnnotationKind)

# Resources that frugality scores are normalised by (the keys allowed under ``references``).
REFERENCE_KEYS: tuple[str, ...] = (
    'train_images',            # images in the training set
    'annotation_seconds',      # estimated annotator seconds for the training labels
    'train_seconds',           # wall-clock training time
    'train_energy_joules',     # energy of the whole training run
    'macs',                    # multiply-accumulates per image at eval_size
    'params',                  # model parameters
    'latency_ms',              # inference latency per image
    'peak_rss_mb',             # peak resident memory at inference
    'energy_joules_per_image',  # inference energy per image
)


class Sample(BaseModel):
    """One image of a split and its annotation file."""

    model_config = ConfigDict(frozen=True)
    image: Path
    annotation: Path

    @property
    def name(self) -> str:
        return self.image.name


class Track(BaseModel):
    """A named budget track: inclusive limits a run must meet to be ranked in it (unset: no limit).

    This is the file's schema only; ``frugalbench.scores.tracks`` decides who qualifies (reading
    the fields a file set). One ``max_<resource>`` per key of ``REFERENCE_KEYS``.
    """

    model_config = ConfigDict(frozen=True, extra='forbid', populate_by_name=True)
    description: str = ''
    max_train_images: float | None = Field(default=None, ge=0)
    max_annotation_seconds: float | None = Field(default=None, ge=0)
    max_train_energy_joules: float | None = Field(default=None, ge=0)
    max_train_seconds: float | None = Field(default=None, ge=0)
    max_macs: float | None = Field(default=None, ge=0)
    max_params: float | None = Field(default=None, ge=0)
    max_latency_ms: float | None = Field(default=None, ge=0)
    max_peak_rss_mb: float | None = Field(default=None, ge=0)
    max_energy_joules_per_image: float | None = Field(default=None, ge=0)
    annotation_types: list[AnnotationKind] | None = Field(
        default=None, min_length=1, validation_alias=AliasChoices('annotation_types', 'allowed_annotations'))
    requires_verified_budget: bool = False
    # budget states a data/annotation-limited track admits (default: verified only); docs/metrics.md
    budget_states: list[Literal['verified', 'recorded', 'declared']] | None = Field(default=None, min_length=1)


class ZeroShotSplit(BaseModel):
    """A zero-shot split: classes whose pixels training may not use (docs/zero-shot.md)."""

    model_config = ConfigDict(frozen=True, extra='forbid')
    unseen: list[str] = Field(min_length=1)
    description: str = ''


class AttributeTable(BaseModel):
    """Per-class binary attributes (class-level side information for zero-shot models)."""

    model_config = ConfigDict(frozen=True, extra='forbid')
    names: list[str] = Field(min_length=1)
    descriptions: dict[str, str] = Field(default_factory=dict)   # attribute -> what it means
    classes: dict[str, list[int]]                                # class -> one 0/1 per attribute


class RunLimits(BaseModel):
    """Default limits of the child processes that evaluate and train on this benchmark
    (``--timeout`` / ``--memory-limit`` override them per command)."""

    model_config = ConfigDict(frozen=True, extra='forbid')
    evaluation_timeout_s: float = Field(default=1800.0, gt=0)
    evaluation_memory_mb: int = Field(default=8192, gt=0)
    evaluation_threads: int = Field(default=2, ge=1)   # fixed per benchmark so runs compare across machines
    training_timeout_s: float = Field(default=86400.0, gt=0)
    training_memory_mb: int = Field(default=8192, gt=0)


class GeneratorSpec(BaseModel):
    """Settings of a benchmark that the project generates (``synthetic: true``)."""

    model_config = ConfigDict(frozen=True, extra='forbid')
    seed: int = Field(default=0, ge=0)
    image_size: tuple[int, int] = (128, 128)  # width, height
    split_sizes: dict[str, int]

    @field_validator('split_sizes')
    @classmethod
    def _positive_sizes(cls, value: dict[str, int]) -> dict[str, int]:
        if not value or any(n < 1 for n in value.values()):
            raise ValueError('every split needs at least one image')
        return value


class Benchmark(BaseModel):
    """A benchmark: where its data is, how it is laid out, and how it is evaluated."""

    model_config = ConfigDict(frozen=True, extra='allow')

    name: str
    protocol_version: int = Field(ge=1)
    description: str = ''
    synthetic: bool = False
    root: str | None = None
    root_env: str | None = None
    default_root: str | None = None
    layout: Literal['pair-lists', 'mmseg', 'stem-lists'] = 'mmseg'
    splits: dict[str, str] = Field(default_factory=dict)
    img_suffix: str = '.png'
    seg_suffix: str = '.png'
    # mmseg: <img_dir>/<split folder>/<stem><img_suffix>; stem-lists: <img_dir>/<stem><img_suffix> for
    # each stem of the split's list file (PASCAL VOC's ImageSets); annotations likewise under ann_dir
    img_dir: str = 'img_dir'
    ann_dir: str = 'ann_dir'
    recursive: bool = False   # mmseg: also look in subfolders of a split folder (Cityscapes' cities)
    classes: list[str]
    palette: list[list[int]] | None = None
    ignore_index: int = 255
    label_map: dict[int, int] = Field(default_factory=dict)
    eval_size: tuple[int, int] | None = None  # (width, height); None: native size
    references: dict[str, float] = Field(default_factory=dict)
    tracks: dict[str, Track] = Field(default_factory=dict)
    limits: RunLimits = Field(default_factory=RunLimits)
    generator: GeneratorSpec | None = None
    zero_shot: dict[str, ZeroShotSplit] = Field(default_factory=dict)
    attributes: AttributeTable | None = None
    class_descriptions: dict[str, str] = Field(default_factory=dict)
    source_file: Path | None = None

    @field_validator('references')
    @classmethod
    def _known_references(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(REFERENCE_KEYS))
        if unknown:
            raise ValueError(f'unknown reference(s) {unknown}; allowed: {", ".join(REFERENCE_KEYS)}')
        if any(v <= 0 for v in value.values()):
            raise ValueError('reference values must be positive')
        return value

    @model_validator(mode='after')
    def _generator_matches(self) -> Benchmark:
        if self.generator is not None and not self.synthetic:
            raise ValueError('a benchmark with a `generator:` section must say `synthetic: true`')
        if self.generator is not None and (set(self.generator.split_sizes) != set(self.splits)
                                           or any(k != v for k, v in self.splits.items())):
            raise ValueError('generator.split_sizes must name the same splits as `splits`, '
                             'each generated into the folder of its own name')
        if self.generator is not None and self.layout != 'mmseg':
            raise ValueError('generated benchmarks use `layout: mmseg`')
        return self

    @model_validator(mode='after')
    def _zero_shot_consistent(self) -> Benchmark:
        known = set(self.classes)
        for name, split in self.zero_shot.items():
            unknown = [c for c in split.unseen if c not in known]
            if unknown:
                raise ValueError(f'zero_shot.{name}.unseen names unknown class(es) {unknown}; classes: {self.classes}')
            if len(set(split.unseen)) >= len(known):
                raise ValueError(f'zero_shot.{name} leaves no seen class')
        for where, names in (('attributes.classes', self.attributes.classes if self.attributes else {}),
                             ('class_descriptions', self.class_descriptions)):
            unknown = sorted(set(names) - known)
            if unknown:
                raise ValueError(f'{where} names unknown class(es) {unknown}')
        if self.attributes is not None:
            missing = [c for c in self.classes if c not in self.attributes.classes]
            if missing:
                raise ValueError(f'attributes.classes has no row for {missing}: give every class one')
            width = len(self.attributes.names)
            for cls, row in self.attributes.classes.items():
                if len(row) != width or any(v not in (0, 1) for v in row):
                    raise ValueError(f'attributes.classes.{cls} must hold {width} values, each 0 or 1')
        return self

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def generated(self) -> bool:
        """True if frugalbench generates this benchmark's data (it has a ``generator:`` section)."""
        return self.generator is not None

    @property
    def definition_hash(self) -> str:
        """sha256 of the benchmark file's bytes (stored with each result)."""
        if self.source_file is None:
            return ''
        return hashlib.sha256(self.source_file.read_bytes()).hexdigest()

    def data_root(self) -> Path:
        """The dataset folder, or a BenchmarkError saying which variable or command fixes it.

        Looked up in order: the ``root_env`` variable when set; the folder recorded by
        ``frugalbench data prepare NAME --source DIR``; ``root`` (relative to
        ``$FRUGALBENCH_DATA``); ``default_root`` (relative to the project).
        """
        candidates = self._root_candidates()
        for candidate in candidates:
            if candidate.is_dir():
                return candidate.resolve()
        tried = ', '.join(str(c) for c in candidates) or 'no location configured'
        raise BenchmarkError(f'data for benchmark {self.name!r} not found ({tried}): {self.missing_hint()}')

    def _root_candidates(self) -> list[Path]:
        if self.root_env and os.environ.get(self.root_env):
            return [Path(os.environ[self.root_env])]  # an explicit variable is never second-guessed
        candidates = []
        recorded = recorded_root(self.name)
        if recorded is not None:
            candidates.append(recorded)
        if self.root:
            root = Path(self.root).expanduser()
            candidates.append(root if root.is_absolute() else data_dir() / root)
        if self.default_root:
            candidates.append(PROJECT_ROOT / self.default_root)
        return candidates

    def missing_hint(self) -> str:
        """What to do when the data folder is missing (the command or variable that fixes it)."""
        if self.generated:
            return f'run `frugalbench data prepare {self.name}` to generate it'
        fetch = ''
        if self.name in DOWNLOADS:
            fetch = f'download it with `frugalbench data download {self.name}`, or '
        elif self.name in MANUAL_DOWNLOADS:
            fetch = f'get it as `frugalbench data download {self.name}` explains, then '
        if self.root_env:
            return (f'{fetch}set {self.root_env} to the folder that holds it, or run '
                    f'`frugalbench data prepare {self.name} --source DIR`')
        return (f'{fetch}run `frugalbench data prepare {self.name} --source DIR`, or fix `root:` in '
                f'{self.source_file or "its benchmark file"}')

    def samples(self, split: str, root: Path | None = None) -> list[Sample]:
        """All (image, annotation) pairs of a split, in a stable order (``root``: instead of data_root())."""
        if split not in self.splits:
            raise BenchmarkError(
                f'benchmark {self.name!r} has no split {split!r}; it has {sorted(self.splits)}')
        root = self.data_root() if root is None else root
        if self.layout == 'pair-lists':
            samples = self._samples_from_pair_list(root, self.splits[split])
        elif self.layout == 'stem-lists':
            samples = self._samples_from_stem_list(root, self.splits[split])
        else:
            samples = self._samples_from_mmseg_folders(root, self.splits[split])
        if not samples:
            raise BenchmarkError(f'split {split!r} of benchmark {self.name!r} is empty under {root}')
        return samples

    def read_label(self, sample: Sample) -> np.ndarray:
        """A sample's label map as (H, W) uint8 with ``label_map`` applied (e.g. CamVid 11 -> 255)."""
        try:
            with Image.open(sample.annotation) as img:
                label = np.asarray(img)
        except FileNotFoundError:
            raise BenchmarkError(f'annotation {sample.annotation} is missing') from None
        except OSError as exc:
            raise BenchmarkError(f'annotation {sample.annotation} cannot be read: {exc}') from None
        if label.ndim != 2:
            raise BenchmarkError(f'annotation {sample.annotation} must be a single-channel class-index PNG, '
                                 f'got shape {label.shape} (convert colour-coded masks to class indices)')
        if label.dtype != np.uint8:
            if label.size and (label.min() < 0 or label.max() > 255):
                raise BenchmarkError(f'annotation {sample.annotation} has labels outside 0..255')
            label = label.astype(np.uint8)
        if self.label_map:
            lut = np.arange(256, dtype=np.uint8)
            for source, target in self.label_map.items():
                lut[source] = target
            label = lut[label]
        return label

    def _samples_from_pair_list(self, root: Path, list_file: str) -> list[Sample]:
        path = root / list_file
        if not path.is_file():
            raise BenchmarkError(f'split list {path} is missing: is {root} a {self.name} dataset?')
        samples = []
        for line_number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise BenchmarkError(f'{path}:{line_number}: expected "image annotation", got {line!r}')
            image, annotation = (root / p.lstrip('/') for p in parts)
            samples.append(Sample(image=image, annotation=annotation))
        return samples

    def _samples_from_mmseg_folders(self, root: Path, split_dir: str) -> list[Sample]:
        img_dir, ann_dir = root / self.img_dir / split_dir, root / self.ann_dir / split_dir
        if not img_dir.is_dir() or not ann_dir.is_dir():
            raise BenchmarkError(
                f'expected MMSeg layout {img_dir} and {ann_dir}: check the benchmark root of {self.name!r}')
        samples = []
        pattern = f'*{self.img_suffix}'
        for image in sorted(img_dir.rglob(pattern) if self.recursive else img_dir.glob(pattern)):
            stem = image.name[:-len(self.img_suffix)]
            folder = ann_dir / image.parent.relative_to(img_dir)
            samples.append(Sample(image=image, annotation=folder / f'{stem}{self.seg_suffix}'))
        return samples

    def _samples_from_stem_list(self, root: Path, list_file: str) -> list[Sample]:
        path = root / list_file
        if not path.is_file():
            raise BenchmarkError(f'split list {path} is missing: is {root} a {self.name} dataset?')
        stems = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        bad = next((s for s in stems if len(s.split()) != 1 or '/' in s or s.startswith('.')), None)
        if bad is not None:
            raise BenchmarkError(f'{path}: expected one file stem per line, got {bad!r}')
        return [Sample(image=root / self.img_dir / f'{stem}{self.img_suffix}',
                       annotation=root / self.ann_dir / f'{stem}{self.seg_suffix}') for stem in stems]


def recorded_root(name: str) -> Path | None:
    """The data folder that ``frugalbench data prepare NAME --source DIR`` recorded, if any."""
    record = data_dir() / PREPARED_DIR_NAME / f'{name}.json'
    if not record.is_file():
        return None
    try:
        root = json.loads(record.read_text()).get('source')
    except (json.JSONDecodeError, AttributeError):
        raise BenchmarkError(f'{record} is not a valid record: delete it and run '
                             f'`frugalbench data prepare {name}` again') from None
    return Path(root) if root else None


def user_benchmark_dir() -> Path:
    """Where user benchmark files live (``$FRUGALBENCH_DATA/benchmarks``); they override built-ins."""
    return data_dir() / 'benchmarks'


def benchmark_files() -> dict[str, Path]:
    """Benchmark name -> its definition file; user files under the data folder override built-ins."""
    files = {p.stem: p for p in sorted(BUILTIN_DIR.glob('*.yaml'))}
    user_dir = user_benchmark_dir()
    if user_dir.is_dir():
        files.update({p.stem: p for p in sorted(user_dir.glob('*.yaml'))})
    return files


def list_benchmarks() -> list[Benchmark]:
    """Every benchmark, built-in and user-defined, by name."""
    return [load_benchmark(name) for name in benchmark_files()]


def load_benchmark(name: str) -> Benchmark:
    """Load a benchmark by name, with a 'did you mean' on unknown names."""
    files = benchmark_files()
    if name not in files:
        close = difflib.get_close_matches(name, files, n=1)
        hint = f' Did you mean {close[0]!r}?' if close else ''
        raise BenchmarkError(f'unknown benchmark {name!r}.{hint} Known: {", ".join(sorted(files))}')
    return load_benchmark_file(files[name])


def load_benchmark_file(path: Path) -> Benchmark:
    """Load and validate one benchmark file; the name inside must match the file name."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BenchmarkError(f'benchmark file {path} is not valid YAML: {exc}') from None
    if not isinstance(raw, dict):
        raise BenchmarkError(f'benchmark file {path} must hold a mapping of keys')
    if raw.get('name') != path.stem:
        raise BenchmarkError(f'benchmark file {path} must say `name: {path.stem}` (its file name)')
    try:
        return Benchmark(**raw, source_file=path)
    except ValidationError as exc:
        problems = '; '.join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BenchmarkError(f'benchmark file {path} is invalid: {problems}') from None
