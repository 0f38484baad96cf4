"""Survival predictions and scores: the Breslow baseline hazard and Harrell's concordance."""

import numpy as np

from .target import columns


def breslow_baseline(time, event, eta, sample_weight=None):
    """Breslow's estimate of the baseline cumulative hazard ``H0(t)`` at the event times.

    ``dH0(t) = W_D(t) / sum_{t_j >= t} w_j exp(eta_j)`` (``W_D`` the weight of the events at
    ``t``), summed over event times ``<= t``; ``H(t | x) = H0(t) exp(eta(x))``. ``eta`` is the
    model's uncentred linear predictor, as statsmodels' ``PHReg.baseline_cumulative_hazard``
    and scikit-survival's ``BreslowEstimator`` use it (R and lifelines centre the covariates;
    ``H(t | x)`` is the same either way). :func:`baseline_hazards` is the general form
    (delayed entry, strata, competing causes).

    Returns
    -------
    times : ndarray of shape (n_event_times,)
        Distinct event times, ascending.
    cumulative_hazard : ndarray of shape (n_event_times,)
    """
    y = np.column_stack([np.asarray(time, np.float64), np.asarray(event, np.float64) > 0])
    times, H = baseline_hazards(y, np.asarray(eta, np.float64).reshape(-1, 1), sample_weight)
    return times, H[0, 0]


def baseline_hazards(y, eta, sample_weight=None, n_causes=1):
    """Breslow's baseline cumulative hazards per stratum and cause, for parsed targets.

    ``dH0_{s,k}(t) = W_{D,k}(t) / sum_{j in R_s(t)} w_j exp(eta_{jk})``: the weight of the
    cause-k events at ``t`` in stratum ``s`` over the risk of the stratum's rows with
    ``start < t <= stop`` (R's ``basehaz(fit, centered=FALSE)`` after a Breslow fit, per
    stratum; for several causes, R's multi-state ``coxph`` hazards).

    Parameters
    ----------
    y : ndarray of shape (n, 2) or (n, 4)
        ``(time, event)`` or ``(start, stop, event, stratum)`` (:mod:`~neurostat.survival.target`).
    eta : ndarray of shape (n, n_causes)
    sample_weight : ndarray of shape (n,) or None
    n_causes : int, default=1

    Returns
    -------
    times : ndarray of shape (n_times,)
        Distinct event times of any cause in any stratum, ascending.
    cumulative_hazard : ndarray of shape (n_strata, n_causes, n_times)
        Right-continuous ``H0`` at ``times`` (constant where a stratum has no event).
    """
    y = np.asarray(y, dtype=np.float64)
    start, stop, event, stratum = columns(y)
    eta = np.asarray(eta, dtype=np.float64).reshape(y.shape[0], -1)
    w = np.ones(y.shape[0]) if sample_weight is None else np.asarray(sample_weight, np.float64)
    keep = w > 0
    times = np.unique(stop[(event > 0) & keep])
    codes = np.zeros(y.shape[0], np.int64) if stratum is None else stratum.astype(np.int64)
    n_strata = int(codes.max()) + 1 if codes.size else 1
    H = np.zeros((n_strata, n_causes, times.size))
    for s in range(n_strata):
        rows = keep & (codes == s)
        if not rows.any():
            continue
        st = None if start is None else start[rows]
        H[s] = _stratum_hazards(st, stop[rows], event[rows], eta[rows], w[rows], times,
                                n_causes)
    return times, H


def _stratum_hazards(start, stop, event, eta, w, times, n_causes):
    shift = eta.max(0)
    r = w[:, None] * np.exp(eta - shift)  # (m, K)
    o = np.argsort(stop, kind="stable")
    rev = np.vstack([np.cumsum(r[o][::-1], 0)[::-1], np.zeros((1, r.shape[1]))])
    risk = rev[np.searchsorted(stop[o], times, side="left")]
    if start is not None:
        o2 = np.argsort(start, kind="stable")
        rev2 = np.vstack([np.cumsum(r[o2][::-1], 0)[::-1], np.zeros((1, r.shape[1]))])
        risk = risk - rev2[np.searchsorted(start[o2], times, side="left")]
    pos = np.searchsorted(times, stop)
    out = np.zeros((n_causes, times.size))
    for k in range(n_causes):
        ev = event == k + 1
        wd = np.bincount(pos[ev], weights=w[ev], minlength=times.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            dh = np.where(wd > 0, np.exp(np.log(np.where(wd > 0, wd, 1.0))
                                         - np.log(np.where(wd > 0, risk[:, k], 1.0))
                                         - shift[k]), 0.0)
        out[k] = np.cumsum(dh)
    return out


def interval_hazard(times, H, y):
    """``H0_{s,k}(stop_i) - H0_{s,k}(start_i)`` for each row (its own stratum), (n, n_causes):
    the baseline hazard accumulated while the row is at risk."""
    y = np.asarray(y, dtype=np.float64)
    start, stop, _, stratum = columns(y)
    codes = np.zeros(y.shape[0], np.int64) if stratum is None else stratum.astype(np.int64)
    Hp = np.concatenate([np.zeros(H.shape[:2] + (1,)), H], axis=2)  # 0 before the first time
    hi = np.searchsorted(times, stop, side="right")
    out = Hp[codes, :, hi]
    if start is not None:
        lo = np.searchsorted(times, np.where(np.isfinite(start), start, -np.inf), side="right")
        out = out - Hp[codes, :, lo]
    return out


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
    num, den = _concordance_counts(time, event, risk, w, tied_tol)
    if den <= 0:
        raise ValueError(
            "No comparable pairs: the concordance index needs at least one event observed "
            "before another observation's time."
        )
    return float(num / den)


def stratified_concordance(time, event, risk, strata=None, sample_weight=None, tied_tol=1e-8):
    """Harrell's concordance with pairs compared only within a stratum (R's ``concordance``
    of a stratified ``coxph``): the strata's concordant and comparable pair counts summed."""
    time = np.asarray(time, dtype=np.float64)
    event = np.asarray(event, dtype=np.float64) > 0
    risk = np.asarray(risk, dtype=np.float64).reshape(-1)
    if strata is None:
        return concordance_index(time, event, risk, sample_weight, tied_tol)
    if not np.all(np.isfinite(risk)):
        raise ValueError("The risk scores contain NaN or infinity.")
    w = np.ones(time.size) if sample_weight is None else np.asarray(sample_weight, np.float64)
    num = den = 0.0
    for s in np.unique(strata):
        rows = np.asarray(strata) == s
        a, b = _concordance_counts(time[rows], event[rows], risk[rows], w[rows], tied_tol)
        num, den = num + a, den + b
    if den <= 0:
        raise ValueError("No comparable pairs within any stratum.")
    return float(num / den)


def _concordance_counts(time, event, risk, w, tied_tol):
    """Weighted (concordant + ties / 2, comparable) pair counts of Harrell's C."""
    conc, comp, _, _ = _pair_sums(time, event, risk, w, w, tied_tol)
    return float(np.sum(w * conc)), float(np.sum(w * comp))


def _pair_sums(time, event, risk, u, v, tied_tol):
    """Per row k: as the event of a pair, the partner weight ``v`` of its concordant (ties
    one half) and comparable partners; as a partner, the event weight ``u`` of the events it
    is concordant and comparable with (Harrell's comparable pairs). O(n log^2 n)."""
    rank = _dense_rank(risk, tied_tol)
    order = np.lexsort((rank, ~event, time))
    t, d, rk = time[order], event[order].astype(float), rank[order]
    vo, uo = v[order], u[order] * d
    cell = np.concatenate([[True], (np.diff(t) != 0) | (np.diff(d) != 0) | (np.diff(rk) != 0)])
    cid = np.cumsum(cell) - 1
    grp = np.concatenate([[True], np.diff(t) != 0])
    gid = np.cumsum(grp) - 1

    def within(x, ids):  # weight of the rows before k in its cell/group (k excluded)
        total = np.bincount(ids, weights=x)
        start = np.concatenate([[0.0], np.cumsum(total)])[ids]
        return np.cumsum(x) - x - start, total[ids]

    lt = _weight_after(rk, vo, strict=True)
    le = _weight_after(rk, vo, strict=False)
    before_v, cell_v = within(vo, cid)
    same_after = cell_v - before_v - vo
    ev_before, ev_total = within(vo * d, gid)
    comp_e = (np.cumsum(vo[::-1])[::-1] - vo) - (ev_total - ev_before - vo * d)
    conc_e = lt + 0.5 * (le - lt - same_after)
    flipped = (rk.max() - rk)[::-1] if rk.size else rk  # earlier rows, larger rank first
    gt = _weight_after(flipped, uo[::-1], strict=True)[::-1]
    ge = _weight_after(flipped, uo[::-1], strict=False)[::-1]
    before_u, _ = within(uo, cid)
    conc_p = gt + 0.5 * (ge - gt - before_u)
    ev_before_u, _ = within(uo, gid)
    comp_p = (np.cumsum(uo) - uo) - d * ev_before_u
    out = np.empty((4, time.size))
    out[:, order] = np.vstack([d * conc_e, d * comp_e, conc_p, comp_p])
    return out
