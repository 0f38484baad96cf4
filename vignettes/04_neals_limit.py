"""Vignette 4: Neal's limit - wide random networks are Gaussian processes.

A one-hidden-layer net with weights N(0, sigma_w^2 / fan_in) has, at every width, exactly the
covariance of the NNGP kernel; what the width buys is Gaussianity (Neal 1996). With two hidden
layers the covariance itself converges as the width grows (Lee et al. 2018). This script shows:

1. prior function draws of nets of width 1, 3, 10, 100, 1000 beside draws from the GP limit;
2. the excess kurtosis of f(x) against width (with its closed form at depth 1) and the relative
   error of the Monte-Carlo kernel against width (depth 1 and 2, with the Monte-Carlo floor);
3. regression on scikit-learn's diabetes data: GPs with NNGP and NTK kernels, an RBF GP and
   trained nets (neurostat.NeuralRegressor) of growing width: test RMSE and the coverage of
   95% prediction intervals.

    python vignettes/04_neals_limit.py [--quick] [--out DIR]
"""

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from neurostat import NeuralRegressor  # noqa: E402
from neurostat.gp import (  # noqa: E402
    NNGPKernel,
    NNGPRegressor,
    empirical_kernel,
    sample_wide_networks,
)

torch.set_num_threads(1)
W, B = 2.0, 0.5  # sigma_w^2, sigma_b^2 of the prior nets
Z95 = 1.959963984540054


def md_table(df, floatfmt="{:.4g}"):
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, row in df.astype(object).iterrows():  # keeps integer columns integer
        cells = [floatfmt.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def limit_kernel(X, depth):
    k = NNGPKernel(depth=depth, activation="relu").double()
    k.weight_variance, k.bias_variance = W, B
    with torch.no_grad():
        return k(torch.as_tensor(X, dtype=torch.float64)).to_dense()


DRAW_PRIORS = (("erf", 16.0, 16.0), ("relu", 1.0, 4.0))  # (activation, sigma_w^2, sigma_b^2)


def prior_draws(out, widths, n_draws=5):
    """Rows: erf and relu nets; columns: widths, then draws from the NNGP limit."""
    x = np.linspace(-3, 3, 300)[:, None]
    fig, axes = plt.subplots(len(DRAW_PRIORS), len(widths) + 1,
                             figsize=(2.8 * (len(widths) + 1), 5.6),
                             sharey="row", sharex=True)
    for row, (act, w, b) in zip(axes, DRAW_PRIORS):
        for ax, width in zip(row, widths):
            f = sample_wide_networks(x, width, 1, act, w, b, n_networks=n_draws, random_state=width)
            ax.plot(x[:, 0], f.T.numpy(), lw=1.2)
            ax.set_title(f"{act}, width {width}", fontsize=10)
        k = NNGPKernel(depth=1, activation=act).double()
        k.weight_variance, k.bias_variance = w, b
        with torch.no_grad():
            K = k(torch.from_numpy(x)).to_dense().numpy()
        L = np.linalg.cholesky(K + 1e-8 * np.eye(len(x)))
        row[-1].plot(x[:, 0], L @ np.random.default_rng(0).normal(size=(len(x), n_draws)), lw=1.2)
        row[-1].set_title(f"{act}, GP limit", fontsize=10)
        row[0].set_ylabel(f"f(x)  [$\\sigma_w^2$={w:g}, $\\sigma_b^2$={b:g}]")
    for ax in axes[-1]:
        ax.set_xlabel("x")
    fig.suptitle("Prior draws of one-hidden-layer nets of growing width, and of their "
                 "Gaussian-process limit")
    fig.tight_layout()
    fig.savefig(out / "prior_draws.png", dpi=120)
    plt.close(fig)


def _n_nets(n_networks, width, depth, budget=2e9):
    """Depth 2 costs width^2 weights per network: cap the networks at `budget` weights."""
    return n_networks if depth == 1 else int(min(n_networks, max(2000, budget // width**2)))


def kurtosis_vs_width(widths, n_networks, seed=0):
    """Excess kurtosis of f(x) at x = 1.5 (one input), depth 1 and 2, with SEs from 20 batches."""
    x = np.array([[1.5]])
    q = B + W * 1.5**2
    k1 = B + W * q / 2
    rows = []
    for depth in (1, 2):
        for width in widths:
            n = _n_nets(n_networks, width, depth)
            f = sample_wide_networks(x, width, depth, "relu", W, B, n - n % 20,
                                     random_state=seed + width)
            b = f[:, 0].numpy().reshape(20, -1)
            kurt = (b**4).mean(1) / ((b**2).mean(1)) ** 2 - 3
            closed = 15 * W**2 * q**2 / (4 * width * k1**2) if depth == 1 else np.nan
            rows.append({"depth": depth, "width": width, "n_networks": n - n % 20,
                         "excess_kurtosis": float(kurt.mean()),
                         "se": float(kurt.std(ddof=1) / np.sqrt(20)), "closed_form_depth1": closed})
    return pd.DataFrame(rows)


def kernel_error_vs_width(widths, n_networks, seed=0):
    """Relative Frobenius error of the Monte-Carlo kernel; 'mc_floor' is its expected size from
    the Monte-Carlo variance alone (sqrt(sum SE^2) / ||K||)."""
    X = np.random.default_rng(seed).normal(size=(8, 3))
    rows = []
    for depth in (1, 2):
        K = limit_kernel(X, depth)
        for width in widths:
            n = _n_nets(n_networks, width, depth)
            est, sq = empirical_kernel(X, width, depth, "relu", W, B, n_networks=n,
                                       random_state=seed + width)
            floor = torch.sqrt(((sq - est**2) / (n - 1)).sum()) / K.norm()
            rows.append({"depth": depth, "width": width, "n_networks": n,
                         "relative_error": float((est - K).norm() / K.norm()),
                         "mc_floor": float(floor)})
    return pd.DataFrame(rows)


def plot_limits(kurt, kerr, out):
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for depth, style in ((1, "o-"), (2, "s-")):
        d = kurt[kurt.depth == depth]
        a1.errorbar(d.width, d.excess_kurtosis, yerr=2 * d.se, fmt=style,
                    label=f"depth {depth} (MC, ±2 SE)")
    d1 = kurt[kurt.depth == 1]
    a1.plot(d1.width, d1.closed_form_depth1, "k--", label="depth 1 closed form $\\propto$ 1/width")
    a1.set(xscale="log", xlabel="width", ylabel="excess kurtosis of f(x)",
           title="Gaussianity grows with width")
    a1.set_yscale("symlog", linthresh=0.1)
    a1.set_ylim(bottom=-0.05)
    a1.axhline(0, color="grey", lw=0.5)
    a1.legend(fontsize=8)
    for depth, style in ((1, "o-"), (2, "s-")):
        d = kerr[kerr.depth == depth]
        a2.plot(d.width, d.relative_error, style, label=f"depth {depth}")
        a2.plot(d.width, d.mc_floor, style[0] + ":", color=a2.lines[-1].get_color(), alpha=0.6,
                label=f"depth {depth} Monte-Carlo floor")
    a2.set(xscale="log", yscale="log", xlabel="width", ylabel="||K_MC - K|| / ||K||",
           title="Covariance: exact at depth 1, converging at depth 2")
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "limits_vs_width.png", dpi=120)
    plt.close(fig)


def regression(seeds, widths, quick):
    X, y = load_diabetes(return_X_y=True)
    rows = []
    for seed in seeds:
        idx = np.random.default_rng(seed).permutation(len(y))
        tr, te = idx[:300], idx[300:]
        sx, sy = StandardScaler().fit(X[tr]), StandardScaler().fit(y[tr, None])
        Xtr, Xte = sx.transform(X[tr]), sx.transform(X[te])
        ytr, yte = sy.transform(y[tr, None])[:, 0], sy.transform(y[te, None])[:, 0]
        models = {
            "GP NNGP (depth 1)": lambda seed=seed: NNGPRegressor(depth=1, random_state=seed),
            "GP NNGP (depth 3)": lambda seed=seed: NNGPRegressor(depth=3, random_state=seed),
            "GP NTK (depth 1)": lambda seed=seed: NNGPRegressor(depth=1, kernel="ntk",
                                                                 random_state=seed),
            "GP RBF": lambda seed=seed: GaussianProcessRegressor(
                ConstantKernel() * RBF() + WhiteKernel(), normalize_y=True, random_state=seed),
        }
        for name, make in models.items():
            t0 = time.perf_counter()
            m = make().fit(Xtr, ytr)
            mean, std = m.predict(Xte, return_std=True)
            if isinstance(m, NNGPRegressor):  # latent std -> predictive std of a new y
                std = np.sqrt(std**2 + m.noise_ * m.y_std_**2)
            rows.append(_scores(name, seed, mean, std, yte, time.perf_counter() - t0))
        for width in widths:
            t0 = time.perf_counter()
            net = NeuralRegressor(hidden_layer_sizes=(width,), solver="lbfgs", alpha=1e-2,
                                  max_iter=200 if quick else 500, random_state=seed).fit(Xtr, ytr)
            mean = net.predict(Xte)
            # plug-in interval: residual sd of the fit, parameter uncertainty ignored
            std = np.full_like(mean, np.std(ytr - net.predict(Xtr), ddof=1))
            rows.append(_scores(f"trained net, width {width}", seed, mean, std, yte,
                                time.perf_counter() - t0))
    df = pd.DataFrame(rows)
    return df.groupby("model", sort=False).agg(
        test_rmse=("test_rmse", "mean"), rmse_sd=("test_rmse", "std"),
        coverage_95=("coverage_95", "mean"),
        fit_s=("fit_s", "mean"), seeds=("seed", "count")).reset_index(), df


def _scores(name, seed, mean, std, y, seconds):
    return {"model": name, "seed": seed, "test_rmse": float(np.sqrt(np.mean((mean - y) ** 2))),
            "coverage_95": float(np.mean(np.abs(y - mean) <= Z95 * std)), "fit_s": seconds}


def claim_metrics(kurt, kerr, summary):
    """The numbers behind the report's claims, for metrics.json (asserted by the tests)."""
    k1 = kurt[kurt.depth == 1]
    ratio = kerr.relative_error / kerr.mc_floor
    by = summary.set_index("model")
    return {
        "kurtosis_depth1_max_abs_z_vs_closed_form": float(
            ((k1.excess_kurtosis - k1.closed_form_depth1) / k1.se).abs().max()),
        "kurtosis_decreasing_in_width": {
            str(d): bool(np.all(np.diff(g.sort_values("width").excess_kurtosis) < 0))
            for d, g in kurt.groupby("depth")},
        "kernel_error_over_mc_floor_depth1_max": float(ratio[kerr.depth == 1].max()),
        "kernel_error_over_mc_floor_depth2_width1": float(
            ratio[(kerr.depth == 2) & (kerr.width == 1)].iloc[0]),
        "kernel_error_over_mc_floor_depth2_widest": float(
            ratio[kerr.depth == 2].iloc[-1]),
        "test_rmse": {m: float(v) for m, v in by.test_rmse.items()},
        "coverage_95": {m: float(v) for m, v in by.coverage_95.items()},
        "gp_coverage_95_range": [float(by.coverage_95[by.index.str.startswith("GP")].min()),
                                 float(by.coverage_95[by.index.str.startswith("GP")].max())],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="fewer networks, widths and seeds (< 40 s)")
    ap.add_argument("--out", type=Path, default=Path("vignette_output/04_neals_limit"))
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    draw_widths = [1, 3, 10, 100, 1000]
    prior_draws(out, draw_widths)
    widths = [1, 4, 16, 64] if args.quick else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    kurt = kurtosis_vs_width(widths, 20_000 if args.quick else 200_000)
    kerr = kernel_error_vs_width(widths, 2_000 if args.quick else 20_000)
    plot_limits(kurt, kerr, out)
    kurt.to_csv(out / "kurtosis_vs_width.csv", index=False)
    kerr.to_csv(out / "kernel_error_vs_width.csv", index=False)
    seeds = [0] if args.quick else [0, 1, 2, 3, 4]
    net_widths = [10, 100] if args.quick else [10, 100, 1000]
    summary, per_seed = regression(seeds, net_widths, args.quick)
    summary.to_csv(out / "diabetes_regression.csv", index=False)
    per_seed.to_csv(out / "diabetes_regression_per_seed.csv", index=False)

    run = "Quick run (fewer networks, widths, seeds)." if args.quick else "Full run."
    report = f"""# Neal's limit: wide random networks are Gaussian processes

Prior: weights N(0, sigma_w^2 / fan_in), biases N(0, sigma_b^2); `NNGPKernel` is the
infinite-width covariance of the output. {run}

![prior draws](prior_draws.png)

Each panel shows independent nets of one width. At width 1 a draw is one erf step or one relu
hinge; by width 100 the draws look like the GP draws on the right.

The rest uses relu nets with sigma_w^2 = {W}, sigma_b^2 = {B}.

## What converges, and what does not need to

![limits](limits_vs_width.png)

Depth 1: the covariance of f equals the NNGP kernel at every width (the Monte-Carlo kernel error
sits on its Monte-Carlo floor from width 1 on); what grows with width is Gaussianity: the excess
kurtosis falls like 1/width, on its closed form 15 w^2 q^2 / (4 width K^2).
Depth 2: the covariance itself carries a finite-width bias that shrinks with width until it
drops below the Monte-Carlo floor.

Excess kurtosis of f(1.5):

{md_table(kurt)}

Relative kernel error on 8 random points in 3 dimensions:

{md_table(kerr)}

## Regression: diabetes (300 train / 142 test, standardized), {len(seeds)} split(s)

GPs: hyperparameters by marginal likelihood; 95% intervals for a new y (latent variance + noise).
Trained nets: `NeuralRegressor(hidden_layer_sizes=(width,), solver="lbfgs", alpha=1e-2)`; their
interval is a plug-in mean +- 1.96 residual sd (no parameter uncertainty).

{md_table(summary)}

Total run time: {time.perf_counter() - t0:.1f} s.
"""
    (out / "report.md").write_text(report)
    (out / "metrics.json").write_text(json.dumps(claim_metrics(kurt, kerr, summary), indent=1)
                                      + "\n")
    print(report)


if __name__ == "__main__":
    main()
