#!/usr/bin/env bash
# Set up (first run) and run the kiosk in full simulation. Extra arguments go to `kiosk sim`,
# e.g. --scenario simulators/scenarios/gym-evening.toml or --count 50.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/kiosk sim "$@"
