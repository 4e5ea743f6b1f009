#!/usr/bin/env bash
# Install headless Chromium and its driver for the browser tests (Debian packages, needs root).
set -uo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "[setup] skipping the browser install (not root): the browser tests will be skipped;" \
         "install chromium and chromium-driver to run them"
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "[setup] skipping the browser install (no apt-get): the browser tests will be skipped"
    exit 0
fi
echo "[setup] installing chromium and chromium-driver for the browser tests (a minute or two)"
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "[setup] browser install failed: the browser tests will be skipped"
exit 0
