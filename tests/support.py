"""Helpers shared by tests (importable: pytest puts tests/ on sys.path)."""
from __future__ import annotations

from pathlib import Path


def reference_model(folder: Path):
    """The submission's model through plain mmseg.apis.init_model, weights loaded as a state dict."""
    import torch
    from mmseg.apis import init_model
    model = init_model(str(folder / 'config.py'), None, device='cpu')
    state = torch.load(folder / 'model.pth', map_location='cpu', weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith('auxiliary_head.') for k in missing)
    return model


def build_zoo_model(config: str, num_classes: int = 11, auxiliary_heads: bool = True):
    """An MMSeg zoo architecture (``mmseg::...py``): random init (no download), SyncBN -> BN,
    ``num_classes`` outputs; auxiliary heads kept or removed."""
    import torch
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    init_default_scope('mmseg')
    cfg = Config.fromstring(f"_base_ = ['{config}']\n", '.py').model
    cfg.decode_head.num_classes = num_classes
    aux = cfg.get('auxiliary_head') if auxiliary_heads else None
    cfg.auxiliary_head = aux
    for head in (aux if isinstance(aux, list) else [aux] if aux else []):
        head.num_classes = num_classes
    if cfg.backbone.get('init_cfg'):
        cfg.backbone.init_cfg = None  # no pretrained download
    cfg.pop('pretrained', None)
    cfg.data_preprocessor = None
    torch.manual_seed(0)
    return revert_sync_batchnorm(MODELS.build(cfg))
