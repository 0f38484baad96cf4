"""Reference numbers for tests/test_cox.py from R's survival::coxph (and statsmodels' PHReg).

Run from the repository root: ``.venv/bin/python tests/results/make_cox_reference.py``
(needs ``Rscript`` with the survival package; the versions are recorded in the JSON). Writes
tests/results/cox_reference.json with the data (so the tests do not depend on a random number
generator) and, for ties in {efron, breslow} x {unweighted, weighted}: coefficients, naive and
robust (``robust=TRUE``) standard errors, log partial likelihood at 0 and at the fit, and the
Breslow baseline cumulative hazard (``basehaz(fit, centered=FALSE)``, Breslow fits only: R
uses Efron's increments after an Efron fit) with the martingale and deviance residuals of
Breslow fits, and R's concordance of the fit.
"""

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import statsmodels.api as sm

OUT = Path(__file__).with_name("cox_reference.json")

R_CODE = r"""
library(survival)
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
emit <- function(key, x) cat(key, sprintf("%.17g", x), "\n")
cat("version", gsub(" ", "_", R.version.string), as.character(packageVersion("survival")), "\n")
for (tie in c("efron", "breslow")) for (wt in c("none", "w")) {
  f <- if (wt == "w") {
    coxph(Surv(time, event) ~ x0 + x1 + x2, data = d, ties = tie, weights = w, robust = TRUE)
  } else {
    coxph(Surv(time, event) ~ x0 + x1 + x2, data = d, ties = tie, robust = TRUE)
  }
  cc <- if (wt == "w") concordance(f, timewt = "n") else concordance(f)
  key <- paste(tie, wt, sep = "_")
  emit(paste(key, "coef"), coef(f))
  emit(paste(key, "se"), sqrt(diag(f$naive.var)))
  emit(paste(key, "robust_se"), sqrt(diag(f$var)))
  emit(paste(key, "loglik"), f$loglik)
  emit(paste(key, "concordance"), cc$concordance)
  if (tie == "breslow") {
    bh <- basehaz(f, centered = FALSE)
    emit(paste(key, "basehaz_time"), bh$time)
    emit(paste(key, "basehaz"), bh$hazard)
    emit(paste(key, "resid_martingale"), residuals(f, type = "martingale"))
    emit(paste(key, "resid_deviance"), residuals(f, type = "deviance"))
  }
}
"""


def make_data(seed=20261127, n=200):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    X[:, 2] = rng.integers(0, 2, n)  # a binary covariate
    eta = X @ np.array([0.7, -0.4, 0.5])
    t = rng.exponential(np.exp(-eta))
    c = rng.exponential(1.2, n)
    time = np.ceil(np.minimum(t, c) * 8)  # integer times: many ties
    event = (t <= c).astype(float)
    w = rng.uniform(0.2, 3.0, n)
    # case weights of mean 1 (R and neurostat use them as given)
    return X, time, event, w / w.mean()


def main():
    X, time, event, w = make_data()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.csv"
        data = np.column_stack([time, event, w, X])
        np.savetxt(path, data, delimiter=",", header="time,event,w,x0,x1,x2", comments="",
                   fmt="%.17g")
        proc = subprocess.run(["Rscript", "-e", R_CODE, str(path)], capture_output=True,
                              text=True, check=True)
    r_ref = {}
    for line in proc.stdout.strip().splitlines():
        tok = line.split()
        if tok[0] == "version":
            r_ref["version"] = f"{tok[1]}, survival {tok[2]}"
            continue
        r_ref.setdefault(tok[0], {})[tok[1]] = [float(v) for v in tok[2:]]
    ref = {"data": {"X": X.tolist(), "time": time.tolist(), "event": event.tolist(),
                    "w": w.tolist()},
           "R": r_ref}
    sm_ref = {}
    for ties in ("efron", "breslow"):
        model = sm.PHReg(time, X, status=event, ties=ties)
        fit = model.fit()
        rob = model.fit(groups=np.arange(len(time)))
        sm_ref[ties] = {"coef": fit.params.tolist(), "se": fit.bse.tolist(),
                        "robust_se": rob.bse.tolist(), "llf": float(fit.llf),
                        "llnull": float(model.loglike(np.zeros(X.shape[1])))}
    ref["statsmodels"] = sm_ref
    OUT.write_text(json.dumps(ref, indent=1) + "\n")


if __name__ == "__main__":
    main()
