#!/usr/bin/env bash
# Shared set-up of the two README commands: Debian packages (when missing and run as root),
# a virtual environment in .venv, and the kiosk installed into it with its test tools.
# chromium is the browser of the real-browser tests (tests/test_browser.py), driven by
# Playwright for Python; Playwright's own browser download is never used.
set -euo pipefail
cd "$(dirname "$0")/.."

need_debs=()
for pkg in libzbar0 mosquitto mosquitto-clients python3-venv chromium; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need_debs+=("$pkg")
done
if [ "${#need_debs[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing Debian packages: ${need_debs[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_debs[@]}" >/dev/null
    else
        echo "setup: missing Debian packages (run as root or: sudo apt-get install ${need_debs[*]})" >&2
    fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # -c: the runtime dependencies at the versions the gates run (scripts/lock.sh).
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
    touch "$stamp"
fi
