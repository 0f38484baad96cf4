"""``inference(est, ...)``: from a fitted estimator to an :class:`InferenceResults`."""

import warnings

import numpy as np
import torch
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted

from .._utils import feature_names
from .covariance import (
    InferenceWarning,
    active_set,
    expand,
    penalty_diagonal,
    sandwich,
    symmetric_pinv,
)
from .likelihood import Likelihood

COV_TYPES = ("nonrobust", "HC0", "HC1", "bootstrap")
#: above this many parameters a dense Hessian (p x p float64) is refused
MAX_HESSIAN_PARAMS = 20_000


def encode_target(est, y):
    """Encode ``y`` as the estimator's family expects without touching the fitted estimator."""
    if is_classifier(est):
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-dimensional for a classifier; got shape {y.shape}.")
        classes = est.classes_
        idx = np.searchsorted(classes, y)
        idx = np.clip(idx, 0, len(classes) - 1)
        if not np.all(classes[idx] == y):
            raise ValueError(
                f"y contains labels not in the fitted classes_ {classes.tolist()}."
            )
        return idx.astype(np.float64) if len(classes) == 2 else idx.astype(np.int64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinity.")
    return y


def resolve_data(est, X, y, sample_weight):
    """The data to condition on: the training data by default, else validated (X, y, w)."""
    check_is_fitted(est, "module_")
    if (X is None) != (y is None):
        raise ValueError("Pass both X and y, or neither (then the training data are used).")
    if X is None:
        data = getattr(est, "_training_data", None)
        if data is None:
            raise ValueError(
                "The training data are not available (they are kept by reference after fit "
                "but not pickled); pass X and y to inference()."
            )
        X, y, sw = data
        if sample_weight is not None:
            sw = est._sample_weight(sample_weight, X, normalize=False)
        return X, y, sw
    X = est._validate_X_predict(X)
    if len(y) != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {len(y)}.")
    return X, y, est._sample_weight(sample_weight, X, normalize=False)


def make_likelihood(est, X, y_enc, w):
    """The estimator's :class:`Likelihood`: its fitted network and family on (X, y_enc, w)."""
    return Likelihood(est.module_, est.family_, X, y_enc, w)


def term_names(est, n_features=None):
    """``["intercept", <input names>]`` (``feature_names_in_``, else ``x0, x1, ...``)."""
    return ["intercept"] + feature_names(est, n_features)


def pearson_chi2(lik, theta, by_output=False):
    """The family's Pearson chi-square at ``theta`` (the residual sum of squares for gaussian);
    with ``by_output`` one per output column (an array)."""
    with torch.no_grad():
        eta = lik.eta(theta)
    return lik.family.pearson_chi2(eta, lik.y, lik.w, by_output=by_output)


def llf_at(lik, eta, scale=None):
    """The reported log-likelihood at linear predictor ``eta``: at the family's ``llf_scale``
    (for gaussian the maximum-likelihood variance ``RSS / n``, per output for separate
    regressions, as statsmodels reports it)."""
    fam = lik.family
    if not fam.has_scale:
        return float(lik.loglik(eta))
    chi2 = fam.pearson_chi2(eta, lik.y, lik.w, by_output=separate_scales(lik))
    k = lik.y.shape[1] if lik.y.ndim == 2 else 1
    return float(lik.loglik(eta, scale=fam.llf_scale(chi2, lik.nobs, k, scale)))


def separate_scales(lik):
    """True for a gaussian model with several outputs and no hidden layer: k separate
    regressions sharing nothing, each with its own dispersion (per-column OLS). Networks with
    hidden layers share parameters across outputs and keep one pooled dispersion."""
    return bool(lik.family.has_scale and lik.additive and lik.y.ndim == 2
                and lik.y.shape[1] > 1 and getattr(lik.module, "n_hidden_layers", None) == 0)


def output_of_params(lik):
    """The output (column) each entry of theta belongs to, for a network without hidden
    layers (weight rows and biases of the one linear layer)."""
    out = []
    for shape in lik.shapes:
        out.append(np.repeat(np.arange(shape[0]), shape[1]) if len(shape) == 2
                   else np.arange(shape[0]))
    return np.concatenate(out)


def fit_statistics(est, lik):
    """Curvature, effective df, scale and the parameter covariance for every analytic cov_type.

    Returns a dict: ``H`` (observed information at the final scale), ``A`` (penalized
    Hessian), ``Ainv``, ``edf``, ``scale``, ``active``, ``hess_info``, ``penalized``.
    """
    active = active_set(lik, est)
    H1, F1 = (m.numpy()[np.ix_(active, active)] for m in lik.curvatures())
    pen = penalty_diagonal(lik, est)[active]
    penalized = bool(np.any(pen > 0))
    A1 = H1 + np.diag(pen)
    A1inv, info = symmetric_pinv(A1, "Hessian of the negative log-likelihood"
                                 if not penalized else "penalized Hessian")
    # the information I of the sandwich A^-1 I A^-1: Fisher's (positive semi-definite; equal to
    # the observed one for a GLM with canonical link) - the observed information of a penalized
    # net need not be, and would give negative variances
    # trace(F A^-1) without forming the product (both symmetric): O(p^2), not O(p^3)
    edf = float(np.sum(F1 * A1inv)) if penalized else float(info["rank"])
    scale = 1.0
    if separate_scales(lik):
        # one dispersion per output, each on its own residual df (n - edf / k): the curvature
        # is block diagonal across outputs, so block j is divided by scale_j
        k = lik.y.shape[1]
        scale = pearson_chi2(lik, lik.theta, by_output=True) / max(lik.nobs - edf / k, 1e-300)
        sp = scale[output_of_params(lik)][active]
        R = np.sqrt(np.outer(sp, sp))
        return {"H": H1 / R, "I": F1 / R, "A": A1 / R, "Ainv": A1inv * R, "edf": edf,
                "scale": scale, "param_scale": sp, "active": active, "hess_info": info,
                "penalized": penalized}
    if lik.family.has_scale:
        k = lik.y.shape[1] if lik.y.ndim == 2 else 1
        scale = pearson_chi2(lik, lik.theta) / max(lik.nobs * k - edf, 1e-300)
    return {"H": H1 / scale, "I": F1 / scale, "A": A1 / scale, "Ainv": A1inv * scale, "edf": edf,
            "scale": scale, "param_scale": None, "active": active, "hess_info": info,
            "penalized": penalized}


def theta_covariance(lik, stats, cov_type):
    """Covariance of theta (full p x p, NaN for entries fixed at zero by an L1 penalty)."""
    Ainv, active = stats["Ainv"], stats["active"]
    if cov_type == "nonrobust":
        cov = sandwich(Ainv, stats["I"]) if stats["penalized"] else Ainv
    else:
        sp = stats.get("param_scale")
        S = lik.score_obs().numpy()[:, active] / (stats["scale"] if sp is None else sp)
        if lik.w is not None and lik.additive:
            # score_obs gives w_i s_i: the meat of w_i repeated rows is w_i s_i s_i'
            w = lik.w.numpy()
            S = S / np.sqrt(np.where(w > 0, w, 1.0))[:, None]
        cov = sandwich(Ainv, S.T @ S)
        if cov_type == "HC1" and lik.family.has_scale:
            # statsmodels applies the n / (n - k) correction for OLS only; its likelihood
            # models (Logit, MNLogit, GLM) report HC1 equal to HC0, and so does neurostat
            edf = stats["edf"] / (lik.y.shape[1] if sp is not None else 1)  # per regression
            cov = cov * lik.nobs / (lik.nobs - edf)
    return expand(cov, active)


def check_separation(est, lik):
    """statsmodels' perfect-prediction check for classifiers: every fitted probability is 0/1."""
    if not is_classifier(est):
        return False
    with torch.no_grad():
        mu = lik.mean(lik.eta(lik.theta))
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
              n_bootstrap=200, n_jobs=None, random_state=None):
    """Statistical results for a fitted neurostat estimator, in statsmodels' vocabulary.

    Parameters
    ----------
    est : fitted NeuralClassifier or NeuralRegressor (or an estimator providing
        ``_inference_likelihood``)
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
    from .results import InferenceResults

    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type={cov_type!r} is not one of {COV_TYPES}.")
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a float in (0, 1); got {alpha!r}.")
    X, y, w = resolve_data(est, X, y, sample_weight)
    y_enc = encode_target(est, y)
    lik = make_likelihood(est, X, y_enc, w)
    if lik.n_params > MAX_HESSIAN_PARAMS and cov_type != "bootstrap":
        raise ValueError(
            f"The network has {lik.n_params} parameters; a dense Hessian of that size "
            f"(over {MAX_HESSIAN_PARAMS}) is too large to form and invert. Use "
            "cov_type='bootstrap' (refits on resamples, in parallel), or a smaller network."
        )
    separated = check_separation(est, lik)
    if cov_type == "bootstrap":
        from .bootstrap import bootstrap_statistics
        stats = bootstrap_statistics(est, lik, X, y, w, n_bootstrap, n_jobs, random_state)
    else:
        stats = fit_statistics(est, lik)
        stats["cov_theta"] = theta_covariance(lik, stats, cov_type)
    if not getattr(est, "converged_", True):
        warnings.warn(
            "The fit did not converge; inference assumes a stationary point of the objective, "
            "so standard errors may be wrong. Refit with a larger max_iter (solver='lbfgs').",
            InferenceWarning, stacklevel=2,
        )
    return InferenceResults(est, lik, stats, cov_type=cov_type, alpha=alpha,
                            separated=separated)
