#!/usr/bin/env bash
# One short GPU check (< 5 minutes on one CUDA device): the CUDA-marked tests, then the fit
# benchmark on the GPU with n=1,000,000 beside scikit-learn's CPU fit of the same data.
# Writes benchmarks/results/gpu_check.json (and gpu_tests.txt). Usage: bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT_DIR:-benchmarks/results}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu_name.txt"
"$PY" -m pytest -q -p no:cacheprovider -m cuda tests 2>&1 | tail -15 | tee "$OUT/gpu_tests.txt"
"$PY" benchmarks/bench_fit.py --device cuda --repeats 3 --n 50000 --large 1000000 \
    --out "$OUT/gpu_check.json"
