"""Submission folders: the manifest schema (``submission.yaml``) and its validation.

A submission is a self-contained folder ``submissions/<id>/``::

    submission.yaml   the manifest (this schema)
    config.py         an MMSeg config (may inherit zoo configs with ``mmseg::``)
    model.pth         a plain state dict (tensors only), loaded with weights_only=True

Every path in the manifest is relative to the folder and must stay inside it.

The parent reads files of a submission folder as a stranger's files (``read_folder_file``): never
through a symbolic link (the manifest included: opened with ``O_NOFOLLOW``), never a hard link, a
FIFO or a device, and never more than a stated size (``MAX_MANIFEST_BYTES`` for
``submission.yaml``, ``MAX_RECORD_BYTES`` for ``training_record.json``). The manifest is read by
a YAML loader that refuses aliases and anchors (``ManifestLoader``), so a small file cannot expand.
An error names the file and the problem, never the content of a file outside the folder.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from frugalbench.errors import SubmissionError

MANIFEST_NAME = 'submission.yaml'
RECORD_NAME = 'training_record.json'  # what `frugalbench train` writes beside the checkpoint
MAX_MANIFEST_BYTES = 64 * 1024        # submission.yaml
MAX_RECORD_BYTES = 1024 * 1024        # training_record.json (the bundled ones are 7-17 KB)

Technique = Literal['lightweight', 'pruned', 'low-rank', 'quantized', 'distilled',
                    'label-efficient', 'zero-shot', 'other']
AnnotationType = Literal['full', 'coarse', 'scribble', 'points', 'image-tags', 'none']

FIELD_HINTS = {
    'name': 'a short display name, e.g. `name: Fast-SCNN baseline`',
    'authors': 'a list of names, e.g. `authors: [Ada Lovelace]`',
    'description': 'one or two sentences on what the model is',
    'technique': 'one of lightweight, pruned, low-rank, quantized, distilled, label-efficient, zero-shot, other',
    'benchmark': 'a benchmark name, e.g. `benchmark: camvid` (see `frugalbench data list`)',
    'classes': "the class names in the model's output order, e.g. `classes: [sky, building, ...]`",
    'config': 'the MMSeg config file inside the folder, e.g. `config: config.py`',
    'checkpoint': 'the state-dict file inside the folder, e.g. `checkpoint: model.pth`',
    'training': 'what you declare you trained with, e.g. `training: {images: 367, annotation: full}`',
}


class DeclaredTraining(BaseModel):
    """What the submitter declares; shown as declared until the harness trains the model."""

    model_config = ConfigDict(extra='forbid', frozen=True)
    images: int = Field(ge=0)
    annotation: AnnotationType
    notes: str = ''


class Manifest(BaseModel):
    """The schema of ``submission.yaml``."""

    model_config = ConfigDict(extra='forbid', frozen=True)
    name: str = Field(min_length=1, max_length=200)
    authors: list[str] = Field(min_length=1)
    description: str = Field(max_length=5000)
    technique: Technique
    benchmark: str = Field(min_length=1)
    classes: list[str] = Field(min_length=1)
    config: str
    checkpoint: str
    training: DeclaredTraining
    parent: str | None = None  # the submission this one was derived from (compression, fine-tuning)
    compression: dict[str, object] | None = None

    @field_validator('config', 'checkpoint')
    @classmethod
    def _relative_path(cls, value: str) -> str:
        path = Path(value)
        if path.is_absolute() or '..' in path.parts:
            raise ValueError(f'{value!r} must be a path relative to the submission folder, without ".."')
        return value


class _RecordBudget(BaseModel):
    model_config = ConfigDict(extra='ignore', frozen=True)
    images: int = Field(ge=0, strict=True)
    annotation: AnnotationType
    subset_id: str | None = Field(default=None, max_length=200)
    annotator_seconds: float | None = Field(default=None, ge=0)
    labelled_pixels: int | None = Field(default=None, ge=0)
    seed: int | None = None


class _RecordTotals(BaseModel):
    model_config = ConfigDict(extra='ignore', frozen=True)
    wall_seconds: float | None = Field(default=None, ge=0)
    cpu_seconds: float | None = Field(default=None, ge=0)
    energy_joules: float | None = Field(default=None, ge=0)
    energy_method: str | None = Field(default=None, max_length=100)
    energy_measured: bool | None = None


class _RecordHashes(BaseModel):
    model_config = ConfigDict(extra='ignore', frozen=True)
    checkpoint_sha256: str = Field(pattern=r'^[0-9a-f]{64}$')


class ShippedTrainingRecord(BaseModel):
    """The fields of a ``training_record.json`` (as ``frugalbench train`` writes it) that an
    evaluation uses; read from a submission folder, so nothing here is taken as verified."""

    model_config = ConfigDict(extra='ignore', frozen=True)
    training_id: str = Field(min_length=1, max_length=100)
    benchmark: str = Field(min_length=1, max_length=200)
    seed: int | None = None
    iterations: int | None = Field(default=None, ge=0)
    budget: _RecordBudget
    totals: _RecordTotals = _RecordTotals()
    hashes: _RecordHashes


def read_training_record(folder: Path) -> ShippedTrainingRecord | None:
    """The folder's ``training_record.json`` (read like the manifest, at most ``MAX_RECORD_BYTES``),
    None when there is none; SubmissionError when it is unreadable or not a harness record."""
    path = Path(folder) / RECORD_NAME
    if not os.path.lexists(path):
        return None
    data = read_folder_file(Path(folder), RECORD_NAME, MAX_RECORD_BYTES)
    try:
        raw = json.loads(data.decode('utf-8'))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SubmissionError(f'{path} is not valid JSON') from None
    if not isinstance(raw, dict):
        raise SubmissionError(f'{path} is not a training record (a JSON object)')
    try:
        return ShippedTrainingRecord(**raw)
    except ValidationError as exc:
        fields = sorted({'.'.join(str(part) for part in error['loc']) for error in exc.errors()})
        raise SubmissionError(f'{path} is not a training record as `frugalbench train` writes it '
                              f'(fields: {", ".join(fields)[:300]})') from None


class Submission(BaseModel):
    """A validated submission: its folder, manifest and resolved files."""

    model_config = ConfigDict(frozen=True)
    id: str
    folder: Path
    manifest: Manifest
    config_path: Path
    checkpoint_path: Path

    def checkpoint_sha256(self) -> str:
        return file_sha256(self.checkpoint_path)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


class ManifestLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases and anchors: a manifest is a small tree, never a graph
    (a few nested aliases expand a 1 KB file to gigabytes)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, 'anchor', None) is not None:
            kind = 'alias (*' if isinstance(event, yaml.AliasEvent) else 'anchor (&'
            raise ManifestAliasError(f'YAML {kind}{event.anchor}) at line {event.start_mark.line + 1}: '
                                     'aliases and anchors are not allowed; write each value out')
        return super().compose_node(parent, index)


class ManifestAliasError(yaml.YAMLError):
    """A manifest used a YAML alias or anchor."""


def read_folder_file(folder: Path, name: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``name`` directly in ``folder``, read without following a link.

    Raises SubmissionError when it is missing, a symbolic or hard link, not a regular file, or
    larger than ``max_bytes``; the message never holds the file's content.
    """
    if '/' in name or name in ('', '.', '..'):
        raise SubmissionError(f'{name!r} is not a file name')
    folder = Path(folder)
    if folder.is_symlink():
        raise SubmissionError(f'{folder} is a symbolic link: pass the submission folder itself')
    path = folder.resolve() / name
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SubmissionError(f'{path} is missing') from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SubmissionError(f'{path} is a symbolic link: links are not followed, even inside the '
                                  'folder; put the file itself there') from None
        raise SubmissionError(f'{path} cannot be opened ({os.strerror(exc.errno or 0)})') from None
    with os.fdopen(fd, 'rb') as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionError(f'{path} is not a regular file')
        if info.st_nlink > 1:
            raise SubmissionError(f'{path} is a hard link ({info.st_nlink} names): put a copy of the file there')
        if info.st_size > max_bytes:
            raise SubmissionError(f'{path} is {info.st_size:,} bytes; at most {max_bytes:,} are read')
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SubmissionError(f'{path} is larger than {max_bytes:,} bytes; at most {max_bytes:,} are read')
    return data


def load_submission(folder: Path) -> Submission:
    """Read and validate a submission folder, or raise SubmissionError naming the field and fix."""
    folder = Path(folder)
    if folder.is_symlink():
        raise SubmissionError(f'{folder} is a symbolic link: pass the submission folder itself')
    if not folder.is_dir():
        raise SubmissionError(f'{folder} is not a folder: pass a submission folder such as submissions/<id>')
    manifest = _read_manifest(folder / MANIFEST_NAME)
    return Submission(
        id=folder.resolve().name, folder=folder.resolve(), manifest=manifest,
        config_path=_inside(folder, manifest.config, 'config'),
        checkpoint_path=_inside(folder, manifest.checkpoint, 'checkpoint'))


def read_manifest_loosely(folder: Path) -> dict[str, object]:
    """The manifest's raw mapping, or {} when it cannot be read safely (to label a failed run)."""
    try:
        raw = _parse_manifest(Path(folder) / MANIFEST_NAME)
    except SubmissionError:
        return {}
    return raw if isinstance(raw, dict) else {}


def _parse_manifest(path: Path) -> object:
    """The manifest's YAML as data (``read_folder_file``, ``ManifestLoader``), or SubmissionError."""
    try:
        data = read_folder_file(path.parent, path.name, MAX_MANIFEST_BYTES)
    except SubmissionError as exc:
        if not path.parent.is_symlink() and not os.path.lexists(path):
            raise SubmissionError(f'{path} is missing: every submission folder needs a {MANIFEST_NAME}') from None
        raise exc from None
    try:
        return yaml.load(data.decode('utf-8'), Loader=ManifestLoader)  # noqa: S506 (a safe loader)
    except ManifestAliasError as exc:
        raise SubmissionError(f'{path}: {exc}') from None
    except yaml.YAMLError as exc:
        where = getattr(exc, 'problem_mark', None)
        line = f' at line {where.line + 1}' if where is not None else ''
        raise SubmissionError(f'{path} is not valid YAML{line}: fix its syntax') from None
    except UnicodeDecodeError:
        raise SubmissionError(f'{path} is not UTF-8 text') from None
    except RecursionError:
        raise SubmissionError(f'{path} is nested too deeply: a manifest is a flat mapping') from None
    except ValueError:  # e.g. an integer of more digits than Python converts
        raise SubmissionError(f'{path} holds a value YAML cannot convert (a number far too long?)') from None


def _read_manifest(path: Path) -> Manifest:
    raw = _parse_manifest(path)
    if not isinstance(raw, dict):
        raise SubmissionError(f'{path} must be a mapping of keys ({", ".join(FIELD_HINTS)})')
    try:
        return Manifest(**raw)
    except ValidationError as exc:
        raise SubmissionError(f'{path}: {_describe(exc)}') from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = '.'.join(str(part) for part in error['loc'])
        top = str(error['loc'][0]) if error['loc'] else ''
        if error['type'] == 'missing':
            problem = f'field {field!r} is missing'
        elif error['type'] == 'extra_forbidden':
            problem = f'unknown field {field!r} (allowed: {", ".join(Manifest.model_fields)})'
        else:
            problem = f'field {field!r}: {error["msg"]}'
        hint = FIELD_HINTS.get(top)
        problems.append(f'{problem}; expected {hint}' if hint and error['type'] != 'extra_forbidden' else problem)
    return '; '.join(problems)


# Cascades (issue 19, docs/cascades.md): a manifest naming other submissions; it ships no weights.
GateStatistic = Literal['mean_max_prob', 'fraction_below']
CascadeResource = Literal['latency_ms', 'macs', 'energy_joules_per_image']


class CascadeGate(BaseModel):
    """An image-level statistic of a member's softmax output, computed by the harness from its
    confidence histogram: ``mean_max_prob`` (escalate when under the threshold) or
    ``fraction_below`` (the fraction of pixels whose max probability is under ``level``; escalate
    when over the threshold)."""

    model_config = ConfigDict(extra='forbid', frozen=True)
    statistic: GateStatistic
    level: float = Field(default=0.5, gt=0.0, le=1.0)


class CascadeBudget(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)
    resource: CascadeResource
    value: float = Field(gt=0)


class CascadePolicy(BaseModel):
    """Either a budget (thresholds fitted on val) or explicit thresholds, one per gate."""

    model_config = ConfigDict(extra='forbid', frozen=True)
    budget: CascadeBudget | None = None
    thresholds: list[float] | None = None

    @model_validator(mode='after')
    def _one_of(self) -> CascadePolicy:
        if (self.budget is None) == (self.thresholds is None):
            raise ValueError('give exactly one of `budget: {resource, value}` or `thresholds: [...]`')
        return self


class CascadeManifest(BaseModel):
    """The schema of a cascade's ``submission.yaml`` (``technique: cascade``)."""

    model_config = ConfigDict(extra='forbid', frozen=True)
    name: str = Field(min_length=1, max_length=200)
    authors: list[str] = Field(min_length=1)
    description: str = Field(max_length=5000)
    technique: Literal['cascade']
    benchmark: str = Field(min_length=1)
    members: list[str] = Field(min_length=2, max_length=4)
    gate: CascadeGate
    policy: CascadePolicy

    @field_validator('members')
    @classmethod
    def _member_ids(cls, value: list[str]) -> list[str]:
        for member in value:
            if not member or '/' in member or member in ('.', '..') or member.startswith('.'):
                raise ValueError(f'{member!r} is not a submission id (a folder name beside the cascade)')
        if len(set(value)) != len(value):
            raise ValueError('a member is named twice')
        return value

    @model_validator(mode='after')
    def _threshold_count(self) -> CascadeManifest:
        thresholds = self.policy.thresholds
        if thresholds is not None and len(thresholds) != len(self.members) - 1:
            raise ValueError(f'policy.thresholds: {len(self.members) - 1} values expected (one per member but '
                             f'the last), got {len(thresholds)}')
        return self


def is_cascade_folder(folder: Path) -> bool:
    """Whether the folder's manifest (read safely) says ``technique: cascade``."""
    return read_manifest_loosely(Path(folder)).get('technique') == 'cascade'


def load_cascade_manifest(folder: Path) -> CascadeManifest:
    """A cascade folder's manifest, validated, or SubmissionError naming the field and the fix."""
    path = Path(folder) / MANIFEST_NAME
    raw = _parse_manifest(path)
    if not isinstance(raw, dict):
        raise SubmissionError(f'{path} must be a mapping of keys ({", ".join(CascadeManifest.model_fields)})')
    try:
        return CascadeManifest(**raw)
    except ValidationError as exc:
        problems = ['.'.join(str(p) for p in e['loc']) + ': ' + e['msg'] for e in exc.errors()]
        raise SubmissionError(f'{path}: {"; ".join(problems)} (docs/cascades.md shows a cascade manifest)') from None


def _inside(folder: Path, relative: str, field: str) -> Path:
    """Resolve a manifest path, refusing anything (including links) that leaves the folder."""
    root = folder.resolve()
    path = (folder / relative)
    resolved = path.resolve()
    if not resolved.is_relative_to(root):
        raise SubmissionError(f'field {field!r}: {relative!r} points outside the submission folder '
                              f'(to {resolved}); keep every file inside {root}')
    if not resolved.is_file():
        raise SubmissionError(f'field {field!r}: file {relative!r} not found in {root}; add it or fix the path')
    return resolved
