"""End to end: `compress_submission` writes variants that `evaluate_submission` loads from their own folders."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from frugalbench.compression import CompressOptions, compress_submission
from frugalbench.errors import ModelError, UsageError
from frugalbench.evaluation import EvaluationOptions, evaluate_submission
from frugalbench.isolation import Limits

LIMITS = Limits(timeout_s=300, threads=1)
PRUNED = CompressOptions(prune=0.5, structured=True, limits=LIMITS)


@pytest.fixture(scope='module')
def parent(module_tiny_benchmark: str, module_make_submission) -> Path:
    """The tiny parent submission, shared by the slow tests here (they only read it)."""
    return module_make_submission(name='parent')


@pytest.fixture(scope='module')
def pruned(parent: Path):
    """One structured-pruning compression of ``parent``, which three tests check, build on or compare
    with (none writes into it)."""
    return compress_submission(parent, parent.parent / 'pruned', PRUNED)


@pytest.mark.slow
def test_structurally_pruned_variant_loads_from_its_own_folder(parent: Path, pruned):
    out, result = parent.parent / 'pruned', pruned

    # no code copied into the variant: the harness registers FrugalbenchCompressed itself
    assert sorted(p.name for p in out.iterdir()) == ['config.py', 'model.pth', 'submission.yaml']
    assert 'custom_imports' not in (out / 'config.py').read_text()
    manifest = yaml.safe_load((out / 'submission.yaml').read_text())
    assert manifest['technique'] == 'pruned' and manifest['parent'] == 'parent'
    record = manifest['compression']
    step = record['steps'][0]
    assert step['settings']['structured'] is True and step['settings']['ratio'] == 0.5
    assert 'decode_head.conv_seg' in step['layers_skipped']
    assert step['layers_changed']['backbone.learning_to_downsample.conv.conv'] == 'out_channels 32 -> 16'
    assert record['compute']['compressed']['params'] < record['compute']['parent']['params']
    assert record['compute']['compressed']['macs'] < record['compute']['parent']['macs']
    assert record['checkpoint_bytes']['compressed'] < record['checkpoint_bytes']['parent']
    assert record['verification']['max_abs_difference'] == 0.0
    assert result.folder == out.resolve()

    state = torch.load(out / 'model.pth', weights_only=True)
    assert state['backbone.learning_to_downsample.conv.conv.weight'].shape == (16, 3, 3, 3)

    outcome = evaluate_submission(out, EvaluationOptions(measure=False, limits=LIMITS))
    assert outcome.ok, outcome.document.get('failure_reason')
    document = outcome.document
    assert document['custom_imports'] == [] and document['custom_code'] is False
    assert document['manifest']['parent'] == 'parent'
    assert document['compute']['params'] == record['compute']['compressed']['params']
    assert document['accuracy']['num_images'] == 3


@pytest.mark.slow
def test_chained_low_rank_and_int8_variant_of_a_pruned_variant(pruned, tmp_path: Path):
    out = tmp_path / 'chained'
    compress_submission(pruned.folder, out, CompressOptions(low_rank=0.5, quantize='int8', limits=LIMITS))

    manifest = yaml.safe_load((out / 'submission.yaml').read_text())
    assert manifest['technique'] == 'low-rank' and manifest['parent'] == 'pruned'
    record = manifest['compression']
    assert [s['method'] for s in record['steps']] == ['low-rank', 'quantize']
    # int8 weights: the checkpoint shrinks far more than the parameter count
    assert record['checkpoint_bytes']['compressed'] < 0.5 * record['checkpoint_bytes']['parent']
    assert record['compute']['compressed']['params'] < record['compute']['parent']['params']
    config = (out / 'config.py').read_text()
    assert "'op': 'reshape'" in config and "'op': 'factorize'" in config and "'op': 'int8_weights'" in config
    state = torch.load(out / 'model.pth', weights_only=True)
    int8 = [k for k, v in state.items() if v.dtype == torch.int8]
    assert int8 and all(k.endswith('.weight_int8') for k in int8)

    outcome = evaluate_submission(out, EvaluationOptions(measure=False, limits=LIMITS))
    assert outcome.ok, outcome.document.get('failure_reason')
    # evaluated params are the checkpoint's tensors: the int8 weights plus their per-channel scales
    scales = sum(v.numel() for k, v in state.items() if k.endswith('.weight_scale'))
    assert outcome.document['compute']['params'] == record['compute']['compressed']['params'] + scales


def test_a_method_that_changes_nothing_fails_with_the_layers_and_why(tiny_benchmark: str, make_submission,
                                                                   tmp_path: Path):
    parent = make_submission(name='parent')
    with pytest.raises(ModelError) as error:
        compress_submission(parent, tmp_path / 'nothing', CompressOptions(rank_energy=1.0, limits=LIMITS))
    message = str(error.value)
    assert message.startswith('low-rank factorisation would change no layer of this model: ')
    assert 'backbone.learning_to_downsample.dsconv1.depthwise_conv.conv: grouped convolution (groups=32)' in message
    assert not (tmp_path / 'nothing').exists()


@pytest.mark.parametrize('options, message', [
    (CompressOptions(), 'name at least one method: '),
    (CompressOptions(structured=True), '--structured needs --prune RATIO'),
    (CompressOptions(prune=1.0), '--prune must be a fraction in (0, 1), got 1.0'),
    (CompressOptions(rank_energy=0.0), '--rank-energy must be a fraction in (0, 1], got 0.0'),
    (CompressOptions(low_rank=0.5, rank_energy=0.9), 'give --low-rank RATIO or --rank-energy E, not both'),
    (CompressOptions(quantize='int4'), "--quantize 'int4' is not supported: use int8"),
    (CompressOptions(prune=0.5, finetune=0), '--finetune must be at least 1 iteration'),
    (CompressOptions(prune=0.5, quantize='int8', finetune=10), '--finetune cannot be combined with --quantize: '),
])
def test_impossible_options_are_usage_errors(options: CompressOptions, message: str):
    with pytest.raises(UsageError) as error:
        options.steps()
    assert str(error.value).startswith(message)


def test_out_must_be_a_new_folder(tiny_benchmark: str, make_submission, tmp_path: Path):
    parent = make_submission(name='parent')
    taken = tmp_path / 'taken'
    taken.mkdir()
    (taken / 'file').write_text('x')
    with pytest.raises(UsageError, match='already exists and is not an empty folder'):
        compress_submission(parent, taken, CompressOptions(prune=0.5))
    with pytest.raises(UsageError, match='is inside the parent submission'):
        compress_submission(parent, parent / 'variant', CompressOptions(prune=0.5))


@pytest.mark.slow
def test_finetune_starts_from_the_compressed_weights_and_records_a_verified_training(
        parent: Path, pruned, tmp_path: Path):
    import json

    from frugalbench.submission import file_sha256
    plain = pruned  # the same compression of the same parent, without fine-tuning
    compressed = torch.load(plain.folder / 'model.pth', weights_only=True)
    events: list[dict] = []
    # an lr so small that the weights cannot move: they must come from the compressed checkpoint
    result = compress_submission(parent, tmp_path / 'submissions' / 'tuned', CompressOptions(
        prune=0.5, structured=True, finetune=3, finetune_lr_scale=1e-12, limits=LIMITS, on_event=events.append))

    record = json.loads((result.folder / 'training_record.json').read_text())
    assert record['initialisation']['weights'] == 'checkpoint'
    assert record['initialisation']['checkpoint_sha256'] == file_sha256(plain.folder / 'model.pth')
    assert record['iterations'] == 3 and record['budget']['annotation'] == 'full'
    assert record['schedule']['optimizer']['lr'] < 1e-12
    assert result.record['finetune']['iters'] == 3
    assert result.manifest.name.endswith('+ fine-tuned 3 iterations]')
    assert 'fine-tuned by frugalbench train' in result.manifest.training.notes
    tuned = torch.load(result.folder / 'model.pth', weights_only=True)
    assert tuned.keys() == compressed.keys()
    name = 'backbone.learning_to_downsample.conv.conv.weight'
    assert torch.allclose(tuned[name], compressed[name], atol=1e-6)
    assert any(e.get('event') == 'progress' for e in events)

    outcome = evaluate_submission(result.folder, EvaluationOptions(measure=False, limits=LIMITS))
    assert outcome.ok, outcome.document.get('failure_reason')
    assert outcome.document['training']['verified'] is True
    assert outcome.document['manifest']['parent'] == 'parent'


@pytest.mark.slow
def test_a_variant_written_by_an_earlier_version_still_evaluates_and_upgrades_to_the_same_scores(
        tiny_benchmark: str, make_submission, make_legacy, tmp_path: Path):
    from frugalbench.compression.submission import upgrade_folder
    parent = make_submission(name='parent')
    out = compress_submission(parent, tmp_path / 'submissions' / 'old', CompressOptions(
        low_rank=0.5, quantize='int8', limits=LIMITS)).folder
    make_legacy(out)
    checkpoint = (out / 'model.pth').read_bytes()

    old = evaluate_submission(out, EvaluationOptions(measure=False, limits=LIMITS))
    assert old.ok, old.document.get('failure_reason')
    assert old.document['custom_code'] is True  # its copied module runs as submission code

    assert upgrade_folder(out)[0] == 'deleted frugalbench_compressed.py'
    assert sorted(p.name for p in out.iterdir()) == ['config.py', 'model.pth', 'submission.yaml']
    assert (out / 'model.pth').read_bytes() == checkpoint
    new = evaluate_submission(out, EvaluationOptions(measure=False, limits=LIMITS))
    assert new.ok, new.document.get('failure_reason')
    assert new.document['custom_code'] is False
    assert new.document['accuracy']['miou'] == old.document['accuracy']['miou']
    assert new.document['accuracy']['per_class_iou'] == old.document['accuracy']['per_class_iou']
    assert new.document['compute']['params'] == old.document['compute']['params']


@pytest.mark.slow
def test_compressing_a_variant_written_by_an_earlier_version_writes_a_current_one(
        tiny_benchmark: str, make_submission, make_legacy, tmp_path: Path):
    parent = make_submission(name='parent')
    old = compress_submission(parent, tmp_path / 'old', CompressOptions(prune=0.5, limits=LIMITS)).folder
    make_legacy(old)
    out = tmp_path / 'again'
    compress_submission(old, out, CompressOptions(quantize='int8', limits=LIMITS))
    assert sorted(p.name for p in out.iterdir()) == ['config.py', 'model.pth', 'submission.yaml']
    config = (out / 'config.py').read_text()
    assert 'custom_imports' not in config and "'op': 'int8_weights'" in config
