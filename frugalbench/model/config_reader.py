"""Child process: execute a submission's MMSeg config and send it back as plain data.

    python -m frugalbench.model.config_reader      (request frame: {"config": "submission/<file>"})

Runs confined and limited (see frugalbench.isolation). Sends the config, JSON-encoded, as the
file ``config.json``, then ``done``; or ``error`` with the reason. The parent decides from that
data alone (never from anything this process says about it) whether the model needs the
submission's own code.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from frugalbench.model.channel import emit, encode_config, send_file, serve


class ConfigFailure(Exception):
    """The config could not be read as plain data."""


def read(request: dict[str, Any]) -> None:
    config_path = Path(request['config'])
    sys.path.insert(0, str(config_path.parent.resolve()))  # a submission may ship its own model module
    try:
        from mmengine.config import Config
        config = Config.fromfile(str(config_path))
    except Exception as exc:  # noqa: BLE001 - any failure of foreign code is reported, not raised
        raise ConfigFailure(f'the config could not be read: {type(exc).__name__}: {exc}') from None
    try:
        text = json.dumps(encode_config(config.to_dict()), sort_keys=True)
    except TypeError as exc:
        raise ConfigFailure(f'the config is not plain data: {exc}') from None
    send_file('config.json', text.encode())
    emit('done')


def main(argv: list[str]) -> int:
    return serve(argv, read, (ConfigFailure,), 'reading the config')


if __name__ == '__main__':
    status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # skip the interpreter's teardown of mmengine: the parent waits for our end
