#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine (Python 3.11, no GPU, no network but
# the package registries), then run the whole suite, browser tests included.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-dev.txt

# Debian packages the tests drive: headless Chromium for tests/e2e (Playwright's own download is
# not used), nginx for tests/test_replicas.py and HAProxy for tests/test_deploy.py.
MISSING=()
if ! command -v chromium >/dev/null 2>&1 && [ ! -x "${PLAYGROUND_CHROMIUM:-/usr/bin/chromium}" ]; then
  MISSING+=(chromium)
fi
for tool in nginx haproxy; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || MISSING+=("$tool")
done
if [ "${#MISSING[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${MISSING[@]}" >/dev/null
fi

export HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False PYTHONUNBUFFERED=1
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
