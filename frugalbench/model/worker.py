"""Child process: a model that only answers queries.

    python -m frugalbench.model.worker

The worker imports torch and MMSeg first (while the parent is still reading the config), then
takes one ``request`` frame: the config as data (its payload), the checkpoint, the number of
classes, the test-time pipeline after image decoding (fixed by the benchmark), device, threads.
It builds the model, loads the weights (weights-only), sends ``ready`` and then answers, one at
a time, until ``bye``:

    query   {id} + encoded image bytes      ->  answer {id, height, width} + uint8 label map
            (+ confidence_bins: N)          ->  ... + confidence: N pixel counts of the max softmax probability
    count   {} + encoded image bytes        ->  counted {items: [compute measurements]}
    repeat  {times, threads} + image bytes  ->  repeated {}     (forwards only: for counters outside)
    bye     {}                              ->  done {cuda_peak_allocated_bytes}

It never sees an image before the parent queries it, never times itself and never sees an
annotation: the parent owns the clock, the order of the queries and the scoring.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

from frugalbench.model.channel import decode_config, emit, open_channel, receive, send
from frugalbench.model.custom_code import import_custom_modules

AUXILIARY_PREFIX = 'auxiliary_head.'
# registry names only: a dotted `type` would make mmengine import any module and call any object
TYPE_NAME = re.compile(r'^(?:(?:mmseg|mmcv|mmengine)\.)?[A-Za-z_][A-Za-z0-9_]*$')


class WorkerFailure(Exception):
    """A failure to report to the parent as one line."""


def main(argv: list[str]) -> int:
    del argv
    open_channel()
    try:
        _warm_imports()
        frame = receive()
        if frame.kind != 'request':
            raise WorkerFailure(f'expected a request, got {frame.kind!r}')
        request = frame.header
        config = decode_config(json.loads(frame.payload.decode()))
        model, pipeline = prepare(config, request)
        emit('ready')
        answer_queries(model, pipeline, request)
    except WorkerFailure as exc:
        emit('error', message=str(exc))
        return 1
    except EOFError:
        return 0  # the parent is gone or done with us
    except Exception as exc:  # noqa: BLE001 - one line to the parent, the traceback to the log
        traceback.print_exc()
        emit('error', message=f'the model failed: {type(exc).__name__}: {exc}'[:500])
        return 1
    return 0


def _warm_imports() -> None:
    import torch  # noqa: F401
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import frugalbench.mmseg_ext  # noqa: F401  (MapLabels, FrugalbenchCompressed)


def prepare(config: dict[str, Any], request: dict[str, Any]) -> tuple[Any, Any]:
    import torch
    from mmcv.transforms import Compose
    torch.set_num_threads(int(request.get('threads', 1)))
    torch.manual_seed(0)
    model = build_model(config, request.get('code_dir'), request['device'], request.get('dataset_meta'))
    load_weights(model, Path(request['checkpoint']))
    check_class_count(model, int(request['num_classes']))
    return model, Compose(request['pipeline'])


def check_types(value: Any, where: str = 'model') -> None:
    """Refuse any ``type`` that is not a registry name (a dotted path would run arbitrary code)."""
    if isinstance(value, dict):
        kind = value.get('type')
        if kind is not None and not (isinstance(kind, str) and TYPE_NAME.match(kind)):
            raise WorkerFailure(f'{where}.type {str(kind)[:80]!r} is not a registered MMSeg/MMCV/MMEngine name '
                                '(module paths are refused): ship your own modules through custom_imports')
        for key, item in value.items():
            check_types(item, f'{where}.{key}')
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_types(item, f'{where}[{index}]')


def build_model(config: dict[str, Any], code_dir: str | None, device: str,
                dataset_meta: dict[str, Any] | None = None) -> Any:
    """Build the config's model; with ``dataset_meta`` (the benchmark's class information), fill the
    config's empty class information first (``frugalbench.zero_shot.fill``: attribute tables, an
    open-vocabulary text encoder's vocabulary) and set ``model.dataset_meta``."""
    from mmengine.config import ConfigDict
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import frugalbench.mmseg_ext  # noqa: F401  (MapLabels, FrugalbenchCompressed)
    import_custom_modules(config, code_dir, WorkerFailure)
    model_cfg = ConfigDict(config.get('model') or {})
    if not model_cfg:
        raise WorkerFailure('the config has no `model` section: define the model to evaluate')
    check_types(config.get('model'))
    if dataset_meta is not None:
        from frugalbench.errors import SubmissionError
        from frugalbench.zero_shot.fill import fill_class_information
        try:
            fill_class_information(model_cfg, dataset_meta)
        except SubmissionError as exc:
            raise WorkerFailure(str(exc)) from None
    model_cfg.pop('pretrained', None)
    model_cfg['train_cfg'] = None
    try:
        model = MODELS.build(model_cfg)
    except Exception as exc:  # noqa: BLE001 - foreign config
        raise WorkerFailure(f'MMSeg could not build the model: {type(exc).__name__}: {exc}') from None
    if getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None  # training-only heads: not evaluated, counted or loaded
    if dataset_meta is not None:
        model.dataset_meta = dict(dataset_meta)  # class names (and more) before any prediction
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


def answer_queries(model: Any, pipeline: Any, request: dict[str, Any]) -> None:
    num_classes = int(request['num_classes'])
    device = request['device']
    while True:
        frame = receive()
        if frame.kind == 'query':
            bins = int(frame.get('confidence_bins') or 0)
            height, width, labels, histogram = label_map(model, pipeline, frame.payload, num_classes, bins)
            extra = {'confidence': histogram} if bins else {}
            send('answer', labels, id=frame.get('id'), height=height, width=width, **extra)
        elif frame.kind == 'count':
            emit('counted', items=count(model, pipeline, frame.payload))
        elif frame.kind == 'repeat':
            repeat(model, pipeline, frame.payload, int(frame.get('times', 1)), int(frame.get('threads', 1)))
            emit('repeated')
        elif frame.kind == 'bye':
            emit('done', cuda_peak_allocated_bytes=_cuda_peak(device))
            return
        else:
            raise WorkerFailure(f'unknown request {frame.kind!r}')


def decode(pipeline: Any, image: bytes) -> dict[str, Any]:
    """The image as ``LoadImageFromFile`` would load it (cv2, BGR), through the benchmark's pipeline."""
    import mmcv
    img = mmcv.imfrombytes(image, flag='color', backend='cv2')
    if img is None:
        raise WorkerFailure('an image of the benchmark could not be decoded')
    return pipeline(dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2], img_path=''))


def label_map(model: Any, pipeline: Any, image: bytes, num_classes: int,
              confidence_bins: int = 0) -> tuple[int, int, bytes, list[int] | None]:
    """The label map of one image; with ``confidence_bins``, also the histogram of its per-pixel
    max softmax probability (``confidence_histogram``), for a cascade's gate in the harness."""
    import numpy as np
    import torch
    data = decode(pipeline, image)
    batch = dict(inputs=[data['inputs']], data_samples=[data['data_samples']])
    with torch.no_grad():
        sample = model.test_step(batch)[0]
    check_logits(sample.seg_logits.data, num_classes)
    prediction = np.ascontiguousarray(sample.pred_sem_seg.data[0].to('cpu').numpy().astype(np.uint8))
    histogram = confidence_histogram(sample.seg_logits.data, confidence_bins) if confidence_bins else None
    return int(prediction.shape[0]), int(prediction.shape[1]), prediction.tobytes(), histogram


MAX_CONFIDENCE_BINS = 1000


def confidence_histogram(logits: Any, bins: int) -> list[int]:
    """Pixel counts of the max softmax probability (sigmoid for one channel) in ``bins`` equal bins over
    [0, 1] (the last bin holds 1.0): one integer list per answer, summing to the label map's pixels."""
    import torch
    if not 1 <= bins <= MAX_CONFIDENCE_BINS:
        raise WorkerFailure(f'confidence_bins must be 1-{MAX_CONFIDENCE_BINS}, got {bins}')
    with torch.no_grad():
        logits = logits.float()
        if logits.shape[0] == 1:
            p = torch.sigmoid(logits[0])
            top = torch.maximum(p, 1 - p)
        else:
            top = torch.softmax(logits, dim=0).max(dim=0).values
        index = (top.clamp(0, 1) * bins).long().clamp(max=bins - 1)
        return torch.bincount(index.flatten(), minlength=bins).tolist()


def preprocessed(model: Any, pipeline: Any, image: bytes) -> Any:
    data = decode(pipeline, image)
    return model.data_preprocessor(dict(inputs=[data['inputs']], data_samples=[data['data_samples']]),
                                   False)['inputs']


def count(model: Any, pipeline: Any, image: bytes) -> list[dict[str, Any]]:
    from frugalbench.measurements.compute import count_compute
    shape = tuple(preprocessed(model, pipeline, image).shape)
    return [m.to_dict() for m in count_compute(model, shape) if m.name != 'params']


def repeat(model: Any, pipeline: Any, image: bytes, times: int, threads: int) -> None:
    import torch
    x = preprocessed(model, pipeline, image)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            for _ in range(times):
                model(x, mode='tensor')
    finally:
        torch.set_num_threads(previous)


def check_logits(logits: Any, num_classes: int) -> None:
    import torch
    channels = int(logits.shape[0])
    if channels != num_classes and not (num_classes == 2 and channels == 1):
        raise WorkerFailure(f'the model output has {channels} channels for {num_classes} classes')
    if math.prod(logits.shape) == 0:
        raise WorkerFailure('the model output is empty')
    if not bool(torch.isfinite(logits).all()):
        bad = int((~torch.isfinite(logits)).sum())
        raise WorkerFailure(f'the model output holds {bad} NaN/Inf values')


def _cuda_peak(device: str) -> int | None:
    if not device.startswith('cuda'):
        return None
    import torch
    return int(torch.cuda.max_memory_allocated(device))


if __name__ == '__main__':
    status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # skip the interpreter's teardown of torch and MMSeg: the parent waits for our end
