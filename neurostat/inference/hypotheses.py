"""Hypothesis tests: per-input joint Wald tests and likelihood-ratio tests of nested nets."""

import numpy as np
import pandas as pd
import torch
from scipy import stats as sps

from .bootstrap import refit, run_parallel, simulate
from .statistics import llf_at, pearson_chi2


def _input_weight_index(res):
    """For each term, the indices in theta of the weights leaving its inputs (first layer)."""
    layout = res.model.layout
    idx = layout.input_weights
    if idx is None:
        raise ValueError(
            "wald_test_terms needs a first fully connected layer with estimated weights; this "
            "network's first layer is frozen or of another kind (e.g. a convolution). Test an "
            "input with compare_lr_test against the model without it."
        )
    return [np.concatenate([idx[j] for j in cols]) for _, cols in layout.term_groups]


def wald_test_terms(res):
    """A test per term (input, or group of a formula's columns) that the model does not depend
    on it.

    For a network without hidden layer, and for a net with ``effects="delta"``: the joint Wald
    test below. For a net with cross-fitted effects (the default): the one-sided cross-fitted
    directional test of :mod:`neurostat.inference.debiased` (``chi2 = max(z, 0)^2``,
    ``P>chi2 = Phi(-z)``), whose size is calibrated.

    The joint Wald chi-square test, for each input, that all weights leaving it are zero:

    ``W = w' cov(w)^+ w`` on ``df`` = the rank of ``cov(w)`` (the number of hidden units of the
    first layer, or of non-reference classes for a GLM), as the R package interpretnn's
    ``wald_test``. For a GLM with one linear predictor it equals the squared z statistic.

    Returns
    -------
    DataFrame
        Indexed by input name with statsmodels' columns ``chi2``, ``P>chi2``,
        ``df constraint``.

    Notes
    -----
    The chi-square reference assumes the weights are identified. With more hidden units than
    the data support, redundant units leave near-flat directions whose sandwich variances are
    unreliable, and the test is anti-conservative. Measured (``benchmarks/wald_calibration.py``,
    a null input, n=300, 100 replications, 5% level): 7% with 1 tanh unit, 20% with 2 and
    25% with 4 at ``alpha=1e-2``, 36% with 4 unpenalized, 83% at ``alpha=1e-3``. The z test
    of the input's average-derivative effect (``res.pvalues``) held 5% with 2-4 units at
    ``alpha=1e-2`` but not unpenalized (15%). For a hidden-layer net, prefer the effect test
    with a penalty, or ``compare_lr_test(..., method="bootstrap")`` against the net without
    the input.
    """
    if res.statistics.effects is not None:
        return res.statistics.effects.tests.copy()
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
    names = [name for name, _ in res.model.layout.term_groups]
    return pd.DataFrame(rows, index=pd.Index(names, name="term"),
                        columns=["chi2", "P>chi2", "df constraint"])


class LRTestResults:
    """Result of :func:`compare_lr_test`: ``statistic``, ``df``, ``pvalue``, ``method``
    (and ``null_distribution`` for the bootstrap)."""

    def __init__(self, statistic, df, pvalue, method, null_distribution=None):
        self.statistic, self.df, self.pvalue, self.method = statistic, df, pvalue, method
        self.null_distribution = null_distribution

    def __iter__(self):  # statsmodels' compare_lr_test returns (lr, pvalue, df)
        return iter((self.statistic, self.pvalue, self.df))

    def __repr__(self):
        return (f"<LRTestResults {self.method}: LR={self.statistic:.4g}, df={self.df:.4g}, "
                f"p={self.pvalue:.4g}>")


def _loglik_of(est, X, y, w, offset=None):
    """Log-likelihood of a fitted estimator on (X, y) without any curvature (cheap), at the
    dispersion its reported llf uses."""
    model = est._statistical_model(X, y, w, **({} if offset is None else {"offset": offset}))
    lik, scale = model.likelihood, None
    if lik.family.has_scale:  # a dispersion the llf is evaluated at (gamma's Pearson one)
        scale = pearson_chi2(lik, lik.theta) / max(lik.nobs - lik.n_params, 1.0)
    return llf_at(lik, model.eta(), scale)


def _lr_replicate(full, restricted, Xf, Xr, w, model, eta, scale, seed, offset=None):
    rng = np.random.default_rng(seed)
    y_star = simulate(model, eta, scale, rng)
    r_star = refit(restricted, Xr, y_star, w, offset)
    f_star = refit(full, Xf, y_star, w, offset)
    return 2 * (_loglik_of(f_star, Xf, y_star, w, offset)
                - _loglik_of(r_star, Xr, y_star, w, offset))


def _same_response(a, b):
    """The same encoded response: equal tensors, or for data in chunks (dask) equal arrays,
    compared on the workers (one pass; only a boolean reaches the client)."""
    if hasattr(a, "dask") or hasattr(b, "dask"):
        if not (hasattr(a, "dask") and hasattr(b, "dask")) or a.shape != b.shape:
            return False
        return not bool((a != b).any().compute())
    return torch.equal(a, b)


def compare_lr_test(full, restricted, method="chi2", *, n_bootstrap=99, n_jobs=None,
                    random_state=None):
    """Likelihood-ratio test of a nested ``restricted`` model against ``full``.

    Parameters
    ----------
    full, restricted : InferenceResults
        Fits to the same observations and response; ``restricted`` nested in ``full`` (fewer
        hidden units, dropped inputs, or no hidden layer at all).
    method : {"chi2", "bootstrap"}
        ``"chi2"``: ``LR = 2 (llf_full - llf_restricted)`` against a chi-square on the
        difference of (effective) degrees of freedom. Valid when the restricted model is a
        regular interior point of the full one - nested GLMs, or dropping inputs from a net
        whose hidden units stay identified. It is *not* valid for "does a hidden layer help
        over the GLM?" or "are fewer hidden units enough?": under that null the extra
        hidden-unit weights are not identified (Davies' problem), the LR statistic is not
        chi-square and the chi-square p-value can be far off.
        ``"bootstrap"``: parametric bootstrap - simulate ``n_bootstrap`` responses from the
        restricted fit, refit both models (warm-started, in parallel with joblib), and report
        ``(1 + #{LR* >= LR}) / (n_bootstrap + 1)``. Valid in both situations, assuming each
        refit reaches the optimum its model would (warm starts make that likely).
    n_bootstrap : int, default=99
    n_jobs : int, default=None
        joblib's ``n_jobs``.
    random_state : int, RandomState or None

    Returns
    -------
    LRTestResults
    """
    if method not in ("chi2", "bootstrap"):
        raise ValueError(f"method must be 'chi2' or 'bootstrap'; got {method!r}.")
    if not (hasattr(restricted, "likelihood") and hasattr(restricted, "llf")):
        raise TypeError("restricted must be the InferenceResults of the nested model "
                        "(restricted_est.inference()).")
    lf, lr_ = full.likelihood, restricted.likelihood
    chunked = getattr(lf, "chunked", False) or getattr(lr_, "chunked", False)
    if chunked and method == "bootstrap":
        raise ValueError(
            "method='bootstrap' refits both models on simulated responses in memory, and "
            "these data are held in chunks (dask); use method='chi2' where it applies, or "
            "compute() the data if they fit in memory.")
    if lf.nobs != lr_.nobs or not _same_response(lf.y, lr_.y):
        raise ValueError("The two models must be fitted to the same observations and response.")
    if lf.family != lr_.family:
        raise ValueError("The two models must have the same family.")
    if lr_.n_params >= lf.n_params:
        raise ValueError(
            f"restricted has at least as many parameters ({lr_.n_params}) as the full model "
            f"({lf.n_params}); pass the smaller (nested) model as restricted."
        )
    # (effective) degrees of freedom: a penalized full model can have fewer than its count
    df = full.edf - restricted.edf
    stat = 2 * (full.llf - restricted.llf)
    if method == "chi2":
        if df <= 0:
            import warnings
            warnings.warn(
                f"The models differ by {df:.3g} effective degrees of freedom (penalized full "
                "model); the chi-square reference does not apply. Use method='bootstrap'.",
                UserWarning, stacklevel=3,
            )
            return LRTestResults(stat, df, np.nan, "chi2")
        return LRTestResults(stat, df, float(sps.chi2.sf(stat, df)), "chi2")
    w = None if lf.w is None else lf.w.numpy()
    seeds = np.random.default_rng(random_state).integers(0, 2**31 - 1, size=n_bootstrap)
    args = [(full.estimator, restricted.estimator, lf.X.numpy(), lr_.X.numpy(), w,
             restricted.model, restricted.model.eta(), restricted.scale, s, lr_.offset_input)
            for s in seeds]
    null = np.array(run_parallel(_lr_replicate, args, n_jobs, "LR bootstrap"))
    pvalue = (1 + np.sum(null >= stat - 1e-10 * abs(stat))) / (n_bootstrap + 1)
    return LRTestResults(stat, df, float(pvalue), "bootstrap", null)
