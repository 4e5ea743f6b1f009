"""One evaluation of one queue entry, in a process of its own (started by ``frugalbench serve``).

``python -m frugalbench.platform.worker SPEC.json``: SPEC names the stored submission folder, the
evaluation options and where to write the outcome (``{"status", "run_id", "failure_reason"}``).
SIGTERM interrupts the evaluation like Ctrl-C, so its model process and control group are ended
by the evaluation's own clean-up; the server then puts the entry back in the queue.
"""
from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    spec = json.loads(Path(argv[0]).read_text())
    from frugalbench.errors import FrugalbenchError
    from frugalbench.evaluation import EvaluationOptions, evaluate_submission
    from frugalbench.isolation import Limits
    limits = Limits(timeout_s=spec.get('timeout_s'), memory_mb=spec.get('memory_mb'), threads=spec.get('threads'))
    options = EvaluationOptions(benchmark=spec['benchmark'], db_path=Path(spec['db_path']),
                                device=spec.get('device', 'cpu'), max_images=spec.get('max_images'),
                                limits=limits, measure=spec.get('measure', True),
                                protocol_path=Path(spec['protocol_path']) if spec.get('protocol_path') else None)
    result_path = Path(spec['result_path'])
    try:
        outcome = evaluate_submission(Path(spec['folder']), options)
        document = outcome.document
        result = {'status': document.get('status'), 'run_id': document.get('run_id'),
                  'failure_reason': document.get('failure_reason'), 'reused': outcome.reused}
    except FrugalbenchError as exc:   # a benchmark error, or a run neither stored nor spooled
        result = {'status': 'failed', 'run_id': None, 'failure_reason': str(exc), 'reused': False}
    result_path.write_text(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
