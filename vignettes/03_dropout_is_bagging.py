"""Vignette 3: dropout is adaptive ridge, a kind of bagging, and approximate Bayes.

* **Adaptive ridge** (Wager, Wang & Liang 2013): a linear model trained with inverted input
  dropout of rate p minimises, in expectation, least squares plus
  ``p/(1-p) sum_j w_j^2 sum_i x_ij^2``; its solution is
  ``w* = (X'X + p/(1-p) diag(X'X))^-1 X'y``. We fit the exact call
  ``NeuralRegressor(hidden_layer_sizes=(), input_dropout=p, max_iter=2000, random_state=0)``
  on the standardized diabetes data and compare with w*. We also check the variance of the
  Monte-Carlo dropout predictions against ``p/(1-p) sum_j x_j^2 w_j^2``.
* **Bagging**: scikit-learn's ``BaggingRegressor`` over neurostat nets (it works because they
  are scikit-learn estimators), a dropout net predicting with the weight-scaling rule, its
  Monte-Carlo average, and a single unregularized net: test error and the variance of the
  predictions across training seeds on Friedman #1.
* **Approximate Bayes** (Gal & Ghahramani 2016): MC-dropout predictive intervals with the
  model-precision term and their coverage on held-out data.

    python vignettes/03_dropout_is_bagging.py [--quick] [--out DIR]
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_diabetes, make_friedman1  # noqa: E402
from sklearn.ensemble import BaggingRegressor  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from neurostat import NeuralRegressor  # noqa: E402
from neurostat.dropout import (  # noqa: E402
    adaptive_ridge,
    dropout_prediction_variance,
    mc_dropout_predict,
)

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- adaptive ridge
def adaptive_ridge_table(rates, max_iter):
    X, y = load_diabetes(return_X_y=True)
    names = load_diabetes().feature_names
    Xs = StandardScaler().fit_transform(X)
    rows, coefs = [], []
    for p in rates:
        w_star, _ = adaptive_ridge(Xs, y, p)
        t0 = time.process_time()
        est = NeuralRegressor(hidden_layer_sizes=(), input_dropout=p, max_iter=max_iter,
                              random_state=0).fit(Xs, y)
        cpu = time.process_time() - t0
        err = np.abs(est.coef_ - w_star).max() / np.abs(w_star).max()
        ols, _ = adaptive_ridge(Xs, y, 0.0)
        rows.append({"p": p, "max_abs_diff_over_max_w*": err,
                     "distance_ols_to_w*": np.abs(ols - w_star).max() / np.abs(w_star).max(),
                     "epochs": est.n_iter_, "cpu_s": cpu})
        for name, a, b in zip(names, est.coef_, w_star, strict=False):
            coefs.append({"p": p, "term": name, "dropout_net": a, "adaptive_ridge": b,
                          "ols": ols[names.index(name)]})
        # variance over masks of the prediction of this fitted linear model
        if p == rates[-1]:
            draws = est.sample_predictions(Xs[:8], n_samples=20_000, random_state=0)
            mask_var = pd.DataFrame({
                "row": np.arange(8), "mc_variance": draws.var(0),
                "closed_form": dropout_prediction_variance(Xs[:8], est.coef_, p)})
            mask_var["rel_diff"] = mask_var.mc_variance / mask_var.closed_form - 1
    return pd.DataFrame(rows), pd.DataFrame(coefs), mask_var


# ----------------------------------------------------------------------------- bagging
def friedman(seed, n_train, n_test):
    X, y = make_friedman1(n_samples=n_train, noise=1.0, random_state=seed)
    Xt, ft = make_friedman1(n_samples=n_test, noise=0.0, random_state=10_000 + seed)
    rng = np.random.default_rng(20_000 + seed)
    yt = ft + rng.normal(size=n_test)
    sx = StandardScaler().fit(X)
    m, s = y.mean(), y.std()
    return sx.transform(X), (y - m) / s, sx.transform(Xt), (yt - m) / s, (ft - m) / s


def bagging_table(n_seeds, n_bags, max_iter, width, p_drop):
    Xtr, ytr, Xte, yte, fte = friedman(0, 300, 2000)
    kw = dict(hidden_layer_sizes=(width,), learning_rate_init=3e-3, max_iter=max_iter)
    preds = {k: [] for k in ("single net", "bagged nets", "dropout net (weight scaling)",
                             "dropout net (MC average)")}
    cpu = {k: 0.0 for k in preds}
    for seed in range(n_seeds):
        t = time.process_time()
        single = NeuralRegressor(random_state=seed, **kw).fit(Xtr, ytr)
        preds["single net"].append(single.predict(Xte))
        cpu["single net"] += time.process_time() - t
        t = time.process_time()
        bag = BaggingRegressor(NeuralRegressor(**kw), n_estimators=n_bags,
                               random_state=seed).fit(Xtr, ytr)
        preds["bagged nets"].append(bag.predict(Xte))
        cpu["bagged nets"] += time.process_time() - t
        t = time.process_time()
        drop = NeuralRegressor(dropout=p_drop, random_state=seed, **kw).fit(Xtr, ytr)
        preds["dropout net (weight scaling)"].append(drop.predict(Xte))
        cpu["dropout net (weight scaling)"] += time.process_time() - t
        t = time.process_time()
        preds["dropout net (MC average)"].append(
            drop.sample_predictions(Xte, n_samples=100, random_state=seed).mean(0))
        cpu["dropout net (MC average)"] += time.process_time() - t
    rows = []
    for name, P in preds.items():
        P = np.array(P)  # (seeds, n_test)
        mse = ((P - yte) ** 2).mean(1)
        rows.append({"model": name, "test_mse_mean": mse.mean(),
                     "test_mse_sd": mse.std(ddof=1) if len(mse) > 1 else np.nan,
                     "mse_vs_true_f": ((P - fte) ** 2).mean(),
                     "variance_across_seeds": P.var(0, ddof=1).mean() if len(P) > 1
                     else np.nan,
                     "cpu_s_per_seed": cpu[name] / n_seeds})
    return pd.DataFrame(rows), preds, (Xte, yte, fte)


# ----------------------------------------------------------------------------- coverage
def coverage_table(n_seeds, max_iter, width, p_drop):
    rows = []
    for seed in range(n_seeds):
        Xtr, ytr, Xte, yte, fte = friedman(100 + seed, 300, 2000)
        est = NeuralRegressor((width,), dropout=p_drop, learning_rate_init=3e-3,
                              max_iter=max_iter, random_state=seed).fit(Xtr, ytr)
        pred = mc_dropout_predict(est, Xte, n_samples=100, random_state=seed)
        # tau from 200 held-out points instead of the (optimistic) training residuals
        Xva, yva = Xte[:200], yte[:200]
        mva = mc_dropout_predict(est, Xva, n_samples=100, tau=1.0, random_state=seed).mean
        tau_va = 1.0 / np.mean((yva - mva) ** 2)
        pred_va = mc_dropout_predict(est, Xte, n_samples=100, tau=tau_va, random_state=seed)
        rest = slice(200, None)
        for level in (0.5, 0.8, 0.95):
            fr = pred.summary_frame(alpha=1 - level).iloc[rest]
            fv = pred_va.summary_frame(alpha=1 - level).iloc[rest]
            y_, f_ = yte[rest], fte[rest]
            rows.append({
                "seed": seed, "level": level, "tau_residual": pred.tau, "tau_validation": tau_va,
                # noise sd 1 on the raw scale: precision y.std()^2 on the standardized one
                "tau_true": make_friedman1(n_samples=300, noise=1.0,
                                           random_state=100 + seed)[1].std() ** 2,
                "mse_vs_true_f": np.mean((pred.mean[rest] - fte[rest]) ** 2),
                "obs_coverage": np.mean((y_ >= fr.obs_ci_lower) & (y_ <= fr.obs_ci_upper)),
                "obs_coverage_tau_validation": np.mean((y_ >= fv.obs_ci_lower)
                                                       & (y_ <= fv.obs_ci_upper)),
                "mean_coverage_of_f": np.mean((f_ >= fr.mean_ci_lower)
                                              & (f_ <= fr.mean_ci_upper)),
            })
    return pd.DataFrame(rows)


def toy_band(out, max_iter):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-3, -0.5, 60), rng.uniform(1, 3, 60)])
    y = np.sin(1.5 * x) + 0.2 * rng.normal(size=x.size)
    est = NeuralRegressor((64, 64), dropout=0.1, learning_rate_init=3e-3, max_iter=max_iter,
                          random_state=0).fit(x[:, None], y)
    grid = np.linspace(-4.5, 4.5, 300)
    fr = mc_dropout_predict(est, grid[:, None], n_samples=200, random_state=0).summary_frame()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.fill_between(grid, fr.obs_ci_lower, fr.obs_ci_upper, color="C0", alpha=0.2,
                    label="95% predictive (1/tau + model variance)")
    ax.fill_between(grid, fr.mean_ci_lower, fr.mean_ci_upper, color="C0", alpha=0.4,
                    label="95% for the mean (model variance)")
    ax.plot(grid, fr["mean"], "C0", label="MC-dropout mean")
    ax.plot(grid, est.predict(grid[:, None]), "C1--", label="weight scaling (predict)")
    ax.plot(grid, np.sin(1.5 * grid), "k:", label="truth")
    ax.plot(x, y, "k.", ms=3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("MC dropout: wider where there are no data", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "mc_dropout_band.png", dpi=120)
    plt.close(fig)
    # the band's claim: the model-variance band is wider away from the data
    width = (fr.mean_ci_upper - fr.mean_ci_lower).to_numpy()
    inside = ((grid > -3) & (grid < -0.5)) | ((grid > 1) & (grid < 3))
    outside = np.abs(grid) > 3.5
    return float(width[outside].mean() / width[inside].mean())


def claim_metrics(ar, mask_var, bag, preds, cov, cov_summary, band_ratio):
    """The numbers behind the report's claims, for metrics.json (asserted by the tests)."""
    mse = bag.set_index("model")
    ws = np.array(preds["dropout net (weight scaling)"])
    mc = np.array(preds["dropout net (MC average)"])
    c95 = cov_summary.loc[0.95]
    return {
        "adaptive_ridge_max_rel_error": float(ar["max_abs_diff_over_max_w*"].max()),
        "adaptive_ridge_min_distance_ols": float(ar["distance_ols_to_w*"].min()),
        "mask_variance_max_abs_rel_diff": float(mask_var.rel_diff.abs().max()),
        "test_mse": {m: float(v) for m, v in mse.test_mse_mean.items()},
        "variance_across_seeds": {m: float(v) for m, v in mse.variance_across_seeds.items()},
        "dropout_over_bagged_test_mse": float(mse.test_mse_mean["dropout net (MC average)"]
                                              / mse.test_mse_mean["bagged nets"]),
        "bagged_over_single_test_mse": float(mse.test_mse_mean["bagged nets"]
                                             / mse.test_mse_mean["single net"]),
        # weight scaling approximates the average over masks: rms gap over the spread of f
        "mc_vs_weight_scaling_rms_over_sd": float(np.sqrt(np.mean((ws - mc) ** 2)) / ws.std()),
        "coverage_95": {k: float(c95[k]) for k in c95.index},
        "coverage_by_level": {f"{lvl:g}": {k: float(v) for k, v in row.items()}
                              for lvl, row in cov_summary.iterrows()},
        "tau_true": float(cov.tau_true.mean()), "tau_residual": float(cov.tau_residual.mean()),
        "tau_validation": float(cov.tau_validation.mean()),
        "band_width_far_over_near_data": band_ratio,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few seeds and epochs (< 40 s)")
    ap.add_argument("--out", default=None, help="output folder")
    args = ap.parse_args(argv)
    out = Path(args.out or "vignette_output/03_dropout_is_bagging")
    out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    q = args.quick

    # the exact call of the issue (max_iter=2000: about 3 CPU seconds per fit)
    ar, ar_coefs, mask_var = adaptive_ridge_table((0.2, 0.5) if q else (0.1, 0.2, 0.3, 0.5),
                                                  max_iter=2000)
    ar.to_csv(out / "adaptive_ridge.csv", index=False)
    ar_coefs.to_csv(out / "adaptive_ridge_coefficients.csv", index=False)
    mask_var.to_csv(out / "mask_variance.csv", index=False)
    fig, axes = plt.subplots(1, len(ar), figsize=(4.2 * len(ar), 4))
    for ax, (p, g) in zip(np.atleast_1d(axes), ar_coefs.groupby("p"), strict=False):
        lim = np.abs(g[["adaptive_ridge", "ols"]].to_numpy()).max() * 1.1
        ax.plot([-lim, lim], [-lim, lim], color="0.7", lw=1)
        ax.plot(g.adaptive_ridge, g.dropout_net, "o", label="input-dropout net")
        ax.plot(g.adaptive_ridge, g.ols, "x", color="0.4", label="OLS")
        ax.set_xlabel("w* (adaptive ridge, closed form)")
        ax.set_ylabel("coefficient")
        ax.set_title(f"p = {p}", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "adaptive_ridge.png", dpi=120)
    plt.close(fig)

    p_drop, width = 0.2, 64
    bag, preds, (Xte, yte, fte) = bagging_table(
        n_seeds=2 if q else 5, n_bags=3 if q else 10, max_iter=60 if q else 300,
        width=16 if q else width, p_drop=p_drop)
    bag.to_csv(out / "bagging_vs_dropout.csv", index=False)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    order = np.argsort(fte)[::10]
    for name, P in preds.items():
        axes[0].plot(fte[order], np.array(P)[0][order], ".", ms=3, label=name)
    axes[0].plot(fte[order], fte[order], "k-", lw=1)
    axes[0].set_xlabel("true f(x) (test)")
    axes[0].set_ylabel("prediction (seed 0)")
    axes[0].legend(fontsize=7)
    x = np.arange(len(bag))
    axes[1].bar(x - 0.2, bag.test_mse_mean, 0.4, yerr=bag.test_mse_sd, label="test MSE")
    axes[1].bar(x + 0.2, bag.variance_across_seeds, 0.4, label="variance across seeds")
    axes[1].set_xticks(x, [m.replace(" (", "\n(") for m in bag.model], fontsize=7)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "bagging_vs_dropout.png", dpi=120)
    plt.close(fig)

    cov = coverage_table(n_seeds=1 if q else 3, max_iter=60 if q else 300,
                         width=16 if q else width, p_drop=p_drop)
    cov.to_csv(out / "mc_dropout_coverage.csv", index=False)
    cov_summary = cov.groupby("level")[["obs_coverage", "obs_coverage_tau_validation",
                                        "mean_coverage_of_f"]].mean()
    band_ratio = toy_band(out, max_iter=100 if q else 1000)

    report = [
        "# Dropout is adaptive ridge, a kind of bagging, and approximate Bayes",
        "",
        "## Input dropout is adaptive ridge",
        "",
        "`NeuralRegressor(hidden_layer_sizes=(), input_dropout=p, max_iter=2000, "
        "random_state=0).fit(Xs, y)` on the standardized diabetes data against "
        "`w* = (X'X + p/(1-p) diag(X'X))^-1 X'y`; the error is the largest absolute "
        "difference over the largest |w*| (tolerance 2%). Default Adam; under dropout the "
        "solver returns the polynomial-decay average of its iterates (neurostat.training).",
        "",
        ar.to_markdown(index=False, floatfmt=".4g"),
        "",
        "![adaptive ridge](adaptive_ridge.png)",
        "",
        "Variance over 20,000 dropout masks of the prediction of the fitted linear model "
        "against `p/(1-p) sum_j x_j^2 w_j^2`:",
        "",
        mask_var.to_markdown(index=False, floatfmt=".4g"),
        "",
        "## Dropout and bagging",
        "",
        f"Friedman #1 (n=300, noise sd 1, standardized), one hidden layer of "
        f"{16 if q else width} relu units, Adam; dropout rate {p_drop} on the hidden layer; "
        f"{3 if q else 10} bagged nets (bootstrap samples); {2 if q else 5} training seeds "
        "(network initialization, minibatches, masks, bootstrap samples) on the same data. "
        "`mse_vs_true_f` is the error against the noise-free function; "
        "`variance_across_seeds` the variance of a test prediction across seeds, averaged "
        "over the 2,000 test points.",
        "",
        bag.to_markdown(index=False, floatfmt=".4g"),
        "",
        "![bagging vs dropout](bagging_vs_dropout.png)",
        "",
        "## MC-dropout intervals (Gal & Ghahramani 2016)",
        "",
        "Predictive mean `(1/T) sum_t yhat_t`, variance `1/tau + (1/T) sum_t yhat_t^2 - mean^2`, "
        "tau from the training residuals of the MC mean (`tau=\"residual\"`) or from 200 "
        "held-out points; coverage of 1,800 further held-out Friedman #1 responses (`obs`) "
        "and of the true function by the model-variance interval (`mean`), averaged over "
        f"{1 if q else 3} seed(s).",
        "",
        cov_summary.reset_index().to_markdown(index=False, floatfmt=".3f"),
        "",
        f"The true noise precision is {cov.tau_true.mean():.3g}; tau = "
        f"{cov.tau_residual.mean():.3g} from training residuals, "
        f"{cov.tau_validation.mean():.3g} from held-out points (which also absorb the net's "
        f"error against f, mean square {cov.mse_vs_true_f.mean():.3g} against a noise "
        f"variance {1 / cov.tau_true.mean():.3g}). 95% coverage: "
        f"{cov_summary.loc[0.95, 'obs_coverage']:.3f} with the training tau, "
        f"{cov_summary.loc[0.95, 'obs_coverage_tau_validation']:.3f} with the held-out tau. "
        "The MC-dropout model variance does not cover the net's bias, so intervals "
        "under-cover where that bias is not small against the noise, and the model-variance "
        "interval is no confidence interval for f (it is the spread of an approximate "
        "posterior, not a sampling variance).",
        "",
        "![MC dropout band](mc_dropout_band.png)",
    ]
    (out / "report.md").write_text("\n".join(report) + "\n")
    (out / "metrics.json").write_text(json.dumps(claim_metrics(
        ar, mask_var, bag, preds, cov, cov_summary, band_ratio), indent=1) + "\n")
    print("\n".join(report))


if __name__ == "__main__":
    main()
