"""Vignette 2: weight decay is ridge, L1 is the lasso - exactly.

A net without hidden layer fitted by ``solver="lbfgs"`` minimises
``sum_i w_i nll_i / sum_i w_i + alpha (l1_ratio ||b||_1 + 0.5 (1 - l1_ratio) ||b||^2)``, which is
scikit-learn's ``Lasso(alpha)`` (``l1_ratio=1``), ``Ridge(alpha * n)`` (``l1_ratio=0``),
``ElasticNet(alpha, l1_ratio)`` and, for the bernoulli likelihood,
``LogisticRegression(C=1 / (alpha * n))``. This script

* puts the coefficients side by side with scikit-learn's over a grid of penalties and reports
  the largest relative deviation and whether the zeros agree;
* draws lasso, ridge and elastic-net paths (glmnet style) and the path of a net with a hidden
  layer (covariate effects and the norm of the weights leaving each input);
* compares the effective degrees of freedom of ridge fits with the trace of the hat matrix.

    python vignettes/02_weight_decay_is_ridge.py [--quick] [--out DIR]
"""

import argparse
import json
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import ElasticNet, LogisticRegression, Ridge  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from neurostat import NeuralClassifier, NeuralRegressor, PathDisplay, regularization_path  # noqa: E402

torch.set_num_threads(1)


def side_by_side(quick):
    """One row per (model, alpha, term): neurostat's and scikit-learn's coefficient."""
    X, y = load_diabetes(return_X_y=True)
    names = load_diabetes().feature_names
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xb = StandardScaler().fit_transform(Xb)
    n, nb = len(y), len(yb)
    alphas = [0.01, 0.3] if quick else [0.003, 0.03, 0.3, 3.0]
    rows = []

    def add(model, alpha, ours, ref, terms):
        for t, a, b in zip(terms, np.ravel(ours.coef_), np.ravel(ref.coef_), strict=False):
            rows.append({"model": model, "alpha": alpha, "term": t, "neurostat": a,
                         "sklearn": b})

    for a in alphas:
        for r, model in ((1.0, "lasso"), (0.0, "ridge"), (0.5, "elastic net (0.5)")):
            ours = NeuralRegressor((), solver="lbfgs", alpha=a, l1_ratio=r).fit(X, y)
            if r == 0.0:
                ref = Ridge(alpha=a * n, solver="cholesky").fit(X, y)
            else:
                ref = ElasticNet(alpha=a, l1_ratio=r, tol=1e-14, max_iter=1_000_000).fit(X, y)
            add(model, a, ours, ref, names)
        ab = a / 10  # logistic on 30 standardized inputs: a weaker penalty is more telling
        ours = NeuralClassifier((), solver="lbfgs", alpha=ab).fit(Xb, yb)
        ref = LogisticRegression(C=1 / (ab * nb), tol=1e-12, max_iter=100_000).fit(Xb, yb)
        add("logistic ridge", ab, ours, ref, [f"x{j}" for j in range(Xb.shape[1])])
    coefs = pd.DataFrame(rows)
    dev = (coefs.groupby(["model", "alpha"], sort=False)
           .apply(lambda g: pd.Series({
               "max_rel_dev": np.abs(g.neurostat - g.sklearn).max()
               / max(np.abs(g.sklearn).max(), 1e-12),
               "zeros_neurostat": int((g.neurostat == 0).sum()),
               "zeros_sklearn": int((g.sklearn == 0).sum()),
               "same_zeros": bool(np.array_equal(g.neurostat == 0, g.sklearn == 0))}),
               include_groups=False)
           .reset_index())
    return coefs, dev


def ridge_df(quick):
    X, y = load_diabetes(return_X_y=True)
    n = len(y)
    Xc = X - X.mean(0)
    G = Xc.T @ Xc
    rows = []
    for a in np.geomspace(1e-4, 10, 6 if quick else 15):
        res = NeuralRegressor((), solver="lbfgs", alpha=a).fit(X, y).inference()
        closed = np.trace(G @ np.linalg.inv(G + n * a * np.eye(X.shape[1])))
        rows.append({"alpha": a, "df_neurostat": res.df_model, "df_hat_trace": closed,
                     "abs_diff": abs(res.df_model - closed)})
    return pd.DataFrame(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small grids (< 40 s)")
    ap.add_argument("--out", default=None, help="output folder")
    args = ap.parse_args(argv)
    out = Path(args.out or "vignette_output/02_weight_decay_is_ridge")
    out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    warnings.filterwarnings("ignore", message=".*did not converge.*")

    coefs, dev = side_by_side(args.quick)
    coefs.to_csv(out / "coefficients.csv", index=False)
    dev.to_csv(out / "deviations.csv", index=False)

    X, y = load_diabetes(return_X_y=True)
    names = load_diabetes().feature_names
    Xs = pd.DataFrame(StandardScaler().fit_transform(X), columns=names)
    n_alpha = 12 if args.quick else 40
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    paths = {}
    for ax, (r, title) in zip(axes, ((1.0, "lasso"), (0.5, "elastic net, l1_ratio=0.5"),
                                     (0.0, "ridge")), strict=False):
        est = NeuralRegressor((), solver="lbfgs", l1_ratio=r)
        # glmnet's default grid for ridge starts where every coefficient is ~0; span the
        # interesting range explicitly instead
        grid = np.geomspace(10.0, 1e-4, n_alpha) if r == 0.0 else n_alpha
        path = regularization_path(est, Xs, y, grid)
        paths[title] = path
        PathDisplay.from_path(path, ax=ax, estimator_name=title)
    fig.tight_layout()
    fig.savefig(out / "glm_paths.png", dpi=120)
    plt.close(fig)
    pd.concat(paths, names=["model"]).reset_index(level=0).to_csv(out / "glm_paths.csv",
                                                                    index=False)

    # a net with one hidden layer: effects and the norm of the weights leaving each input
    ys = (y - y.mean()) / y.std()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    tr, va = idx[:300], idx[300:]
    net = NeuralRegressor((8,) if not args.quick else (4,), activation="tanh", solver="lbfgs",
                          max_iter=300 if not args.quick else 100, random_state=0)
    net_alphas = np.geomspace(1.0, 1e-3, 10 if not args.quick else 4)
    net_path = regularization_path(net, Xs.iloc[tr], ys[tr], net_alphas,
                                   validation_data=(Xs.iloc[va], ys[va]))
    net_path.to_csv(out / "net_path.csv", index=False)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    PathDisplay.from_path(net_path, ax=axes[0], estimator_name="net (tanh): covariate effects")
    PathDisplay.from_path(net_path, value="weight_norm", ax=axes[1],
                          estimator_name="net: norm of the weights leaving each input")
    by = net_path.groupby("alpha", sort=False)
    axes[2].plot(np.log(net_alphas), by["train_score"].first(), "o-", label="training R^2")
    axes[2].plot(np.log(net_alphas), by["validation_score"].first(), "s-",
                 label="validation R^2")
    axes[2].set_xlabel("log(alpha)")
    axes[2].legend()
    axes[2].set_title("net: fit along the path", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "net_path.png", dpi=120)
    plt.close(fig)

    df = ridge_df(args.quick)
    df.to_csv(out / "ridge_df.csv", index=False)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(np.log(df.alpha), df.df_hat_trace, "k-", lw=3, alpha=0.3, label="tr(hat matrix)")
    ax.plot(np.log(df.alpha), df.df_neurostat, "o", label="neurostat df_model")
    ax.set_xlabel("log(alpha)")
    ax.set_ylabel("effective degrees of freedom")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "ridge_df.png", dpi=120)
    plt.close(fig)

    lasso = paths["lasso"]
    lasso_df = lasso.groupby("alpha", sort=False).agg(df=("df", "first"),
                                                     nonzero=("coef", lambda s: (s != 0).sum()))
    net_summary = by[["df", "train_score", "validation_score"]].first().reset_index()
    report = [
        "# Weight decay is ridge, L1 is the lasso",
        "",
        "A `NeuralRegressor((), solver='lbfgs', alpha=a, l1_ratio=r)` against scikit-learn on "
        "the diabetes data (raw inputs), and `NeuralClassifier((), solver='lbfgs', alpha=a)` "
        "against `LogisticRegression(C=1/(a n))` on the standardized breast-cancer data.",
        "",
        "## Largest relative coefficient deviation from scikit-learn",
        "",
        dev.to_markdown(index=False, floatfmt=".2e"),
        "",
        f"Worst deviation over all fits: **{dev.max_rel_dev.max():.2e}** (tolerance 1e-4); "
        f"zeros identical in {int(dev.same_zeros.sum())}/{len(dev)} fits.",
        "",
        "## Paths (standardized inputs, glmnet's grid)",
        "",
        "![GLM paths](glm_paths.png)",
        "",
        "Lasso effective df along the path equals the number of nonzero coefficients "
        f"(max difference {np.abs(lasso_df.df - lasso_df.nonzero).max():.1e}).",
        "",
        "## A net with a hidden layer",
        "",
        "Covariate effects (average derivative of the fitted function per input) and the norm "
        "of the first-layer weights leaving each input, with the effective df "
        "`trace(I A^-1)` on the top axis.",
        "",
        "![net path](net_path.png)",
        "",
        net_summary.to_markdown(index=False, floatfmt=".3g"),
        "",
        "## Effective degrees of freedom of ridge",
        "",
        f"`df_model` against the trace of the hat matrix: max abs difference "
        f"**{df.abs_diff.max():.1e}**.",
        "",
        "![ridge df](ridge_df.png)",
        "",
        "Standard errors of a lasso fit (`inference()`) are those of the unpenalized fit on "
        "the selected inputs; they ignore the selection and the shrinkage bias, so they are "
        "not valid post-selection standard errors, and zero coefficients get none.",
    ]
    (out / "report.md").write_text("\n".join(report) + "\n")
    metrics = {  # the numbers behind the report's claims (asserted by the tests)
        "max_rel_dev": {m: float(g.max_rel_dev.max())
                        for m, g in dev.groupby("model", sort=False)},
        "same_zeros_all_fits": bool(dev.same_zeros.all()),
        "zeros_sklearn_total": int(dev.zeros_sklearn.sum()),
        "lasso_df_minus_nonzero_max": float(np.abs(lasso_df.df - lasso_df.nonzero).max()),
        "ridge_df_minus_hat_trace_max": float(df.abs_diff.max()),
        "net_df_by_alpha": {f"{a:g}": float(v) for a, v in
                            zip(net_summary.alpha, net_summary.df, strict=True)},
        "net_df_decreasing_in_alpha": bool(np.all(np.diff(
            net_summary.sort_values("alpha").df.to_numpy()) < 0)),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    print("\n".join(report))


if __name__ == "__main__":
    main()
