"""A tiny Fast-SCNN built in the test process (our own config: no submission code runs here)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

FAST_SCNN = """\
_base_ = ['mmseg::_base_/models/fast_scnn.py']
norm_cfg = dict(type='BN', requires_grad=True, momentum=0.01)
model = dict(backbone=dict(norm_cfg=norm_cfg), decode_head=dict(num_classes=3, norm_cfg=norm_cfg),
             auxiliary_head=None, test_cfg=dict(mode='whole'))
"""


@pytest.fixture
def fast_scnn_model_config(tmp_path: Path) -> dict:
    """The tiny Fast-SCNN's ``model`` section as plain data."""
    from mmengine.config import Config
    path = tmp_path / 'fast_scnn_model.py'
    path.write_text(FAST_SCNN)
    return Config.fromfile(str(path)).model.to_dict()


@pytest.fixture
def build_fast_scnn(tmp_path: Path) -> Callable[[], torch.nn.Module]:
    """Builds 3-class Fast-SCNNs in eval mode (seeded weights, non-trivial BN statistics)."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    torch.set_num_threads(1)
    register_all_modules()
    path = tmp_path / 'fast_scnn.py'
    path.write_text(FAST_SCNN)
    config = Config.fromfile(str(path))

    def build() -> torch.nn.Module:
        torch.manual_seed(0)
        model = MODELS.build(config.model)
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.1, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
        return model.eval()

    return build


LEGACY_REGISTRATION = '''

def _register() -> None:
    from mmseg.registry import MODELS
    MODELS.register_module(name=MODEL_TYPE, module=build_compressed, force=True)


_register()
'''
LEGACY_HEADER = [
    "# frugalbench_compressed.py (in this folder) rebuilds the parent model and applies compression_plan\n",
    '# before the checkpoint is loaded; see docs/compression.md.\n',
    "custom_imports = dict(imports=['frugalbench_compressed'], allow_failed_imports=False)\n"]
LEGACY_REBUILD_NOTE = ('frugalbench_compressed.py (custom_imports) rebuilds the parent model and applies '
                       'model.compression_plan before the checkpoint is loaded')


@pytest.fixture
def make_legacy(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Turns a variant into the form earlier versions of `frugalbench compress` wrote: the rebuild
    module copied into the folder as ``frugalbench_compressed.py`` (registering itself on import) and
    named in the config's ``custom_imports``; the copy's sha256 is made a known one for the test."""
    import hashlib
    import inspect

    import yaml

    from frugalbench.compression import rebuild, submission

    def convert(folder: Path) -> None:
        module = inspect.getsource(rebuild) + LEGACY_REGISTRATION
        (folder / 'frugalbench_compressed.py').write_text(module)
        monkeypatch.setattr(submission, 'LEGACY_MODULE_SHA256', submission.LEGACY_MODULE_SHA256 | {
            hashlib.sha256(module.encode()).hexdigest()})
        lines = (folder / 'config.py').read_text().splitlines(keepends=True)
        assert lines[3].startswith('model = ')
        (folder / 'config.py').write_text(''.join(lines[:1] + LEGACY_HEADER + lines[3:]))
        manifest = yaml.safe_load((folder / 'submission.yaml').read_text())
        manifest['compression']['rebuild'] = LEGACY_REBUILD_NOTE
        (folder / 'submission.yaml').write_text(yaml.safe_dump(manifest, sort_keys=False, width=110))

    return convert


@pytest.fixture
def make_variant() -> Callable[[Path], Path]:
    """Writes a variant folder as the current `frugalbench compress` does (without running it)."""
    import yaml

    from frugalbench.compression.submission import REBUILD_RECORD, config_text
    model = {'type': 'FrugalbenchCompressed', 'base_type': 'EncoderDecoder', 'plan_version': 1,
             'compression_plan': [{'op': 'factorize', 'layers': {'decode_head.conv_seg': 2}}],
             'decode_head': {'type': 'FCNHead', 'num_classes': 3}}

    def write(folder: Path) -> Path:
        folder.mkdir(parents=True)
        (folder / 'config.py').write_text(config_text('parent', model, [], None))
        torch.save({'w': torch.arange(4.0)}, folder / 'model.pth')
        manifest = dict(name='v', authors=['A'], description='d', technique='low-rank', benchmark='tiny',
                        classes=['a', 'b', 'c'], config='config.py', checkpoint='model.pth',
                        training={'images': 4, 'annotation': 'full', 'notes': ''}, parent='parent',
                        compression={'method': 'low-rank ratio 0.5', 'rebuild': REBUILD_RECORD})
        (folder / 'submission.yaml').write_text(yaml.safe_dump(manifest, sort_keys=False, width=110))
        return folder

    return write
