"""Child process: build a submission's model, compress it, and check it rebuilds from the plan.

    python -m frugalbench.compression.child REQUEST_JSON

The request holds the parent's config (as data, from config_reader), its checkpoint, the
folder of its own code (if any), the steps to apply, the input shape for the compute counts
and where to write the compressed checkpoint. The child builds and loads the model exactly
as the evaluation worker does, drops auxiliary heads (unused at inference), applies the
steps in order, writes the state dict, then builds the compressed config's model afresh,
loads that checkpoint with the worker's weights-only loader, and compares its output with
the compressed model's. Events::

    stage   name
    done    steps (reports), plan, model (the new model config, encoded), compute, verification
    error   message
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from frugalbench.compression.report import CompressionError, StepReport
from frugalbench.model.channel import decode_config, emit, encode_config, send_file, serve
from frugalbench.model.worker import WorkerFailure, build_model, load_weights

RELATIVE_TOLERANCE = 1e-4


def main(argv: list[str]) -> int:
    return serve(argv, compress, (WorkerFailure, CompressionError), 'compression')


def compress(request: dict[str, Any]) -> None:
    torch.set_num_threads(int(request.get('threads', 1)))
    torch.manual_seed(0)
    import frugalbench.mmseg_ext  # noqa: F401  (registers FrugalbenchCompressed, MapLabels)
    from frugalbench.measurements.compute import count_compute, example_input

    config = decode_config(request['config'])
    code_dir = request.get('code_dir')
    emit('stage', name='building the model')
    model = build_model(config, code_dir, 'cpu')
    load_weights(model, Path(request['checkpoint']))
    auxiliary_dropped = bool((config.get('model') or {}).get('auxiliary_head'))  # build_model drops them
    shape = tuple(int(v) for v in request['input_shape'])
    before = [m.to_dict() for m in count_compute(model, shape)]
    x = example_input(model, shape)
    reports = [apply_step(model, step, x) for step in request['steps']]
    new_model = compressed_model_config(config['model'], [r.plan_step for r in reports if r.plan_step])
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save(state, request['out_checkpoint'])
    emit('stage', name='rebuilding the compressed model from its config')
    rebuilt = build_model({**config, 'model': copy.deepcopy(new_model)}, code_dir, 'cpu')
    load_weights(rebuilt, Path(request['out_checkpoint']))
    verification = compare_outputs(model, rebuilt, x)
    after = [m.to_dict() for m in count_compute(rebuilt, shape)]
    send_file('model.pth', Path(request['out_checkpoint']).read_bytes())
    emit('done', steps=[r.to_dict() for r in reports], model=encode_config(new_model),
         compute={'before': before, 'after': after, 'input_shape': list(shape)},
         verification=verification, auxiliary_heads_dropped=auxiliary_dropped,
         tensors=len(state))


def apply_step(model: nn.Module, step: dict[str, Any], x: torch.Tensor) -> StepReport:
    method = step['method']
    emit('stage', name=f'{method} {json.dumps({k: v for k, v in step.items() if k != "method"})}')
    if method == 'prune':
        from frugalbench.compression.prune import structured_prune, unstructured_prune
        if step.get('structured'):
            return structured_prune(model, float(step['ratio']), x)
        return unstructured_prune(model, float(step['ratio']))
    if method == 'low-rank':
        from frugalbench.compression.low_rank import low_rank
        return low_rank(model, ratio=step.get('ratio'), energy=step.get('energy'))
    if method == 'quantize':
        from frugalbench.compression.quantize import quantize_int8
        return quantize_int8(model)
    raise CompressionError(f'unknown compression method {method!r}')


def compressed_model_config(parent: dict[str, Any], plan_steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The parent's model section wrapped as ``FrugalbenchCompressed`` with the plan appended.

    A parent that is itself compressed keeps its base type; its plan runs first. Auxiliary
    heads are removed (their weights are not in the checkpoint, and after structured pruning
    their inputs no longer have the widths they were built for).
    """
    from frugalbench.compression.rebuild import MODEL_TYPE, PLAN_VERSION
    model = copy.deepcopy(parent)
    model.pop('pretrained', None)
    if model.get('type') == MODEL_TYPE:
        plan = list(model.pop('compression_plan')) + plan_steps
        model.pop('plan_version', None)
        base_type = model.pop('base_type')
        model.pop('type')
    else:
        plan, base_type = plan_steps, model.pop('type')
    if 'auxiliary_head' in model:
        model['auxiliary_head'] = None
    return {'type': MODEL_TYPE, 'base_type': base_type, 'plan_version': PLAN_VERSION,
            'compression_plan': _plain(plan), **model}


def compare_outputs(model: nn.Module, rebuilt: nn.Module, x: torch.Tensor) -> dict[str, Any]:
    """The rebuilt model must reproduce the compressed one (same weights, same architecture)."""
    from frugalbench.measurements.compute import InferenceForward
    model.eval()
    rebuilt.eval()
    with torch.no_grad():
        expected = InferenceForward(model)(x)
        got = InferenceForward(rebuilt)(x)
    if expected.shape != got.shape:
        raise CompressionError(f'the model rebuilt from the compressed config outputs {tuple(got.shape)}, '
                               f'the compressed model {tuple(expected.shape)}: the plan is incomplete')
    difference = float((expected - got).abs().max())
    scale = float(expected.abs().max())
    if difference > RELATIVE_TOLERANCE * max(1.0, scale):
        raise CompressionError(f'the model rebuilt from the compressed config differs from the compressed model '
                               f'by {difference:.3g} (output scale {scale:.3g}): the plan is incomplete')
    return {'max_abs_difference': difference, 'output_scale': scale, 'input_shape': list(x.shape),
            'checked': 'model rebuilt from the new config and checkpoint reproduces the compressed model'}


def _plain(value: Any) -> Any:
    """Plan data with tuples as lists (the config file and JSON hold it alike)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
