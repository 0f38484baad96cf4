#!/usr/bin/env bash
# One short GPU check (< 5 minutes on one CUDA device): the CUDA-marked tests, then the fit
# benchmark on the GPU with n=1,000,000 beside scikit-learn's CPU fit of the same data.
# Then the GP part (CUDA only): the iterative path against the exact one at n = 5,000, and
# fit + predict at n = 100,000 (hyperparameters on 5,000 rows, CG in float64).
# Writes benchmarks/results/gpu_check.json (and gpu_tests.txt, gpu_gp_*.json).
# Usage: bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT_DIR:-benchmarks/results}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu_name.txt"
"$PY" -m pytest -q -p no:cacheprovider -m cuda tests 2>&1 | tail -15 | tee "$OUT/gpu_tests.txt"
"$PY" benchmarks/bench_fit.py --device cuda --repeats 3 --n 50000 --large 1000000 \
    --out "$OUT/gpu_check.json"
# GP (neurostat.gp), only where CUDA is there
if "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    "$PY" benchmarks/bench_gp.py --check-iterative 5000 --device cuda --n-test 1000 \
        --out "$OUT/gpu_gp_iterative_5000.json"
    "$PY" benchmarks/bench_gp.py --scale --paths iterative --scale-sizes 100000 --device cuda \
        --n-test 1000 --timeout 1200 --scale-out "$OUT/gpu_gp_scale.json"
fi
