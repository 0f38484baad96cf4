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
from .target import _columns, _numeric, as_survival_target, survival_data

__all__ = ["aalen_johansen", "aalen_johansen_from_hazards", "fine_gray_data"]


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


def fine_gray_data(y, cause=1, sample_weight=None):
    """Fine & Gray's weighted (start, stop] data for the subdistribution hazard of ``cause``.

    The Fine-Gray model is a Cox model for the subdistribution hazard of one cause, whose
    risk set at ``t`` keeps the subjects who failed from another cause before ``t``, with
    weight ``G(t-) / G(T_i-)`` (``G`` the censoring Kaplan-Meier, events before censorings at
    tied times). As R's ``finegray()``, each such subject gets one row up to its failure and
    then rows over the intervals between the censoring times, each carrying the weight of its
    start; intervals without an event of ``cause`` are merged with the one before. Fit the
    result with any ``NeuralCoxRegressor``: ``fit(X[rows], y_fg, sample_weight=w,
    groups=rows)`` equals R's ``coxph(Surv(fgstart, fgstop, fgstatus) ~ ., weight = fgwt,
    data = finegray(...))``, and ``cov_type="cluster"`` is its ``cluster(id)`` variance.

    Parameters
    ----------
    y : (time, event) target with event codes 0 (censored) or ``1..K``
    cause : int, default=1
    sample_weight : array-like of shape (n_samples,), default=None
        Multiplies the Fine-Gray weights (R's ``weights``).

    Returns
    -------
    rows : ndarray of int
        The subject (row of ``y``) of each expanded row.
    y_fg : ndarray of shape (n_rows, 3)
        (start, stop, event): event 1 for the events of ``cause``.
    weight : ndarray of shape (n_rows,)
    """
    from .scores import censoring_survival

    _, _, codes = _columns(y)
    yy = as_survival_target(y, n_causes=max(int(np.max(_numeric(codes, "events"))), 1))
    if yy.shape[1] != 2:
        raise ValueError("fine_gray_data takes (time, event) data without entry times.")
    time, event = yy[:, 0], yy[:, 1]
    if not np.any(event == cause):
        raise ValueError(f"No event of cause {cause}.")
    n = time.size
    w0 = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    ctimes, G = censoring_survival(np.column_stack([time, event > 0]))
    jumps = np.concatenate([[True], np.diff(np.concatenate([[1.0], G])) < 0][1:])
    ctimes, G = ctimes[jumps], G[jumps]
    ev_times = np.unique(time[event == cause])
    # a cut at censoring time c_k is kept when (c_k, c_{k+1}] holds an event of the cause
    nxt = np.concatenate([ctimes[1:], [np.inf]])
    has_ev = np.searchsorted(ev_times, nxt, side="right") > np.searchsorted(
        ev_times, ctimes, side="right")
    cuts, cutG = ctimes[has_ev], G[has_ev]
    maxtime = time.max()
    rows, start, stop, status, wt = [np.arange(n)], [np.zeros(n)], [time], \
        [(event == cause).astype(float)], [w0]
    other = np.flatnonzero((event > 0) & (event != cause))
    G_before = np.concatenate([[1.0], G])[np.searchsorted(ctimes, time[other], side="left")]
    G_at = np.concatenate([[1.0], G])[np.searchsorted(ctimes, time[other], side="right")]
    for i, t, gb, ga in zip(other, time[other], G_before, G_at, strict=True):
        after = cuts > t
        b = np.concatenate([[t], cuts[after]])
        e = np.concatenate([cuts[after], [maxtime]])
        g = np.concatenate([[ga], cutG[after]]) / gb
        keep = e > b
        rows.append(np.full(keep.sum(), i))
        start.append(b[keep]), stop.append(e[keep])
        status.append(np.zeros(keep.sum())), wt.append(w0[i] * g[keep])
    rows = np.concatenate(rows)
    order = np.argsort(rows, kind="stable")
    y_fg = np.column_stack([np.concatenate(start), np.concatenate(stop),
                            np.concatenate(status)])[order]
    return rows[order], y_fg, np.concatenate(wt)[order]
