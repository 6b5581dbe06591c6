#!/usr/bin/env bash
# Builds a wheelhouse for gates without internet: the kiosk's wheel from this checkout and
# every dependency at its pinned version (constraints.txt), as wheels in one directory.
# Copy the directory and the checkout to the gate (USB stick, image) and run there:
#
#   sudo ./scripts/install.sh --wheelhouse DIR
#
#   ./scripts/wheelhouse.sh DIR         wheels for this machine (run it on a Pi, or for tests)
#   ./scripts/wheelhouse.sh --pi DIR    wheels for 64-bit Raspberry Pi OS (aarch64, CPython
#                                       3.11), from any machine: an x86 laptop or the CI
#
# --pi asks pip for those platforms (--platform manylinux_2_28_aarch64 ... --python-version
# 3.11 --only-binary=:all:): every pin must then have a ready wheel, as scripts/lock.sh
# checks. 32-bit Raspberry Pi OS (armv7) is not covered: most pins have no armv7 wheel.
# The kiosk's version is the checkout's (its git tag); build from the tagged commit.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PLATFORM=()
case "${1:-}" in
    --pi)
        PLATFORM=(--platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64
            --platform manylinux2014_aarch64 --implementation cp --python-version 3.11)
        shift
        ;;
esac
[ $# -eq 1 ] || { echo "usage: $0 [--pi] DIR" >&2; exit 2; }
OUT=$1
PYTHON=${PYTHON:-/usr/bin/python3}

if compgen -G "$OUT/ashyq_kiosk-*.whl" >/dev/null; then
    echo "wheelhouse: $OUT already holds a kiosk wheel; use an empty or new directory" >&2
    exit 2
fi
mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# pip wheel and pip download install nothing, so the system's pip will do; without one, a
# throwaway venv's (this needs only python3-venv then).
if "$PYTHON" -m pip --version >/dev/null 2>&1; then
    pip=("$PYTHON" -m pip)
else
    "$PYTHON" -m venv "$tmp/pip"
    pip=("$tmp/pip/bin/python" -m pip)
fi
# The kiosk is pure Python: one wheel fits every platform.
"${pip[@]}" wheel -q --no-deps -w "$OUT" "$REPO"
# constraints.txt lists every dependency, transitive ones too, so it is the whole list.
"${pip[@]}" download -q --no-deps --only-binary=:all: "${PLATFORM[@]}" -d "$OUT" \
    -r "$REPO/constraints.txt"
echo "wheelhouse: $(find "$OUT" -name '*.whl' | wc -l) wheels, $(du -sh "$OUT" | cut -f1), in $OUT:"
(cd "$OUT" && ls ashyq_kiosk-*.whl)
