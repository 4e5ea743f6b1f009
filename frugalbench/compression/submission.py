"""Write a compressed variant as a new, self-contained submission folder::

    submission.yaml   the parent's manifest with technique, parent and compression
    config.py         model = dict(type='FrugalbenchCompressed', base_type=..., compression_plan=...)
    model.pth         plain state dict (int8 tensors for quantized weights)

plus the parent's own code files when its config has ``custom_imports``. No Python file of
the harness is copied: ``FrugalbenchCompressed`` is registered by ``frugalbench.mmseg_ext``,
which every model process imports, so a variant of a parent without code has no
``custom_imports`` and its runs carry no submission code. The evaluation worker builds the
parent model from the config's data, applies the plan (``compression.rebuild``) and loads
``model.pth`` with ``weights_only=True``.

Variants written by earlier versions carry a copy of ``rebuild.py`` as
``frugalbench_compressed.py``, named in ``custom_imports``. They still evaluate, as runs with
submission code; ``upgrade_folder`` (``frugalbench compress DIR --upgrade``) rewrites such a
folder in place to the current form, leaving its checkpoint untouched.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from frugalbench.errors import SubmissionError, UsageError
from frugalbench.submission import MANIFEST_NAME, Manifest, Submission, load_submission

CONFIG_NAME = 'config.py'
CHECKPOINT_NAME = 'model.pth'
TECHNIQUES = {'prune': 'pruned', 'low-rank': 'low-rank', 'quantize': 'quantized'}
LINE_WIDTH = 110
REBUILD_RECORD = ('frugalbench.compression.rebuild (the model type FrugalbenchCompressed, registered by the '
                  'harness) rebuilds the parent model and applies model.compression_plan before the checkpoint '
                  'is loaded')
# Variants written by earlier versions: the copied rebuild module, and the sha256 of every copy we wrote.
LEGACY_MODULE_NAME = 'frugalbench_compressed'
LEGACY_MODULE_SHA256 = frozenset({'057c5a4967d397dcda3961ae842d3f35455f89f8743d7182c1975216d5dfcdac'})
LEGACY_IMPORTS_LINE = re.compile(r'^custom_imports = dict\(imports=(\[[^\n]*\]), allow_failed_imports=False\)\n',
                                 re.MULTILINE)
NOT_COPIED = {MANIFEST_NAME, '__pycache__', 'training_record.json', f'{LEGACY_MODULE_NAME}.py'}


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
    """The compressed submission's config.py: plain literals only (no _base_, no imports).

    ``custom_imports`` are the parent's own code modules (copied with the folder), if any.
    """
    lines = config_header(parent_id, custom_imports) + [f'model = {python_literal(model, lead=8)}']
    if train_schedule:
        lines.append(f'train_schedule = {python_literal(train_schedule, lead=17)}')
    return '\n'.join(lines) + '\n'


def config_header(parent_id: str, custom_imports: list[str]) -> list[str]:
    lines = [f'# Written by `frugalbench compress` from submission {parent_id!r}.',
             "# The harness's FrugalbenchCompressed model type (frugalbench.compression.rebuild) rebuilds the",
             '# parent model and applies compression_plan before the checkpoint is loaded; see docs/compression.md.']
    if custom_imports:
        lines.append(f'custom_imports = dict(imports={custom_imports!r}, allow_failed_imports=False)')
    return lines


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
    """Create the folder: parent code (if any), config, checkpoint, then the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    if copy_parent_code:
        skip = NOT_COPIED | {parent.manifest.checkpoint, parent.manifest.config}
        shutil.copytree(parent.folder, out, dirs_exist_ok=True, ignore=lambda src, names: [
            n for n in names if n in skip and Path(src).resolve() == parent.folder or n == '__pycache__'])
    (out / CONFIG_NAME).write_text(config)
    shutil.move(str(checkpoint), out / CHECKPOINT_NAME)
    write_manifest(out, manifest)


def write_manifest(folder: Path, manifest: Manifest) -> None:
    data = {k: v for k, v in manifest.model_dump(mode='json').items() if v is not None}
    (folder / MANIFEST_NAME).write_text(yaml.safe_dump(data, sort_keys=False, width=110))


# --- variants written by earlier versions --------------------------------------------------

def legacy_module(folder: Path) -> Path | None:
    """The copied rebuild module of a variant written by an earlier ``frugalbench compress``, if any."""
    path = Path(folder) / f'{LEGACY_MODULE_NAME}.py'
    return path if path.is_file() and not path.is_symlink() else None


def upgrade_folder(folder: Path) -> list[str]:
    """Rewrite an old-style compressed variant in place: drop its copied ``frugalbench_compressed.py``
    and that name from the config's ``custom_imports``, and update the manifest's ``rebuild`` note.

    The checkpoint and the model section of the config are left byte for byte as they are, so the
    model (and its mIoU) is unchanged. Only copies that frugalbench itself wrote are replaced (their
    sha256 is known); anything else raises SubmissionError saying to regenerate the variant. Returns
    what was changed (empty when the folder is already current).
    """
    submission = load_submission(Path(folder))
    module = legacy_module(submission.folder)
    config = submission.config_path.read_text()
    match = LEGACY_IMPORTS_LINE.search(config)
    imports = ast.literal_eval(match.group(1)) if match else []
    if module is None and LEGACY_MODULE_NAME not in imports:
        return []
    regenerate = (f'regenerate it with `frugalbench compress {submission.manifest.parent or "PARENT"} '
                  f'--out NEW_DIR ...` (the same methods as in its submission.yaml compression record)')
    if submission.manifest.compression is None or "'type': 'FrugalbenchCompressed'" not in config:
        raise SubmissionError(f'{submission.folder} is not a variant written by frugalbench compress '
                              f'(no compression record or FrugalbenchCompressed model): nothing to upgrade')
    if module is not None and _sha256(module) not in LEGACY_MODULE_SHA256:
        raise SubmissionError(f'{module} differs from every rebuild module frugalbench compress wrote: it was '
                              f'edited, so replacing it by the harness\'s could change the model; {regenerate}')
    if match is None or LEGACY_MODULE_NAME not in imports or module is None:
        raise SubmissionError(f'{submission.config_path} does not have the form frugalbench compress wrote '
                              f'(custom_imports naming {LEGACY_MODULE_NAME} and {LEGACY_MODULE_NAME}.py beside '
                              f'it); {regenerate}')
    kept = [name for name in imports if name != LEGACY_MODULE_NAME]
    body = config[match.end():]
    head = config[:match.start()]
    if not head.startswith('# Written by `frugalbench compress` from submission '):
        raise SubmissionError(f'{submission.config_path} does not start as frugalbench compress wrote it; '
                              f'{regenerate}')
    parent_id = ast.literal_eval(head.splitlines()[0].removeprefix('# Written by `frugalbench compress` from '
                                                                   'submission ').removesuffix('.'))
    submission.config_path.write_text('\n'.join(config_header(parent_id, kept)) + '\n' + body)
    module.unlink()
    changes = [f'deleted {module.name}', f'config: custom_imports {imports!r} -> {kept!r}']
    if (submission.manifest.compression or {}).get('rebuild') != REBUILD_RECORD:
        _replace_rebuild_note(submission.folder / MANIFEST_NAME, submission.manifest)
        changes.append('manifest: compression.rebuild')
    return changes


def _replace_rebuild_note(path: Path, manifest: Manifest) -> None:
    """Set ``compression.rebuild`` to REBUILD_RECORD, rewriting only its lines when the file has the
    layout ``write_manifest`` gives it (so the rest keeps its bytes), else the whole manifest."""
    compression = {**(manifest.compression or {}), 'rebuild': REBUILD_RECORD}
    expected = manifest.model_copy(update={'compression': compression})
    lines = path.read_text().splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith('  rebuild: ')]
    if len(starts) == 1:
        end = starts[0] + 1
        while end < len(lines) and lines[end].startswith('    '):
            end += 1
        note = yaml.safe_dump({'rebuild': REBUILD_RECORD}, sort_keys=False, width=108)  # + 2 of indent = 110
        text = ''.join(lines[:starts[0]] + ['  ' + line for line in note.splitlines(keepends=True)] + lines[end:])
        if Manifest(**yaml.safe_load(text)) == expected:
            path.write_text(text)
            return
    write_manifest(path.parent, expected)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))
