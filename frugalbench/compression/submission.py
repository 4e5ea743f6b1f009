"""Write a compressed variant as a new, self-contained submission folder::

    submission.yaml            the parent's manifest with technique, parent and compression
    config.py                  model = dict(type='FrugalbenchCompressed', base_type=..., compression_plan=...)
    frugalbench_compressed.py  the rebuild module (a copy of frugalbench/compression/rebuild.py)
    model.pth                  plain state dict (int8 tensors for quantized weights)

plus the parent's own code files when its config has ``custom_imports``. The folder is
evaluated by ``frugalbench evaluate`` like any other: the config reader and the evaluation
worker import ``frugalbench_compressed`` from the folder (``custom_imports``), whose
builder rebuilds the parent model, applies the plan, and the worker then loads ``model.pth``
with ``weights_only=True``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from frugalbench.errors import SubmissionError, UsageError
from frugalbench.submission import MANIFEST_NAME, Manifest, Submission

MODULE_NAME = 'frugalbench_compressed'
CONFIG_NAME = 'config.py'
CHECKPOINT_NAME = 'model.pth'
TECHNIQUES = {'prune': 'pruned', 'low-rank': 'low-rank', 'quantize': 'quantized'}
LINE_WIDTH = 110
REBUILD_SOURCE = Path(__file__).with_name('rebuild.py')
NOT_COPIED = {MANIFEST_NAME, '__pycache__', 'training_record.json', f'{MODULE_NAME}.py'}


def prepare_folder(out: Path, parent: Submission) -> Path:
    """Check that ``out`` is a new (or empty) folder outside the parent; return it resolved."""
    out = Path(out).resolve()
    if out == parent.folder or out.is_relative_to(parent.folder):
        raise UsageError(f'--out {out} is inside the parent submission {parent.folder}: choose a new folder')
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f'--out {out} already exists and is not an empty folder: choose a new folder')
    return out


def config_text(parent_id: str, model: dict[str, Any], custom_imports: list[str],
                train_schedule: dict[str, Any] | None) -> str:
    """The compressed submission's config.py: plain literals only (no _base_, no imports)."""
    lines = [f'# Written by `frugalbench compress` from submission {parent_id!r}.',
             f'# {MODULE_NAME}.py (in this folder) rebuilds the parent model and applies compression_plan',
             '# before the checkpoint is loaded; see docs/compression.md.',
             f'custom_imports = dict(imports={custom_imports!r}, allow_failed_imports=False)',
             f'model = {python_literal(model, lead=8)}']
    if train_schedule:
        lines.append(f'train_schedule = {python_literal(train_schedule, lead=17)}')
    return '\n'.join(lines) + '\n'


def python_literal(value: Any, indent: int = 0, lead: int = 0, width: int = LINE_WIDTH) -> str:
    """``repr`` of plain data, one item per line where a line (``lead`` characters already on it) would be too long."""
    text = repr(value)
    if indent + lead + len(text) <= width or not isinstance(value, (dict, list, tuple)) or not value:
        return text
    pad = ' ' * (indent + 4)
    if isinstance(value, dict):
        items = [f'{pad}{key!r}: {python_literal(item, indent + 4, len(repr(key)) + 2, width)}'
                 for key, item in value.items()]
        opening, closing = '{', '}'
    else:
        items = [pad + python_literal(item, indent + 4, 0, width) for item in value]
        opening, closing = ('[', ']') if isinstance(value, list) else ('(', ')')
    return opening + '\n' + ',\n'.join(items) + ',\n' + ' ' * indent + closing


def manifest_for(parent: Submission, steps: list[dict[str, Any]], compression: dict[str, Any]) -> Manifest:
    """The variant's manifest: the parent's, with a new name, technique, parent and compression."""
    base = parent.manifest
    label = method_label(steps)
    finetune = compression.get('finetune')
    if finetune:
        label += f' + fine-tuned {finetune["iters"]} iterations'
    training = base.training.model_dump()
    training['notes'] = (f'declared for parent {parent.id}; compressed with frugalbench compress ({label})'
                         + ('; fine-tuned by frugalbench train from the compressed weights on the same budget '
                            '(training_record.json)' if finetune else ', no retraining'))
    data = {**base.model_dump(), 'name': f'{base.name} [{label}]'[:200],
            'description': f'{label} of submission {parent.id}. {base.description}'[:5000],
            'technique': TECHNIQUES[steps[0]['method']], 'config': CONFIG_NAME, 'checkpoint': CHECKPOINT_NAME,
            'training': training, 'parent': parent.id, 'compression': _plain(compression)}
    try:
        return Manifest(**data)
    except ValidationError as exc:  # a bug here, not the user's
        raise SubmissionError(f'the compressed manifest is invalid: {exc.errors()[0]["msg"]}') from None


def method_label(steps: list[dict[str, Any]]) -> str:
    parts = []
    for step in steps:
        method = step['method']
        if method == 'prune':
            parts.append(f'{"structured" if step.get("structured") else "unstructured"} pruning {step["ratio"]}')
        elif method == 'low-rank':
            parts.append(f'low-rank energy {step["energy"]}' if step.get('energy') is not None
                         else f'low-rank ratio {step["ratio"]}')
        else:
            parts.append(f'{step.get("scheme", "int8")} weights')
    return ' + '.join(parts)


def write_folder(out: Path, parent: Submission, manifest: Manifest, config: str, checkpoint: Path,
                 copy_parent_code: bool) -> None:
    """Create the folder: parent code (if any), rebuild module, config, checkpoint, then the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    if copy_parent_code:
        skip = NOT_COPIED | {parent.manifest.checkpoint, parent.manifest.config}
        shutil.copytree(parent.folder, out, dirs_exist_ok=True, ignore=lambda src, names: [
            n for n in names if n in skip and Path(src).resolve() == parent.folder or n == '__pycache__'])
    shutil.copyfile(REBUILD_SOURCE, out / f'{MODULE_NAME}.py')
    (out / CONFIG_NAME).write_text(config)
    shutil.move(str(checkpoint), out / CHECKPOINT_NAME)
    data = {k: v for k, v in manifest.model_dump(mode='json').items() if v is not None}
    text = yaml.safe_dump(data, sort_keys=False, width=110)
    (out / MANIFEST_NAME).write_text(text)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))
