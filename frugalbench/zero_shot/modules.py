"""The harness's zero-shot MMSeg modules (registered by ``frugalbench.mmseg_ext``; no submission code).

* ``FrugalbenchAttributeHead`` (MODELS): direct attribute prediction (Lampert et al., CVPR 2009) for
  segmentation. An inner MMSeg decode head predicts one logit per binary attribute and pixel,
  trained with binary cross-entropy against the attribute row of the pixel's class (only labelled
  pixels: under a zero-shot split, seen classes only). A class's score is the mean log-likelihood
  of its attribute row under the predicted attribute probabilities, so a class never seen in
  training is scored like any other. Calibrated stacking (Chao et al., ECCV 2016) takes the constant
  ``calibration`` off every seen class's score. The attribute table and the split come from the
  benchmark (``dataset_meta``), filled in by the harness (``frugalbench.zero_shot.fill``).
* ``ZeroShotLabelGuard`` (TRANSFORMS): the last step of a training pipeline under a split: refuses
  any unseen-class label reaching the model and records which labels it passed (``GUARD_FILE``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform
from mmengine.model import BaseModule
from mmseg.models.utils import resize
from mmseg.registry import MODELS, TRANSFORMS

from frugalbench.zero_shot.splits import GUARD_FILE

ATTRIBUTE_HEAD = 'FrugalbenchAttributeHead'
EXCLUDED_SCORE = -1.0e4   # an unscored class's score: finite (answers are checked for NaN/Inf), never chosen


@MODELS.register_module(name=ATTRIBUTE_HEAD)
class AttributeHead(BaseModule):
    """A decode head predicting attributes, scoring classes by attribute agreement.

    Args:
        head: the inner decode head's config (its ``num_classes`` becomes the number of attributes).
        num_classes: the benchmark's classes.
        attributes: class x attribute 0/1 table (None: the harness fills it from the benchmark).
        split: the zero-shot split the model was trained under (its unseen classes are filled in).
        unseen: class indices of the unseen classes (filled from ``split``).
        calibration: calibrated stacking's constant, taken off seen-class scores.
        score_unseen: False scores unseen classes out (a seen-classes-only model, for comparison).
    """

    def __init__(self, head: dict, num_classes: int, attributes: list[list[int]] | None = None,
                 split: str | None = None, unseen: list[int] | None = None, calibration: float = 0.0,
                 score_unseen: bool = True, ignore_index: int = 255, loss_weight: float = 1.0,
                 init_cfg: Any = None) -> None:
        super().__init__(init_cfg)
        if attributes is None:
            raise ValueError(f'{ATTRIBUTE_HEAD}.attributes is empty: the harness fills it from the benchmark '
                             "file's `attributes:` table (is the model built by frugalbench, on such a benchmark?)")
        table = torch.tensor(attributes, dtype=torch.float32)
        if table.ndim != 2 or table.shape[0] != num_classes:
            raise ValueError(f'{ATTRIBUTE_HEAD}: the attribute table has {tuple(table.shape)} rows x columns '
                             f'for {num_classes} classes')
        inner = dict(head)
        inner.update(num_classes=int(table.shape[1]), ignore_index=ignore_index)
        inner.pop('out_channels', None)
        self.attribute_head = MODELS.build(inner)
        self.num_classes = self.out_channels = int(num_classes)
        self.align_corners = self.attribute_head.align_corners
        self.ignore_index = ignore_index
        self.threshold = None
        self.loss_weight = float(loss_weight)
        self.calibration = float(calibration)
        self.score_unseen = bool(score_unseen)
        self.split = split
        unseen_mask = torch.zeros(num_classes, dtype=torch.bool)
        unseen_mask[list(unseen or [])] = True
        self.register_buffer('table', table, persistent=False)
        self.register_buffer('unseen_mask', unseen_mask, persistent=False)

    def forward(self, inputs: Any) -> torch.Tensor:
        """Class scores at feature resolution (what ``mode='tensor'`` returns)."""
        return self.class_scores(self.attribute_head(inputs))

    def class_scores(self, logits: torch.Tensor) -> torch.Tensor:
        """(N, A, H, W) attribute logits -> (N, C, H, W) class scores, calibrated."""
        log_yes, log_no = F.logsigmoid(logits), F.logsigmoid(-logits)
        table = self.table.to(logits.dtype)
        scores = (torch.einsum('nahw,ca->nchw', log_yes, table)
                  + torch.einsum('nahw,ca->nchw', log_no, 1.0 - table)) / table.shape[1]
        seen = (~self.unseen_mask).to(logits.dtype).view(1, -1, 1, 1)
        scores = scores - self.calibration * seen
        if not self.score_unseen:
            scores = torch.where(self.unseen_mask.view(1, -1, 1, 1), torch.full_like(scores, EXCLUDED_SCORE), scores)
        return scores

    def attribute_logits(self, inputs: Any, batch_img_metas: list[dict]) -> torch.Tensor:
        """Attribute logits at the input image's size."""
        return self.attribute_head.predict_by_feat(self.attribute_head(inputs), batch_img_metas)

    def predict(self, inputs: Any, batch_img_metas: list[dict], test_cfg: Any) -> torch.Tensor:
        return self.class_scores(self.attribute_logits(inputs, batch_img_metas))

    def loss(self, inputs: Any, batch_data_samples: list, train_cfg: Any) -> dict[str, torch.Tensor]:
        logits = self.attribute_head(inputs)
        label = torch.stack([s.gt_sem_seg.data for s in batch_data_samples]).squeeze(1).long()
        logits = resize(logits, size=label.shape[-2:], mode='bilinear', align_corners=self.align_corners)
        valid = label != self.ignore_index
        if not bool(valid.any()):
            return {'loss_attributes': logits.sum() * 0.0}
        target = self.table[label[valid]]                       # (P, A)
        picked = logits.permute(0, 2, 3, 1)[valid]              # (P, A)
        loss = F.binary_cross_entropy_with_logits(picked, target.to(picked.dtype))
        return {'loss_attributes': loss * self.loss_weight}


@TRANSFORMS.register_module()
class ZeroShotLabelGuard(BaseTransform):
    """Refuse unseen-class labels in a training sample and record the labels that passed.

    The report (``report_dir``/zero_shot_guard-<pid>.json, one per data-loading process) counts the
    samples checked and lists every label value seen in what the model was fed.
    """

    def __init__(self, unseen: list[int], report_dir: str | None = None) -> None:
        self.unseen = sorted(int(u) for u in unseen)
        self.report_dir = report_dir
        self.samples = 0
        self.labels: set[int] = set()

    def transform(self, results: dict) -> dict:
        seg = np.asarray(results['gt_seg_map'])
        values = {int(v) for v in np.unique(seg)}
        leaked = sorted(values & set(self.unseen))
        if leaked:
            raise RuntimeError(f'unseen class label(s) {leaked} reached the training pipeline '
                               f'({results.get("seg_map_path")}): the zero-shot split was not applied')
        self.samples += 1
        self.labels |= values
        if self.report_dir:
            self._write()
        return results

    def _write(self) -> None:
        path = Path(self.report_dir) / f'{Path(GUARD_FILE).stem}-{os.getpid()}.json'
        partial = path.with_suffix('.partial')
        partial.write_text(json.dumps({'unseen': self.unseen, 'samples_checked': self.samples,
                                       'labels_passed': sorted(self.labels)}))
        partial.replace(path)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(unseen={self.unseen})'
