"""Submission folders: the manifest schema (``submission.yaml``) and its validation.

A submission is a self-contained folder ``submissions/<id>/``::

    submission.yaml   the manifest (this schema)
    config.py         an MMSeg config (may inherit zoo configs with ``mmseg::``)
    model.pth         a plain state dict (tensors only), loaded with weights_only=True

Every path in the manifest is relative to the folder and must stay inside it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from frugalbench.errors import SubmissionError

MANIFEST_NAME = 'submission.yaml'

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


def load_submission(folder: Path) -> Submission:
    """Read and validate a submission folder, or raise SubmissionError naming the field and fix."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmissionError(f'{folder} is not a folder: pass a submission folder such as submissions/<id>')
    manifest = _read_manifest(folder / MANIFEST_NAME)
    return Submission(
        id=folder.resolve().name, folder=folder.resolve(), manifest=manifest,
        config_path=_inside(folder, manifest.config, 'config'),
        checkpoint_path=_inside(folder, manifest.checkpoint, 'checkpoint'))


def read_manifest_loosely(folder: Path) -> dict[str, object]:
    """The manifest's raw mapping, or {} when unreadable (to label a failed run)."""
    try:
        raw = yaml.safe_load((Path(folder) / MANIFEST_NAME).read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _read_manifest(path: Path) -> Manifest:
    if not path.is_file():
        raise SubmissionError(f'{path} is missing: every submission folder needs a {MANIFEST_NAME}')
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, 'problem_mark', None)
        line = f' at line {where.line + 1}' if where is not None else ''
        raise SubmissionError(f'{path} is not valid YAML{line}: fix its syntax') from None
    except UnicodeDecodeError:
        raise SubmissionError(f'{path} is not UTF-8 text') from None
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
