"""The model only answers queries (issue 14): hostile model code built here, evaluated confined. Each
attack is a failed run with its reason, or an ``ok`` run whose ranked figures are the harness's own."""
from __future__ import annotations

from pathlib import Path

import pytest

from frugalbench.evaluation import EvaluationOptions, evaluate_submission

IN_WORKER = "getattr(sys.modules['__main__'].__spec__, 'name', '') == 'frugalbench.model.worker'"


def _with_module(folder: Path, code: str, name: str = 'hostile') -> Path:
    (folder / f'{name}.py').write_text(f'import sys\nif {IN_WORKER}:\n' + ''.join(
        f'    {line}\n' for line in code.strip('\n').splitlines()))
    (folder / 'config.py').write_text((folder / 'config.py').read_text()
                                      + f"custom_imports = dict(imports=['{name}'], allow_failed_imports=False)\n")
    return folder


def _evaluate(folder: Path, **options: object) -> dict:
    return evaluate_submission(folder, EvaluationOptions(**options)).document


@pytest.fixture
def honest(tiny_benchmark, make_submission, quick_protocol) -> dict:
    document = _evaluate(make_submission('honest'), protocol_path=quick_protocol)
    assert document['status'] == 'ok', document['failure_reason']
    return document


def test_meters_rewritten_in_the_model_process_change_no_ranked_figure(honest, make_submission,
                                                                       quick_protocol) -> None:
    code = '''
import time
import frugalbench.measurements.compute as compute
import frugalbench.measurements.latency as latency
real = time.perf_counter
time.perf_counter = lambda: real() / 100
original = compute.count_macs
def count_macs(model, x):
    m = original(model, x)
    return type(m)(m.name, 1.0, m.unit, m.method, m.tool_version, m.measured, m.unavailable_reason, m.details)
compute.count_macs = count_macs
'''
    document = _evaluate(_with_module(make_submission('rewriter'), code), protocol_path=quick_protocol)
    assert document['status'] == 'ok', document['failure_reason']
    assert document['custom_code'] is True
    assert document['compute']['trusted'] is False and 'custom_imports: hostile' in document['compute']['untrusted_reason']
    assert document['compute']['params'] == honest['compute']['params']        # from the checkpoint
    assert document['latency']['method'].startswith('parent clock')
    assert document['latency']['median_ms'] > honest['latency']['median_ms'] / 5   # not divided by 100
    assert document['accuracy']['miou'] == honest['accuracy']['miou']


def test_weights_hidden_from_parameters_are_still_counted(honest, make_submission, quick_protocol) -> None:
    code = '''
import torch
torch.nn.Module.parameters = lambda self, recurse=True: iter(())
'''
    document = _evaluate(_with_module(make_submission('buffers'), code), protocol_path=quick_protocol)
    assert document['status'] == 'ok', document['failure_reason']
    assert document['compute']['params'] == honest['compute']['params'] > 0


@pytest.mark.parametrize('name, code, reason', [
    ('forged_figures', '''
from frugalbench.model.channel import emit
emit('done', params=7, latency_ms=0.001, macs=1, energy_joules=1e-9, method='rapl', measured=True)
''', "sent 'done' where ready was expected"),
    ('forged_answer', '''
from frugalbench.model.channel import send
send('answer', bytes(4096), id=0, height=64, width=64)
''', "sent 'answer' where ready was expected"),
    ('malformed', '''
import os
from frugalbench.model import channel
os.write(channel._out, b'\\x00\\x00\\x00\\x05\\x00\\x00\\x00\\x00nope!')
''', 'a message header is not UTF-8 JSON'),
    ('oversized', '''
import os, struct
from frugalbench.model import channel
os.write(channel._out, struct.pack('>II', 10, 1 << 31))
''', 'a message payload of 2147483648 bytes'),
    ('flood', '''
from frugalbench.model.channel import emit
for index in range(300000):
    emit('progress', done=index)
''', "sent 'progress' where ready was expected"),
])
def test_forged_or_malformed_messages_fail_the_run(tiny_benchmark, make_submission, name: str, code: str,
                                                    reason: str) -> None:
    folder = _with_module(make_submission(name), f'''
import atexit
def _forge():
{''.join('    ' + line + chr(10) for line in code.strip(chr(10)).splitlines())}
_forge()
''')
    document = _evaluate(folder, measure=False)
    assert document['status'] == 'failed'
    assert reason in document['failure_reason']


def test_a_config_cannot_reach_code_through_a_dotted_type(tiny_benchmark, make_submission) -> None:
    """Without custom_imports, mmengine would still resolve 'package.module.Object' types: refused."""
    folder = make_submission()
    (folder / 'evil.py').write_text("open('/tmp/ran', 'w').write('code ran')\nclass Model: pass\n")
    (folder / 'config.py').write_text((folder / 'config.py').read_text()
                                      + "model['decode_head']['type'] = 'submission.evil.Model'\n")
    document = _evaluate(folder, measure=False)
    assert document['status'] == 'failed'
    assert "model.decode_head.type 'submission.evil.Model' is not a registered" in document['failure_reason']


def test_a_config_reader_that_hides_custom_imports_runs_no_custom_code(tiny_benchmark, make_submission) -> None:
    """The config is submission code: it may doctor the data it sends. Whatever it sends, submission code
    reaches the model process only through the custom_imports in that data, and the run says so."""
    folder = make_submission()
    (folder / 'helper.py').write_text(f'import sys\nif {IN_WORKER}:\n'
                                      "    from frugalbench.model.channel import emit\n    emit('pwned')\n")
    (folder / 'config.py').write_text(
        "import sys\n"
        "_reader = sys.modules['__main__']\n"
        "_encode = _reader.encode_config\n"
        "_reader.encode_config = lambda data: _encode({k: v for k, v in data.items() if k != 'custom_imports'})\n"
        + (folder / 'config.py').read_text()
        + "custom_imports = dict(imports=['helper'], allow_failed_imports=False)\n")
    document = _evaluate(folder, measure=False)
    assert document['status'] == 'ok', document['failure_reason']
    assert document['custom_code'] is False and document['compute']['trusted'] is True


def test_an_ok_run_has_protocol_2_and_parent_figures(honest) -> None:
    assert honest['measurement_protocol']['protocol_version'] == 2
    assert honest['latency']['median_ms'] > 0
    assert honest['latency']['threads'] == honest['limits']['threads'] == 2   # the benchmark's default
    assert honest['memory']['peak_rss_method'].startswith('kernel: wait4')
    assert honest['energy']['method'] in ('rapl', 'nvml', 'estimate-cpu-time-tdp')
    assert honest['energy']['measured'] is (honest['energy']['method'] in ('rapl', 'nvml'))
    assert honest['compute']['trusted'] is True and honest['compute']['macs'] > 0
