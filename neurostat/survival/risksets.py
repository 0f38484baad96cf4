"""Risk sets of a survival target and the Cox partial likelihood over them (vectorized torch).

The risk set of an event at time ``t`` in stratum ``s`` holds the rows of stratum ``s`` with
``start < t <= stop`` (``start = -inf`` for right-censored data). Rows are sorted by
(stratum, stop); the sum over a risk set is the sum over the rows of the stratum with
``stop >= t`` minus those with ``start >= t`` (which all have ``stop > t``): two reverse
cumulative sums, the second over the rows sorted by (stratum, start), computed in the log
domain for the loss (stable in float32) and in the linear domain, shifted by the largest
``eta``, for the information and the score residuals (float64). R's ``coxph`` (``agreg``)
forms its risk sets the same way. Strata are contiguous segments of the sorted rows; a
segmented reverse log-cumsum-exp keeps each stratum's sums exact.
"""

import torch

from .target import columns

TIES = ("efron", "breslow")


def _rev_cumsum(x):
    """``out[i] = sum_{m >= i} x[m]`` along dim 0, with ``out[n] = 0`` appended."""
    c = torch.flip(torch.cumsum(torch.flip(x, (0,)), 0), (0,))
    return torch.cat([c, torch.zeros((1,) + tuple(x.shape[1:]), dtype=x.dtype,
                                     device=x.device)])


class _Segments:
    """Contiguous segments (strata) of a sorted vector, for segmented reverse scans."""

    def __init__(self, seg_ids):
        n = seg_ids.shape[0]
        _, counts = torch.unique_consecutive(seg_ids, return_counts=True)
        self.k = counts.numel()
        if self.k <= 1:
            return
        dev = seg_ids.device
        starts = torch.cumsum(counts, 0) - counts
        self.sid = torch.repeat_interleave(torch.arange(self.k, device=dev), counts)
        self.pos = torch.arange(n, device=dev) - starts[self.sid]
        self.width = int(counts.max())
        self.padded = self.k * self.width <= 4 * n + 4096
        self.bounds = list(zip(starts.tolist(), counts.tolist()))

    def rev_logcumsumexp(self, a):
        """``log sum_{m >= i, m in the segment of i} exp(a_m)``."""
        if self.k <= 1:
            return torch.flip(torch.logcumsumexp(torch.flip(a, (0,)), 0), (0,))
        if self.padded:
            # pad far below every entry (exp underflows to exactly 0) rather than with -inf,
            # whose second derivatives through logcumsumexp are not finite
            pad = float(a.detach().min()) - 1000.0 if a.numel() else 0.0
            M = a.new_full((self.k, self.width), pad)
            M = M.index_put((self.sid, self.pos), a)
            R = torch.flip(torch.logcumsumexp(torch.flip(M, (1,)), 1), (1,))
            return R[self.sid, self.pos]
        return torch.cat([torch.flip(torch.logcumsumexp(torch.flip(a[s:s + c], (0,)), 0), (0,))
                          for s, c in self.bounds])


class _Events:
    """The events of one cause in sorted order: indicators, Efron's ranks and tie sizes."""

    def __init__(self, code, event_sorted, w, first):
        d = (event_sorted == code).to(event_sorted.dtype)
        n = d.shape[0]
        self.d = d
        cs = torch.cumsum(d, 0)
        self.rank = (cs - d - (cs[first] - d[first])) * d
        zeros = torch.zeros(n, dtype=d.dtype, device=d.device)
        self.n_tied = zeros.index_add(0, first, d)[first]
        self.wd = d if w is None else w * d
        self.w_tied = zeros.index_add(0, first, self.wd)[first]
        self.ev = torch.nonzero(d > 0)[:, 0]

    def coefficients(self, ties):
        """Per sorted row: ``c`` (weight of its log-denominator term) and ``a`` (Efron's l/d),
        both zero for rows that are not events of this cause."""
        if ties == "breslow":
            return self.wd, torch.zeros_like(self.wd)
        dg = self.n_tied.clamp(min=1)
        return self.d * self.w_tied / dg, self.rank / dg


class RiskSets:
    """Sorted risk-set structure of one fixed survival target (torch tensors).

    Parameters
    ----------
    y : tensor of shape (n, 2) or (n, 4)
        ``(time, event)`` or ``(start, stop, event, stratum)`` (:mod:`neurostat.survival.target`;
        times may be any order-preserving code).
    weight : tensor of shape (n,) or None
        Rows of weight 0 are in no risk set.
    n_causes : int, default=1
        Event codes ``1..n_causes``; ``causes[k]`` holds the events of cause ``k + 1``.

    Attributes
    ----------
    order : tensor
        Kept rows sorted by (stratum, stop).
    first : tensor
        For each sorted row, the first sorted position of its (stratum, stop) group: the
        risk set of an event at sorted position i starts at ``first[i]`` (then minus the rows
        that enter later).
    """

    def __init__(self, y, weight=None, n_causes=1):
        self.keep = None
        if weight is not None and not bool((weight > 0).all()):
            self.keep = weight > 0
            y, weight = y[self.keep], weight[self.keep]
        start, stop, event, stratum = columns(y)
        n, dev = stop.shape[0], stop.device
        self.n = n
        both = stop if start is None else torch.cat([start, stop])
        _, inv = torch.unique(both, return_inverse=True)
        width = int(inv.max()) + 2 if n else 1
        s = torch.zeros(n, dtype=torch.long, device=dev) if stratum is None else stratum.long()
        kstop = s * width + inv[-n:]
        self.order = torch.argsort(kstop, stable=True)
        ks = kstop[self.order]
        self.first = torch.searchsorted(ks, ks, side="left")
        s_sorted = s[self.order]
        self.end = torch.searchsorted(ks, (s_sorted + 1) * width, side="left")
        seg_start = torch.searchsorted(ks, s_sorted * width, side="left")
        self.segments = _Segments(s_sorted)
        self.w = None if weight is None else weight[self.order]
        self.entry = start is not None
        if self.entry:
            kstart = s * width + inv[:n]
            order2 = torch.argsort(kstart, stable=True)
            kb = kstart[order2]
            rank_of = torch.empty_like(self.order)
            rank_of[self.order] = torch.arange(n, device=dev)
            self.perm2 = rank_of[order2]  # start-sorted position -> stop-sorted position
            end2 = torch.searchsorted(kb, (s_sorted + 1) * width, side="left")
            self.q = torch.minimum(torch.searchsorted(kb, ks, side="left"), end2)
            self.end2 = end2
            self.segments2 = _Segments(s[order2])
            # the last group (same stratum) with stop <= this row's start: groups up to it
            # are before the row enters
            p = torch.searchsorted(ks, kstart[self.order], side="right") - 1
            self.lo = torch.maximum(p, seg_start - 1)
        else:
            self.lo = seg_start - 1
        ev_sorted = event[self.order]
        self.causes = [_Events(float(k), ev_sorted, self.w, self.first)
                       for k in range(1, n_causes + 1)]

    def sort(self, eta):
        """``eta`` (n,) restricted to kept rows and put in sorted order."""
        eta = eta.reshape(-1)
        if self.keep is not None:
            eta = eta[self.keep]
        return eta[self.order]

    def log_risk_at_events(self, a, ev):
        """``log S`` of each event's risk set, for sorted log risk ``a = eta + log w``."""
        la = self.segments.rev_logcumsumexp(a)[self.first[ev]]
        if not self.entry:
            return la
        lb = self.segments2.rev_logcumsumexp(a[self.perm2])
        q = self.q[ev]
        lb = torch.where(q < self.end2[ev], lb[q.clamp(max=max(self.n - 1, 0))],
                         torch.full_like(la, float("-inf")))
        return la + torch.log1p(-torch.exp(lb - la))

    def between(self, cum_at_positions):
        """``C(stop_j) - C(start_j)`` for each sorted row j, for per-group values placed at
        group positions (shape (n,) or (n, p)): the sum over the event groups of its stratum
        while the row is at risk."""
        c = torch.cumsum(cum_at_positions, 0)
        c = torch.cat([torch.zeros((1,) + tuple(c.shape[1:]), dtype=c.dtype, device=c.device), c])
        pos = torch.arange(self.n, device=c.device)
        return c[pos + 1] - c[self.lo + 1]

    def risk_sums(self, x):
        """``sum_{m in R(t_i)} x_m`` for each sorted row i (its own time's risk set)."""
        R = _rev_cumsum(x)
        out = R[self.first] - R[self.end]
        if self.entry:
            R2 = _rev_cumsum(x[self.perm2])
            out = out - (R2[self.q] - R2[self.end2])
        return out


def cause_loglik(eta, rs, events, ties):
    """Weighted log partial likelihood of one cause for its linear predictor ``eta`` (n,)."""
    e = rs.sort(eta)
    a = e if rs.w is None else e + torch.log(rs.w)
    ev = events.ev
    log_s = rs.log_risk_at_events(a, ev)
    c, frac = events.coefficients(ties)
    term = log_s
    if ties == "efron":
        # S_D / S for each event's time: each event's share r_k / S <= 1, summed per time
        share = torch.exp(a[ev] - log_s)
        grp = rs.first[ev]
        q = torch.zeros(rs.n, dtype=a.dtype, device=a.device).index_add(0, grp, share)[grp]
        term = log_s + torch.log1p(-frac[ev] * q)
    return (events.wd * e).sum() - (c[ev] * term).sum()


def partial_loglik(eta, time, event, weight=None, ties="efron", risk_sets=None):
    """Weighted log partial likelihood of right-censored data (a scalar tensor,
    differentiable in ``eta``).

    Parameters
    ----------
    eta : tensor of shape (n,) or (n, 1)
    time, event : tensors of shape (n,)
    weight : tensor of shape (n,) or None
    ties : {"efron", "breslow"}
    risk_sets : RiskSets, optional
        Precomputed structure for this (time, event, weight).
    """
    rs = RiskSets(torch.stack([time, event], 1), weight) if risk_sets is None else risk_sets
    return cause_loglik(eta, rs, rs.causes[0], ties)
