"""Residuals and the calibration table of a fit to data held in chunks.

The residuals are lazy dask arrays, row by row as in memory. The calibration table is the
in-memory one exactly (:func:`neurostat.engine.calibration.calibration_table`: rows sorted by
predicted probability, stable, split into bins of equal count), computed in three passes over
the chunks without a global sort and without anything of size n reaching the client:

1. each chunk sorts its probabilities and returns every ``s``-th order statistic (``SAMPLES``
   of them, ``s = ceil(n_c / SAMPLES)``). These bound, for any value ``v``, how many rows of
   the chunk lie below it, to within ``s``; so for each bin boundary (a global rank ``r``) the
   client finds two values ``L <= v_r <= U`` between which only about ``4 n / SAMPLES`` rows
   lie;
2. each chunk returns its counts below ``L`` and equal to ``L`` and ``U`` and its values
   strictly between: the client then knows the boundary's value ``v_r`` and, since the stable
   sort orders ties by position, in which chunk and at which of that chunk's ties it falls;
3. each chunk assigns its rows to bins by these keys and returns per bin the count, the sums
   of the probability and of the outcome, and the smallest and largest probability.
"""

import numpy as np

from ..engine.calibration import hosmer_lemeshow_table, probability_and_hit
from .chunks import SPLIT_EVERY, _dask, per_chunk

#: order statistics each chunk returns in the first pass (the bracket holds ~4 n / SAMPLES rows)
SAMPLES = 4096


def _residual_block(eta, y, w, *, family):
    import torch

    et = torch.from_numpy(np.ascontiguousarray(eta, dtype=np.float64))
    yt = torch.as_tensor(np.asarray(y))
    wt = None if w is None else torch.as_tensor(np.asarray(w), dtype=torch.float64)
    dev, pear = family.residuals(et, yt, wt)
    dev, pear = np.asarray(dev, np.float64), np.asarray(pear, np.float64)
    return np.concatenate([dev.reshape(len(eta), -1), pear.reshape(len(eta), -1)], axis=1)


def residuals(lik, eta):
    """``(deviance, pearson)`` residuals at the lazy linear predictor ``eta``: lazy dask
    arrays with the row chunks of the data, of the shape the family gives in memory."""
    import torch

    _, da = _dask()
    k = eta.shape[1]
    y0 = np.zeros((0,) + tuple(lik.y.shape[1:]), dtype=lik.y.dtype)
    d0, _ = lik.family.residuals(torch.zeros(0, k, dtype=torch.float64), torch.as_tensor(y0),
                                 None)
    shape = tuple(np.asarray(d0).shape[1:])
    m = int(np.prod(shape)) if shape else 1
    args = [eta, "ij", lik.y, "i" if lik.y.ndim == 1 else "ik"]
    fn, kw = _residual_block, {"family": lik.family}
    if lik.w is None:
        def fn(e, y, **kw):  # noqa: E306 - the weights' absence is a different signature
            return _residual_block(e, y, None, **kw)
    else:
        args += [lik.w, "i"]
    out = da.blockwise(fn, "ir", *args, new_axes={"r": 2 * m}, concatenate=True,
                       dtype=np.float64, meta=np.empty((0, 0)), **kw)
    dev, pear = out[:, :m], out[:, m:]
    if shape == ():
        return dev[:, 0], pear[:, 0]
    return dev, pear


# ---------------------------------------------------------------------- the calibration table
def _order_statistics(mu, y, samples):
    p = np.sort(probability_and_hit(y, mu)[0], kind="stable")
    s = max(1, -(-len(p) // samples))
    return len(p), s, p[::s]


def _count_bounds(samples, cand, right):
    """Lower and upper bounds on the chunks' total count of rows ``< v`` (``<= v`` when
    ``right``) for every value ``v`` of ``cand``, from their every-``s``-th order
    statistics (a chunk's count is known to within its ``s``)."""
    lo = np.zeros(len(cand), dtype=np.int64)
    hi = np.zeros(len(cand), dtype=np.int64)
    for n_c, s, q in samples:
        j = np.searchsorted(q, cand, side="right" if right else "left")
        lo += np.where(j == 0, 0, (j - 1) * s + 1)
        hi += np.where(j < len(q), j * s, n_c)
    return lo, hi


def _brackets(samples, ranks):
    """For each global (0-based) rank ``r``: values ``L <= v_r <= U`` around the value of
    that rank, ``L`` the largest candidate with surely at most ``r`` rows below it, ``U`` the
    smallest with surely ``r + 1`` rows at or below it."""
    cand = np.unique(np.concatenate([q for _, _, q in samples]))
    below_hi = _count_bounds(samples, cand, False)[1]  # nondecreasing in v
    upto_lo = _count_bounds(samples, cand, True)[0]
    out = []
    for r in ranks:
        i = int(np.searchsorted(below_hi, r, side="right")) - 1
        j = int(np.searchsorted(upto_lo, r + 1, side="left"))
        out.append((cand[i] if i >= 0 else -np.inf, cand[j] if j < len(cand) else np.inf))
    return out


def _bracket_counts(mu, y, *, brackets):
    p = probability_and_hit(y, mu)[0]
    return [(int(np.sum(p < L)), int(np.sum(p == L)), int(np.sum(p == U)),
             np.sort(p[(p > L) & (p < U)])) for L, U in brackets]


def _boundary_key(r, L, U, parts):
    """``(v, c, k)``: the row of global rank ``r`` has value ``v`` and is the k-th (0-based,
    by position) of the rows equal to ``v`` in chunk ``c``."""
    below = sum(q[0] for q in parts)
    eq_L = np.array([q[1] for q in parts])
    inner = np.sort(np.concatenate([q[3] for q in parts]))
    k = r - below
    if k < eq_L.sum():
        v, per_chunk_eq = L, eq_L
    else:
        k -= eq_L.sum()
        if k < len(inner):
            v = inner[k]
            k -= int(np.searchsorted(inner, v, side="left"))
            per_chunk_eq = np.array([np.sum(q[3] == v) for q in parts])
        else:
            k -= len(inner)
            v, per_chunk_eq = U, np.array([q[2] for q in parts])
    cum = np.cumsum(per_chunk_eq)
    c = int(np.searchsorted(cum, k, side="right"))
    return float(v), c, int(k - (cum[c - 1] if c else 0))


def _chunk_index(yb, block_id=None):
    return np.full(len(yb), block_id[0], dtype=np.int64)


def _bin_block(mu, y, chunk, *, keys, n_bins):
    p, hit = probability_and_hit(y, mu)
    c = int(np.asarray(chunk)[0]) if len(p) else -1  # an empty chunk adds nothing
    b = np.zeros(len(p), dtype=np.int64)
    for v, cb, kb in keys:  # rows at or after each boundary move up one bin
        after = p > v
        eq = p == v
        if cb < c:
            after |= eq
        elif cb == c:
            after |= eq & (np.cumsum(eq) - 1 >= kb)
        b += after
    out = np.empty((n_bins, 5))
    out[:, 0] = np.bincount(b, minlength=n_bins)
    out[:, 1] = np.bincount(b, weights=p, minlength=n_bins)
    out[:, 2] = np.bincount(b, weights=hit, minlength=n_bins)
    out[:, 3], out[:, 4] = np.inf, -np.inf
    np.minimum.at(out[:, 3], b, p)
    np.maximum.at(out[:, 4], b, p)
    return out.ravel()


def calibration_table(y, mu, n_bins=10, samples=SAMPLES):
    """:func:`neurostat.engine.calibration.calibration_table` of dask arrays ``y`` (encoded
    labels) and ``mu`` (fitted probabilities, the same row chunks): the same bins, exactly.

    ``samples`` order statistics per chunk bound the boundaries' brackets (module
    docstring); fewer make smaller first-pass results and larger second-pass ones."""
    import dask

    _, da = _dask()
    n = int(mu.shape[0])
    if n == 0:
        raise ValueError("The calibration table needs at least one row.")
    n_bins = min(n_bins, n)
    mu_b, y_b = mu.to_delayed().ravel(), y.to_delayed().ravel()
    order = dask.compute(*[dask.delayed(_order_statistics)(m, t, samples)
                           for m, t in zip(mu_b, y_b)])
    order = [q for q in order if q[0]]  # the non-empty chunks' (n_c, s, order statistics)
    size, extra = divmod(n, n_bins)  # np.array_split: the first `extra` bins one row longer
    starts = np.cumsum([size + 1] * extra + [size] * (n_bins - extra))[:-1]
    brackets = _brackets(order, [int(r) for r in starts])
    parts = dask.compute(*[dask.delayed(_bracket_counts)(m, t, brackets=brackets)
                           for m, t in zip(mu_b, y_b)])
    keys = [_boundary_key(int(r), L, U, [q[i] for q in parts])
            for i, (r, (L, U)) in enumerate(zip(starts, brackets))]
    chunk_id = y.map_blocks(_chunk_index, dtype=np.int64)  # built on the workers
    S = per_chunk(_bin_block, 5 * n_bins, [mu, y, chunk_id], keys=keys, n_bins=n_bins)
    tot, lo, hi = dask.compute(S.sum(axis=0, split_every=SPLIT_EVERY), S.min(axis=0),
                               S.max(axis=0))
    tot, lo, hi = (a.reshape(n_bins, 5) for a in (tot, lo, hi))
    rows = [(int(t[0]), t[1] / t[0], t[2] / t[0], a[3], b[4]) for t, a, b in zip(tot, lo, hi)]
    return hosmer_lemeshow_table(rows)
