"""Reference fits for tests/ppr/test_ppr.py from R's ``stats::ppr`` (Friedman's SMART Fortran).

Run from the repository root: ``.venv/bin/python tests/results/make_ppr_reference.py`` (needs
``Rscript``; ``ppr`` is in R's base ``stats`` package, so ``apt-get install r-base-core`` is
enough; the R version is recorded in the JSON). Writes tests/results/ppr_reference.json with the
data (deterministic, no random numbers; written here with numpy and read by R from a CSV at 17
significant digits, so both sides fit the very same numbers) and, for each case, R's
directions ``alpha`` (one column per term), loadings ``beta``, intercept ``yb``, all fitted
values and ``gofn``.

Cases (R defaults unless named: ``optlevel = 2``, ``bass = 0``, ``span = 0`` (cv)):

* ``single_*``: one term (``nterms = 1, max.terms = 1``) on 150 rows, 3 inputs:
  ``supsmu``, ``supsmu`` with ``bass = 5``, ``supsmu`` with ``span = 0.1``,
  ``spline`` with ``df = 5``, ``gcvspline``, and ``supsmu`` with case weights.
* ``two_term_*``: ``nterms = 2, max.terms = 3`` on 200 rows, 4 inputs, an additive model of a
  quadratic-plus-linear ridge and a tanh ridge along orthogonal directions: the forward stage
  adds three terms, backfits, and the backward stage drops the least important and backfits
  again; ``supsmu`` and ``spline`` with ``df = 5``.
* ``multi_response_supsmu``: the same inputs with a second response ``y2`` (a sine ridge
  along ``z1`` plus a linear trend in ``z2``), ``nterms = 2, max.terms = 3``: shared
  directions and ridge functions, one loading per response and term (SMART's start for a new
  term's loadings). Matrices (alpha, beta, fitted) are written column-major: term by term,
  response by response.
"""

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("ppr_reference.json")

R_CODE = r"""
args <- commandArgs(trailingOnly = TRUE)
emit <- function(key, x) cat(key, sprintf("%.17g", x), "\n")
cat("version", gsub(" ", "_", R.version.string), "\n")
fit <- function(key, X, y, ...) {
  m <- ppr(X, y, ...)
  emit(paste(key, "alpha"), m$alpha)  # column-major: term 1's p entries first
  emit(paste(key, "beta"), m$beta)
  emit(paste(key, "yb"), m$yb)
  emit(paste(key, "fitted"), fitted(m))
  emit(paste(key, "gofn"), m$gofn)
}
d1 <- as.matrix(read.csv(args[1]))
X1 <- d1[, c("x0", "x1", "x2")]; y1 <- d1[, "y"]; w1 <- d1[, "w"]
fit("single_supsmu", X1, y1, nterms = 1, max.terms = 1)
fit("single_bass5", X1, y1, nterms = 1, max.terms = 1, bass = 5)
fit("single_span0.1", X1, y1, nterms = 1, max.terms = 1, span = 0.1)
fit("single_spline", X1, y1, nterms = 1, max.terms = 1, sm.method = "spline", df = 5)
fit("single_gcvspline", X1, y1, nterms = 1, max.terms = 1, sm.method = "gcvspline")
fit("single_weighted", X1, y1, weights = w1, nterms = 1, max.terms = 1)
d2 <- as.matrix(read.csv(args[2]))
X2 <- d2[, c("x0", "x1", "x2", "x3")]; y2 <- d2[, "y"]
fit("two_term_supsmu", X2, y2, nterms = 2, max.terms = 3)
fit("two_term_spline", X2, y2, nterms = 2, max.terms = 3, sm.method = "spline", df = 5)
fit("multi_response_supsmu", X2, d2[, c("y", "y2")], nterms = 2, max.terms = 3)
"""

CASES = {
    "single_supsmu": ("single", {}),
    "single_bass5": ("single", {"bass": 5}),
    "single_span0.1": ("single", {"span": 0.1}),
    "single_spline": ("single", {"smoother": "spline", "df": 5}),
    "single_gcvspline": ("single", {"smoother": "gcvspline"}),
    "single_weighted": ("single", {}),
    "two_term_supsmu": ("two_term", {}),
    "two_term_spline": ("two_term", {"smoother": "spline", "df": 5}),
    "multi_response_supsmu": ("two_term", {}),
}
"""Case name -> (data set, ProjectionPursuitRegressor keywords that give R's call); the
``*_weighted`` cases pass the data set's ``w`` to ``fit`` as ``sample_weight``."""


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def single_data():
    """150 rows, 3 inputs: a single exponential ridge plus a deterministic wiggle."""
    i = np.arange(1, 151)
    X = np.column_stack([np.sin(0.7 * i), np.cos(1.3 * i + 1), 1.5 * np.sin(2.1 * i + 0.5)])
    y = np.exp(0.8 * X @ _unit([0.6, -0.48, 0.64])) + 0.05 * np.sin(17 * i)
    w = 1.0 + 0.5 * np.sin(5.0 * i)
    return X, y, w


def two_term_data():
    """200 rows, 4 inputs: ``y = z1^2 + 0.3 z1 + 2 tanh(2 z2)`` with orthogonal unit directions
    (plus a wiggle), and a second response ``y2 = sin(2 z1) - 0.5 z2`` (plus another)."""
    i = np.arange(1, 201)
    X = np.column_stack([np.sin(0.7 * i), np.cos(1.3 * i + 1), 1.5 * np.sin(2.1 * i + 0.5),
                         np.cos(0.37 * i + 2)])
    z1, z2 = X @ _unit([1, 1, 0, 0]), X @ _unit([0, 0, 1, -1])
    y = z1**2 + 2 * np.tanh(2 * z2) + 0.3 * z1 + 0.05 * np.sin(17 * i)
    y2 = np.sin(2 * z1) - 0.5 * z2 + 0.05 * np.cos(11 * i)
    return X, y, y2


def main():
    X1, y1, w1 = single_data()
    X2, y2, y2b = two_term_data()
    with tempfile.TemporaryDirectory() as tmp:
        p1, p2 = Path(tmp) / "d1.csv", Path(tmp) / "d2.csv"
        np.savetxt(p1, np.column_stack([X1, y1, w1]), delimiter=",", header="x0,x1,x2,y,w",
                   comments="", fmt="%.17g")
        np.savetxt(p2, np.column_stack([X2, y2, y2b]), delimiter=",",
                   header="x0,x1,x2,x3,y,y2",
                   comments="", fmt="%.17g")
        proc = subprocess.run(["Rscript", "-e", R_CODE, str(p1), str(p2)],
                              capture_output=True, text=True, check=True)
    r_ref = {}
    for line in proc.stdout.strip().splitlines():
        tok = line.split()
        if tok[0] == "version":
            r_ref["version"] = tok[1].replace("_", " ")
            continue
        r_ref.setdefault(tok[0], {})[tok[1]] = [float(v) for v in tok[2:]]
    assert set(CASES) <= set(r_ref), sorted(r_ref)
    ref = {"data": {"single": {"X": X1.tolist(), "y": y1.tolist(), "w": w1.tolist()},
                    "two_term": {"X": X2.tolist(), "y": y2.tolist(), "y2": y2b.tolist()}},
           "cases": {name: {"data": data, "params": kw, "weighted": name.endswith("_weighted"),
                            **r_ref[name]}
                     for name, (data, kw) in CASES.items()},
           "version": r_ref["version"]}
    OUT.write_text(json.dumps(ref, indent=1) + "\n")


if __name__ == "__main__":
    main()
