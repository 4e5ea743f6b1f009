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
