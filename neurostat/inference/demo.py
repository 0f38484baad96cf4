"""A short text for the end of ``make demo``: logistic regression is a net without hidden layer.

    >>> from neurostat.inference.demo import demo_summary
    >>> print(demo_summary())  # doctest: +SKIP
"""

import warnings

import numpy as np
import pandas as pd


def spector_fits():
    """statsmodels' Logit and neurostat's no-hidden-layer net on the Spector data."""
    import statsmodels.api as sm

    from neurostat import NeuralClassifier

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
    from neurostat import NeuralClassifier

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


if __name__ == "__main__":
    print(demo_summary())
