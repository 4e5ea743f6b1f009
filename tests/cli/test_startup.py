"""Commands that do not run models start without importing torch or MMSegmentation."""
from __future__ import annotations

import subprocess
import sys


def test_building_the_command_line_imports_neither_torch_nor_mmseg() -> None:
    code = ('import sys; from frugalbench.cli import build_parser; build_parser(); '
            "print(sorted(m for m in ('torch', 'mmseg', 'mmengine') if m in sys.modules))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]'
