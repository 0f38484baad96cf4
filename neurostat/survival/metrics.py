"""Survival predictions and scores: the Breslow baseline hazard and Harrell's concordance."""

import numpy as np


def breslow_baseline(time, event, eta, sample_weight=None):
    """Breslow's estimate of the baseline cumulative hazard ``H0(t)`` at the event times.

    ``dH0(t) = W_D(t) / sum_{t_j >= t} w_j exp(eta_j)`` (``W_D`` the weight of the events at
    ``t``), summed over event times ``<= t``; ``H(t | x) = H0(t) exp(eta(x))``. ``eta`` is the
    model's uncentred linear predictor, as statsmodels' ``PHReg.baseline_cumulative_hazard``
    and scikit-survival's ``BreslowEstimator`` use it (R and lifelines centre the covariates;
    ``H(t | x)`` is the same either way).

    Returns
    -------
    times : ndarray of shape (n_event_times,)
        Distinct event times, ascending.
    cumulative_hazard : ndarray of shape (n_event_times,)
    """
    time = np.asarray(time, dtype=np.float64)
    event = np.asarray(event, dtype=np.float64)
    eta = np.asarray(eta, dtype=np.float64).reshape(-1)
    w = np.ones_like(time) if sample_weight is None else np.asarray(sample_weight, np.float64)
    keep = w > 0
    time, event, eta, w = time[keep], event[keep], eta[keep], w[keep]
    shift = eta.max()
    r = w * np.exp(eta - shift)
    uniq, inv = np.unique(time, return_inverse=True)
    r_at = np.bincount(inv, weights=r, minlength=uniq.size)
    risk = np.cumsum(r_at[::-1])[::-1]  # sum over t_j >= t
    wd = np.bincount(inv, weights=w * event, minlength=uniq.size)
    has = np.bincount(inv, weights=event, minlength=uniq.size) > 0
    dh = np.exp(np.log(wd[has]) - np.log(risk[has]) - shift)
    return uniq[has], np.cumsum(dh)


def step_values(times, values, at):
    """Right-continuous step function through (times, values), 0 before the first time."""
    idx = np.searchsorted(times, np.asarray(at, dtype=np.float64), side="right")
    return np.concatenate([[0.0], values])[idx]


def _dense_rank(x, tol=0.0):
    """Ranks 0..k-1 of ``x`` with values closer than ``tol`` (consecutive in sorted order)
    sharing a rank."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new = np.concatenate([[True], np.diff(xs) > tol])
    rank = np.empty(x.size, dtype=np.int64)
    rank[order] = np.cumsum(new) - 1
    return rank


def _weight_after(rank, w, strict):
    """For each position i, ``sum_{j > i} w_j [rank_j < rank_i]`` (``<=`` if not strict).

    Bottom-up merge counting: at each level every left block is matched against its right
    neighbour with one global searchsorted on (block, rank) keys; O(n log^2 n).
    """
    n = rank.size
    out = np.zeros(n)
    pos = np.arange(n)
    big = np.int64(rank.max() + 2) if n else np.int64(1)
    width = 1
    while width < n:
        blk = pos // (2 * width)
        left = (pos % (2 * width)) < width
        rpos = pos[~left]
        key = blk[rpos] * big + rank[rpos]
        o = np.argsort(key, kind="stable")
        key = key[o]
        cw = np.concatenate([[0.0], np.cumsum(w[rpos][o])])
        lpos = pos[left]
        lo = np.searchsorted(key, blk[lpos] * big, side="left")
        hi = np.searchsorted(key, blk[lpos] * big + rank[lpos], side="left" if strict else "right")
        out[lpos] += cw[hi] - cw[lo]
        width *= 2
    return out


def concordance_index(time, event, risk, sample_weight=None, tied_tol=1e-8):
    """Harrell's concordance index of risk scores against right-censored times.

    A pair (i, j) is comparable when the shorter time is an event: ``t_i < t_j`` and ``d_i = 1``,
    or ``t_i = t_j`` with ``d_i = 1`` and ``d_j = 0`` (the censored one is known to outlive the
    event). It is concordant when ``risk_i > risk_j``; risks within ``tied_tol`` count one
    half. These are the conventions of scikit-survival's ``concordance_index_censored``. With
    weights a pair counts ``w_i w_j`` (so integer weights equal repeated rows). O(n log^2 n).

    Returns
    -------
    float
        Concordant pairs / comparable pairs, in [0, 1]; 0.5 for random risk scores.
    """
    time = np.asarray(time, dtype=np.float64)
    event = np.asarray(event, dtype=np.float64) > 0
    risk = np.asarray(risk, dtype=np.float64).reshape(-1)
    n = time.size
    if not (event.size == n and risk.size == n):
        raise ValueError(
            f"time, event and risk need the same length; got {n}, {event.size}, {risk.size}.")
    if not np.all(np.isfinite(risk)):
        raise ValueError("The risk scores contain NaN or infinity.")
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    rank = _dense_rank(risk, tied_tol)
    # order: time ascending, events before censored rows at the same time, rank ascending
    order = np.lexsort((rank, ~event, time))
    t, d, rk, wo = time[order], event[order], rank[order], w[order]
    lt = _weight_after(rk, wo, strict=True)
    le = _weight_after(rk, wo, strict=False)
    # rows after i with the same time, event status and rank are tied events, not comparable
    cell = np.concatenate([[True], (np.diff(t) != 0) | (np.diff(d) != 0) | (np.diff(rk) != 0)])
    cid = np.cumsum(cell) - 1
    cell_total = np.bincount(cid, weights=wo)
    incl = np.cumsum(wo) - np.concatenate([[0.0], np.cumsum(cell_total)])[cid]
    same_after = cell_total[cid] - incl
    # comparable partners of event i: later times, plus censored rows at its own time
    tail = np.cumsum(wo[::-1])[::-1] - wo  # weight of all rows after i
    grp = np.concatenate([[True], np.diff(t) != 0])
    gid = np.cumsum(grp) - 1
    ev_w = np.bincount(gid, weights=wo * d)
    ev_before = np.cumsum(wo * d) - np.concatenate([[0.0], np.cumsum(ev_w)])[gid]
    events_after_same_time = ev_w[gid] - ev_before  # includes nothing of i itself
    comparable = tail - events_after_same_time
    concordant = lt
    tied = le - lt - same_after
    num = np.sum(wo * d * (concordant + 0.5 * tied))
    den = np.sum(wo * d * comparable)
    if den <= 0:
        raise ValueError(
            "No comparable pairs: the concordance index needs at least one event observed "
            "before another observation's time."
        )
    return float(num / den)
