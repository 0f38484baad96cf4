"""Why the per-input directional test's null z has an SD above 1: its reported variance against
the Monte-Carlo spread of the statistic, on the calibration study's cells and seeds.

For each replication of a cell (``benchmarks/calibration.py``: the same data, estimator and
seed) the default ``inference()`` is run with its cross-fitted pieces recorded, and for each
input the directional statistic ``M`` (the mean of the per-row moments, see
``neurostat/inference/debiased.py``) is kept with two SDs: the one the test reports (the rows'
empirical variance; model-based for gaussian) and the SD of the five fold means over sqrt(5).
Per input the JSON holds the Monte-Carlo SD of ``M`` over the replications, each reported SD's
mean over it, the mean of ``M`` and of its plug-in part, and the rejection rates at 5% of the
reported z and of the fold-mean t test (4 df).

Two diagnostics of where the missing variance comes from, on the same replications:

* ``oracle_alpha``: the same statistic with the true Riesz representer in place of the fitted
  one (the study's inputs are independent standard normals, so ``alpha_j(x) = x_j``). If the
  representer's error were the cause, this would have the right variance.
* ``nested_folds`` (with ``--nested``): the rows split into the same number of folds, fold k
  (k >= 2) evaluated by a net fitted on folds 1..k-1 only. Cross-fitting's K - 1 fold nets
  each see the others' held-out rows, so under H0 (where the moment is degenerate, its weight
  being fitted noise) the moments of rows in different folds are correlated through pairs
  ``(i, l)`` that each entered the other's fit: a degenerate U-statistic whose cross terms the
  rows' variance leaves out. In the nested scheme only the later fold's net sees the earlier
  row, the sum is a martingale and the rows' variance is its variance; it pays in power
  (the nets see 1/5-4/5 of the rows).

    python benchmarks/directional_test_variance.py [--replications 60] [--n-jobs 2]
        [--cells NAME ...] [--nested] [--out benchmarks/results/directional_test_variance.json]
"""

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
import calibration as cal  # noqa: E402

OUT = Path(__file__).parent / "results" / "directional_test_variance.json"
CELLS = ["base: gaussian (16,) lbfgs ridge n=800", "bernoulli (16,) lbfgs ridge"]


def _recorded_inference(est, seed):
    """``est.inference()`` with the cross-fitted folds and the tests' inputs recorded."""
    import neurostat.inference.debiased as debiased

    box = {}
    crossfit, tests = debiased.crossfit, debiased._directional_tests

    def recording_crossfit(*args, **kwargs):
        box["parts"] = crossfit(*args, **kwargs)
        return box["parts"]

    def recording_tests(q, w, Sigma_v, layout, codes=None):
        box.update(q=q, w=w, Sigma_v=Sigma_v)
        return tests(q, w, Sigma_v, layout, codes)

    debiased.crossfit, debiased._directional_tests = recording_crossfit, recording_tests
    try:
        est.inference(random_state=seed)
    finally:
        debiased.crossfit, debiased._directional_tests = crossfit, tests
    return box


def replicate(cell, seed):
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(seed)
    X, y = cal.draw(rng, cell["n"], cell["family"])
    est = cal.make_estimator(cell, seed).fit(X, y)
    box = _recorded_inference(est, seed)
    q, w, S = box["q"], box["w"], box["Sigma_v"]
    fold = np.empty(len(w), dtype=int)
    for k, part in enumerate(box["parts"]):
        fold[part.rows] = k
    K = fold.max() + 1
    P, C, alpha, v = q["effect"], q["curvature"], q["alpha"], q["v"]
    N = w.sum()
    out = []
    for j in range(P.shape[2]):  # the same moment as debiased._directional_tests
        row = {"folds": int(K)}
        for tag, a in (("", alpha[:, j]), ("oracle_", X[:, j])):
            plug = (P[:, :, j] ** 2).sum(1)
            b = P[:, :, j] * a[:, None] - C[:, :, j]
            m = plug + (b * v).sum(1)
            M = w @ m / N
            if S is None:
                var = w @ (m - M) ** 2 / N**2
            else:
                var = (w @ (plug - w @ plug / N) ** 2
                       + np.einsum("n,nk,nkl,nl->", w, b, S, b)) / N**2
            row.update({tag + "M": float(M), tag + "sd_reported": float(np.sqrt(var)),
                        tag + "plug": float(w @ plug / N)})
            if not tag:
                means = np.array([np.average(m[fold == k], weights=w[fold == k])
                                  for k in range(K)])
                row["sd_fold_means"] = float(means.std(ddof=1) / np.sqrt(K))
        out.append(row)
    return out


def nested_replicate(cell, seed, n_folds=5):
    """The statistic from nested folds: fold k evaluated by a net fitted on folds 1..k-1."""
    import torch

    from neurostat.inference.crossfit import _fold

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(seed)
    X, y = cal.draw(rng, cell["n"], cell["family"])
    est = cal.make_estimator(cell, seed)
    F = np.array_split(np.random.default_rng(seed + 999).permutation(len(y)), n_folds)
    qs = [_fold(est, X, y, None, None, np.concatenate(F[:k]), F[k], seed + k)
          for k in range(1, n_folds)]
    out = []
    for j in range(X.shape[1]):
        m = np.concatenate([(q.effect[:, :, j] ** 2).sum(1)
                            + ((q.effect[:, :, j] * q.alpha[:, None, j] - q.curvature[:, :, j])
                               * q.v).sum(1) for q in qs])
        out.append({"M": float(m.mean()), "sd_reported": float(m.std() / np.sqrt(len(m)))})
    return out


def _spread(reps, j, tag=""):
    M = np.array([r[j][tag + "M"] for r in reps])
    sr = np.array([r[j][tag + "sd_reported"] for r in reps])
    z = M / sr
    return {"reported_sd_over_mc_sd": float(sr.mean() / M.std(ddof=1)),
            "z_mean": float(z.mean()), "z_sd": float(z.std(ddof=1)),
            "rejection_reported_z": float(np.mean(z > stats.norm.isf(0.05)))}


LABELS = ["x0", "x1", "x2", "x3 (noise)", "x4 (weak)"]


def summarize(reps, nested=None):
    rows = {}
    for j, label in enumerate(LABELS):
        M = np.array([r[j]["M"] for r in reps])
        sr = np.array([r[j]["sd_reported"] for r in reps])
        sf = np.array([r[j]["sd_fold_means"] for r in reps])
        K = reps[0][j]["folds"]
        mc = M.std(ddof=1)
        z = M / sr
        rows[label] = {
            "mc_sd": float(mc), "mean": float(M.mean()),
            "plug_mean": float(np.mean([r[j]["plug"] for r in reps])),
            "reported_sd_over_mc_sd": float(sr.mean() / mc),
            "fold_means_sd_over_mc_sd": float(sf.mean() / mc),
            "z_mean": float(z.mean()), "z_sd": float(z.std(ddof=1)),
            "rejection_reported_z": float(np.mean(z > stats.norm.isf(0.05))),
            "rejection_fold_means_t": float(np.mean(M / sf > stats.t.isf(0.05, K - 1))),
            "oracle_alpha": _spread(reps, j, "oracle_"),
        }
        if nested is not None:
            rows[label]["nested_folds"] = _spread(nested, j)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replications", type=int, default=60)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--cells", nargs="*", default=CELLS)
    ap.add_argument("--nested", action="store_true",
                    help="also the nested-folds statistic (4 more fits per replication)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    grid = {**cal.CELLS, **cal.QUICK}
    result = {"replications": args.replications, "seeds": f"0-{args.replications - 1}",
              "cells": {}}
    for name in args.cells:
        reps = Parallel(n_jobs=args.n_jobs)(delayed(replicate)(grid[name], s)
                                            for s in range(args.replications))
        nested = None
        if args.nested:
            nested = Parallel(n_jobs=args.n_jobs)(delayed(nested_replicate)(grid[name], s)
                                                  for s in range(args.replications))
        result["cells"][name] = summarize(reps, nested)
        x3 = result["cells"][name]["x3 (noise)"]
        print(f"{name}: noise input x3: reported SD / MC SD {x3['reported_sd_over_mc_sd']:.2f}, "
              f"fold means {x3['fold_means_sd_over_mc_sd']:.2f}, null z mean {x3['z_mean']:.2f} "
              f"sd {x3['z_sd']:.2f}, rejection {x3['rejection_reported_z']:.2f}; oracle alpha "
              f"{x3['oracle_alpha']['reported_sd_over_mc_sd']:.2f}"
              + (f"; nested folds {x3['nested_folds']['reported_sd_over_mc_sd']:.2f}, z mean "
                 f"{x3['nested_folds']['z_mean']:.2f}, rejection "
                 f"{x3['nested_folds']['rejection_reported_z']:.2f}, power x4 "
                 f"{result['cells'][name]['x4 (weak)']['nested_folds']['rejection_reported_z']:.2f}"
                 if nested else ""), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
