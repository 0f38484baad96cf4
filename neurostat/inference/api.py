"""``inference(est, ...)``: from a fitted estimator to an :class:`InferenceResults`."""

import warnings

from . import covariance
from .bootstrap import bootstrap_statistics
from .covariance import MAX_HESSIAN_PARAMS, InferenceWarning  # noqa: F401 (public here too)
from .statistics import curvature_statistics, with_covariance

COV_TYPES = ("nonrobust", "HC0", "HC1", "bootstrap")


def check_separation(model):
    """statsmodels' perfect-prediction check for classifiers: every fitted probability is 0/1."""
    lik = model.likelihood
    if not lik.family.classification:
        return False
    mu = lik.mean(model.eta())
    y = lik.y
    if mu.ndim == 1:
        err = (mu - y).abs()
    else:
        err = 1.0 - mu.gather(1, y.long()[:, None])[:, 0]
    if float(err.max()) < 1e-6:
        warnings.warn(
            "Perfect separation or prediction detected, parameter may not be identified: "
            "the maximum likelihood estimate does not exist, coefficients diverge and their "
            "standard errors are not meaningful (flagged in the summary). Use alpha > 0.",
            InferenceWarning, stacklevel=3,
        )
        return True
    return False


def inference(est, X=None, y=None, cov_type="nonrobust", *, alpha=0.05, sample_weight=None,
              n_bootstrap=200, n_jobs=None, random_state=None, offset=None):
    """Statistical results for a fitted neurostat estimator, in statsmodels' vocabulary.

    Parameters
    ----------
    est : fitted neurostat estimator
        Any estimator providing ``_statistical_model(X, y, sample_weight)`` (every network
        estimator of the package does).
    X : array-like of shape (n_samples, n_features), default=None
        Data to condition on; with ``y=None`` too, the training data (kept by reference by
        ``fit``, not pickled). Columns must match those seen at fit.
    y : array-like of shape (n_samples,) or (n_samples, n_targets), default=None
    cov_type : {"nonrobust", "HC0", "HC1", "bootstrap"}, default="nonrobust"
        See :mod:`neurostat.inference`.
    alpha : float, default=0.05
        Default level of the summary's confidence intervals.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights: the results equal those of the data with row i repeated ``w_i``
        times (integer weights) - log-likelihood ``sum_i w_i l_i``, ``nobs = sum_i w_i``,
        residual df ``sum_i w_i - df``, the robust meat ``sum_i w_i s_i s_i'`` - as
        statsmodels' ``GLM(freq_weights=...)`` and R's ``glm(weights=)`` for binomial and
        Poisson models (R's ``lm`` treats weights as precisions: its residual df is
        ``n - p``). Default: the weights used at fit.
    n_bootstrap : int, default=200
        Case resamples for ``cov_type="bootstrap"``.
    n_jobs : int, default=None
        joblib's ``n_jobs`` for the bootstrap.
    random_state : int, RandomState or None
        Seeds the bootstrap resamples.
    offset : array-like of shape (n_samples,), default=None
        The offset of the rows of X (default: none; with X=None the one given to ``fit``).

    Returns
    -------
    InferenceResults

    Raises
    ------
    NotFittedError
        Before fit.
    ValueError
        Unknown ``cov_type``; X with other columns than at fit; a network of more than
        ``MAX_HESSIAN_PARAMS`` parameters with an analytic ``cov_type`` (use "bootstrap").

    Notes
    -----
    Warnings (:class:`InferenceWarning`) flag perfect separation, a singular or ill-conditioned
    Hessian (pseudo-inverse used) and a fit that did not converge.

    Examples
    --------
    >>> import statsmodels.api as sm
    >>> from neurostat import NeuralClassifier
    >>> data = sm.datasets.spector.load_pandas()
    >>> est = NeuralClassifier((), solver="lbfgs").fit(data.exog, data.endog)
    >>> res = est.inference()
    >>> round(float(res.params["GPA"]), 3), round(float(res.bse["GPA"]), 3)
    (2.826, 1.263)
    """
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type={cov_type!r} is not one of {COV_TYPES}.")
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a float in (0, 1); got {alpha!r}.")
    model = (est._statistical_model(X, y, sample_weight) if offset is None
             else est._statistical_model(X, y, sample_weight, offset=offset))
    lik = model.likelihood
    if lik.n_params > covariance.MAX_HESSIAN_PARAMS and cov_type != "bootstrap":
        raise ValueError(
            f"The network has {lik.n_params} parameters; a dense Hessian of that size "
            f"(over {covariance.MAX_HESSIAN_PARAMS}) is too large to form and invert. Use "
            "cov_type='bootstrap' (refits on resamples, in parallel), or a smaller network."
        )
    separated = check_separation(model)
    if cov_type == "bootstrap":
        stats = bootstrap_statistics(est, model, n_bootstrap, n_jobs, random_state)
    else:
        stats = with_covariance(model, curvature_statistics(model), cov_type)
    if not model.converged:
        warnings.warn(
            "The fit did not converge; inference assumes a stationary point of the objective, "
            "so standard errors may be wrong. Refit with a larger max_iter (solver='lbfgs').",
            InferenceWarning, stacklevel=2,
        )
    return model.results_class(model, stats, estimator=est, cov_type=cov_type, alpha=alpha,
                               separated=separated)
