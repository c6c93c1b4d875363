#!/usr/bin/env bash
# The GPU check (docs/benchmarks.md): on one H100/H200 it takes about 8 minutes and writes
# <dir>/gpu_check.json and <dir>/gpu_check.md.
#   bash benchmarks/gpu_check.sh --out runs/gpu_check
#   bash benchmarks/gpu_check.sh --dry-run --out /tmp/gpu_check    # CPU, tiny preset, ~2 minutes
# Every other argument goes to benchmarks/gpu_check.py (--only SECTION,..., --budget-s, --keep-work).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
[ -x "$py" ] || py="$(command -v python3)"
cd "$root"
exec "$py" benchmarks/gpu_check.py "$@"
