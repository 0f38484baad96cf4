"""Competing risks: cumulative incidence by Aalen-Johansen from cause-specific hazards.

With causes ``k = 1..K`` and cause-specific cumulative hazards ``H_k`` (jumps ``dH_k`` at the
event times), the probability of being free of any event is the product-limit
``S(t) = prod_{u <= t} (1 - sum_k dH_k(u))`` and the cumulative incidence of cause ``k`` is
``F_k(t) = sum_{u <= t} S(u-) dH_k(u)``, so that ``S + sum_k F_k = 1``. With Nelson-Aalen
hazards this is the Aalen-Johansen estimator (R's ``survfit(Surv(time, factor(status)) ~ 1)``
and ``cmprsk::cuminc``); with a Cox model's Breslow hazards ``dH0_k(u) exp(eta_k(x))``, the
model's cumulative incidence for ``x``; R's ``survfit`` of a multi-state ``coxph`` takes the
matrix exponential of each step's hazards instead of ``1 - sum_k dH_k`` (``method``).
"""

import numpy as np

from .metrics import baseline_hazards
from .target import survival_data

__all__ = ["aalen_johansen", "aalen_johansen_from_hazards"]


def aalen_johansen_from_hazards(H, method="product"):
    """Cumulative incidences from cause-specific cumulative hazards on one time grid.

    Parameters
    ----------
    H : ndarray of shape (..., n_causes, n_times)
        Right-continuous cumulative hazards at the (ascending) event times.
    method : {"product", "exponential"}, default="product"
        The transition of each time step: "product" is the Aalen-Johansen product-limit
        ``1 - sum_k dH_k`` (R's ``survfit(Surv(time, factor(status)) ~ 1)``); "exponential" is
        the matrix exponential of the step's hazards, ``exp(-L)`` to stay event-free and
        ``dH_k / L (1 - exp(-L))`` to cause k, ``L = sum_k dH_k`` (R's ``survfit`` of a
        multi-state ``coxph``: probabilities stay in [0, 1] when ``exp(eta)`` is large).

    Returns
    -------
    ndarray of the shape of ``H``
        ``F_k`` at the same times.
    """
    if method not in ("product", "exponential"):
        raise ValueError(f"method must be 'product' or 'exponential'; got {method!r}.")
    H = np.asarray(H, dtype=np.float64)
    dH = np.diff(H, axis=-1, prepend=0.0)
    total = dH.sum(-2)
    if method == "product":
        stay, to = 1.0 - total, dH
    else:
        stay = np.exp(-total)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(total > 0, -np.expm1(-total) / np.where(total > 0, total, 1.0), 0.0)
        to = dH * frac[..., None, :]
    S = np.cumprod(stay, axis=-1)
    S_before = np.concatenate([np.ones(S.shape[:-1] + (1,)), S[..., :-1]], axis=-1)
    return np.cumsum(S_before[..., None, :] * to, axis=-1)


def aalen_johansen(y, n_causes, sample_weight=None, strata=None):
    """The nonparametric Aalen-Johansen cumulative incidence of each cause.

    Parameters
    ----------
    y : survival target
        (time, event) or (start, stop, event) with event codes 0 (censored) or ``1..n_causes``
        (delayed entry is allowed: the risk set at ``t`` holds the rows with
        ``start < t <= stop``).
    n_causes : int
    sample_weight : array-like of shape (n_samples,), default=None
    strata : array-like of shape (n_samples,), default=None
        One curve per stratum.

    Returns
    -------
    times : ndarray of shape (n_times,)
        Distinct event times (any cause, any stratum).
    incidence : ndarray of shape (n_strata, n_causes, n_times)
        ``F_k(t)`` per stratum (sorted stratum labels).
    survival : ndarray of shape (n_strata, n_times)
        ``S(t)``, the probability of no event by ``t``.
    """
    yy, _ = survival_data(y, strata, None, n_causes)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    times, H = baseline_hazards(yy, np.zeros((yy.shape[0], n_causes)), w, n_causes)
    F = aalen_johansen_from_hazards(H)
    return times, F, 1.0 - F.sum(1)
