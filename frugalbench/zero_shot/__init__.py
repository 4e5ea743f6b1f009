"""Zero-shot segmentation: seen/unseen class splits, their metrics, and class-level side information.

* ``splits``: a benchmark's zero-shot splits (``zero_shot:`` in its file), the class information
  the harness hands to every model (``dataset_meta``), and the training labels under a split;
* ``metrics``: seen mIoU, unseen mIoU and hIoU from dataset-level areas;
* ``fill``: filling a model config's empty class information (attribute heads, open-vocabulary
  text encoders) from ``dataset_meta`` before the model is built;
* ``modules``: the harness's MMSeg modules (the attribute head, the label guard), registered by
  ``frugalbench.mmseg_ext``;
* ``calibrate``: calibrated stacking, a constant taken off seen-class scores, fitted on val.

Only ``modules`` and ``calibrate`` import torch/MMSeg. Protocol: docs/zero-shot.md.
"""
from frugalbench.zero_shot.metrics import (
           harmonic_mean,
           split_scores,
           zero_shot_accuracy,
)
from frugalbench.zero_shot.splits import (
           dataset_meta,
           seen_indices,
           split_of,
           unseen_indices,
)

__all__ = ['dataset_meta', 'harmonic_mean', 'seen_indices', 'split_of', 'split_scores', 'unseen_indices',
           'zero_shot_accuracy']
