"""Class information filled into a model config before it is built."""
from __future__ import annotations

import pytest

from frugalbench.errors import SubmissionError
from frugalbench.zero_shot.fill import fill_class_information

META = {'classes': ['background', 'disc', 'bar'], 'attribute_names': ['a', 'b'],
        'attributes': [[0, 0], [1, 0], [0, 1]], 'zero_shot': {'u1': {'unseen': [2]}}}


def test_an_empty_open_vocabulary_text_encoder_gets_the_class_names() -> None:
    model = {'type': 'MultimodalEncoderDecoder',
             'text_encoder': {'type': 'CLIPTextEncoder', 'vocabulary': None, 'templates': 'imagenet'}}
    notes = fill_class_information(model, META)
    assert model['text_encoder']['vocabulary'] == ['background', 'disc', 'bar'] and notes


def test_a_vocabulary_or_dataset_name_the_config_sets_is_kept() -> None:
    model = {'text_encoder': {'type': 'CLIPTextEncoder', 'vocabulary': ['mine']},
             'other': {'type': 'CLIPTextEncoder', 'dataset_name': 'coco-stuff164k', 'vocabulary': None}}
    fill_class_information(model, META)
    assert model['text_encoder']['vocabulary'] == ['mine'] and model['other']['vocabulary'] is None


def test_an_attribute_head_gets_the_table_and_its_split() -> None:
    model = {'decode_head': {'type': 'FrugalbenchAttributeHead', 'split': 'u1'}}
    fill_class_information(model, META)
    assert model['decode_head']['attributes'] == META['attributes'] and model['decode_head']['unseen'] == [2]
    with pytest.raises(SubmissionError, match="split is 'nope'"):
        fill_class_information({'decode_head': {'type': 'FrugalbenchAttributeHead', 'split': 'nope'}}, META)


def test_attribute_scores_prefer_the_class_whose_row_matches() -> None:
    import torch

    import frugalbench.mmseg_ext  # noqa: F401
    from frugalbench.zero_shot.modules import AttributeHead
    head = AttributeHead(head={'type': 'FCNHead', 'in_channels': 4, 'channels': 4, 'num_convs': 1}, num_classes=3,
                         attributes=META['attributes'], unseen=[2], calibration=0.0)
    logits = torch.tensor([-5.0, 5.0]).view(1, 2, 1, 1)  # attribute a absent, b present: the row of 'bar'
    assert int(head.class_scores(logits).argmax(1)) == 2
    head.score_unseen = False  # the seen-classes-only comparison never predicts an unseen class
    assert int(head.class_scores(logits).argmax(1)) != 2
    undecided = torch.zeros(1, 2, 1, 1)  # every row equally likely
    head.score_unseen = True
    assert int(head.class_scores(undecided).argmax(1)) != 2
    head.calibration = 0.5  # calibrated stacking: seen-class scores lowered, the unseen class wins
    assert int(head.class_scores(undecided).argmax(1)) == 2


def test_a_filled_mmseg_clip_text_encoder_embeds_the_benchmark_classes() -> None:
    """MMSeg's own CLIPTextEncoder (SAN), built from the filled config (one small layer, random weights):
    it encodes one text embedding per benchmark class (plus SAN's background)."""
    import torch
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    config = {'text_encoder': {'type': 'CLIPTextEncoder', 'dataset_name': None, 'vocabulary': None, 'embed_dims': 32,
                               'num_layers': 1, 'num_heads': 2, 'output_dims': 16, 'cat_bg': True}}
    fill_class_information(config, META)
    encoder = MODELS.build(config['text_encoder'])
    encoder.init_weights()
    assert encoder.vocabulary == META['classes']
    with torch.no_grad():
        assert tuple(encoder().shape) == (len(META['classes']) + 1, 16)
