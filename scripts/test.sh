#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine (Python 3.11, no GPU, no network but
# the package registries), then run the whole suite, browser tests included.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-dev.txt

# Headless Chromium for tests/e2e (Debian's package; Playwright's own download is not used).
if ! command -v chromium >/dev/null 2>&1 && [ ! -x "${PLAYGROUND_CHROMIUM:-/usr/bin/chromium}" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi

export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False PYTHONUNBUFFERED=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
