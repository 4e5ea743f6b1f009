"""The harness's own MMSegmentation extensions, registered into MMSeg's registries on import.

* ``MapLabels`` (TRANSFORMS): label remapping in frugalbench's pipelines;
* ``FrugalbenchCompressed`` (MODELS): a compressed variant, rebuilt from the parent model's
  config and the compression plan its config holds as data (``frugalbench.compression.rebuild``);
* ``FrugalbenchAttributeHead`` (MODELS), ``ZeroShotLabelGuard`` (TRANSFORMS): zero-shot segmentation
  (``frugalbench.zero_shot.modules``).

Every process that builds a model or a pipeline from a config imports this module (the
evaluation worker's ``build_model``, the training child, the compression child), so configs
name these types without ``custom_imports`` and no Python file is copied into submissions.
"""
from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import MODELS, TRANSFORMS

from frugalbench.compression.rebuild import MODEL_TYPE, build_compressed
from frugalbench.zero_shot import modules as _zero_shot_modules  # noqa: F401  (FrugalbenchAttributeHead, ZeroShotLabelGuard)

# force=True: a variant written by an older `frugalbench compress` ships a copy of the rebuild module
# (frugalbench_compressed.py, in its custom_imports) that registers this name too, as submission code
# (docs/compression.md, "Variants written before ..."); whichever is imported last is used.
MODELS.register_module(name=MODEL_TYPE, module=build_compressed, force=True)


@TRANSFORMS.register_module()
class MapLabels(BaseTransform):
    """Remap label values of ``gt_seg_map`` (e.g. CamVid's 11 "unlabelled" -> 255).

    Values absent from ``mapping`` are kept as they are.
    """

    def __init__(self, mapping: dict[int, int]) -> None:
        self.mapping = {int(k): int(v) for k, v in mapping.items()}
        self._lut = np.arange(256, dtype=np.uint8)
        for source, target in self.mapping.items():
            self._lut[source] = target

    def transform(self, results: dict) -> dict:
        seg = results['gt_seg_map']
        results['gt_seg_map'] = self._lut[seg.astype(np.uint8)]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(mapping={self.mapping})'
