"""Child process: execute a submission's MMSeg config and dump it as plain data.

    python -m frugalbench.model.config_reader CONFIG OUT_JSON

Runs with limits and without network (see frugalbench.isolation). Emits ``done`` with the
list of ``custom_imports`` the config asked for, or ``error`` with the reason.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from frugalbench.model.channel import emit, encode_config, open_channel


def main(argv: list[str]) -> int:
    open_channel()
    config_path, out_path = Path(argv[0]), Path(argv[1])
    sys.path.insert(0, str(config_path.parent.resolve()))  # a submission may ship its own model module
    try:
        from mmengine.config import Config
        config = Config.fromfile(str(config_path))
    except Exception as exc:  # noqa: BLE001 - any failure of foreign code is reported, not raised
        emit('error', message=f'the config could not be read: {type(exc).__name__}: {exc}')
        return 1
    data = config.to_dict()
    custom = data.get('custom_imports') or {}
    imports = list(custom.get('imports', [])) if isinstance(custom, dict) else []
    try:
        text = json.dumps(encode_config(data), sort_keys=True)
    except TypeError as exc:
        emit('error', message=f'the config is not plain data: {exc}')
        return 1
    out_path.write_text(text)
    emit('done', custom_imports=imports)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
