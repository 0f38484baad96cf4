"""Hypothesis tests: per-input joint Wald tests and likelihood-ratio tests of nested nets."""

import numpy as np
import pandas as pd
from scipy import stats as sps

from .core import term_names


def _input_weight_index(res):
    """For each input, the indices in theta of the weights leaving it (first layer)."""
    lik = res.likelihood
    sl = lik.slices()
    name = "layers.0.weight"
    if name not in sl:
        raise NotImplementedError(
            "wald_test_terms needs a first fully connected layer with estimated weights "
            "(module.layers[0]); this network's first layer is frozen or of another kind."
        )
    start = sl[name].start
    n_out, d = dict(zip(lik.names, lik.shapes))[name]
    return [start + np.arange(n_out) * d + m for m in range(d)]


def wald_test_terms(res):
    """Joint Wald chi-square test, for each input, that all weights leaving it are zero.

    ``W = w' cov(w)^+ w`` on ``df`` = the rank of ``cov(w)`` (the number of hidden units of the
    first layer, or of non-reference classes for a GLM), as the R package interpretnn's
    ``wald_test``. For a GLM with one linear predictor it equals the squared z statistic.

    Returns
    -------
    DataFrame
        Indexed by input name with statsmodels' columns ``chi2``, ``P>chi2``,
        ``df constraint``.
    """
    theta, cov = res.theta, res.cov_theta
    rows = []
    for idx in _input_weight_index(res):
        w = theta[idx]
        ok = ~np.isnan(np.diag(cov)[idx])  # weights an L1 penalty fixed at zero are not tested
        w, c = w[ok], cov[np.ix_(idx[ok], idx[ok])]
        if w.size == 0:
            rows.append((np.nan, np.nan, 0))
            continue
        evals, evecs = np.linalg.eigh(0.5 * (c + c.T))
        keep = evals > 1e-10 * max(evals.max(), np.finfo(float).tiny)
        z = evecs[:, keep].T @ w
        stat = float(np.sum(z * z / evals[keep]))
        df = int(keep.sum())
        rows.append((stat, float(sps.chi2.sf(stat, df)) if df else np.nan, df))
    names = term_names(res.model, res.likelihood.X.shape[1])[1:]
    return pd.DataFrame(rows, index=pd.Index(names, name="term"),
                        columns=["chi2", "P>chi2", "df constraint"])
