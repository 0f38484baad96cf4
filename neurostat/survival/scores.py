"""Discrimination and calibration of survival predictions, each with a confidence interval.

* :func:`harrell_c` and :func:`uno_c` - concordance indices with infinitesimal-jackknife
  standard errors (R's ``concordance()``; Uno's C with inverse-probability-of-censoring
  weights ``1 / G(t)^2``, scikit-survival's ``concordance_index_ipcw``);
* :func:`compare_concordance` - the difference of two models' C on the same data, with its
  jackknife covariance and a z-test (R's ``concordance(fit1, fit2)``);
* :func:`cumulative_dynamic_auc` - the time-dependent (cumulative cases / dynamic controls)
  AUC with IPCW (scikit-survival's ``cumulative_dynamic_auc``) and bootstrap intervals;
* :func:`brier_score` and :func:`integrated_brier_score` - the IPCW Brier score of predicted
  survival probabilities (Graf et al. 1999; scikit-survival's) and bootstrap intervals.

``G`` is the Kaplan-Meier estimate of the censoring distribution from the training targets
(events counted first at tied times, as scikit-survival does).
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from sklearn.utils import check_random_state

from .metrics import _pair_sums
from .target import as_survival_target

__all__ = ["IntervalEstimate", "brier_score", "censoring_survival", "compare_concordance",
           "cumulative_dynamic_auc", "harrell_c", "integrated_brier_score", "uno_c"]


@dataclass(frozen=True)
class IntervalEstimate:
    """An estimate with its standard error and confidence interval.

    Attributes
    ----------
    estimate : float or ndarray
    se : float or ndarray
    conf_int : tuple of (lower, upper)
    method : str
        How the interval was computed.
    """

    estimate: object
    se: object
    conf_int: tuple
    method: str

    def __float__(self):
        return float(self.estimate)


def _xy(y):
    y = as_survival_target(y)
    if y.shape[1] != 2:
        raise ValueError("These metrics take right-censored (time, event) targets.")
    return y[:, 0], y[:, 1] > 0


# ----------------------------------------------------------------------------- censoring
def censoring_survival(y):
    """Kaplan-Meier estimate of the censoring survival ``G(t) = P(C > t)``.

    At a time with both events and censorings the events leave the risk set first
    (scikit-survival's convention). Returns ``(times, G)``: distinct times and the
    right-continuous ``G`` at them.
    """
    time, event = _xy(y)
    times, inv = np.unique(time, return_inverse=True)
    n_ev = np.bincount(inv, weights=event.astype(float), minlength=times.size)
    n_cens = np.bincount(inv, weights=(~event).astype(float), minlength=times.size)
    at_risk = np.cumsum(np.bincount(inv, minlength=times.size)[::-1])[::-1] - n_ev
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(n_cens > 0, 1 - n_cens / np.where(at_risk > 0, at_risk, 1.0), 1.0)
    return times, np.cumprod(step)


def _G_at(train, at):
    times, G = censoring_survival(train)
    idx = np.searchsorted(times, at, side="right")
    return np.concatenate([[1.0], G])[idx]


# ----------------------------------------------------------------------------- concordance
def _c_influence(time, event, risk, a, w, tied_tol):
    """C and its infinitesimal-jackknife influence ``dC / dw_k`` for pair weights
    ``a_i w_i w_j`` (event row i, partner j)."""
    conc_e, comp_e, conc_p, comp_p = _pair_sums(time, event, risk, a * w, w, tied_tol)
    num, den = np.sum(a * w * conc_e), np.sum(a * w * comp_e)
    if den <= 0:
        raise ValueError("No comparable pairs: the concordance index needs at least one "
                         "event observed before another observation's time.")
    c = num / den
    infl = ((a * conc_e + conc_p) - c * (a * comp_e + comp_p)) / den
    return c, infl


def _interval(value, se, alpha, method):
    z = sps.norm.isf(alpha / 2)
    return IntervalEstimate(value, se, (value - z * se, value + z * se), method)


def _prepare_c(y, risk, sample_weight):
    time, event = _xy(y)
    risk = np.asarray(risk, dtype=np.float64).reshape(-1)
    if risk.size != time.size:
        raise ValueError(f"risk has {risk.size} values but y has {time.size} rows.")
    if not np.all(np.isfinite(risk)):
        raise ValueError("The risk scores contain NaN or infinity.")
    w = np.ones(time.size) if sample_weight is None else np.asarray(sample_weight, np.float64)
    return time, event, risk, w


def harrell_c(y, risk, sample_weight=None, alpha=0.05, tied_tol=1e-8):
    """Harrell's concordance index with its infinitesimal-jackknife standard error.

    The estimate is :func:`~neurostat.survival.metrics.concordance_index`; the variance is
    ``sum_k w_k (dC / dw_k)^2`` (R's ``concordance()``), the interval ``C +- z se``.

    Parameters
    ----------
    y : (time, event) target
    risk : array-like of shape (n_samples,)
        Higher = earlier events (``predict``).
    sample_weight : array-like, default=None
    alpha : float, default=0.05
    tied_tol : float, default=1e-8

    Returns
    -------
    IntervalEstimate
    """
    time, event, risk, w = _prepare_c(y, risk, sample_weight)
    c, infl = _c_influence(time, event, risk, np.ones_like(w), w, tied_tol)
    return _interval(c, float(np.sqrt(np.sum(w * infl**2))), alpha,
                     "infinitesimal jackknife")


def _uno_weights(y, train, tau):
    time, event = _xy(y)
    G = _G_at(y if train is None else train, time)
    used = event if tau is None else event & (time < tau)
    if np.any((G <= 0) & used):
        raise ValueError("The censoring survival G(t) is 0 at an event time: set tau below "
                         "the last follow-up time.")
    return np.where(used, 1.0 / np.where(G > 0, G, 1.0) ** 2, 0.0)


def uno_c(y, risk, train=None, tau=None, sample_weight=None, alpha=0.05, tied_tol=1e-8):
    """Uno's concordance index (IPCW) with its infinitesimal-jackknife standard error.

    Harrell's comparable pairs, each weighted by ``1 / G(t_i)^2`` at the earlier (event) time
    ``t_i``, only events before ``tau``; ``G`` the censoring Kaplan-Meier of ``train``
    (default ``y``). Equal to scikit-survival's ``concordance_index_ipcw``; the standard
    error treats the weights as fixed.

    Returns
    -------
    IntervalEstimate
    """
    time, event, risk, w = _prepare_c(y, risk, sample_weight)
    a = _uno_weights(y, train, tau)
    c, infl = _c_influence(time, event, risk, a, w, tied_tol)
    return _interval(c, float(np.sqrt(np.sum(w * infl**2))), alpha,
                     "infinitesimal jackknife (weights fixed)")


def compare_concordance(y, risk_a, risk_b, method="harrell", train=None, tau=None,
                        alpha=0.05, tied_tol=1e-8):
    """Compare two models' concordance on the same data: ``C_a - C_b`` with a z-test.

    The covariance of the two indices is the jackknife ``sum_k infl_a,k infl_b,k`` (R's
    ``concordance(fit1, fit2)``), so the test uses that both are computed on the same
    rows.

    Returns
    -------
    dict
        ``c_a``, ``c_b``, ``difference``, ``se``, ``z``, ``pvalue`` (two-sided),
        ``conf_int`` of the difference and ``cov`` (2 x 2).
    """
    if method not in ("harrell", "uno"):
        raise ValueError(f"method must be 'harrell' or 'uno'; got {method!r}.")
    time, event, ra, w = _prepare_c(y, risk_a, None)
    rb = _prepare_c(y, risk_b, None)[2]
    a = np.ones_like(w) if method == "harrell" else _uno_weights(y, train, tau)
    ca, ia = _c_influence(time, event, ra, a, w, tied_tol)
    cb, ib = _c_influence(time, event, rb, a, w, tied_tol)
    cov = np.array([[ia @ ia, ia @ ib], [ia @ ib, ib @ ib]])
    diff = ca - cb
    se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
    z = diff / se if se > 0 else np.nan
    q = sps.norm.isf(alpha / 2)
    return {"c_a": ca, "c_b": cb, "difference": diff, "se": se, "z": z,
            "pvalue": float(2 * sps.norm.sf(abs(z))), "conf_int": (diff - q * se,
                                                                   diff + q * se), "cov": cov}


# ----------------------------------------------------------------------------- AUC, Brier
def _auc_at(time, event, risk, ipcw, t, tied_tol):
    case = (time <= t) & event
    ctrl = np.sort(risk[time > t])
    if not case.any() or ctrl.size == 0:
        return np.nan
    r = risk[case]
    lo = np.searchsorted(ctrl, r - tied_tol, side="left")
    hi = np.searchsorted(ctrl, r + tied_tol, side="right")
    wc = ipcw[case]
    return float(np.sum(wc * (lo + 0.5 * (hi - lo))) / (wc.sum() * ctrl.size))


def _km(time, event, at):
    times, inv = np.unique(time, return_inverse=True)
    d = np.bincount(inv, weights=event.astype(float), minlength=times.size)
    n = np.cumsum(np.bincount(inv, minlength=times.size)[::-1])[::-1]
    S = np.cumprod(1 - d / n)
    return np.concatenate([[1.0], S])[np.searchsorted(times, at, side="right")]


def _auc_point(train, y, risk, times, tied_tol):
    time, event = _xy(y)
    G = _G_at(train, time)
    ipcw = np.where(event, 1.0 / np.where(G > 0, G, np.inf), 0.0)
    risk = np.asarray(risk, dtype=np.float64)
    cols = [risk if risk.ndim == 1 else risk[:, j] for j in range(times.size)]
    auc = np.array([_auc_at(time, event, r, ipcw, t, tied_tol) for r, t in zip(cols, times)])
    if times.size == 1:
        return auc, float(auc[0])
    s = _km(time, event, times)
    dS = -np.diff(np.concatenate([[1.0], s]))
    return auc, float(np.sum(auc * dS) / (1.0 - s[-1]))


def _bootstrap(stat, n, n_bootstrap, random_state, alpha):
    rng = check_random_state(random_state)
    reps = np.array([stat(rng.randint(0, n, n)) for _ in range(n_bootstrap)])
    ok = np.all(np.isfinite(np.atleast_2d(reps.T).T), axis=tuple(range(1, reps.ndim)))
    reps = reps[ok] if reps.ndim > 1 else reps[np.isfinite(reps)]
    return reps.std(0, ddof=1), (np.quantile(reps, alpha / 2, axis=0),
                                 np.quantile(reps, 1 - alpha / 2, axis=0))


def _resampled(train, y, idx):
    yy = as_survival_target(y)
    same = train is None or train is y
    return (yy[idx] if same else train), yy[idx]


def cumulative_dynamic_auc(y_train, y, risk, times, n_bootstrap=200, alpha=0.05,
                           random_state=None, tied_tol=1e-8):
    """Time-dependent AUC (cumulative cases, dynamic controls) with IPCW, and its mean.

    At each ``t``: cases are the events by ``t``, weighted by ``1 / G(t_i)``, controls the
    rows still event-free after ``t``; ``AUC(t)`` is the weighted fraction of (case,
    control) pairs ranked correctly (ties one half). The mean AUC integrates ``AUC(t)``
    against the Kaplan-Meier ``-dS(t)`` of ``y`` over ``times``, divided by
    ``1 - S(t_max)``. Equal to scikit-survival's ``cumulative_dynamic_auc``. Percentile
    bootstrap intervals resample the rows of ``y`` (and re-estimate ``G`` when ``y_train``
    is ``y`` or None).

    Parameters
    ----------
    y_train : (time, event) target or None
        Estimates the censoring distribution (None: ``y``).
    y : (time, event) target
    risk : array-like of shape (n_samples,) or (n_samples, n_times)
    times : array-like of shape (n_times,)
    n_bootstrap : int, default=200
    alpha : float, default=0.05
    random_state : int, RandomState or None

    Returns
    -------
    auc : IntervalEstimate
        Per time.
    mean_auc : IntervalEstimate
    """
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    risk = np.asarray(risk, dtype=np.float64)
    train = y if y_train is None else y_train
    auc, mean = _auc_point(train, y, risk, times, tied_tol)
    n = len(as_survival_target(y))

    def stat(idx):
        tr, yy = _resampled(train, y, idx)
        a, m = _auc_point(tr, yy, risk[idx], times, tied_tol)
        return np.concatenate([a, [m]])

    se, (lo, hi) = _bootstrap(stat, n, n_bootstrap, random_state, alpha)
    how = f"percentile bootstrap ({n_bootstrap} resamples)"
    return (IntervalEstimate(auc, se[:-1], (lo[:-1], hi[:-1]), how),
            IntervalEstimate(mean, float(se[-1]), (float(lo[-1]), float(hi[-1])), how))


def _brier_point(train, y, surv, times):
    time, event = _xy(y)
    Gy = _G_at(train, time)
    Gt = _G_at(train, times)
    Gy, Gt = np.where(Gy > 0, Gy, np.inf), np.where(Gt > 0, Gt, np.inf)
    case = (time[:, None] <= times[None, :]) & event[:, None]
    ctrl = time[:, None] > times[None, :]
    return np.mean(surv**2 * case / Gy[:, None] + (1 - surv) ** 2 * ctrl / Gt[None, :], 0)


def brier_score(y_train, y, surv, times):
    """IPCW Brier score of predicted survival probabilities at each of ``times``.

    ``BS(t) = mean_i [ S_i(t)^2 1(t_i <= t, event) / G(t_i) + (1 - S_i(t))^2 1(t_i > t) /
    G(t) ]`` (Graf et al. 1999), equal to scikit-survival's ``brier_score``.

    Parameters
    ----------
    y_train : target or None
        Estimates ``G`` (None: ``y``).
    y : (time, event) target
    surv : array-like of shape (n_samples, n_times)
        ``predict_survival_function(X, times)``.
    times : array-like of shape (n_times,)

    Returns
    -------
    ndarray of shape (n_times,)
    """
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    surv = np.asarray(surv, dtype=np.float64).reshape(-1, times.size)
    return _brier_point(y if y_train is None else y_train, y, surv, times)


def integrated_brier_score(y_train, y, surv, times, n_bootstrap=200, alpha=0.05,
                           random_state=None):
    """The Brier score integrated over ``times`` (trapezoid rule, divided by the range), with
    a percentile bootstrap interval; equal to scikit-survival's ``integrated_brier_score``.

    Returns
    -------
    IntervalEstimate
    """
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if times.size < 2:
        raise ValueError("integrated_brier_score needs at least two times.")
    surv = np.asarray(surv, dtype=np.float64).reshape(-1, times.size)
    train = y if y_train is None else y_train

    def ibs(tr, yy, s):
        return float(np.trapezoid(_brier_point(tr, yy, s, times), times)
                     / (times[-1] - times[0]))

    value = ibs(train, y, surv)
    n = surv.shape[0]

    def stat(idx):
        tr, yy = _resampled(train, y, idx)
        return ibs(tr, yy, surv[idx])

    se, (lo, hi) = _bootstrap(stat, n, n_bootstrap, random_state, alpha)
    return IntervalEstimate(value, float(se), (float(lo), float(hi)),
                            f"percentile bootstrap ({n_bootstrap} resamples)")
