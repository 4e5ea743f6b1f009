"""Zero-shot fixtures: the tiny benchmark with a zero-shot split and an attribute table, and
submission folders for it (an attribute-head model; a model that paints the class it is told by name)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

SPLIT = 'u1'
ATTRIBUTES = {'names': ['object', 'round', 'vertical'],
              'classes': {'background': [0, 0, 0], 'disc': [1, 1, 0], 'bar': [1, 0, 1]}}

ATTRIBUTE_CONFIG = """\
_base_ = ['mmseg::_base_/models/fast_scnn.py']
norm_cfg = dict(type='BN', requires_grad=True, momentum=0.01)
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(_delete_=True, type='FrugalbenchAttributeHead', num_classes=3, split='u1', calibration=0.5,
                     head=dict(type='DepthwiseSeparableFCNHead', in_channels=128, channels=128, concat_input=False,
                               in_index=-1, norm_cfg=norm_cfg, align_corners=False)),
    auxiliary_head=None,
    test_cfg=dict(mode='whole'))
train_schedule = dict(iters=2, batch_size=2, crop_size=(64, 64), checkpoint_interval=1)
"""

# A model that answers with the class its config names, found by name in model.dataset_meta at
# prediction time: it can only be right if the harness handed it the benchmark's class names.
PAINTER_MODULE = """\
import torch
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS


@MODELS.register_module()
class ClassNamePainter(BaseSegmentor):
    def __init__(self, target, num_classes, data_preprocessor=None, init_cfg=None, train_cfg=None, test_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.target, self.num_classes, self.out_channels, self.align_corners = target, num_classes, num_classes, False
        self.bias = torch.nn.Parameter(torch.zeros(1))

    def _logits(self, inputs):
        index = list(self.dataset_meta['classes']).index(self.target)
        logits = torch.zeros(inputs.shape[0], self.num_classes, *inputs.shape[2:]) + self.bias
        logits[:, index] += 1.0
        return logits

    def predict(self, inputs, data_samples=None):
        return self.postprocess_result(self._logits(inputs), data_samples)

    def _forward(self, inputs, data_samples=None):
        return self._logits(inputs)

    def extract_feat(self, inputs):
        return inputs

    def encode_decode(self, inputs, batch_img_metas):
        return self._logits(inputs)

    def loss(self, inputs, data_samples):
        raise NotImplementedError
"""

PAINTER_CONFIG = """\
custom_imports = dict(imports=['painter'], allow_failed_imports=False)
model = dict(type='ClassNamePainter', target={target!r}, num_classes=3,
             data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0], std=[1, 1, 1], bgr_to_rgb=True,
                                    pad_val=0, seg_pad_val=255))
"""


@pytest.fixture
def zs_benchmark(tiny_benchmark: str, isolated: Path) -> str:
    """The tiny benchmark (background, disc, bar) with split u1 (bar unseen) and an attribute table."""
    path = isolated / 'data' / 'benchmarks' / f'{tiny_benchmark}.yaml'
    definition = yaml.safe_load(path.read_text())
    definition.update(zero_shot={SPLIT: {'unseen': ['bar']}}, attributes=ATTRIBUTES,
                      class_descriptions={'bar': 'a vertical green bar'})
    path.write_text(yaml.safe_dump(definition))
    return tiny_benchmark


def write_folder(folder: Path, config: str, manifest: dict, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / 'config.py').write_text(config)
    base = {'name': folder.name, 'authors': ['Test Author'], 'description': 'a zero-shot test submission',
                'technique': 'zero-shot', 'benchmark': 'tiny', 'classes': ['background', 'disc', 'bar'],
                'config': 'config.py', 'checkpoint': 'model.pth', 'training': {'images': 4, 'annotation': 'full'}}
    base.update(manifest)
    (folder / 'submission.yaml').write_text(yaml.safe_dump(base, sort_keys=False))
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    folder.chmod(0o755)
    return folder


@pytest.fixture
def painter(tmp_path: Path) -> Path:
    """A training-free submission (0 images, annotation none) painting every pixel 'disc'."""
    import torch
    folder = write_folder(tmp_path / 'submissions' / 'painter', PAINTER_CONFIG.format(target='disc'),
                          {'training': {'images': 0, 'annotation': 'none'}}, {'painter.py': PAINTER_MODULE})
    torch.save({'bias': torch.zeros(1)}, folder / 'model.pth')
    return folder
