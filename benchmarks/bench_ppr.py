"""Projection pursuit regression: neurostat against R's stats::ppr (Friedman's Fortran SMART).

Friedman #1-#3 (scikit-learn's generators), n=500 training rows, 5000 noise-free test rows,
several seeds. For each case the Python fit and the R fit run back to back (interleaved) and each
side times its own fit in-process (median of repeats; R's start-up is not counted). Times are
process CPU seconds, one thread on both sides, so that other load on a shared machine does not
skew the ratio; wall-clock times are recorded too. Test MSE and
fit times go to benchmarks/results/bench_ppr.json with their ratios.

    .venv/bin/python benchmarks/bench_ppr.py [--seeds 5] [--repeats 3]

Needs R (``apt-get install -y r-base-core``); nothing else of R's.
"""

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import make_friedman1, make_friedman2, make_friedman3
from threadpoolctl import threadpool_limits

from neurostat import ProjectionPursuitRegressor

DATASETS = {
    "friedman1": (make_friedman1, 1.0),
    "friedman2": (make_friedman2, 125.0),
    "friedman3": (make_friedman3, 0.1),
}
# (n_terms, max_terms, smoother)
SETTINGS = [(2, 5, "supsmu"), (5, 10, "supsmu"), (3, 5, "spline")]

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
tr <- as.matrix(read.csv(args[1], header = FALSE))
te <- as.matrix(read.csv(args[2], header = FALSE))
nterms <- as.integer(args[3]); maxt <- as.integer(args[4])
sm <- args[5]; reps <- as.integer(args[6])
cpu <- function() { t <- proc.time(); t[["user.self"]] + t[["sys.self"]] }
# proc.time has 1 ms resolution: time batches of 10 fits
nb <- 10
cpus <- numeric(reps); walls <- numeric(reps)
for (r in seq_len(reps)) {
  c0 <- cpu(); w0 <- proc.time()[["elapsed"]]
  for (k in seq_len(nb)) {
    fit <- ppr(tr[, -1], tr[, 1], nterms = nterms, max.terms = maxt, sm.method = sm, df = 5)
  }
  cpus[r] <- (cpu() - c0) / nb; walls[r] <- (proc.time()[["elapsed"]] - w0) / nb
}
p <- predict(fit, te[, -1])
cat(mean((p - te[, 1])^2), median(cpus), median(walls), "\n")
"""


def run_case(name, seed, setting, tmp, repeats):
    gen, noise = DATASETS[name]
    X, y = gen(n_samples=500, noise=noise, random_state=seed)
    Xt, yt = gen(n_samples=5000, noise=0.0, random_state=10_000 + seed)
    n_terms, max_terms, smoother = setting
    est = ProjectionPursuitRegressor(n_terms=n_terms, max_terms=max_terms, smoother=smoother, df=5)
    cpus, walls = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        est.fit(X, y)
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - w0)
    mse_py = float(np.mean((est.predict(Xt) - yt) ** 2))
    tr, te = tmp / "train.csv", tmp / "test.csv"
    np.savetxt(tr, np.column_stack([y, X]), delimiter=",", fmt="%.17g")
    np.savetxt(te, np.column_stack([yt, Xt]), delimiter=",", fmt="%.17g")
    out = subprocess.run(
        ["Rscript", str(tmp / "ppr.R"), str(tr), str(te), str(n_terms), str(max_terms), smoother,
         str(repeats)], capture_output=True, text=True, check=True,
    ).stdout.split()
    mse_r, t_r, wall_r = float(out[0]), float(out[1]), float(out[2])
    t_py = float(np.median(cpus))
    return {
        "dataset": name, "seed": seed, "n_terms": n_terms, "max_terms": max_terms,
        "smoother": smoother, "var_test": float(np.var(yt)),
        "mse_neurostat": mse_py, "mse_R": mse_r, "mse_ratio": mse_py / mse_r,
        "time_neurostat_s": t_py, "time_R_s": t_r, "time_ratio": t_py / max(t_r, 1e-4),
        "wall_neurostat_s": float(np.median(walls)), "wall_R_s": wall_r,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_ppr.json"))
    args = ap.parse_args()
    if shutil.which("Rscript") is None:
        sys.exit("Rscript not found: apt-get install -y r-base-core")
    r_version = subprocess.run(["Rscript", "--version"], capture_output=True, text=True)
    rows = []
    with tempfile.TemporaryDirectory() as d, threadpool_limits(1):
        tmp = Path(d)
        (tmp / "ppr.R").write_text(R_SCRIPT)
        for setting in SETTINGS:
            for name in DATASETS:
                for seed in range(args.seeds):
                    row = run_case(name, seed, setting, tmp, args.repeats)
                    rows.append(row)
                    print(f"{name} seed={seed} {setting}: MSE {row['mse_neurostat']:.4g} vs R "
                          f"{row['mse_R']:.4g} (x{row['mse_ratio']:.3f}); time "
                          f"{row['time_neurostat_s']*1e3:.0f} ms vs R {row['time_R_s']*1e3:.1f} ms "
                          f"(x{row['time_ratio']:.1f})", flush=True)
    summary = []
    for setting in SETTINGS:
        for name in DATASETS:
            sel = [r for r in rows if (r["n_terms"], r["max_terms"], r["smoother"]) == setting
                   and r["dataset"] == name]

            def a(k, sel=sel):
                return np.array([r[k] for r in sel])

            summary.append({
                "dataset": name, "n_terms": setting[0], "max_terms": setting[1],
                "smoother": setting[2],
                "mse_neurostat_mean": float(a("mse_neurostat").mean()),
                "mse_R_mean": float(a("mse_R").mean()),
                "mse_ratio_of_means": float(a("mse_neurostat").mean() / a("mse_R").mean()),
                "mse_ratio_per_seed": [round(v, 4) for v in a("mse_ratio")],
                "time_neurostat_median_s": float(np.median(a("time_neurostat_s"))),
                "time_R_median_s": float(np.median(a("time_R_s"))),
                "time_ratio_median": float(np.median(a("time_ratio"))),
                "time_ratio_max": float(a("time_ratio").max()),
            })
    result = {
        "benchmark": "ProjectionPursuitRegressor vs R stats::ppr",
        "n_train": 500, "n_test": 5000, "seeds": args.seeds, "repeats": args.repeats,
        "threads": 1, "python": platform.python_version(), "machine": platform.processor()
        or platform.machine(), "R": r_version.stdout.strip() or r_version.stderr.strip(),
        "summary": summary, "cases": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    print("\n| dataset | terms (max) | smoother | test MSE neurostat | test MSE R | ratio "
          "| per-seed ratios | fit CPU ms neurostat | fit CPU ms R | time ratio (median, max) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in summary:
        print(f"| {s['dataset']} | {s['n_terms']} ({s['max_terms']}) | {s['smoother']} | "
              f"{s['mse_neurostat_mean']:.4g} | {s['mse_R_mean']:.4g} | "
              f"{s['mse_ratio_of_means']:.3f} | "
              f"{', '.join(f'{v:.2f}' for v in s['mse_ratio_per_seed'])}"
              f" | {s['time_neurostat_median_s']*1e3:.0f} | {s['time_R_median_s']*1e3:.1f} | "
              f"{s['time_ratio_median']:.1f}, {s['time_ratio_max']:.1f} |")


if __name__ == "__main__":
    main()
