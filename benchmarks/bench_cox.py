"""Linear Cox model: neurostat against statsmodels' PHReg, lifelines and R's coxph.

Simulated proportional hazards data (p=20 standard normal inputs, exponential times, about 30%
random censoring, continuous times), n in {1e4, 1e5}, Efron's ties everywhere (lifelines has no
other). Each timed unit is a fit plus the standard errors of the coefficients:

* neurostat: ``NeuralCoxRegressor(hidden_layer_sizes=(), solver="lbfgs").fit`` and
  ``inference().bse``;
* statsmodels: ``PHReg(...).fit().bse``;
* lifelines (if installed): ``CoxPHFitter().fit`` (its standard errors come with the fit);
* R (if ``Rscript`` with survival is on the PATH): ``coxph``, timed inside R (start-up and
  data reading not counted).

The Python peers run interleaved in one process (neurostat, statsmodels, lifelines in turn,
``--repeats`` rounds); times are process CPU seconds with one thread everywhere (a busy shared
machine slows multi-threaded loops unpredictably), medians over rounds; wall seconds are
recorded too. Agreement with statsmodels (coefficients, standard errors) is reported beside
the times. JSON to benchmarks/results/bench_cox.json.

A second table (``counting``) times survival data as they come: subjects followed over up to
four (start, stop] intervals with a time-varying covariate, delayed entry, 5 strata and the
cluster-robust variance by subject (neurostat ``fit(X, y, strata=, groups=)`` +
``inference(cov_type="cluster")``, statsmodels ``PHReg(entry=, strata=).fit(groups=)``, R
``coxph(Surv(start, stop, event) ~ . + strata(g) + cluster(id))``). The run of
benchmarks/results/bench_cox_counting.json (sizes 10000 40000, no lifelines: it needs
pandas < 3) holds both tables.

    .venv/bin/python benchmarks/bench_cox.py [--repeats 3] [--sizes 10000 100000]
"""

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
import torch
from threadpoolctl import threadpool_limits

from neurostat import NeuralCoxRegressor

R_SCRIPT = r"""
suppressMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); reps <- as.integer(args[2])
cpu <- function() { t <- proc.time(); t[["user.self"]] + t[["sys.self"]] }
cpus <- numeric(reps); walls <- numeric(reps)
for (r in seq_len(reps)) {
  c0 <- cpu(); w0 <- proc.time()[["elapsed"]]
  f <- coxph(Surv(time, event) ~ ., data = d, ties = "efron")
  s <- sqrt(diag(f$var))
  cpus[r] <- cpu() - c0; walls[r] <- proc.time()[["elapsed"]] - w0
}
cat(median(cpus), median(walls), sprintf("%.17g", coef(f)), "\n")
"""


def simulate(n, p=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    beta = np.linspace(-0.5, 0.5, p)
    t = rng.exponential(np.exp(-X @ beta))
    c = rng.exponential(2.5, n)
    return X, np.minimum(t, c), (t <= c).astype(float)


def simulate_counting(n_subjects, p=10, seed=0):
    """Rows (start, stop, event), inputs (column 0 changes between a subject's intervals),
    subject ids and strata."""
    rng = np.random.default_rng(seed)
    k = rng.integers(1, 5, n_subjects)  # intervals per subject
    ids = np.repeat(np.arange(n_subjects), k)
    first = np.r_[True, ids[1:] != ids[:-1]]
    entry = np.where(rng.random(n_subjects) < 0.3, rng.uniform(0, 0.5, n_subjects), 0.0)
    gaps = rng.uniform(0.2, 1.0, ids.size)
    stop = entry[ids] + np.concatenate([np.cumsum(gaps[ids == i]) for i in range(n_subjects)])
    start = np.where(first, entry[ids], np.r_[0.0, stop[:-1]])
    X = rng.normal(size=(ids.size, p))
    X[:, 1:] = X[np.flatnonzero(first)[ids], 1:]  # baseline inputs repeat, x0 varies
    beta = np.linspace(-0.4, 0.4, p)
    last = np.r_[ids[1:] != ids[:-1], True]
    event = ((rng.random(ids.size) < 0.15 * np.exp(X @ beta) / (1 + 0.15 * np.exp(X @ beta)))
             & last).astype(float)
    return X, start, stop, event, ids, rng.integers(0, 5, n_subjects)[ids]


def run_counting_neurostat(X, start, stop, event, ids, g):
    est = NeuralCoxRegressor(hidden_layer_sizes=(), solver="lbfgs", ties="efron")
    est.fit(X, np.column_stack([start, stop, event]), strata=g, groups=ids)
    return est.coef_, est.inference(cov_type="cluster").bse.to_numpy()


def run_counting_statsmodels(X, start, stop, event, ids, g):
    res = sm.PHReg(stop, X, status=event, entry=start, strata=g, ties="efron").fit(groups=ids)
    return np.asarray(res.params), np.asarray(res.bse)


R_COUNTING = r"""
suppressMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); reps <- as.integer(args[2])
cpu <- function() { t <- proc.time(); t[["user.self"]] + t[["sys.self"]] }
cpus <- numeric(reps)
xs <- paste(grep("^x", names(d), value = TRUE), collapse = " + ")
form <- as.formula(paste("Surv(start, stop, event) ~", xs, "+ strata(g) + cluster(id)"))
for (r in seq_len(reps)) {
  c0 <- cpu()
  f <- coxph(form, data = d, ties = "efron")
  s <- sqrt(diag(f$var))
  cpus[r] <- cpu() - c0
}
cat(median(cpus), sprintf("%.17g", coef(f)), sprintf("%.17g", s), "\n")
"""


def run_counting_r(data, repeats, tmp):
    X, start, stop, event, ids, g = data
    path = Path(tmp) / "counting.csv"
    cols = [f"x{i}" for i in range(X.shape[1])]
    pd.DataFrame(np.column_stack([start, stop, event, ids, g, X]),
                 columns=["start", "stop", "event", "id", "g"] + cols).to_csv(
        path, index=False, float_format="%.17g")
    script = Path(tmp) / "counting.R"
    script.write_text(R_COUNTING)
    out = subprocess.run(["Rscript", str(script), str(path), str(repeats)], capture_output=True,
                         text=True, check=True, env={"OMP_NUM_THREADS": "1",
                                                     "OPENBLAS_NUM_THREADS": "1",
                                                     "PATH": "/usr/bin:/bin"}).stdout.split()
    p = X.shape[1]
    return float(out[0]), np.array(out[1:1 + p], dtype=float), np.array(out[1 + p:], float)


def bench_counting(n_subjects, repeats, has_r, tmp):
    data = simulate_counting(n_subjects, seed=n_subjects)
    runs = {"neurostat": run_counting_neurostat, "statsmodels": run_counting_statsmodels}
    cpu, out = {k: [] for k in runs}, {}
    for _ in range(repeats):
        for name, fn in runs.items():
            out[name], c, _ = timed(lambda fn=fn: fn(*data))
            cpu[name].append(c)
    row = {"subjects": n_subjects, "rows": int(data[0].shape[0]), "p": data[0].shape[1],
           "events": int(data[3].sum()), "cpu_s": {k: float(np.median(v)) for k, v in cpu.items()}}
    ref = {"coef": out["neurostat"][0], "se": out["neurostat"][1]}
    if has_r:
        row["cpu_s"]["R_coxph"], r_coef, r_se = run_counting_r(data, repeats, tmp)
        ref = {"coef": r_coef, "se": r_se}
    row["max_abs_coef_diff_vs_R"] = {k: float(np.max(np.abs(v[0] - ref["coef"])))
                                     for k, v in out.items()}
    row["max_rel_se_diff_vs_R"] = {k: float(np.max(np.abs(v[1] / ref["se"] - 1)))
                                   for k, v in out.items()}
    base = row["cpu_s"]["neurostat"]
    row["cpu_ratio_peer_over_neurostat"] = {k: v / base for k, v in row["cpu_s"].items()
                                            if k != "neurostat"}
    return row


def timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def run_neurostat(X, time_, event):
    est = NeuralCoxRegressor(hidden_layer_sizes=(), solver="lbfgs", ties="efron")
    est.fit(X, np.column_stack([time_, event]))
    return est.coef_, est.inference().bse.to_numpy()


def run_statsmodels(X, time_, event):
    res = sm.PHReg(time_, X, status=event, ties="efron").fit()
    return np.asarray(res.params), np.asarray(res.bse)


def run_lifelines(X, time_, event):
    from lifelines import CoxPHFitter
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    df["time"], df["event"] = time_, event
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter().fit(df, "time", "event")
    return cph.params_.to_numpy(), cph.standard_errors_.to_numpy()


def run_r(X, time_, event, repeats, tmp):
    path = Path(tmp) / "cox.csv"
    cols = [f"x{i}" for i in range(X.shape[1])]
    pd.DataFrame(np.column_stack([time_, event, X]), columns=["time", "event"] + cols).to_csv(
        path, index=False, float_format="%.17g")
    script = Path(tmp) / "cox.R"
    script.write_text(R_SCRIPT)
    out = subprocess.run(["Rscript", str(script), str(path), str(repeats)], capture_output=True,
                         text=True, check=True, env={"OMP_NUM_THREADS": "1",
                                                     "OPENBLAS_NUM_THREADS": "1",
                                                     "PATH": "/usr/bin:/bin"}).stdout.split()
    return float(out[0]), float(out[1]), np.array(out[2:], dtype=float)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_cox.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        import lifelines
        peers = {"statsmodels": run_statsmodels, "lifelines": run_lifelines}
        lifelines_version = lifelines.__version__
    except ImportError:
        peers = {"statsmodels": run_statsmodels}
        lifelines_version = None
    has_r = shutil.which("Rscript") is not None
    results = []
    with threadpool_limits(1), tempfile.TemporaryDirectory() as tmp:
        run_neurostat(*simulate(500))  # warm-up: imports and first-call overheads
        for n in args.sizes:
            X, t, e = simulate(n, seed=n)
            runs = {"neurostat": run_neurostat, **peers}
            cpu = {k: [] for k in runs}
            wall = {k: [] for k in runs}
            out = {}
            for _ in range(args.repeats):
                for name, fn in runs.items():  # interleaved rounds
                    out[name], c, w = timed(lambda fn=fn, X=X, t=t, e=e: fn(X, t, e))
                    cpu[name].append(c)
                    wall[name].append(w)
            row = {"n": n, "p": X.shape[1], "events": int(e.sum()),
                   "cpu_s": {k: float(np.median(v)) for k, v in cpu.items()},
                   "wall_s": {k: float(np.median(v)) for k, v in wall.items()}}
            ref_coef, ref_se = out["statsmodels"]
            row["max_abs_coef_diff_vs_statsmodels"] = {
                k: float(np.max(np.abs(v[0] - ref_coef))) for k, v in out.items()}
            row["max_rel_se_diff_vs_statsmodels"] = {
                k: float(np.max(np.abs(v[1] / ref_se - 1))) for k, v in out.items()}
            if has_r:
                r_cpu, r_wall, r_coef = run_r(X, t, e, args.repeats, tmp)
                row["cpu_s"]["R_coxph"], row["wall_s"]["R_coxph"] = r_cpu, r_wall
                row["max_abs_coef_diff_vs_statsmodels"]["R_coxph"] = float(
                    np.max(np.abs(r_coef - ref_coef)))
            base = row["cpu_s"]["neurostat"]
            row["cpu_ratio_peer_over_neurostat"] = {
                k: v / base for k, v in row["cpu_s"].items() if k != "neurostat"}
            results.append(row)
            print(json.dumps(row, indent=1), flush=True)
        counting = []
        for n in args.sizes:
            counting.append(bench_counting(n // 2, args.repeats, has_r, tmp))
            print(json.dumps(counting[-1], indent=1), flush=True)
    meta = {"python": sys.version.split()[0], "platform": platform.platform(),
            "torch": torch.__version__, "statsmodels": sm.__version__,
            "lifelines": lifelines_version, "repeats": args.repeats,
            "timing": "median process CPU seconds, one thread, fit + coefficient SEs",
            "ties": "efron"}
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results,
                                          "counting": counting}, indent=1) + "\n")


if __name__ == "__main__":
    main()
