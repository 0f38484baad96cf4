"""Reference numbers for tests/survival/ from R's survival (and glmnet) packages.

Run from the repository root: ``.venv/bin/python tests/results/make_survival_reference.py``
(needs ``Rscript`` with the survival and glmnet packages - Debian: ``r-base-core
r-cran-survival r-cran-glmnet``; the versions are recorded in the JSON). Writes
tests/results/survival_reference.json with the data (so the tests do not depend on a random
number generator) and R's results on them:

* ``counting``: a cohort in (start, stop] form - a time-varying covariate ``x1`` that changes
  at t = 1, 2, 3, delayed entry for a third of the subjects, tied times, subject ids and case
  weights. ``coxph(Surv(start, stop, event) ~ x0 + x1 + x2 + cluster(id))`` for Efron and
  Breslow ties, with and without weights: coef, naive SE, the cluster (grouped sandwich) SE,
  the per-row robust SE (``cluster(row)``, one cluster per row), the log partial likelihood; for
  Breslow fits the baseline hazard and martingale residuals. The same with ``+ strata(g)``:
  coef, SEs, loglik, per-stratum baseline hazards and ``survfit`` curves for a new profile.
* ``rc``: right-censored data with ties: ``survfit(coxph(...), newdata, ctype = 1)`` survival
  curves (Breslow increments, as neurostat's), a stratified fit, ``glmnet`` lasso Cox
  coefficients, Harrell's and Uno's concordance with their variances (``concordance()``,
  ``timewt = "n/G2"`` for Uno's) and ``concordance(fit1, fit2)`` for the comparison of two
  models.
* ``competing``: two competing causes with tied times: the multi-state
  ``coxph(Surv(time, factor(status)) ~ x0 + x1, id = id)`` (cause-specific hazards) coef,
  naive SE and loglik for both tie methods, the separate fits of each cause
  ``coxph(Surv(time, status == k) ~ x0 + x1)`` (R's multi-state fit applies Efron's correction
  across the causes tied at a time, so with Efron's ties the separate fits are the
  cause-specific model; with Breslow's both agree), the Aalen-Johansen cumulative incidence
  ``survfit(Surv(time, factor(status)) ~ 1)``, the model's ``survfit(fit, newdata)``, and
  the Fine-Gray model of cause 1: ``coxph(Surv(fgstart, fgstop, fgstatus) ~ x0 + x1 +
  cluster(id), weight = fgwt, data = finegray(Surv(time, factor(status)) ~ ., etype = 1))``
  (coef, naive and cluster SE, loglik).
"""

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("survival_reference.json")

R_CODE = r"""
suppressMessages({library(survival); library(glmnet)})
args <- commandArgs(trailingOnly = TRUE)
emit <- function(key, x) cat(key, sprintf("%.17g", as.numeric(x)), "\n")
cat("version", gsub(" ", "_", R.version.string), as.character(packageVersion("survival")),
    as.character(packageVersion("glmnet")), "\n")
cp <- read.csv(args[1]); rc <- read.csv(args[2]); cr <- read.csv(args[3])
new_cp <- data.frame(x0 = 0.5, x1 = -0.5, x2 = 1)
for (tie in c("efron", "breslow")) for (wt in c("none", "w")) {
  key <- paste("counting", tie, wt, sep = "_")
  cp$cw <- if (wt == "w") cp$w else rep(1, nrow(cp))  # a data column: coxph looks there first
  f <- coxph(Surv(start, stop, event) ~ x0 + x1 + x2 + cluster(id), data = cp, ties = tie,
             weights = cw)
  cp$row <- seq_len(nrow(cp))
  r <- coxph(Surv(start, stop, event) ~ x0 + x1 + x2 + cluster(row), data = cp, ties = tie,
             weights = cw)
  emit(paste(key, "coef"), coef(f))
  emit(paste(key, "se"), sqrt(diag(f$naive.var)))
  emit(paste(key, "cluster_se"), sqrt(diag(f$var)))
  emit(paste(key, "robust_se"), sqrt(diag(r$var)))
  emit(paste(key, "loglik"), f$loglik)
  if (tie == "breslow") {
    bh <- basehaz(f, centered = FALSE)
    emit(paste(key, "basehaz_time"), bh$time)
    emit(paste(key, "basehaz"), bh$hazard)
    emit(paste(key, "resid_martingale"), residuals(f, type = "martingale"))
  }
  key <- paste("strata", tie, wt, sep = "_")
  f <- coxph(Surv(start, stop, event) ~ x0 + x1 + x2 + strata(g) + cluster(id), data = cp,
             ties = tie, weights = cw)
  emit(paste(key, "coef"), coef(f))
  emit(paste(key, "se"), sqrt(diag(f$naive.var)))
  emit(paste(key, "cluster_se"), sqrt(diag(f$var)))
  emit(paste(key, "loglik"), f$loglik)
  if (tie == "breslow") {
    for (s in sort(unique(cp$g))) {
      bh <- basehaz(f, centered = FALSE)
      bh <- bh[bh$strata == paste0("g=", s), ]
      emit(paste(key, paste0("basehaz_time_", s)), bh$time)
      emit(paste(key, paste0("basehaz_", s)), bh$hazard)
    }
    sf <- survfit(f, newdata = new_cp, ctype = 1)
    for (s in sort(unique(cp$g))) {
      ss <- sf[paste0("g=", s)]
      emit(paste(key, paste0("surv_time_", s)), ss$time)
      emit(paste(key, paste0("surv_", s)), ss$surv)
    }
  }
}
# ---- right-censored data
f1 <- coxph(Surv(time, event) ~ x0 + x1 + x2, data = rc, ties = "efron")
f2 <- coxph(Surv(time, event) ~ x0, data = rc, ties = "efron")
grid <- as.numeric(quantile(rc$time, c(0.1, 0.5, 0.9)))
emit("rc grid", grid)
sf <- summary(survfit(f1, newdata = rc[1:5, c("x0", "x1", "x2")], ctype = 1), times = grid)
emit("rc surv", sf$surv)  # column-major (time, profile): profile by profile
emit("rc coef", coef(f1))
emit("rc lp1", f1$linear.predictors)
emit("rc lp2", f2$linear.predictors)
h <- concordance(f1); emit("rc harrell", c(h$concordance, h$var))
u <- concordance(f1, timewt = "n/G2"); emit("rc uno", c(u$concordance, u$var))
both <- concordance(f1, f2)
emit("rc compare_c", both$concordance); emit("rc compare_var", both$var)
fs <- coxph(Surv(time, event) ~ x0 + x1 + x2 + strata(g), data = rc, ties = "efron")
emit("rc strata_coef", coef(fs)); emit("rc strata_se", sqrt(diag(fs$var)))
emit("rc strata_loglik", fs$loglik)
emit("rc strata_concordance", concordance(fs)$concordance)
g <- glmnet(as.matrix(rc[, c("x0", "x1", "x2")]), Surv(rc$time, rc$event), family = "cox",
            alpha = 1, lambda = 0.02, standardize = FALSE, thresh = 1e-20, maxit = 1e7)
emit("rc glmnet_lasso_0.02", as.numeric(coef(g)))
# ---- competing risks
cr$fs <- factor(cr$status, 0:2)
for (tie in c("efron", "breslow")) {
  key <- paste("competing", tie, sep = "_")
  f <- coxph(Surv(time, fs) ~ x0 + x1, data = cr, id = id, ties = tie)
  emit(paste(key, "coef"), coef(f))  # x0_1:2 x1_1:2 x0_1:3 x1_1:3
  emit(paste(key, "se"), sqrt(diag(f$naive.var)))
  emit(paste(key, "loglik"), f$loglik)
  for (k in 1:2) {  # the cause-specific fits, one cause at a time
    fk <- coxph(Surv(time, status == k) ~ x0 + x1, data = cr, ties = tie)
    emit(paste(key, paste0("cause", k, "_coef")), coef(fk))
    emit(paste(key, paste0("cause", k, "_se")), sqrt(diag(fk$var)))
    emit(paste(key, paste0("cause", k, "_loglik")), fk$loglik)
  }
  if (tie == "breslow") {
    sf <- survfit(f, newdata = data.frame(x0 = c(0, 1), x1 = c(0, -1)))
    emit(paste(key, "cif_time"), sf$time)
    emit(paste(key, "cif_1"), sf$pstate[, , 2])  # column-major (time, profile)
    emit(paste(key, "cif_2"), sf$pstate[, , 3])
  }
}
fg <- finegray(Surv(time, fs) ~ ., data = cr, etype = "1")  # Fine-Gray, cause 1
f <- coxph(Surv(fgstart, fgstop, fgstatus) ~ x0 + x1 + cluster(id), weight = fgwt, data = fg)
emit("competing finegray_coef", coef(f))
emit("competing finegray_se", sqrt(diag(f$naive.var)))
emit("competing finegray_cluster_se", sqrt(diag(f$var)))
emit("competing finegray_loglik", f$loglik)
aj <- survfit(Surv(time, fs) ~ 1, data = cr, id = id)
emit("competing aj_time", aj$time)
emit("competing aj_1", aj$pstate[, 2]); emit("competing aj_2", aj$pstate[, 3])
"""


def counting_data(seed=20261201, n=120):
    """Subjects with a covariate x1 that changes at t = 1, 2, 3, entry after 0 for a third of
    them, hazard 0.4 exp(0.5 x0 + 0.7 x1(t) - 0.4 x2), censoring U(1.5, 5), times on a grid
    of 0.25 (ties); one row per (subject, interval between changes)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x0, x2 = rng.normal(), float(rng.integers(0, 2))
        x1 = rng.normal(size=4)
        entry = float(rng.choice([0.0, 0.5, 1.25])) if rng.random() < 0.35 else 0.0
        cens = rng.uniform(1.5, 5.0)
        cuts = [0.0, 1.0, 2.0, 3.0, np.inf]
        t, k = entry, int(np.searchsorted(cuts, entry, side="right") - 1)
        while True:  # piecewise exponential event time from entry
            rate = 0.4 * np.exp(0.5 * x0 + 0.7 * x1[k] - 0.4 * x2)
            u = t + rng.exponential(1 / rate)
            if u < cuts[k + 1]:
                break
            t, k = cuts[k + 1], k + 1
        event = u <= cens
        end = max(np.ceil(min(u, cens) * 4) / 4, entry + 0.25)
        for k in range(4):
            lo, hi = max(entry, cuts[k]), min(end, cuts[k + 1])
            if hi <= lo:
                continue
            last = hi >= end
            rows.append([lo, hi, float(event and last), x0, x1[k], x2, i + 1])
    rows = np.array(rows)
    ids = rows[:, 6].astype(int)
    w_subject = rng.uniform(0.3, 2.5, n)
    g = rng.integers(0, 3, n)
    return {"start": rows[:, 0].tolist(), "stop": rows[:, 1].tolist(),
            "event": rows[:, 2].tolist(), "X": rows[:, 3:6].tolist(), "id": ids.tolist(),
            "w": w_subject[ids - 1].tolist(), "g": g[ids - 1].tolist()}


def rc_data(seed=20261202, n=300):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    X[:, 2] = rng.integers(0, 2, n)
    t = rng.exponential(np.exp(-(X @ np.array([0.8, -0.5, 0.4]))))
    c = rng.exponential(1.5, n)
    return {"X": X.tolist(), "time": np.ceil(np.minimum(t, c) * 10).tolist(),
            "event": (t <= c).astype(float).tolist(), "g": rng.integers(0, 3, n).tolist()}


def competing_data(seed=20261203, n=300):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    t1 = rng.exponential(1 / (0.3 * np.exp(0.6 * X[:, 0] - 0.4 * X[:, 1])))
    t2 = rng.exponential(1 / (0.2 * np.exp(-0.5 * X[:, 0] + 0.3 * X[:, 1])))
    c = rng.exponential(8.0, n)
    tt = np.minimum(np.minimum(t1, t2), c)
    status = np.where(tt == c, 0, np.where(tt == t1, 1, 2))
    return {"X": X.tolist(), "time": (np.ceil(tt * 5) / 5).tolist(),
            "status": status.astype(float).tolist()}


def _write(path, header, cols):
    np.savetxt(path, np.column_stack(cols), delimiter=",", header=",".join(header),
               comments="", fmt="%.17g")


def main():
    cp, rc, cr = counting_data(), rc_data(), competing_data()
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f for f in ("cp.csv", "rc.csv", "cr.csv")]
        Xc = np.array(cp["X"])
        _write(paths[0], ["start", "stop", "event", "x0", "x1", "x2", "id", "w", "g"],
               [cp["start"], cp["stop"], cp["event"], Xc, cp["id"], cp["w"], cp["g"]])
        _write(paths[1], ["time", "event", "x0", "x1", "x2", "g"],
               [rc["time"], rc["event"], np.array(rc["X"]), rc["g"]])
        n = len(cr["time"])
        _write(paths[2], ["id", "time", "status", "x0", "x1"],
               [np.arange(1, n + 1), cr["time"], cr["status"], np.array(cr["X"])])
        proc = subprocess.run(["Rscript", "-e", R_CODE, *map(str, paths)],
                              capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(proc.stderr)
    ref = {}
    for line in proc.stdout.strip().splitlines():
        tok = line.split()
        if tok[0] == "version":
            ref["version"] = f"{tok[1]}, survival {tok[2]}, glmnet {tok[3]}"
            continue
        ref.setdefault(tok[0], {})[tok[1]] = [float(v) for v in tok[2:]]
    out = {"data": {"counting": cp, "rc": rc, "competing": cr}, "R": ref}
    OUT.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
