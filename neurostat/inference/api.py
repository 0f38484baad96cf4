"""``inference(est, ...)``: from a fitted estimator to an :class:`InferenceResults`."""

import warnings

import numpy as np

from . import covariance
from .bootstrap import bootstrap_statistics
from .covariance import MAX_HESSIAN_PARAMS, InferenceWarning  # noqa: F401 (public here too)
from .debiased import debiased_effects
from .lastlayer import last_layer_statistics
from .statistics import curvature_statistics, with_covariance

COV_TYPES = ("nonrobust", "HC0", "HC1", "cluster", "bootstrap")


def check_separation(model):
    """statsmodels' perfect-prediction check for classifiers: every fitted probability is 0/1."""
    lik = model.likelihood
    if not lik.family.classification:
        return False
    if lik.max_prediction_error(model.eta()) < 1e-6:
        warnings.warn(
            "Perfect separation or prediction detected, parameter may not be identified: "
            "the maximum likelihood estimate does not exist, coefficients diverge and their "
            "standard errors are not meaningful (flagged in the summary). Use alpha > 0.",
            InferenceWarning, stacklevel=3,
        )
        return True
    return False


def inference(est, X=None, y=None, cov_type="nonrobust", *, alpha=0.05, sample_weight=None,
              n_bootstrap=200, n_jobs=None, random_state=None, groups=None,
              effects="crossfit", n_folds=5, offset=None):
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
    cov_type : {"nonrobust", "HC0", "HC1", "cluster", "bootstrap"}, default="nonrobust"
        See :mod:`neurostat.inference`. "cluster" is the grouped sandwich
        ``A^-1 (sum_g S_g S_g') A^-1`` over the clusters ``groups`` (``S_g`` the summed scores
        of cluster g), without a small-sample factor (R's ``coxph(... + cluster(id))``;
        statsmodels' ``cov_type="cluster"`` multiplies by ``G / (G - 1) (N - 1) / (N - K)``
        unless ``use_correction=False``).
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
        joblib's ``n_jobs`` for the bootstrap and the cross-fitting refits.
    random_state : int, RandomState or None
        Seeds the bootstrap resamples and the cross-fitting folds (and the fold refits of an
        estimator without ``random_state``).
    groups : array-like of shape (n_samples,), default=None
        Cluster labels of the rows for ``cov_type="cluster"`` (default: the ``groups`` given
        to ``fit`` with the training data, where the estimator takes them).
    effects : {"crossfit", "delta"}, default="crossfit"
        For a network with hidden layers: ``"crossfit"`` reports cross-fitted debiased
        average effects with influence-function standard errors and a directional test per
        input (:mod:`neurostat.inference.debiased`; ``n_folds`` refits of the estimator);
        ``"delta"`` the fitted net's own average derivatives with delta-method standard
        errors from the parameter covariance, and joint Wald tests of the first-layer
        weights (fast, but not calibrated: see the calibration study). Ignored for a network
        without hidden layer, whose coefficients are a GLM's. The delta method is used
        whatever is asked for a family whose likelihood couples the rows (Cox), one with
        ancillary parameters (the negative binomial) and data held in chunks (dask): the
        cross-fitted influence functions are not derived for them.
    n_folds : int, default=5
        Folds of the cross-fitting.
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
        Unknown ``cov_type``; X with other columns than at fit; ``effects="delta"`` for a
        network of more than ``MAX_HESSIAN_PARAMS`` parameters (its parameter covariance is
        then the output layer's only: :mod:`neurostat.inference.lastlayer`).

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
    if effects not in ("crossfit", "delta"):
        raise ValueError(f"effects must be 'crossfit' or 'delta'; got {effects!r}.")
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a float in (0, 1); got {alpha!r}.")
    extra = {k: v for k, v in (("groups", groups), ("offset", offset)) if v is not None}
    model = est._statistical_model(X, y, sample_weight, **extra)
    if cov_type == "cluster" and model.groups is None:
        raise ValueError("cov_type='cluster' needs the cluster of each row: pass groups=.")
    lik = model.likelihood
    large = lik.n_params > covariance.MAX_HESSIAN_PARAMS
    net = not model.layout.is_glm
    # nets on data held in chunks (dask) keep the delta method: cross-fitting refits in memory;
    # so do families with ancillary parameters (NB's alpha: their observed information
    # couples the mean to the ancillary predictor, which the debiased score does not model)
    debias = (effects == "crossfit" and net and model.family.additive
              and not model.layout.ancillary and not getattr(lik, "chunked", False))
    if large and not debias and cov_type != "bootstrap":
        raise ValueError(
            f"The network has {lik.n_params} parameters; a dense Hessian of that size "
            f"(over {covariance.MAX_HESSIAN_PARAMS}) is too large to form and invert, so "
            f"effects={effects!r} has no covariance to use. Use effects='crossfit' (the "
            "default), cov_type='bootstrap', or a smaller network."
        )
    if cov_type == "bootstrap" and getattr(lik, "chunked", False):
        raise ValueError(
            "cov_type='bootstrap' refits the estimator on resampled rows in memory, and these "
            "data are held in chunks (dask). Use cov_type='HC0' or 'HC1' (the sandwich, "
            "reduced over the chunks), or compute() the data if they fit in memory.")
    separated = check_separation(model)
    if cov_type == "bootstrap":
        stats = bootstrap_statistics(est, model, n_bootstrap, n_jobs, random_state)
    elif large:
        stats = last_layer_statistics(model, cov_type)
    else:
        stats = with_covariance(model, curvature_statistics(model), cov_type)
    if debias and cov_type != "bootstrap":
        eff = debiased_effects(est, model, cov_type, n_folds, n_jobs, random_state)
        if _no_residual_df(model, stats):
            # the training residuals leave no df for the dispersion; the held-out ones do
            # (the same curvature again: its warnings were given the first time)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InferenceWarning)
                stats = with_covariance(model, curvature_statistics(model, scale=eff.scale),
                                        cov_type).replace(scale_df=float(lik.nobs))
        stats = stats.replace(effects=eff, cov_params=eff.cov)
    if not model.converged:
        warnings.warn(
            "The fit did not converge; inference assumes a stationary point of the objective, "
            "so standard errors may be wrong. Refit with a larger max_iter (solver='lbfgs').",
            InferenceWarning, stacklevel=2,
        )
    res = model.results_class(model, stats, estimator=est, cov_type=cov_type, alpha=alpha,
                              separated=separated)
    _check_dispersion(res)
    return res


def _no_residual_df(model, stats):
    """A dispersion family whose fit has as many effective parameters as rows (or a
    dispersion that overflowed): its training residuals estimate no dispersion."""
    lik = model.likelihood
    if not lik.family.has_scale or stats.cov_theta is None or stats.param_scale is not None:
        return False
    k = lik.y.shape[1] if lik.y.ndim == 2 else 1
    scale = float(stats.scale)
    return lik.nobs * k - stats.edf <= 0 or not np.isfinite(scale) or scale >= 1e100


def _check_dispersion(res):
    """Warn where the dispersion cannot be estimated from the training residuals: a net with
    as many effective parameters as rows has no residual df, and its scale (with the
    parameter covariance, the prediction and observation intervals built on it) is
    meaningless; the calibration study's unpenalized (64,) net at n=300 had a scale of 1e298
    and observation intervals of NaN. With cross-fitted effects (the default) the held-out
    residuals' dispersion replaces it (:func:`_no_residual_df`; the prediction then reports
    a cross-validated observation interval, :func:`~neurostat.inference.predictions.
    get_prediction`), and the warning says so."""
    if not res.likelihood.family.has_scale or res.cov_theta is None:
        return
    scale = np.asarray(res.scale, dtype=np.float64)
    if res.statistics.scale_df is not None:
        warnings.warn(
            f"The fit has {float(res.df_model):.4g} effective parameters for "
            f"{float(res.nobs):.4g} observations (residual df {float(res.df_resid):.4g}): "
            "its training residuals estimate no dispersion, so the scale "
            f"({float(scale):.4g}), the parameter covariance and the prediction intervals use "
            "the cross-fitted held-out residuals' dispersion instead. The effects are "
            "cross-fitted and not affected.",
            InferenceWarning, stacklevel=3,
        )
        return
    if float(res.df_resid) > 0 and np.all(np.isfinite(scale)) and np.all(scale < 1e100):
        return
    warnings.warn(
        f"The fit has {float(res.df_model):.4g} effective parameters for "
        f"{float(res.nobs):.4g} observations (residual df {float(res.df_resid):.4g}): the "
        "dispersion, the parameter covariance and the prediction intervals built on them are "
        "not estimable. Penalize the net (alpha > 0) or make it smaller; cross-fitted effects "
        "use held-out residuals and are not affected.",
        InferenceWarning, stacklevel=3,
    )
