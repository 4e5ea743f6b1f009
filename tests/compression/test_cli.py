"""`frugalbench compress` as a user runs it: one JSON document, exit codes, one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from frugalbench.cli import main


@pytest.mark.slow
def test_compress_json_names_the_new_folder_and_its_record(tiny_benchmark, make_submission, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]):
    parent = make_submission(name='parent')
    capsys.readouterr()  # building the fixture's weights logs to stdout
    out = tmp_path / 'parent-lowrank'
    code = main(['compress', str(parent), '--out', str(out), '--low-rank', '0.5', '--format', 'json'])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    document = json.loads(captured.out)
    assert document['folder'] == str(out.resolve())
    assert document['manifest']['technique'] == 'low-rank' and document['manifest']['parent'] == 'parent'
    step = document['manifest']['compression']['steps'][0]
    assert step['method'] == 'low-rank' and step['settings'] == {'ratio': 0.5, 'decomposition': 'truncated SVD'}
    compute = document['manifest']['compression']['compute']
    assert compute['compressed']['macs'] < compute['parent']['macs']
    assert compute['compressed']['params'] < compute['parent']['params']


@pytest.mark.parametrize('args, message', [
    (['--finetune', '10', '--quantize', 'int8'], 'frugalbench: error: --finetune cannot be combined with --quantize'),
    (['--prune', '1.5'], 'frugalbench: error: --prune must be a fraction in (0, 1), got 1.5'),
    (['--structured'], 'frugalbench: error: --structured needs --prune RATIO'),
])
def test_impossible_requests_exit_2_with_one_line(args: list[str], message: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]):
    code = main(['compress', str(tmp_path), '--out', str(tmp_path / 'out'), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(message) and err.count('\n') == 1


def test_rank_options_are_exclusive(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        main(['compress', str(tmp_path), '--out', str(tmp_path / 'o'), '--low-rank', '0.5', '--rank-energy', '0.9'])
    assert exit_info.value.code == 2
    assert 'not allowed with argument' in capsys.readouterr().err


def test_a_method_that_cannot_handle_the_model_exits_1_naming_the_layers(tiny_benchmark, make_submission,
                                                                        tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]):
    parent = make_submission(name='parent')
    code = main(['compress', str(parent), '--out', str(tmp_path / 'o'), '--rank-energy', '1.0'])
    last_line = capsys.readouterr().err.strip().splitlines()[-1]  # (earlier lines: the fixture's MMSeg warnings)
    assert code == 1
    assert last_line.startswith('frugalbench: low-rank factorisation would change no layer of this model: ')
    assert 'grouped convolution (groups=32): not factorised' in last_line


def test_compress_without_out_exits_2_saying_what_is_needed(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code = main(['compress', str(tmp_path), '--prune', '0.5'])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith('frugalbench: error: --out DIR is required') and err.count('\n') == 1


def test_upgrade_takes_no_out_and_no_method(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code = main(['compress', str(tmp_path), '--upgrade', '--out', str(tmp_path / 'o'), '--prune', '0.5'])
    assert code == 2
    assert capsys.readouterr().err.startswith(
        'frugalbench: error: --upgrade rewrites SUBMISSION in place and takes no --out, --prune')


def test_upgrade_rewrites_an_old_variant_and_lists_the_changes(tmp_path: Path, make_variant, make_legacy,
                                                               capsys: pytest.CaptureFixture[str]):
    folder = make_variant(tmp_path / 'old')
    make_legacy(folder)
    code = main(['compress', str(folder), '--upgrade', '--format', 'json'])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document['changes'][0] == 'deleted frugalbench_compressed.py'
    assert not (folder / 'frugalbench_compressed.py').exists()
