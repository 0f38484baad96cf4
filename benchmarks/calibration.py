"""Can you trust a net's standard errors? The calibration study of neurostat's net inference.

Monte Carlo over a grid of cells. Every replication draws fresh data from one process with
five standard-normal inputs and a known truth:

    eta = 0.8 x0 + tanh(2 x1) + 0.5 x0 x2 + 0.15 x4        (x3 is pure noise)

so the average effects on the linear predictor are known exactly: x0 0.8, x1 E[2 / cosh(2 x1)^2]
(= 0.9312...), x2 0 (it acts only through the interaction), x3 0, x4 0.15 (a weak real input).
Responses: gaussian (``eta + N(0, 1)``), bernoulli (logit link) or poisson (log link, ``0.3
eta``: the truths scale by 0.3). Each replication fits the cell's net, calls
``inference(cov_type=...)`` and records, per input: the estimate, its standard error, whether
the 95% interval covers the truth, the p-value of the effect's z test and of the per-input test
(``wald_test_terms``), and for gaussian responses the coverage of 95% observation intervals
(``get_prediction(X_new).summary_frame(obs=True)``) on 500 fresh points; for bernoulli and
poisson responses also the effects on the mean (``get_margeff()``, ``E[d mu / d x_j]``, whose
truth is a Monte-Carlo average over 2e6 draws). Per cell it reports:

* ``se_ratio``: mean reported SE over the Monte-Carlo SD of the estimate (target 0.85-1.15);
* ``coverage``: of the 95% intervals (target 0.92-0.98);
* ``size``: rejection rate at 5% of the tests of the noise input x3 (target 0.03-0.07), for the
  per-input test and the effect's z test; and of the x2 effect's z test (its average effect is
  0) - x2's per-input test should reject (it matters through the interaction);
* ``power``: rejection rate of the tests of the weak input x4;
* ``cost``: inference time over fit time;
* ``margeff_se_ratio``, ``margeff_coverage``, ``margeff_bias_sd`` (mean estimate minus truth
  over the MC SD): the same for ``get_margeff()`` (bernoulli and poisson cells).

    python benchmarks/calibration.py [--quick] [--replications 100] [--cells NAME ...]
        [--n-jobs 2] [--out benchmarks/results/calibration.json] [--envelope]

Replications run in parallel through joblib (so ``joblib.parallel_backend("dask")`` spreads
them over a cluster). ``--quick`` runs two small cells with few replications (seconds).
"""

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

TRUE_X1 = float(np.mean(2 / np.cosh(2 * np.random.default_rng(0).normal(size=2_000_000)) ** 2))
TRUTH = np.array([0.8, TRUE_X1, 0.0, 0.0, 0.15])
SCALE = {"gaussian": 1.0, "bernoulli": 1.0, "poisson": 0.3}
OUT = Path(__file__).parent / "results" / "calibration.json"


def eta_and_gradient(X, family):
    """The process's linear predictor and its gradient in the inputs."""
    c = SCALE[family]
    eta = c * (0.8 * X[:, 0] + np.tanh(2 * X[:, 1]) + 0.5 * X[:, 0] * X[:, 2] + 0.15 * X[:, 4])
    grad = c * np.column_stack([0.8 + 0.5 * X[:, 2], 2 / np.cosh(2 * X[:, 1]) ** 2,
                                0.5 * X[:, 0], np.zeros(len(X)), np.full(len(X), 0.15)])
    return eta, grad


def true_margeff(family, draws=2_000_000):
    """``E[d mu / d x_j]`` of the process (Monte Carlo; the mean's derivative in eta times the
    gradient): the truth of ``get_margeff()``."""
    X = np.random.default_rng(1).normal(size=(draws, 5))
    eta, grad = eta_and_gradient(X, family)
    dmu = np.exp(eta) if family == "poisson" else 1 / (4 * np.cosh(eta / 2) ** 2)  # mu(1-mu)
    return (dmu[:, None] * grad).mean(0)


def draw(rng, n, family):
    """Inputs and response of the study's process."""
    X = rng.normal(size=(n, 5))
    eta, _ = eta_and_gradient(X, family)
    if family == "gaussian":
        y = eta + rng.normal(size=n)
    elif family == "bernoulli":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return X, y


def make_estimator(cell, seed):
    from neurostat import NeuralClassifier, NeuralRegressor

    kw = dict(hidden_layer_sizes=tuple(cell["hidden"]), activation=cell.get("activation", "tanh"),
              solver=cell["solver"], alpha=cell.get("alpha", 0.0),
              dropout=cell.get("dropout", 0.0), random_state=seed)
    if cell["solver"] == "lbfgs":
        kw["max_iter"] = cell.get("max_iter", 500)
    else:
        kw.update(max_iter=cell.get("max_iter", 200), learning_rate_init=cell.get("lr", 1e-2),
                  batch_size=cell.get("batch_size", 64))
    if cell["family"] == "bernoulli":
        return NeuralClassifier(**kw)
    return NeuralRegressor(family=cell["family"], **kw)


def replicate(cell, seed):
    """One replication of a cell: the per-input numbers of one fit and its inference."""
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(seed)
    X, y = draw(rng, cell["n"], cell["family"])
    est = make_estimator(cell, seed)
    t0 = time.perf_counter()
    est.fit(X, y)
    t1 = time.perf_counter()
    res = est.inference(cov_type=cell.get("cov_type", "nonrobust"),
                        effects=cell.get("effects", "crossfit"), random_state=seed,
                        n_bootstrap=cell.get("n_bootstrap", 100))
    params = res.params.values[-5:]
    bse = res.bse.values[-5:]
    tests = res.wald_test_terms()["P>chi2"].values[-5:]
    t2 = time.perf_counter()
    out = {"params": params.tolist(), "bse": bse.tolist(), "z_p": res.pvalues.values[-5:].tolist(),
           "test_p": tests.tolist(), "fit_s": t1 - t0, "inference_s": t2 - t1}
    if cell["family"] == "gaussian":
        Xn, yn = draw(rng, 500, "gaussian")
        frame = res.get_prediction(Xn).summary_frame(alpha=0.05, obs=True)
        out["obs_coverage"] = float(np.mean((yn >= frame.obs_ci_lower) &
                                            (yn <= frame.obs_ci_upper)))
    else:  # the effects on the mean (the probability of class 1, the expected count)
        me = res.get_margeff()
        out["margeff"] = np.asarray(me.margeff)[-5:].tolist()
        out["margeff_se"] = np.asarray(me.margeff_se)[-5:].tolist()
    return out


def summarize(cell, reps):
    truth = TRUTH * SCALE[cell["family"]]
    est = np.array([r["params"] for r in reps])
    se = np.array([r["bse"] for r in reps])
    zp = np.array([r["z_p"] for r in reps])
    tp = np.array([r["test_p"] for r in reps])
    sd = est.std(0, ddof=1)
    cover = np.abs(est - truth) <= 1.959964 * se
    fit = np.median([r["fit_s"] for r in reps])
    row = {
        "replications": len(reps),
        "mean_estimate": est.mean(0).tolist(), "truth": truth.tolist(),
        "mc_sd": sd.tolist(), "mean_se": se.mean(0).tolist(),
        "se_ratio": (se.mean(0) / sd).tolist(), "coverage": cover.mean(0).tolist(),
        "size_test_x3": float(np.mean(tp[:, 3] < 0.05)),
        "size_z_x3": float(np.mean(zp[:, 3] < 0.05)), "size_z_x2": float(np.mean(zp[:, 2] < 0.05)),
        "power_test_x2": float(np.mean(tp[:, 2] < 0.05)),
        "power_test_x4": float(np.mean(tp[:, 4] < 0.05)),
        "power_z_x4": float(np.mean(zp[:, 4] < 0.05)),
        "null_p_test_x3": tp[:, 3].tolist(), "null_p_z_x3": zp[:, 3].tolist(),
        "fit_seconds": float(fit),
        "cost_ratio": float(np.median([r["inference_s"] / r["fit_s"] for r in reps])),
    }
    if "obs_coverage" in reps[0]:
        row["obs_coverage"] = float(np.mean([r["obs_coverage"] for r in reps]))
    if "margeff" in reps[0]:
        me = np.array([r["margeff"] for r in reps])
        me_se = np.array([r["margeff_se"] for r in reps])
        me_sd = me.std(0, ddof=1)
        me_truth = true_margeff(cell["family"])
        row.update(margeff_truth=me_truth.tolist(), margeff_mean=me.mean(0).tolist(),
                   margeff_se_ratio=(me_se.mean(0) / me_sd).tolist(),
                   margeff_coverage=(np.abs(me - me_truth) <= 1.959964 * me_se).mean(0).tolist(),
                   margeff_bias_sd=((me.mean(0) - me_truth) / me_sd).tolist())
    return row


def base(**kw):
    cell = {"family": "gaussian", "hidden": [16], "solver": "lbfgs", "alpha": 1e-2, "n": 800}
    cell.update(kw)
    return cell


#: the grid: a base cell and one-factor-at-a-time departures from it (name -> cell)
CELLS = {
    "base: gaussian (16,) lbfgs ridge n=800": base(),
    "width 1": base(hidden=[1]),
    "width 4": base(hidden=[4]),
    "width 64": base(hidden=[64]),
    "depth 2 (16, 16)": base(hidden=[16, 16]),
    "n=300": base(n=300),
    "n=2000": base(n=2000),
    "n=5000": base(n=5000, hidden=[8], replications=40),
    "no penalty": base(alpha=0.0),
    "no penalty, width 64, n=300": base(alpha=0.0, hidden=[64], n=300),
    "adam ridge": base(solver="adam", alpha=1e-3),
    "adam dropout 0.2": base(solver="adam", alpha=0.0, dropout=0.2),
    "relu": base(activation="relu"),
    "HC0": base(cov_type="HC0"),
    "HC1": base(cov_type="HC1"),
    "bootstrap": base(cov_type="bootstrap", n_bootstrap=100, replications=30),
    "delta method (the old default)": base(effects="delta"),
    "bernoulli (16,) lbfgs ridge": base(family="bernoulli"),
    "bernoulli adam": base(family="bernoulli", solver="adam", alpha=1e-3),
    "bernoulli n=300": base(family="bernoulli", n=300),
    "bernoulli (16, 16)": base(family="bernoulli", hidden=[16, 16]),
    "poisson (16,) lbfgs ridge": base(family="poisson"),
    "poisson adam": base(family="poisson", solver="adam", alpha=1e-3),
    "poisson n=300": base(family="poisson", n=300),
}
QUICK = {
    "quick: gaussian (4,) lbfgs n=300": base(hidden=[4], n=300, max_iter=200),
    "quick: bernoulli (4,) lbfgs n=300": base(family="bernoulli", hidden=[4], n=300,
                                               max_iter=200),
}


def run(cells, replications, n_jobs, seed0=0, save=None):
    """Every cell's summary (a cell's own ``replications`` caps the number: the bootstrap
    cell refits 100 times per replication); ``save(results)`` after each cell."""
    out = {}
    for name, cell in cells.items():
        t = time.perf_counter()
        r_cell = min(replications, cell.get("replications", replications))
        reps = Parallel(n_jobs=n_jobs)(delayed(replicate)(cell, seed0 + r)
                                       for r in range(r_cell))
        row = summarize(cell, reps)
        row["cell"] = cell
        row["wall_seconds"] = time.perf_counter() - t
        out[name] = row
        print(f"{name}: SE/SD {np.round(row['se_ratio'], 2).tolist()}, coverage "
              f"{np.round(row['coverage'], 2).tolist()}, size x3 test {row['size_test_x3']:.2f}"
              f" z {row['size_z_x3']:.2f}, power x4 test {row['power_test_x4']:.2f} z "
              f"{row['power_z_x4']:.2f}, x2 test {row['power_test_x2']:.2f}, cost "
              f"{row['cost_ratio']:.1f} ({row['wall_seconds']:.0f} s)", flush=True)
        if save is not None:
            save(out)
    return out


def markdown_table(study):
    """The study as the README's markdown table (one row per cell, grid order)."""
    from neurostat.inference.envelope import cell_failures, envelope_from_study

    env = {c["name"]: c for c in envelope_from_study(study)["cells"]}
    rows = ["| cell | reps | SE / MC SD | coverage | size: per-input test | size: z | power x4: "
            "test / z | cost (fits) | outside the bands |", "|---|---|---|---|---|---|---|---|---|"]
    for name in [*CELLS, *(k for k in study["cells"] if k not in CELLS)]:
        if name not in study["cells"]:
            continue
        r, c = study["cells"][name], env[name]
        fail = ", ".join(cell_failures(c)) or "-"
        rows.append(
            f"| {name} | {r['replications']} | {min(r['se_ratio']):.2f}-{max(r['se_ratio']):.2f} | "
            f"{min(r['coverage']):.2f}-{max(r['coverage']):.2f} | {r['size_test_x3']:.2f} | "
            f"{r['size_z_x3']:.2f} | {r['power_test_x4']:.2f} / {r['power_z_x4']:.2f} | "
            f"{r['cost_ratio']:.1f} | {fail} |")
    rows += ["", "Effects on the mean (`get_margeff()`), the same replications:", "",
             "| cell | SE / MC SD | coverage | bias / MC SD | link-scale effects: bias / MC SD |",
             "|---|---|---|---|---|"]
    for name in [*CELLS, *(k for k in study["cells"] if k not in CELLS)]:
        r = study["cells"].get(name, {})
        if "margeff_coverage" not in r:
            continue
        link_bias = (np.array(r["mean_estimate"]) - r["truth"]) / np.array(r["mc_sd"])
        rows.append(
            f"| {name} | {min(r['margeff_se_ratio']):.2f}-{max(r['margeff_se_ratio']):.2f} | "
            f"{min(r['margeff_coverage']):.2f}-{max(r['margeff_coverage']):.2f} | "
            f"{_span(r['margeff_bias_sd'])} | {_span(link_bias)} |")
    return "\n".join(rows)


def _span(values):
    """The value of largest magnitude, signed (e.g. the worst bias)."""
    values = np.asarray(values, dtype=float)
    return f"{values[np.argmax(np.abs(values))]:+.2f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--replications", type=int, default=100)
    ap.add_argument("--cells", nargs="*", default=None, help="names (substrings) of cells")
    ap.add_argument("--exact", action="store_true", help="--cells are whole names")
    ap.add_argument("--table", action="store_true",
                    help="print the stored study (--out) as a markdown table and stop")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--envelope", action="store_true",
                    help="also write the package's calibration_envelope.json from the results")
    args = ap.parse_args(argv)
    if args.table:
        print(markdown_table(json.loads(Path(args.out).read_text())))
        return None
    cells = QUICK if args.quick else CELLS
    if args.cells:
        cells = ({k: cells[k] for k in args.cells if k in cells} if args.exact  # their order
                 else {k: v for k, v in cells.items() if any(c in k for c in args.cells)})
    reps = 8 if args.quick and args.replications == 100 else args.replications
    path = Path(args.out)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "quick": args.quick,
            "truth": TRUTH.tolist(), "process": "eta = 0.8 x0 + tanh(2 x1) + 0.5 x0 x2 + "
                                               "0.15 x4; x3 noise"}

    def save(results):  # after every cell: a long run keeps what it measured
        old = json.loads(path.read_text())["cells"] if path.exists() and not args.quick \
            else {}
        old.update(results)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"meta": meta, "cells": old}, indent=1))

    results = run(cells, reps, args.n_jobs, save=save)
    if args.envelope and not args.quick:
        from neurostat.inference.envelope import ENVELOPE_FILE, envelope_from_study

        study = json.loads(path.read_text())
        ENVELOPE_FILE.write_text(json.dumps(envelope_from_study(study), indent=1))
    return results


if __name__ == "__main__":
    main()
