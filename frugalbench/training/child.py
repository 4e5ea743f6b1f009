"""Child process: train a model with MMEngine's Runner from a config given as plain data.

    python -m frugalbench.training.child REQUEST_JSON

The request holds the full training config (built by the parent, see training.config), the
path of the final checkpoint, the thread count and, for submissions with their own code, the
folder to import it from. Events on the parent channel::

    started     start_iteration, max_iters, resumed_from (a checkpoint path or null), params
    progress    iteration, max_iters, loss, seconds_per_iter, eta_seconds, lr, cpu_seconds
    checkpoint  iteration (a resumable checkpoint was written)
    done        iterations, params, final_loss
    error       message

Intermediate checkpoints are MMEngine's own (model, optimizer, schedulers, message hub) in
the work folder; only they are loaded with pickle, and only while resuming. The final
checkpoint is a plain state dict without auxiliary heads, loadable with weights_only=True.
"""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from mmengine.hooks import Hook

from frugalbench.model.channel import decode_config, emit, serve
from frugalbench.model.custom_code import import_custom_modules
from frugalbench.model.worker import load_weights

AUXILIARY_PREFIX = 'auxiliary_head.'
LAST_CHECKPOINT_FILE = 'last_checkpoint'  # written by MMEngine's CheckpointHook after each save
CHECKPOINT_PATTERN = re.compile(r'^iter_(\d+)\.pth$')
WEIGHTS_ONLY_VARIABLES = ('TORCH_FORCE_WEIGHTS_ONLY_LOAD', 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')


class TrainingFailure(Exception):
    """A failure to report to the parent as one line."""


def main(argv: list[str]) -> int:
    return serve(argv, train, (TrainingFailure,), 'training')


def find_resume_checkpoint(work_dir: Path) -> Path | None:
    """The checkpoint to resume from: the one ``last_checkpoint`` names, else the newest
    ``iter_N.pth`` (MMEngine writes ``last_checkpoint`` only after a checkpoint is complete)."""
    marker = work_dir / LAST_CHECKPOINT_FILE
    if marker.is_file():
        named = Path(marker.read_text().strip())
        if named.name and named.is_file() and named.resolve().parent == work_dir.resolve():
            return named
    found = sorted((int(m.group(1)), p) for p in work_dir.glob('iter_*.pth')
                   if (m := CHECKPOINT_PATTERN.match(p.name)))
    return found[-1][1] if found else None


def train(request: dict[str, Any]) -> None:
    import torch
    torch.set_num_threads(int(request.get('threads', 1)))
    from mmengine.config import Config
    from mmengine.runner import Runner
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    import frugalbench.mmseg_ext  # noqa: F401  (FrugalbenchCompressed, MapLabels: the harness's own types)
    data = decode_config(request['config'])
    import_custom_modules(data, request.get('code_dir'), TrainingFailure)
    data.pop('custom_imports', None)  # imported above, from the submission folder
    work_dir = Path(data['work_dir'])
    work_dir.mkdir(parents=True, exist_ok=True)
    resume_from = find_resume_checkpoint(work_dir)
    data['load_from'] = str(resume_from) if resume_from else None
    data['resume'] = resume_from is not None
    runner = Runner.from_cfg(Config(data))
    init = request.get('init_checkpoint')
    hook = ProgressHook(resume_from, interval=float(request.get('emit_seconds', 1.0)),
                        checkpoint_interval=int(data['default_hooks']['checkpoint']['interval']),
                        init_checkpoint=Path(init) if init else None)
    runner.register_hook(hook, priority='LOWEST')
    runner.train()
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    export_state_dict(model, Path(request['final_checkpoint']))
    emit('done', iterations=runner.iter, params=count_params(model), final_loss=hook.last_loss)


def count_params(model: Any) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if not name.startswith(AUXILIARY_PREFIX))


def export_state_dict(model: Any, out: Path) -> None:
    """Write the model's tensors (auxiliary heads dropped) as a plain, weights-only state dict."""
    import torch
    state = {k: v.detach().to('cpu').clone() for k, v in model.state_dict().items()
             if not k.startswith(AUXILIARY_PREFIX)}
    partial = out.with_name(out.name + '.partial')
    torch.save(state, partial)
    partial.replace(out)


class ProgressHook(Hook):
    """Reports progress to the parent; lets MMEngine unpickle its own checkpoints while resuming;
    starts a fresh training from ``init_checkpoint`` (weights only) when one is given."""

    def __init__(self, resume_from: Path | None, interval: float, checkpoint_interval: int,
                 init_checkpoint: Path | None = None) -> None:
        self.resume_from = resume_from
        self.init_checkpoint = init_checkpoint
        self.interval = interval
        self.checkpoint_interval = checkpoint_interval
        self.last_loss: float | None = None
        self._saved_env: dict[str, str | None] = {}
        self._started = 0.0
        self._start_iter = 0
        self._last_emit = 0.0

    def before_run(self, runner: Any) -> None:
        # MMEngine resumes between before_run and before_train, with a plain torch.load of a
        # checkpoint it wrote itself into the work folder (optimizer state is not weights-only).
        if self.resume_from is not None:
            self._saved_env = {k: os.environ.get(k) for k in WEIGHTS_ONLY_VARIABLES}
            os.environ.pop('TORCH_FORCE_WEIGHTS_ONLY_LOAD', None)
            os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'

    def before_train(self, runner: Any) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._started = self._last_emit = time.perf_counter()
        self._start_iter = runner.iter
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        if self.init_checkpoint is not None and self.resume_from is None:
            # after MMEngine's init_weights, which would overwrite weights loaded earlier; in place,
            # so the optimizer built before this hook keeps training the same tensors
            load_weights(model, self.init_checkpoint, TrainingFailure)
        emit('started', start_iteration=runner.iter, max_iters=runner.max_iters,
             resumed_from=str(self.resume_from) if self.resume_from else None, params=count_params(model))

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        done = runner.iter + 1  # MMEngine counts the iteration after the hooks ran
        if isinstance(outputs, dict) and 'loss' in outputs:
            self.last_loss = float(outputs['loss'])
        now = time.perf_counter()
        if done == runner.max_iters or now - self._last_emit >= self.interval:
            self._last_emit = now
            per_iter = (now - self._started) / max(1, done - self._start_iter)
            emit('progress', iteration=done, max_iters=runner.max_iters, loss=self.last_loss,
                 seconds_per_iter=round(per_iter, 4), eta_seconds=round(per_iter * (runner.max_iters - done), 1),
                 lr=_learning_rate(runner), cpu_seconds=round(time.process_time(), 2))
        if done % self.checkpoint_interval == 0 or done == runner.max_iters:
            emit('checkpoint', iteration=done)


def _learning_rate(runner: Any) -> float | None:
    try:
        return float(runner.optim_wrapper.get_lr()['lr'][0])
    except (AttributeError, KeyError, IndexError, TypeError):
        return None


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
