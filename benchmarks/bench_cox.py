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
    meta = {"python": sys.version.split()[0], "platform": platform.platform(),
            "torch": torch.__version__, "statsmodels": sm.__version__,
            "lifelines": lifelines_version, "repeats": args.repeats,
            "timing": "median process CPU seconds, one thread, fit + coefficient SEs",
            "ties": "efron"}
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
