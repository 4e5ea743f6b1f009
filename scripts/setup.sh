#!/usr/bin/env bash
# Set up frugalbench on a fresh machine: .venv (Python 3.11), torch 2.13.0 (CPU), full mmcv 2.1.0
# with compiled ops, mmengine, mmsegmentation, the other dependencies and the project (editable).
# Idempotent: when nothing changed since the last successful run it only checks imports (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
PY="$VENV/bin/python"
WHEELHOUSE="${FRUGALBENCH_WHEELHOUSE:-$HOME/.cache/frugalbench/wheelhouse}"
MMCV_WHEEL_GLOB="mmcv-2.1.0-cp311-cp311-linux_*.whl"
STAMP="$VENV/.frugalbench-setup"
FINGERPRINT="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

check_imports() { "$PY" -c "import mmseg, mmcv.ops, mmengine, duckdb, streamlit, ray, frugalbench" 2>/dev/null; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$FINGERPRINT" ] && check_imports; then
    say "already set up ($VENV); nothing to do"
    exit 0
fi

find_python() {
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            command -v "$candidate"; return 0
        fi
    done
    return 1
}

if [ ! -x "$PY" ]; then
    BASE_PY="$(find_python)" || { echo "frugalbench needs Python 3.11 (python3.11 not found)" >&2; exit 1; }
    say "creating $VENV with $BASE_PY"
    "$BASE_PY" -m venv "$VENV"
fi
say "upgrading pip (seconds)"
"$PY" -m pip install --quiet --upgrade pip "setuptools<80" wheel 2>&1 | grep -v "is ignored" || true

if ! "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
    say "installing torch 2.13.0, CPU build (about a minute)"
    "$PY" -m pip install --quiet torch==2.13.0 2>&1 | grep -v "is ignored" || true
fi

mmcv_wheel() { ls "$WHEELHOUSE"/$MMCV_WHEEL_GLOB 2>/dev/null | head -n 1; }
if ! "$PY" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '2.1.0')" 2>/dev/null; then
    mkdir -p "$WHEELHOUSE"
    if [ -z "$(mmcv_wheel)" ] && ls ../shared/wheelhouse/$MMCV_WHEEL_GLOB >/dev/null 2>&1; then
        say "taking the prebuilt mmcv 2.1.0 wheel from ../shared/wheelhouse into $WHEELHOUSE"
        cp ../shared/wheelhouse/$MMCV_WHEEL_GLOB "$WHEELHOUSE"/
    fi
    if [ -z "$(mmcv_wheel)" ]; then
        say "building full mmcv 2.1.0 with compiled ops from source into $WHEELHOUSE"
        say "this takes about 30 minutes on 2 cores, once; the wheel is cached for later set-ups"
        "$PY" -m pip install --quiet ninja 2>&1 | grep -v "is ignored" || true
        MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
            "$PY" -m pip wheel --no-build-isolation --no-deps mmcv==2.1.0 -w "$WHEELHOUSE"
    fi
    say "installing $(basename "$(mmcv_wheel)")"
    "$PY" -m pip install --quiet --no-deps "$(mmcv_wheel)" 2>&1 | grep -v "is ignored" || true
fi

say "installing mmengine, mmsegmentation, duckdb, streamlit, ray, codecarbon, ... and frugalbench (1-2 minutes)"
"$PY" -m pip install --quiet -e ".[test]" ftfy regex 2>&1 | grep -v "is ignored" || true

say "checking imports"
"$PY" -c "import mmseg, mmcv.ops, mmengine, torch; print(f'torch {torch.__version__}, mmcv ops ok, mmseg {mmseg.__version__}')"
check_imports
echo "$FINGERPRINT" > "$STAMP"
say "done"
