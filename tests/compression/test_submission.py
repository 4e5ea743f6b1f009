"""The variant's folder: plan as config data, no copied code; upgrading variants of earlier versions."""
from __future__ import annotations

from pathlib import Path

import pytest

from frugalbench.compression.submission import LEGACY_MODULE_NAME, config_text, upgrade_folder
from frugalbench.errors import SubmissionError

VARIANT_MODEL = {'type': 'FrugalbenchCompressed', 'base_type': 'EncoderDecoder', 'plan_version': 1,
                 'compression_plan': [{'op': 'factorize', 'layers': {'decode_head.conv_seg': 2}}],
                 'decode_head': {'type': 'FCNHead', 'num_classes': 3}}


def test_the_config_holds_the_plan_as_data_without_custom_imports():
    text = config_text('parent', VARIANT_MODEL, [], None)
    assert 'custom_imports' not in text and 'import' not in text.replace('custom_imports', '')
    namespace: dict = {}
    exec(text, namespace)  # plain literals: the config is data
    assert namespace['model'] == VARIANT_MODEL


def test_a_parent_with_its_own_code_keeps_its_custom_imports():
    text = config_text('parent', VARIANT_MODEL, ['my_head'], None)
    assert "custom_imports = dict(imports=['my_head'], allow_failed_imports=False)" in text


def test_upgrade_drops_the_copied_module_and_keeps_model_and_checkpoint(tmp_path: Path, make_variant, make_legacy):
    folder = make_variant(tmp_path / 'v')
    current_config = (folder / 'config.py').read_text()
    current_manifest = (folder / 'submission.yaml').read_text()
    make_legacy(folder)
    checkpoint = (folder / 'model.pth').read_bytes()

    changes = upgrade_folder(folder)

    assert changes == ['deleted frugalbench_compressed.py',
                       "config: custom_imports ['frugalbench_compressed'] -> []", 'manifest: compression.rebuild']
    assert not (folder / f'{LEGACY_MODULE_NAME}.py').exists()
    assert (folder / 'config.py').read_text() == current_config  # what compress writes today
    assert (folder / 'submission.yaml').read_text() == current_manifest
    assert (folder / 'model.pth').read_bytes() == checkpoint
    assert upgrade_folder(folder) == []  # already current


def test_upgrade_refuses_an_edited_copy_and_says_how_to_regenerate(tmp_path: Path, make_variant, make_legacy):
    folder = make_variant(tmp_path / 'v')
    make_legacy(folder)
    module = folder / f'{LEGACY_MODULE_NAME}.py'
    module.write_text(module.read_text() + '\n# edited\n')
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(SubmissionError) as error:
        upgrade_folder(folder)
    message = str(error.value)
    assert 'differs from every rebuild module frugalbench compress wrote' in message
    assert 'regenerate it with `frugalbench compress parent --out NEW_DIR ...`' in message
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_upgrading_a_current_variant_changes_nothing(tmp_path: Path, make_variant):
    folder = make_variant(tmp_path / 'v')
    assert upgrade_folder(folder) == []
