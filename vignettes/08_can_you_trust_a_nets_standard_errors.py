"""Vignette 8: can you trust a net's standard errors?

A net's weights are not identified, so the first wave's delta method on them reported standard
errors of average effects 3-9 times their sampling spread, while its per-input Wald test
rejected a pure-noise input up to 78% of the time. This vignette reads the calibration study
(``benchmarks/calibration.py``: Monte Carlo over families, widths, depths, sample sizes,
solvers, penalties and covariance types, with known true effects) and shows

* the table: mean reported SE over the Monte-Carlo SD of the estimate, coverage of 95%
  intervals, size of the per-input tests on a noise input, power on a weak input, cost;
* a QQ plot of the null p-values (the noise input) of the per-input test and the effect's z
  test, against the uniform;
* coverage per cell against its target band;
* for the bernoulli and poisson cells, the effects on the mean (``get_margeff()``) beside the
  link-scale effects of the same fits (``margeff_table.csv``);
* model-based observation intervals (``get_prediction(X).summary_frame(obs=True)``) beside
  split-conformal intervals from the conformal library crepes on the same fitted net, on data
  with homoscedastic and with heteroscedastic noise.

    python vignettes/08_can_you_trust_a_nets_standard_errors.py [--quick] [--rerun] [--out DIR]

Without ``--rerun`` the full report reads the stored study
(``benchmarks/results/calibration.json``; rerunning it takes hours on two cores). ``--quick``
runs two small cells of the study with a few replications, so that every step runs in seconds.
"""

import argparse
import json
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import calibration  # noqa: E402

from neurostat import NeuralRegressor  # noqa: E402

torch.set_num_threads(1)
INPUTS = ["x0 (linear)", "x1 (nonlinear)", "x2 (interaction)", "x3 (noise)", "x4 (weak)"]
BANDS = {"se_ratio": (0.85, 1.15), "coverage": (0.92, 0.98), "size": (0.03, 0.07)}


def study(args):
    if args.quick:
        return calibration.run(calibration.QUICK, 8, n_jobs=1)
    path = ROOT / "benchmarks" / "results" / "calibration.json"
    if args.rerun or not path.exists():
        calibration.main(["--out", str(path)])
    return json.loads(path.read_text())["cells"]


def table(cells):
    rows = []
    for name, c in cells.items():
        ratio, cover = np.asarray(c["se_ratio"]), np.asarray(c["coverage"])
        rows.append({
            "cell": name, "replications": c["replications"],
            "SE/SD min": ratio.min(), "SE/SD max": ratio.max(),
            "coverage min": cover.min(), "coverage max": cover.max(),
            "size: per-input test (x3)": c["size_test_x3"],
            "size: effect z (x3)": c["size_z_x3"], "size: effect z (x2)": c["size_z_x2"],
            "power: per-input test (x4)": c["power_test_x4"],
            "power: effect z (x4)": c["power_z_x4"],
            "power: per-input test (x2)": c["power_test_x2"],
            "obs interval coverage": c.get("obs_coverage", np.nan),
            "cost (fits)": c["cost_ratio"],
        })
    frame = pd.DataFrame(rows).set_index("cell")
    lo, hi = BANDS["se_ratio"]
    clo, chi = BANDS["coverage"]
    slo, shi = BANDS["size"]
    frame["in bands"] = ((frame["SE/SD min"] >= lo) & (frame["SE/SD max"] <= hi)
                         & (frame["coverage min"] >= clo) & (frame["coverage max"] <= chi)
                         & frame["size: per-input test (x3)"].between(slo, shi)
                         & frame["size: effect z (x3)"].between(slo, shi))
    return frame


def margeff_table(cells):
    """The effects on the mean (``get_margeff()``, bernoulli and poisson cells): SE / MC SD,
    coverage and bias over the MC SD, beside the bias of the same fits' effects on the link
    scale (``params``), whose first-order correction leaves the link's second-order
    remainder."""
    rows = []
    for name, c in cells.items():
        if "margeff_coverage" not in c:
            continue
        link_bias = ((np.asarray(c["mean_estimate"]) - np.asarray(c["truth"]))
                     / np.asarray(c["mc_sd"]))
        rows.append({
            "cell": name, "replications": c["replications"],
            "SE/SD min": min(c["margeff_se_ratio"]), "SE/SD max": max(c["margeff_se_ratio"]),
            "coverage min": min(c["margeff_coverage"]),
            "coverage max": max(c["margeff_coverage"]),
            "largest |bias| / SD": float(np.max(np.abs(c["margeff_bias_sd"]))),
            "link scale: largest |bias| / SD": float(np.max(np.abs(link_bias))),
            "link scale: coverage min": min(c["coverage"]),
        })
    return pd.DataFrame(rows, columns=[
        "cell", "replications", "SE/SD min", "SE/SD max", "coverage min", "coverage max",
        "largest |bias| / SD", "link scale: largest |bias| / SD",
        "link scale: coverage min"]).set_index("cell")


def qq_plot(cells, path):
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for ax, key, title in ((axes[0], "null_p_test_x3", "per-input test (wald_test_terms)"),
                           (axes[1], "null_p_z_x3", "z test of the average effect")):
        for name, c in cells.items():
            p = np.sort(np.asarray(c[key]))
            u = (np.arange(1, p.size + 1) - 0.5) / p.size
            ax.plot(u, p, lw=1, alpha=0.8, label=name if len(cells) <= 8 else None)
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set(xlabel="uniform quantile", title=f"noise input x3: {title}", xlim=(0, 1),
               ylim=(0, 1))
    axes[0].set_ylabel("p-value quantile")
    if len(cells) <= 8:
        axes[1].legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def coverage_plot(frame, cells, path):
    names = list(cells)
    cover = np.array([cells[n]["coverage"] for n in names])
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(names) + 1.5))
    ax.axvspan(*BANDS["coverage"], color="0.9", label="target band 0.92-0.98")
    for j, label in enumerate(INPUTS):  # one row per cell, inputs side by side in it
        ax.plot(cover[:, j], np.arange(len(names)) + 0.13 * (j - 2), "o", ms=4, label=label)
    ax.set_yticks(np.arange(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="coverage of 95% intervals of the average effect", xlim=(0.6, 1.0))
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def conformal(quick, seed=0):
    """Model-based observation intervals against split-conformal ones (crepes) from the same
    kind of net, on homoscedastic and heteroscedastic noise; coverage overall and where the
    noise is largest, and mean width."""
    from crepes import WrapRegressor

    rows = []
    n = 600 if quick else 2000
    for noise in ("homoscedastic", "heteroscedastic"):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n + 2000, 3))
        sd = np.ones(len(X)) if noise == "homoscedastic" else 0.3 + 0.9 * np.abs(X[:, 0])
        y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + sd * rng.normal(size=len(X))
        tr, te = slice(0, n), slice(n, None)
        proper, cal = slice(0, int(0.7 * n)), slice(int(0.7 * n), n)
        kw = dict(hidden_layer_sizes=(16,), activation="tanh", solver="lbfgs", alpha=1e-2,
                  max_iter=400, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = NeuralRegressor(**kw).fit(X[tr], y[tr])
            frame = net.inference(effects="delta").get_prediction(X[te]).summary_frame(
                obs=True)
            wrapped = WrapRegressor(NeuralRegressor(**kw))
            wrapped.fit(X[proper], y[proper])
            wrapped.calibrate(X[cal], y[cal])
            band = wrapped.predict_int(X[te], confidence=0.95)
        hard = sd[te] >= np.quantile(sd[te], 0.75)
        for method, lo, hi in (("model-based obs interval", frame.obs_ci_lower.values,
                                frame.obs_ci_upper.values),
                               ("split conformal (crepes)", band[:, 0], band[:, 1])):
            inside = (y[te] >= lo) & (y[te] <= hi)
            rows.append({"noise": noise, "method": method, "coverage": inside.mean(),
                         "coverage, noisiest quarter": inside[hard].mean(),
                         "mean width": float(np.mean(hi - lo))})
    return pd.DataFrame(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rerun", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("vignette_output/08"))
    args = ap.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    cells = study(args)
    frame = table(cells)
    frame.to_csv(out / "calibration_table.csv")
    mfx = margeff_table(cells)
    mfx.to_csv(out / "margeff_table.csv")
    per_input = pd.DataFrame([
        {"cell": name, "input": INPUTS[j], "truth": c["truth"][j],
         "mean estimate": c["mean_estimate"][j], "mean SE": c["mean_se"][j],
         "Monte-Carlo SD": c["mc_sd"][j], "SE/SD": c["se_ratio"][j],
         "coverage": c["coverage"][j]} for name, c in cells.items() for j in range(5)])
    per_input.to_csv(out / "calibration_per_input.csv", index=False)
    qq_plot(cells, out / "qq_null_pvalues.png")
    coverage_plot(frame, cells, out / "coverage.png")
    conf = conformal(args.quick)
    conf.to_csv(out / "observation_intervals.csv", index=False)
    delta = [n for n in cells if "delta" in n]
    metrics = {
        "cells": len(cells), "cells_in_bands": int(frame["in bands"].sum()),
        "se_ratio_range": [float(frame["SE/SD min"].min()), float(frame["SE/SD max"].max())],
        "coverage_range": [float(frame["coverage min"].min()),
                           float(frame["coverage max"].max())],
        "size_per_input_test_max": float(frame["size: per-input test (x3)"].max()),
        "size_z_max": float(frame["size: effect z (x3)"].max()),
        "conformal": conf.to_dict("records"),
        "margeff_cells": len(mfx),
        "margeff_se_ratio_range": [float(mfx["SE/SD min"].min()),
                                   float(mfx["SE/SD max"].max())] if len(mfx) else None,
        "margeff_coverage_range": [float(mfx["coverage min"].min()),
                                   float(mfx["coverage max"].max())] if len(mfx) else None,
        "margeff_bias_sd_max": float(mfx["largest |bias| / SD"].max()) if len(mfx) else None,
        "link_bias_sd_max": (float(mfx["link scale: largest |bias| / SD"].max())
                             if len(mfx) else None),
        "delta_method_se_ratio": (float(np.max(cells[delta[0]]["se_ratio"])) if delta
                                  else None),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    outside = frame.index[~frame["in bands"]].tolist()
    report = f"""# Can you trust a net's standard errors?

{"Quick run: two small cells, 8 replications each - the machinery, not the evidence." if
 args.quick else "The stored calibration study (benchmarks/results/calibration.json)."}

The process: five standard-normal inputs, `eta = 0.8 x0 + tanh(2 x1) + 0.5 x0 x2 + 0.15 x4`
(x3 pure noise), gaussian, bernoulli or poisson responses. The average effects on the linear
predictor are known exactly. Bands: mean SE / Monte-Carlo SD in 0.85-1.15, coverage of 95%
intervals in 0.92-0.98, size of 5% tests in 0.03-0.07.

{len(cells) - len(outside)} of {len(cells)} cells are inside every band.
Cells outside a band: {", ".join(outside) if outside else "none"}.

{frame.round(3).to_markdown()}

![null p-values](qq_null_pvalues.png)

The per-input test of the summary (`wald_test_terms`) is a one-sided cross-fitted directional
test: it also detects x2, which acts only through the interaction x0 x2 and whose average
effect is zero (the z test of the average effect cannot see it).

![coverage](coverage.png)

## Effects on the mean of a classifier or a count model

`get_margeff()` reports the average derivative of the mean, `E[d mu / d x_j]`; its truth is a
Monte-Carlo average over 2e6 draws. The same replications' effects on the link scale
(`params`) are beside it: their one-step correction is linear in the working residual
`(y - mu) / mu'`, and for a 0/1 response the logit's second-order remainder is left over (it
attenuates the link-scale effect; measured -0.068 of a -0.073 bias on x0 in the bernoulli L-BFGS
cell). The effects on the mean have no such remainder: their correction is linear in `y - mu`.

{mfx.round(3).to_markdown() if len(mfx) else "No bernoulli or poisson cell in this run."}

## Observation intervals: model-based against split conformal

{conf.round(3).to_markdown(index=False)}

Both reach their nominal coverage on average. Under heteroscedastic noise the model-based
interval (which assumes one noise variance) and the split-conformal one (marginal by
construction) both under-cover where the noise is largest: coverage conditional on x needs a
model of the noise (a heteroscedastic family) or conditional conformal methods.
"""
    (out / "report.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
