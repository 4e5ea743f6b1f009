"""Compression toolkit: pruned, low-rank and int8 variants of a submission, written as new submissions.

    result = compress_submission(Path('submissions/x'), Path('submissions/x-pruned'),
                                 CompressOptions(prune=0.5, structured=True))

Methods (``prune``, ``low_rank``, ``quantize``) work on a torch ``nn.Module`` and return a
``StepReport``; ``compress_submission`` applies them to a submission's model in a limited
child process and writes the variant (see ``compression.submission`` for the folder and
``compression.rebuild`` for how the variant's architecture is rebuilt from its config).

The names below are imported on first use: model processes import ``compression.rebuild``
(through ``frugalbench.mmseg_ext``) without loading the pipeline, the store or the isolation code.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from frugalbench.compression.pipeline import CompressionResult, CompressOptions, compress_submission
    from frugalbench.compression.report import CompressionError, StepReport

__all__ = ['CompressOptions', 'CompressionError', 'CompressionResult', 'StepReport', 'compress_submission']

_HOMES = {'CompressOptions': 'pipeline', 'CompressionResult': 'pipeline', 'compress_submission': 'pipeline',
          'CompressionError': 'report', 'StepReport': 'report'}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'{__name__}.{home}'), name)
