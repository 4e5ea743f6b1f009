"""Small MMSegmentation extensions that frugalbench's own pipelines use.

Importing this module registers them into MMSeg's registries, so a config can name
them (``custom_imports=dict(imports=['frugalbench.mmseg_ext'])``).
"""
from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


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
