"""Dropout as a statistical device: adaptive ridge, Monte-Carlo predictions, approximate Bayes.

Three views of (inverted) dropout, each with a closed form that the tests check:

* **Adaptive ridge** (Wager, Wang & Liang 2013). Inverted dropout of rate ``p`` on the inputs
  multiplies ``x_ij`` by ``m_ij / (1 - p)``, ``m_ij ~ Bernoulli(1 - p)``: unbiased, with variance
  ``p / (1 - p) x_ij^2``. For the gaussian loss ``0.5 (y - b - x'w)^2`` its expectation over the
  masks is the loss plus ``0.5 p / (1 - p) sum_j w_j^2 x_ij^2``, so training a linear model
  with input dropout minimises, in expectation, a ridge penalty scaled per coefficient by
  ``sum_i x_ij^2``: :func:`adaptive_ridge`. For a GLM with cumulant ``A`` the second-order
  expansion gives the same penalty weighted by the Fisher information ``A''(eta_i)``:
  :func:`quadratic_dropout_penalty` and :func:`quadratic_dropout_glm`.
* **Monte-Carlo dropout** (Gal & Ghahramani 2016). :func:`sample_predictions` keeps dropout
  active at prediction time and returns draws on the response scale; ``predict`` keeps the
  weight-scaling rule (inverted dropout: the deterministic net is the mean network).
  :func:`mc_dropout_predict` turns the draws into the approximate predictive mean and variance,
  with Gal's model precision ``tau`` (:func:`gal_precision`) for the noise.
* **Bagging**: see ``vignettes/03_dropout_is_bagging.py`` (scikit-learn's ``BaggingRegressor``
  over neurostat nets against a dropout net), no new class is needed.
"""

import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from scipy import stats as sps
from scipy.optimize import minimize
from sklearn.base import is_classifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .engine.families import GLM_FAMILIES

__all__ = [
    "MCDropoutPrediction",
    "adaptive_ridge",
    "dropout_prediction_variance",
    "gal_precision",
    "mc_dropout_predict",
    "quadratic_dropout_glm",
    "quadratic_dropout_penalty",
    "sample_predictions",
]


def _check_rate(p, name="p"):
    if not isinstance(p, Real) or isinstance(p, bool) or not 0 <= p < 1:
        raise ValueError(f"{name} must be a dropout rate in [0, 1); got {p!r}.")
    return float(p)


def _check_n_samples(n_samples):
    if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
    return int(n_samples)


# ----------------------------------------------------------------------------- Monte Carlo
def sample_predictions(est, X, n_samples=100, random_state=None):
    """Predictions of a fitted net with dropout active (Monte-Carlo dropout).

    Parameters
    ----------
    est : NeuralRegressor or NeuralClassifier (fitted)
    X : array-like of shape (n_obs, n_features)
    n_samples : int, default=100
        Number of dropout masks (forward passes).
    random_state : int, RandomState instance or None, default=None
        Seeds the masks; the same seed gives the same draws. The global torch generator is
        left untouched.

    Returns
    -------
    draws : ndarray of shape (n_samples, n_obs)
        Or (n_samples, n_obs, n_targets), (n_samples, n_obs, n_classes). Response-scale
        predictions (means; class probabilities for classifiers), one row per mask. With
        no dropout in the network every draw equals ``predict`` (a warning says so).

    Notes
    -----
    Draw ``t`` is ``mu(x; W * M_t / (1 - p))``, masks ``M_t`` independent Bernoulli(1 - p) per
    unit (per input for ``input_dropout``), fresh for every row and every draw. ``predict``
    uses the weight-scaling rule (no masks; with inverted dropout that is the expected
    pre-activation of the first dropped layer), which is not the MC average for nonlinear nets.
    Computation is float64, as ``predict``.
    """
    check_is_fitted(est, "module_")
    n_samples = _check_n_samples(n_samples)
    X = est._validate_X_predict(X)
    module = est.module_
    rates = [float(getattr(module, a, 0.0)) for a in ("dropout", "input_dropout")]
    if not any(r > 0 for r in rates):
        warnings.warn(
            "The network has no dropout (dropout=0 and input_dropout=0): every Monte-Carlo "
            "draw equals predict(X).", UserWarning, stacklevel=2,
        )
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    device = est.device_
    devices = [device.index or 0] if device.type == "cuda" else []
    params = {k: v.detach().to(torch.float64) for k, v in module.named_parameters()}
    Xt = est._tensor(X, torch.float64)
    chunk = max(1, (1 << 16) // max(1, X.shape[0]))
    out = []
    was_training = module.training
    module.train()
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            for start in range(0, n_samples, chunk):
                k = min(chunk, n_samples - start)
                xb = Xt.repeat(k, *([1] * (Xt.dim() - 1)))
                eta = torch.func.functional_call(module, params, (xb,))
                mu = est.family_.mean(eta).cpu()
                out.append(mu.reshape(k, X.shape[0], *mu.shape[1:]))
    finally:
        module.train(was_training)
    draws = torch.cat(out).numpy()
    if is_classifier(est) and draws.ndim == 2:
        draws = np.stack([1.0 - draws, draws], axis=-1)
    return draws


@dataclass
class MCDropoutPrediction:
    """Monte-Carlo dropout predictive moments (Gal & Ghahramani 2016).

    Attributes
    ----------
    mean : ndarray
        ``(1/T) sum_t yhat_t``: the predictive mean (class probabilities for classifiers).
    model_variance : ndarray
        ``(1/T) sum_t yhat_t^2 - mean^2``: the variance over masks (epistemic part).
    noise_variance : ndarray or float
        ``1 / tau`` for the gaussian family (Gal's model precision), the mean of ``mu_t`` for
        poisson, the mean of ``mu_t (1 - mu_t)`` for class indicators.
    variance : ndarray
        ``noise_variance + model_variance``: the predictive variance (for class indicators
        ``mean (1 - mean)``, the variance of the predictive Bernoulli).
    tau : float or None
        The model precision used for the gaussian family.
    n_samples : int
    """

    mean: np.ndarray
    model_variance: np.ndarray
    noise_variance: object
    variance: np.ndarray
    tau: object
    n_samples: int

    def summary_frame(self, alpha=0.05):
        """Normal-approximation intervals for a single-output regressor, statsmodels' columns.

        ``mean_ci_*`` use the model variance only (uncertainty about the regression function),
        ``obs_ci_*`` the full predictive variance (a new observation).
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1); got {alpha!r}.")
        if np.ndim(self.mean) != 1:
            raise ValueError("summary_frame is for single-output regressors; use mean and "
                             "variance directly.")
        q = sps.norm.isf(alpha / 2)
        se = np.sqrt(self.model_variance)
        sd = np.sqrt(self.variance)
        return pd.DataFrame({
            "mean": self.mean, "mean_se": se,
            "mean_ci_lower": self.mean - q * se, "mean_ci_upper": self.mean + q * se,
            "obs_ci_lower": self.mean - q * sd, "obs_ci_upper": self.mean + q * sd,
        })


def gal_precision(keep_prob, length_scale, n_samples, alpha):
    """Gal & Ghahramani's model precision ``tau`` implied by dropout and weight decay.

    Parameters
    ----------
    keep_prob : float in (0, 1]
        ``1 - p`` of the dropped layer.
    length_scale : float
        Prior length scale ``l`` (prior ``W ~ N(0, l^-2 I)``).
    n_samples : int
        Number of training observations ``N``.
    alpha : float
        neurostat's ``alpha`` (ridge part).

    Returns
    -------
    tau : float

    Notes
    -----
    Gal & Ghahramani (2016, appendix) write the dropout objective as
    ``(1/N) sum_i 0.5 ||y_i - yhat_i||^2 + lambda sum ||W||^2`` and match it to variational
    inference when ``tau = p_keep l^2 / (2 N lambda)``. neurostat's objective has
    ``0.5 alpha ||W||^2``, i.e. ``lambda = alpha / 2``, so ``tau = p_keep l^2 / (N alpha)``.
    The length scale is a prior choice; in practice ``tau`` is often estimated from residuals
    (``tau="residual"`` in :func:`mc_dropout_predict`).
    """
    for name, v in (("keep_prob", keep_prob), ("length_scale", length_scale),
                    ("n_samples", n_samples), ("alpha", alpha)):
        if not isinstance(v, Real) or not v > 0:
            raise ValueError(f"{name} must be a positive number; got {v!r}.")
    if keep_prob > 1:
        raise ValueError(f"keep_prob must be in (0, 1]; got {keep_prob!r}.")
    return float(keep_prob * length_scale**2 / (n_samples * alpha))


def mc_dropout_predict(est, X, n_samples=100, *, tau="residual", random_state=None):
    """Monte-Carlo dropout predictive mean and variance, with Gal's model precision.

    Parameters
    ----------
    est : fitted NeuralRegressor or NeuralClassifier with dropout
    X : array-like of shape (n_obs, n_features)
    n_samples : int, default=100
    tau : "residual" or float, default="residual"
        Model precision for the gaussian family: a float (e.g. from :func:`gal_precision`), or
        "residual": ``sum_i w_i / sum_i w_i (y_i - mean_i)^2`` on the training data with the MC
        mean as the fit (an empirical-Bayes estimate of the noise precision). Ignored for other
        families.
    random_state : int, RandomState instance or None

    Returns
    -------
    MCDropoutPrediction

    Notes
    -----
    With draws ``yhat_t = f(x; W_t)``, ``t = 1..T`` (Gal & Ghahramani 2016, eq. 8-9)::

        E[y*]   ~ (1/T) sum_t yhat_t
        Var[y*] ~ tau^-1 + (1/T) sum_t yhat_t^2 - E[y*]^2
    """
    draws = sample_predictions(est, X, n_samples, random_state)
    mean = draws.mean(0)
    model_var = np.maximum((draws**2).mean(0) - mean**2, 0.0)
    family = est.family_
    # the noise is the model's own variance averaged over the draws, E_t[V(mu_t)] times the
    # dispersion: for classes p(1 - p) (so noise + model variance = mean (1 - mean), the
    # variance of the class indicator), for counts the mean, for gaussian 1 / tau
    noise = np.asarray(family.variance(draws)).mean(0)
    if not family.has_scale:
        return MCDropoutPrediction(mean, model_var, noise, noise + model_var, None, n_samples)
    if isinstance(tau, str):
        if tau != "residual":
            raise ValueError(f"tau must be 'residual' or a positive float; got {tau!r}.")
        data = getattr(est, "_training_data", None)
        if data is None:
            raise ValueError("tau='residual' needs the training data (not kept after "
                             "pickling); pass tau as a float.")
        Xtr, ytr, w = data
        fit = sample_predictions(est, Xtr, n_samples, random_state).mean(0)
        r2 = (ytr - fit) ** 2
        r2 = r2 if r2.ndim == 1 else r2.sum(1)
        w = np.ones(len(r2)) if w is None else w
        tau = float(w.sum() / np.sum(w * r2))
    elif not isinstance(tau, Real) or not tau > 0:
        raise ValueError(f"tau must be 'residual' or a positive float; got {tau!r}.")
    noise = noise / float(tau)
    return MCDropoutPrediction(mean, model_var, noise, noise + model_var, float(tau), n_samples)


# ----------------------------------------------------------------------------- closed forms
def dropout_prediction_variance(X, coef, p):
    """Variance over input-dropout masks of the linear prediction ``b + x'w``.

    Returns ``p / (1 - p) * sum_j x_j^2 w_j^2`` per row (shape (n_obs,)): the masks
    ``m_j / (1 - p)`` are independent with variance ``p / (1 - p)``.
    """
    p = _check_rate(p)
    X = np.asarray(X, dtype=np.float64)
    coef = np.asarray(coef, dtype=np.float64).ravel()
    return p / (1 - p) * (X**2) @ coef**2


def adaptive_ridge(X, y, p, sample_weight=None):
    """The minimiser of the expected least-squares loss under input dropout of rate ``p``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    p : float in [0, 1)
    sample_weight : array-like of shape (n_samples,), default=None

    Returns
    -------
    coef : ndarray of shape (n_features,)
    intercept : float

    Notes
    -----
    With inverted dropout ``x~_ij = x_ij m_ij / (1 - p)``, ``m_ij ~ Bernoulli(1 - p)``,
    ``E (y_i - b - x~_i'w)^2 = (y_i - b - x_i'w)^2 + p / (1 - p) sum_j w_j^2 x_ij^2``, so the
    expected (weighted) loss is ridge regression with the per-coefficient penalty
    ``p / (1 - p) sum_i w_i x_ij^2`` on the unpenalized-intercept model. For centred X this is
    Wager, Wang & Liang's ``w* = (X'X + p / (1 - p) diag(X'X))^-1 X'y``. Solved exactly
    (float64) for any X.
    """
    p = _check_rate(p)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X must be 2-d and y of shape ({X.shape[0]},); got {X.shape}, "
                         f"{y.shape}.")
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    Z = np.column_stack([np.ones(len(y)), X])
    G = Z.T @ (w[:, None] * Z)
    pen = np.concatenate([[0.0], (w[:, None] * X**2).sum(0)]) * p / (1 - p)
    theta = np.linalg.solve(G + np.diag(pen), Z.T @ (w * y))
    return theta[1:], float(theta[0])


def _glm_family(family):
    """A canonical-link GLM family from a name or a family object."""
    fam = GLM_FAMILIES[family]() if isinstance(family, str) and family in GLM_FAMILIES \
        else family
    if not getattr(fam, "canonical", False):
        raise ValueError(f"family must be one of {sorted(GLM_FAMILIES)} (a canonical-link GLM "
                         f"family); got {family!r}.")
    return fam


def _fisher_weight(fam, eta):
    # for a canonical link the Fisher information of eta is A''(eta) = V(mu)
    return fam.variance(fam.mean(eta[:, None]))


def quadratic_dropout_penalty(X, coef, intercept, p, family="bernoulli", sample_weight=None):
    """Second-order (Fisher-scaled) approximation of the input-dropout penalty of a GLM.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    coef : array-like of shape (n_features,)
    intercept : float
    p : float in [0, 1)
    family : {"bernoulli", "poisson", "gaussian"} or a neurostat family, default="bernoulli"
    sample_weight : array-like of shape (n_samples,), default=None

    Returns
    -------
    penalty : float
        On the scale of neurostat's objective (a weighted mean over observations).

    Notes
    -----
    The GLM negative log-likelihood is ``A(eta_i) - y_i eta_i``; dropout leaves the linear
    term unbiased, and expanding ``A`` to second order around ``eta_i = b + x_i'w``
    (Wager, Wang & Liang 2013, eq. 5)::

        E A(b + x~_i'w) - A(eta_i) ~ 0.5 A''(eta_i) p / (1 - p) sum_j x_ij^2 w_j^2,

    so the penalty is ``0.5 p / (1 - p) sum_j w_j^2 (sum_i v_i A''(eta_i) x_ij^2) / sum_i v_i``
    (``v`` the sample weights): a ridge penalty scaled by the diagonal of the Fisher
    information. Exact for the gaussian family.
    """
    p = _check_rate(p)
    fam = _glm_family(family)
    X = np.asarray(X, dtype=np.float64)
    coef = np.asarray(coef, dtype=np.float64).ravel()
    eta = X @ coef + float(np.ravel(intercept)[0])
    v = np.ones(len(eta)) if sample_weight is None else np.asarray(sample_weight, float)
    fisher = _fisher_weight(fam, torch.as_tensor(eta)).numpy() * v
    return float(0.5 * p / (1 - p) * (fisher @ (X**2) @ coef**2) / v.sum())


def quadratic_dropout_glm(X, y, p, family="bernoulli", sample_weight=None):
    """Minimise the GLM loss plus :func:`quadratic_dropout_penalty` (float64 L-BFGS).

    The deterministic surrogate of training the GLM with input dropout of rate ``p``.

    Returns
    -------
    coef : ndarray of shape (n_features,)
    intercept : float
    """
    p = _check_rate(p)
    fam = _glm_family(family)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    v = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    Xt, yt, vt = (torch.from_numpy(np.ascontiguousarray(a)) for a in (X, y, v))
    c = 0.5 * p / (1 - p) / float(v.sum())
    X2 = Xt**2

    def objective(theta):
        t = torch.from_numpy(theta).requires_grad_(True)
        eta = Xt @ t[1:] + t[0]
        # the family's loss is the weighted mean of A(eta) - y eta (plus constants)
        loss = fam.loss(eta[:, None], yt, vt) + c * (vt * _fisher_weight(fam, eta)) @ (
            X2 @ t[1:] ** 2)
        loss.backward()
        return float(loss.detach()), t.grad.numpy().copy()

    res = minimize(objective, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-10, "ftol": 0.0, "maxiter": 10_000})
    return res.x[1:], float(res.x[0])
