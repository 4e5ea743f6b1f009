"""Child process: build a submission's model from config data and predict label maps.

    python -m frugalbench.model.worker REQUEST_JSON

The request names the config (as data, see config_reader), the checkpoint, the test images
(never their annotations), the test pipeline fixed by the benchmark, and an output folder.
Predictions are written as lossless PNG label maps, one per image, named by index. The
parent computes every metric from them.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from frugalbench.model.channel import decode_config, emit, serve
from frugalbench.model.custom_code import import_custom_modules

AUXILIARY_PREFIX = 'auxiliary_head.'
DETERMINISM_TOLERANCE = 1e-4  # relative to the largest logit


class WorkerFailure(Exception):
    """A failure to report to the parent as one line."""


def main(argv: list[str]) -> int:
    return serve(argv, run, (WorkerFailure,), 'the model')


def run(request: dict[str, Any]) -> None:
    import torch
    torch.set_num_threads(int(request.get('threads', 1)))
    torch.manual_seed(0)
    config = decode_config(json.loads(Path(request['config']).read_text()))
    model = build_model(config, request.get('code_dir'), request['device'])
    load_weights(model, Path(request['checkpoint']))
    check_class_count(model, int(request['num_classes']))
    params = sum(p.numel() for p in model.parameters())
    emit('built', params=params)
    predict_all(model, request)
    if request.get('measure'):
        measure(model, request)
    emit('done', params=params)


def measure(model: Any, request: dict[str, Any]) -> None:
    from mmcv.transforms import Compose

    from frugalbench.measurements.protocol import load_protocol
    from frugalbench.model.measure import measure_model
    emit('stage', name='measuring')
    protocol = load_protocol(request.get('protocol_path'))
    results, timings = measure_model(model, Compose(request['pipeline']), request['images'], protocol,
                                     request['device'])
    emit('measurements', items=[m.to_dict() for m in results], timings=timings,
         protocol_version=protocol.version, protocol_sha256=protocol.source_hash)


def build_model(config: dict[str, Any], code_dir: str | None, device: str) -> Any:
    from mmengine.config import ConfigDict
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import frugalbench.mmseg_ext  # noqa: F401  (MapLabels)
    import_custom_modules(config, code_dir, WorkerFailure)
    model_cfg = ConfigDict(config.get('model') or {})
    if not model_cfg:
        raise WorkerFailure('the config has no `model` section: define the model to evaluate')
    model_cfg.pop('pretrained', None)
    model_cfg['train_cfg'] = None
    try:
        model = MODELS.build(model_cfg)
    except Exception as exc:  # noqa: BLE001 - foreign config
        raise WorkerFailure(f'MMSeg could not build the model: {type(exc).__name__}: {exc}') from None
    if getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None  # training-only heads: not evaluated, counted or loaded
    return model.to(device).eval()


def load_weights(model: Any, checkpoint: Path, failure: type[Exception] = WorkerFailure) -> None:
    """Load a plain state dict with weights_only=True; auxiliary heads may be absent."""
    import pickle

    import torch
    try:
        state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        raise failure(
            'the checkpoint holds pickled objects that are not plain tensors (refused, never unpickled: '
            f'{str(exc).splitlines()[0][:160]}); save a plain state dict with torch.save(model.state_dict())'
        ) from None
    except Exception as exc:  # noqa: BLE001 - a corrupt file
        raise failure(f'the checkpoint could not be read: {type(exc).__name__}: {exc}') from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise failure('the checkpoint is not a plain state dict (a mapping of names to tensors); '
                            'save it with torch.save(model.state_dict(), path)')
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.startswith(AUXILIARY_PREFIX)]
    unexpected = [k for k in state if k not in expected and not k.startswith(AUXILIARY_PREFIX)]
    mismatched = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (('missing', missing), ('unexpected', unexpected), ('wrong shape', mismatched)):
            if keys:
                parts.append(f'{len(keys)} {label} (e.g. {keys[0]})')
        raise failure('the checkpoint does not match the model the config builds: '
                            + ', '.join(parts) + '; export the state dict of this exact config')
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


def check_class_count(model: Any, num_classes: int) -> None:
    head = getattr(model, 'decode_head', None)
    out = getattr(head, 'out_channels', None) or getattr(head, 'num_classes', None)
    if out is not None and int(out) != num_classes and not (num_classes == 2 and int(out) == 1):
        raise WorkerFailure(f'the model predicts {out} classes but the benchmark has {num_classes}: '
                            'set num_classes in the decode head to match')


def predict_all(model: Any, request: dict[str, Any]) -> None:
    import numpy as np
    import torch
    from mmcv.transforms import Compose
    from PIL import Image
    pipeline = Compose(request['pipeline'])
    out_dir = Path(request['out_dir'])
    num_classes = int(request['num_classes'])
    images = request['images']
    started = time.perf_counter()
    for index, image_path in enumerate(images):
        data = pipeline(dict(img_path=image_path))
        batch = dict(inputs=[data['inputs']], data_samples=[data['data_samples']])
        with torch.no_grad():
            sample = model.test_step(batch)[0]
        logits = sample.seg_logits.data
        check_logits(logits, num_classes, image_path)
        if index == 0:
            check_deterministic(model, batch, logits, image_path)
        prediction = sample.pred_sem_seg.data[0].to('cpu').numpy().astype(np.uint8)
        expected = tuple(data['data_samples'].ori_shape)
        if prediction.shape != expected:
            raise WorkerFailure(f'prediction for {Path(image_path).name} has shape {prediction.shape}, '
                                f'expected {expected}')
        Image.fromarray(prediction).save(out_dir / f'{index:06d}.png', compress_level=1)
        emit('progress', done=index + 1, total=len(images),
             seconds=round(time.perf_counter() - started, 3))


def check_deterministic(model: Any, batch: dict, logits: Any, image_path: str) -> None:
    """A second pass on the same input must give the same logits (within float noise)."""
    import torch
    with torch.no_grad():
        again = model.test_step(batch)[0].seg_logits.data
    scale = float(logits.abs().max()) or 1.0
    difference = float((again - logits).abs().max())
    if difference > DETERMINISM_TOLERANCE * scale:
        raise WorkerFailure(f'the model is not deterministic: two passes on {Path(image_path).name} differ '
                            f'by {difference:.3g} (tolerance {DETERMINISM_TOLERANCE:g} of the logit scale)')


def check_logits(logits: Any, num_classes: int, image_path: str) -> None:
    import torch
    channels = int(logits.shape[0])
    if channels != num_classes and not (num_classes == 2 and channels == 1):
        raise WorkerFailure(f'the model output has {channels} channels for {num_classes} classes')
    if not bool(torch.isfinite(logits).all()):
        bad = int((~torch.isfinite(logits)).sum())
        raise WorkerFailure(f'the model output holds {bad} NaN/Inf values on {Path(image_path).name}')
    if math.prod(logits.shape) == 0:
        raise WorkerFailure('the model output is empty')


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
