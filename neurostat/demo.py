"""The main demonstration (``make demo``): a neurostat net beside scikit-learn's models.

Breast-cancer data (ships with scikit-learn), 5-fold cross-validation of three pipelines
(standardize -> model): neurostat's ``NeuralClassifier``, scikit-learn's ``MLPClassifier`` with
the same architecture and epochs, and ``LogisticRegression``. Prints accuracy, log-loss and fit
time, saves a loss-curve plot, then reads the no-hidden-layer net like statsmodels would and
ends with the summary of vignette 1 (logistic regression is a net: :func:`demo_summary`,
which vignette 1 also prints).

    python -m neurostat.demo [--out demo_output]
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neurostat import NeuralClassifier

ARCH = dict(hidden_layer_sizes=(32,), learning_rate_init=1e-3, max_iter=100, batch_size=32)


def models():
    """The three models the demo cross-validates, by display name.

    Returns
    -------
    dict of str to estimator
        neurostat's ``NeuralClassifier`` and scikit-learn's ``MLPClassifier`` with the same
        architecture and training settings (one hidden layer of 32 relu units, Adam at
        learning rate 1e-3, 100 epochs of minibatches of 32, no penalty), and scikit-learn's
        ``LogisticRegression`` (its default ridge penalty, ``C=1``).
    """
    return {
        "neurostat NeuralClassifier (32 relu)": NeuralClassifier(**ARCH, random_state=0),
        "sklearn MLPClassifier (32 relu)": MLPClassifier(**ARCH, alpha=0.0, random_state=0),
        "sklearn LogisticRegression": LogisticRegression(max_iter=1000),
    }


def compare(X, y):
    """Stratified 5-fold cross-validation of each of :func:`models` after standardization.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Binary class labels.

    Returns
    -------
    DataFrame
        One row per model: the mean held-out ``accuracy`` and its standard deviation over
        the folds (``accuracy_sd``), the mean held-out ``log_loss`` and the mean
        ``fit_seconds`` per fold.
    """
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    rows = []
    for name, model in models().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            res = cross_validate(make_pipeline(StandardScaler(), model), X, y, cv=cv,
                                 scoring=("accuracy", "neg_log_loss"))
        rows.append({"model": name, "accuracy": res["test_accuracy"].mean(),
                     "accuracy_sd": res["test_accuracy"].std(),
                     "log_loss": -res["test_neg_log_loss"].mean(),
                     "fit_seconds": res["fit_time"].mean()})
    return pd.DataFrame(rows)


def loss_curve_plot(X, y, path):
    """Save the training loss curves of neurostat's and scikit-learn's nets, and neurostat's
    validation accuracy, as a PNG.

    Both nets are fitted to the standardized ``X`` with the demo's architecture; neurostat's
    with ``early_stopping=True`` (10% held out, patience 100 epochs) so that it records a
    validation accuracy per epoch.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    path : str or Path
        Where the figure is written.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Xs = StandardScaler().fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = NeuralClassifier(**ARCH, early_stopping=True, n_iter_no_change=100,
                                random_state=0).fit(Xs, y)
        theirs = MLPClassifier(**ARCH, alpha=0.0, random_state=0).fit(Xs, y)
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].plot(np.arange(1, len(ours.loss_curve_) + 1), ours.loss_curve_, label="neurostat")
    ax[0].plot(np.arange(1, len(theirs.loss_curve_) + 1), theirs.loss_curve_,
               label="scikit-learn MLP", ls="--")
    ax[0].set(xlabel="epoch", ylabel="training loss (mean NLL)", yscale="log",
              title="Training loss")
    ax[0].legend()
    ax[1].plot(np.arange(1, len(ours.validation_scores_) + 1), ours.validation_scores_)
    ax[1].set(xlabel="epoch", ylabel="accuracy", title="neurostat validation accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def glm_summary(X, y, names):
    """The no-hidden-layer net is logistic regression: read it like statsmodels."""
    Xs = pd.DataFrame(StandardScaler().fit_transform(X), columns=names).iloc[:, :4]
    est = NeuralClassifier(hidden_layer_sizes=(), solver="lbfgs").fit(Xs, y)
    return str(est.summary())


def spector_fits():
    """statsmodels' Logit and neurostat's no-hidden-layer net on the Spector data."""
    import statsmodels.api as sm

    data = sm.datasets.spector.load_pandas()
    X, y = data.exog, data.endog.values
    sm_res = sm.Logit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12)
    res = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
    return X, y, sm_res, res


def side_by_side(sm_res, res):
    """One row per term: coefficient, std err and p-value from both packages."""
    return pd.DataFrame({
        "statsmodels coef": np.asarray(sm_res.params), "neurostat coef": res.params.values,
        "statsmodels std err": np.asarray(sm_res.bse), "neurostat std err": res.bse.values,
        "statsmodels P>|z|": np.asarray(sm_res.pvalues), "neurostat P>|z|": res.pvalues.values,
    }, index=res.params.index)


def demo_summary():
    """A few lines: the Spector logit from statsmodels and from a net, and what 2 hidden units
    add (AIC/BIC with effective df, chi-square LR test with its caveat). Runs in seconds."""
    X, y, sm_res, res = spector_fits()
    table = side_by_side(sm_res, res)
    dp = np.max(np.abs(table["neurostat coef"] - table["statsmodels coef"]) /
                np.abs(table["statsmodels coef"]))
    ds = np.max(np.abs(table["neurostat std err"] - table["statsmodels std err"]) /
                table["statsmodels std err"])
    Xs = (X - X.mean()) / X.std()  # standardized inputs: effects per standard deviation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = NeuralClassifier((2,), activation="tanh", solver="lbfgs", alpha=0.01,
                               random_state=0).fit(Xs, y).inference()
        lr = net.compare_lr_test(res)
    lines = [
        "Logistic regression is a net without hidden layer (Spector data, n=32):",
        table.round(4).to_string(),
        f"largest relative difference to statsmodels Logit: coef {dp:.1e}, std err {ds:.1e}; "
        f"llf {res.llf:.4f} vs {sm_res.llf:.4f}",
        "with 2 tanh hidden units (standardized inputs, ridge alpha=0.01): effective df "
        f"{net.edf:.2f}, AIC "
        f"{net.aic:.2f} vs {res.aic:.2f}, BIC {net.bic:.2f} vs {res.bic:.2f}; LR {lr.statistic:.2f}"
        f" (chi-square p={lr.pvalue:.3f}, not valid here: use method='bootstrap')",
    ]
    return "\n".join(lines)


def main(argv=None):
    """Run the demo: print the cross-validation table, write it and the loss-curve plot to
    ``--out``, then print the no-hidden-layer net's summary and :func:`demo_summary`.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``); ``--out DIR`` (default
        ``demo_output``) receives ``demo_comparison.csv`` and ``loss_curve.png``.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="demo_output")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_breast_cancer()
    X, y = data.data, data.target
    print(f"Breast cancer data: n={X.shape[0]}, p={X.shape[1]}; 5-fold cross-validation\n")
    t = time.perf_counter()
    table = compare(X, y)
    with pd.option_context("display.width", 120, "display.precision", 4):
        print(table.to_string(index=False))
    table.to_csv(out / "demo_comparison.csv", index=False)
    loss_curve_plot(X, y, out / "loss_curve.png")
    print(f"\nLoss curves saved to {out / 'loss_curve.png'} "
          f"({time.perf_counter() - t:.1f} s so far)\n")
    print("A net with no hidden layer is logistic regression; read it like statsmodels:\n")
    print(glm_summary(X, y, data.feature_names))
    print("\nVignette 1 in brief (statsmodels' Spector data):\n")
    print(demo_summary())


if __name__ == "__main__":
    main()
