"""The training config: schedule resolution, the harness's pipeline, and the model prepared for training."""
from __future__ import annotations

from pathlib import Path

import pytest

from frugalbench.benchmarks import load_benchmark
from frugalbench.errors import SubmissionError, UsageError
from frugalbench.training.config import (
    DEFAULT_OPTIMIZER,
    TrainingData,
    build_training_config,
    default_checkpoint_interval,
    resolve_schedule,
    train_pipeline,
    training_model,
)

MODEL = {
    'type': 'EncoderDecoder',
    'data_preprocessor': {'type': 'SegDataPreProcessor', 'mean': [0, 0, 0], 'std': [1, 1, 1]},
    'pretrained': 'open-mmlab://some-backbone',
    'backbone': {'type': 'MixVisionTransformer',
                 'init_cfg': {'type': 'Pretrained', 'checkpoint': 'https://example.org/mit_b0.pth'}},
    'decode_head': {'type': 'FCNHead', 'num_classes': 7, 'ignore_index': 255,
                    'init_cfg': {'type': 'Normal', 'std': 0.01}},
}


@pytest.fixture
def synthetic():
    return load_benchmark('synthetic')


def test_schedule_defaults_fill_what_the_config_leaves_out(synthetic) -> None:
    schedule = resolve_schedule({'train_schedule': {'iters': 300, 'batch_size': 4}}, synthetic)
    assert schedule.iters == 300 and schedule.batch_size == 4
    assert schedule.crop_size == (128, 128)            # the synthetic eval size, as (height, width)
    assert schedule.optimizer == DEFAULT_OPTIMIZER
    assert schedule.checkpoint_interval == 30           # iters / 10
    assert schedule.scale_range == (0.5, 2.0) and schedule.num_workers == 0


def test_iters_from_the_command_line_override_the_schedule(synthetic) -> None:
    schedule = resolve_schedule({'train_schedule': {'iters': 300, 'checkpoint_interval': 100}}, synthetic,
                                iters=50, checkpoint_interval=7)
    assert (schedule.iters, schedule.checkpoint_interval) == (50, 7)


def test_default_checkpoint_interval_is_a_tenth_capped() -> None:
    assert [default_checkpoint_interval(n) for n in (5, 50, 3000, 100000)] == [1, 5, 250, 250]


def test_a_config_without_iters_needs_the_flag(synthetic) -> None:
    with pytest.raises(UsageError, match='--iters'):
        resolve_schedule({}, synthetic)
    assert resolve_schedule({}, synthetic, iters=12).iters == 12


def test_unknown_schedule_keys_are_named(synthetic) -> None:
    with pytest.raises(SubmissionError, match=r"unknown key\(s\) \['lr'\]"):
        resolve_schedule({'train_schedule': {'iters': 10, 'lr': 0.1}}, synthetic)


def test_pipeline_rescales_around_the_eval_size_then_crops(synthetic) -> None:
    schedule = resolve_schedule({'train_schedule': {'iters': 10, 'crop_size': (96, 112)}}, synthetic)
    steps = train_pipeline(synthetic, schedule)
    assert [s['type'] for s in steps] == ['LoadImageFromFile', 'LoadAnnotations', 'RandomResize', 'RandomCrop',
                                          'RandomFlip', 'PhotoMetricDistortion', 'PackSegInputs']
    assert steps[2]['scale'] == (128, 128) and steps[2]['ratio_range'] == (0.5, 2.0)
    assert steps[3]['crop_size'] == (96, 112) and steps[3]['ignore_index'] == 255


def test_model_is_trained_from_random_initialisation(synthetic) -> None:
    schedule = resolve_schedule({'train_schedule': {'iters': 10}}, synthetic)
    model, notes = training_model({'model': MODEL}, synthetic, schedule)
    assert 'pretrained' not in model
    assert model['backbone']['init_cfg'] is None
    assert model['decode_head']['init_cfg'] == {'type': 'Normal', 'std': 0.01}  # not a weight file: kept
    assert model['data_preprocessor']['size'] == (128, 128)
    assert len(notes) == 2 and 'mit_b0.pth' in notes[1]
    assert MODEL['backbone']['init_cfg'] is not None  # the input is not modified


def test_a_model_without_data_preprocessor_is_refused(synthetic) -> None:
    schedule = resolve_schedule({'train_schedule': {'iters': 10}}, synthetic)
    model = {k: v for k, v in MODEL.items() if k != 'data_preprocessor'}
    with pytest.raises(SubmissionError, match='data_preprocessor'):
        training_model({'model': model}, synthetic, schedule)


def test_a_head_ignoring_another_label_is_refused(synthetic) -> None:
    schedule = resolve_schedule({'train_schedule': {'iters': 10}}, synthetic)
    model = {**MODEL, 'decode_head': {**MODEL['decode_head'], 'ignore_index': 0}}
    with pytest.raises(SubmissionError, match='ignore_index=255'):
        training_model({'model': model}, synthetic, schedule)


def test_full_config_uses_only_the_budgeted_data(synthetic, tmp_path: Path) -> None:
    schedule = resolve_schedule({'train_schedule': {'iters': 40, 'batch_size': 2}}, synthetic)
    data = TrainingData(images_dir=tmp_path / 'images', annotations_dir=tmp_path / 'ann',
                        stems_file=tmp_path / 'ann' / 'stems.txt')
    cfg, _ = build_training_config({'model': MODEL, 'custom_imports': {'imports': ['my_head']}},
                                   synthetic, schedule, data, tmp_path / 'mm', seed=3)
    dataset = cfg['train_dataloader']['dataset']
    assert dataset['ann_file'] == str(data.stems_file)
    assert dataset['data_prefix'] == {'img_path': str(data.images_dir), 'seg_map_path': str(data.annotations_dir)}
    assert cfg['train_dataloader']['batch_size'] == 2
    assert cfg['train_cfg']['max_iters'] == 40
    assert cfg['param_scheduler'][0]['end'] == 40
    assert cfg['default_hooks']['checkpoint']['interval'] == 4
    assert cfg['randomness'] == {'seed': 3} and cfg['resume'] is True
    assert cfg['custom_imports'] == {'imports': ['my_head']}
    assert not {'val_dataloader', 'test_dataloader', 'val_evaluator'} & set(cfg)
