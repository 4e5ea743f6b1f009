"""Class information filled into a model config before it is built (plain data, no torch).

* ``FrugalbenchAttributeHead``: ``attributes`` (the class x attribute table) and ``unseen`` (from
  its ``split``) when empty;
* an open-vocabulary text encoder (MMSeg's SAN ``CLIPTextEncoder``, or any module with a
  ``vocabulary`` argument): ``vocabulary`` from the class names when empty or absent-valued, so
  the model predicts the benchmark's classes without a rebuild (a ``dataset_name`` the config sets, which
  SAN's encoder takes instead of a vocabulary, is left alone).

A value the config sets is never replaced: a submission may fix its own vocabulary or ship class
embeddings as data.
"""
from __future__ import annotations

from typing import Any

from frugalbench.errors import SubmissionError

ATTRIBUTE_HEAD = 'FrugalbenchAttributeHead'
TEXT_ENCODERS = ('CLIPTextEncoder',)


def fill_class_information(model: Any, meta: dict[str, Any]) -> list[str]:
    """Fill ``model`` (a config dict, in place) from ``meta`` (``splits.dataset_meta``); returns notes."""
    notes: list[str] = []
    _walk(model, meta, 'model', notes)
    return notes


def _walk(node: Any, meta: dict[str, Any], where: str, notes: list[str]) -> None:
    if isinstance(node, dict):
        kind = node.get('type')
        if kind == ATTRIBUTE_HEAD:
            _fill_attribute_head(node, meta, where, notes)
        elif ((kind in TEXT_ENCODERS or 'vocabulary' in node) and not node.get('vocabulary')
              and not node.get('dataset_name')):  # SAN's encoder takes a dataset's names or a vocabulary
            node['vocabulary'] = list(meta['classes'])
            notes.append(f'{where}.vocabulary: the benchmark\'s {len(meta["classes"])} class names')
        for key, value in node.items():
            _walk(value, meta, f'{where}.{key}', notes)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            _walk(value, meta, f'{where}[{index}]', notes)


def _fill_attribute_head(node: dict[str, Any], meta: dict[str, Any], where: str, notes: list[str]) -> None:
    if node.get('attributes') is None:
        if 'attributes' not in meta:
            raise SubmissionError(f'{where} is a {ATTRIBUTE_HEAD} but the benchmark has no `attributes:` table')
        node['attributes'] = [list(row) for row in meta['attributes']]
        notes.append(f'{where}.attributes: the benchmark\'s table ({len(meta["attribute_names"])} attributes)')
    split = node.get('split')
    if split is not None and node.get('unseen') is None:
        splits = meta.get('zero_shot') or {}
        if split not in splits:
            raise SubmissionError(f'{where}.split is {split!r}; the benchmark\'s zero-shot splits are '
                                  f'{sorted(splits) or "none"}')
        node['unseen'] = list(splits[split]['unseen'])
        notes.append(f'{where}.unseen: split {split!r}')
