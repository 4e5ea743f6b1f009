"""The harness registers FrugalbenchCompressed itself: a variant's config needs no code of its own."""
from __future__ import annotations

import subprocess
import sys

import torch


def test_mmseg_ext_builds_a_compressed_config_from_data_alone(fast_scnn_model_config: dict):
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import frugalbench.mmseg_ext  # noqa: F401
    from frugalbench.compression.rebuild import MODEL_TYPE, PLAN_VERSION, build_compressed
    register_all_modules()
    assert MODELS.get(MODEL_TYPE) is build_compressed
    parent = fast_scnn_model_config
    config = {**parent, 'type': MODEL_TYPE, 'base_type': parent['type'], 'plan_version': PLAN_VERSION,
              'compression_plan': [{'op': 'factorize', 'layers': {'decode_head.conv_seg': 2}},
                                   {'op': 'int8_weights', 'layers': ['backbone.learning_to_downsample.conv.conv']}]}

    model = MODELS.build(config)

    assert type(model).__name__ == parent['type']  # the parent's own segmentor class
    assert isinstance(model.decode_head.conv_seg, torch.nn.Sequential)
    assert model.decode_head.conv_seg[0].out_channels == 2
    state = model.state_dict()
    assert state['backbone.learning_to_downsample.conv.conv.weight_int8'].dtype == torch.int8


def test_model_processes_import_the_rebuild_module_without_the_compression_pipeline():
    code = ('import sys, frugalbench.mmseg_ext; '
            'print(sorted(m for m in sys.modules if m.startswith(("frugalbench.compression.", "frugalbench.store",'
            ' "frugalbench.isolation"))))')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True, timeout=300)
    assert result.stdout.strip() == "['frugalbench.compression.rebuild']"
