"""Friedman's SMART algorithm for projection pursuit regression (the fitting engine of
:class:`~neurostat.ppr.ProjectionPursuitRegressor`), following R's ``ppr`` step by step:
Gauss-Newton direction searches with R's step shrinking, the pooled derivative of each ridge
function, backfitting, the forward stage and pruning."""

import numpy as np
from scipy import linalg

from .smoothers import _scale_sorted, _smart_spline, _supsmu_sorted

_N_PHD = 2  # principal Hessian directions tried as extra starts for each new term
_CUTMIN = 0.1  # smallest Gauss-Newton step-halving factor before giving up (R's cutmin)
_FDEL = 0.02  # derivative pooling width, as a fraction of twice the rank interquartile range
_BIG = 1e20  # SMART's "infinite" residual sum of squares (R's big); weights floor at 1 / _BIG


def _pool(x, y, w, delta):
    """Friedman's pooling of sorted ``x`` for the derivative (SMART's ``pool``).

    Runs of tied x are blocks. Left to right, a block closer than ``delta`` to the next is
    merged with it unless that one is closer still to its own right neighbour, and the result
    is merged leftwards while its left neighbour is closer than ``delta``. A merge puts both at
    the mean x and y weighted by the end elements' weights (a pooled block's members all carry
    its total weight). Returns the pooled x and y of every element.
    """
    start = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    end = np.r_[start[1:], x.size] - 1
    bx, by = x[start].tolist(), y[start].tolist()
    bwf, bwl, bn = w[start].tolist(), w[end].tolist(), (end - start + 1).tolist()
    nb = len(bx)
    done = []  # finished blocks (x, y, first weight, last weight, size); pooled: equal weights
    k = 0
    while k < nb:
        cx, cy, cwf, cwl, cn = bx[k], by[k], bwf[k], bwl[k], bn[k]
        k += 1
        if k < nb and bx[k] - cx < delta:
            if k + 1 < nb and bx[k + 1] - bx[k] < bx[k] - cx:
                done.append((cx, cy, cwf, cwl, cn))
                continue  # the next block is closer to its right neighbour: pooled with it first
            wr = bwl[k]
            pw = cwf + wr
            cx, cy = (cx * cwf + bx[k] * wr) / pw, (cy * cwf + by[k] * wr) / pw
            cwf = cwl = pw
            cn += bn[k]
            k += 1
        while done and cx - done[-1][0] < delta:
            lx, ly, lwf, _, ln = done.pop()
            pw = lwf + cwl
            cx, cy = (lx * lwf + cx * cwl) / pw, (ly * lwf + cy * cwl) / pw
            cwf = cwl = pw
            cn += ln
        done.append((cx, cy, cwf, cwl, cn))
    ox, oy, _, _, on = zip(*done)
    return np.repeat(ox, on), np.repeat(oy, on)


def _derivative(zs, fs, ws):
    """Derivative of a smooth at sorted ``zs`` (Friedman's SMART): the points are pooled into
    groups at least ``2 * _FDEL`` rank-interquartile ranges wide, and each group gets the
    difference quotient between its two neighbouring groups (one-sided at the ends)."""
    n = zs.size
    if n < 2 or not zs[-1] > zs[0]:
        return np.zeros(n)
    px, pf = _pool(zs, fs, ws, 2 * _FDEL * _scale_sorted(zs))
    start = np.r_[True, px[1:] != px[:-1]]
    group = np.cumsum(start) - 1
    gx, gf = px[start], pf[start]
    if gx.size < 2:
        return np.zeros(n)
    lo = np.r_[0, np.arange(gx.size - 2), gx.size - 2]
    hi = np.r_[1, np.arange(2, gx.size), gx.size - 1]
    return ((gf[hi] - gf[lo]) / (gx[hi] - gx[lo]))[group]


def _conjugate_gradient(H, g):
    """``p`` conjugate-gradient steps from 0 for ``H x = g`` (exact for SPD ``H`` up to
    rounding; for a singular ``H`` the least-norm solution of a consistent system)."""
    x = np.zeros_like(g)
    r = -g
    h = r @ r
    if not h > 0:
        return x
    d = np.zeros_like(g)
    beta = 0.0
    for _ in range(g.size):
        d = beta * d - r
        Hd = H @ d
        t = Hd @ d
        if not t > 0:
            break
        alpha = h / t
        x = x + alpha * d
        r = r + alpha * Hd
        s = r @ r
        if not s > 0:
            break
        beta, h = s / h, s
    return x


def sample_weights(sample_weight, n):
    """Validated observation weights for a fit on ``n`` rows.

    Parameters
    ----------
    sample_weight : array-like of shape (n,), scalar or None
        None gives unit weights; a scalar is broadcast to every row.
    n : int

    Returns
    -------
    ndarray of shape (n,)
        Float64 weights, finite and non-negative with a positive sum.

    Raises
    ------
    ValueError
        For a wrong shape, a non-finite or negative weight, or weights that are all zero.
    """
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and non-negative")
    if w.sum() <= 0:
        raise ValueError("sample weights are all zero; at least one must be positive")
    return w


class Smart:
    """The SMART fitting state (Friedman 1984, as R's ``ppr.f``); lives only inside ``fit``.

    Terms are lists ``[a, f, b]``: unit direction, standardized ridge values at the training
    rows, loadings (one per response). ``R`` is the residual matrix (n, q) of the standardized
    responses.
    """

    def __init__(self, X, Y, w, est, rng):
        self.X, self.Y, self.w = X, Y, w
        self.sw = w.sum()
        self.ws = np.maximum(w, 1.0 / _BIG)  # the smoother's weights, floored as in SMART
        self.est, self.rng = est, rng
        self.conv, self.maxit = est.tol, est.max_iter
        self.n_passes = 0
        sm = est.smoother
        if sm == "supsmu":
            self.smooth_sorted = lambda z, t, ww: _supsmu_sorted(z, t, ww, est.span, est.bass)
        else:
            df = est.df if sm == "spline" else None
            self.smooth_sorted = lambda z, t, ww: _smart_spline(z, t, ww, df)

    # --- one ridge function along one direction
    def _smooth(self, a, t):
        z = self.X @ a
        order = np.argsort(z, kind="stable")
        zs = z[order]
        fs = self.smooth_sorted(zs, t[order], self.ws[order])
        g = np.empty_like(t)
        g[order] = fs
        return g, zs, fs, order

    def _direction(self, r, d):
        """Gauss-Newton step: weighted least squares of ``r`` on the centred ``d * x``."""
        D = self.X * d[:, None]
        C = D - self.w @ D / self.sw
        Cw = C * self.w[:, None]
        return _conjugate_gradient(Cw.T @ C / self.sw, Cw.T @ r / self.sw)

    def oneone(self, t, a, mitone, cutmin):
        """Direction and standardized ridge function for the target ``t`` by Gauss-Newton steps
        with step halving; ``a=None`` starts from the least-squares direction. Returns
        ``(a, f, asr)``, ``asr`` the weighted mean squared residual of the raw smooth."""
        p = self.X.shape[1]
        if a is None:
            a = np.ones(1) if p == 1 else self._direction(t, np.ones_like(t))
            if not np.linalg.norm(a) > 1e-12 * max(np.abs(t).max(), 1e-300):
                a = self.rng.standard_normal(p)  # no linear signal in the target at all
        a = a / np.linalg.norm(a)
        step = np.zeros(p)
        asr, it = _BIG, 0
        g = None
        while True:
            it += 1
            asr_old, cut = asr, 1.0
            while True:
                cand = a + step
                cand = cand / np.linalg.norm(cand)
                gc, zc, fc, oc = self._smooth(cand, t)
                s = self.ws @ (t - gc) ** 2 / self.sw
                if s < asr:
                    break
                cut *= 0.5  # SMART's schedule: the step becomes 1/2, 1/8, 1/64 of itself
                if cut < cutmin:
                    if g is None:  # not even the start's smooth is finite
                        a, g, asr = cand, gc, s
                    return a, self._standardize(g), asr
                step = step * cut
            asr, a, g = s, cand, gc
            if asr <= 0 or (asr_old - asr) / asr_old < self.conv or it > mitone or p <= 1:
                return a, self._standardize(g), asr
            d = np.empty_like(t)
            d[oc] = _derivative(zc, fc, self.ws[oc])
            step = self._direction(t - g, d)

    def _standardize(self, g):
        g = g - self.w @ g / self.sw
        v = self.w @ g**2 / self.sw
        return g / np.sqrt(v) if v > 0 else g

    def onetrm(self, a, b, R, mitone, cutmin):
        """One term for (possibly several) responses: alternate the combined target ``R b`` and
        the loadings. ``a=None`` starts from the least-squares direction. Returns
        ``(a, f, b, asr)``."""
        q = R.shape[1]
        asr, it = _BIG, 0
        while True:
            it += 1
            asr_old = asr
            a, f, _ = self.oneone(R @ b, a, mitone, cutmin)
            b = (self.w * f) @ R / self.sw
            asr = self.asr(R - np.outer(f, b))
            if q == 1 or it > self.maxit or asr <= 0 or (asr_old - asr) / asr_old < self.conv:
                return a, f, b, asr

    def starts(self, R, b):
        """Extra starting directions for a new term: the leading principal Hessian directions
        (Li, 1992) of the combined residual, which find curvature (such as a quadratic ridge)
        that SMART's least-squares start cannot see."""
        if not _N_PHD or self.X.shape[1] < 2:
            return []
        t = R @ b
        Xc = self.X - self.w @ self.X / self.sw
        sw = np.sqrt(self.w)
        coef = np.linalg.lstsq(Xc * sw[:, None], t * sw, rcond=None)[0]
        S = (Xc * self.w[:, None]).T @ Xc / self.sw
        r = t - Xc @ coef
        H = (Xc * (self.w * r)[:, None]).T @ Xc / self.sw
        try:
            vals, vecs = linalg.eigh(H, S)
        except (np.linalg.LinAlgError, ValueError):
            return []
        out = []
        for k in np.argsort(-np.abs(vals))[:_N_PHD]:
            c = vecs[:, k]
            norm = np.linalg.norm(c)
            if np.isfinite(norm) and norm > 1e-12:
                out.append(c / norm)
        return out

    def new_term(self, R, terms, phd):
        """A new term from SMART's least-squares start; with ``phd=True`` the best of it and the
        principal Hessian starts (lowest residual). ``phd="probe"`` keeps SMART's term but
        leaves in ``probe_win`` the principal Hessian one that would have won (or None)."""
        b0 = self._start_b(terms, R.shape[1])
        best = smart = self.onetrm(None, b0, R, self.maxit, _CUTMIN)
        for a in self.starts(R, b0) if phd else ():
            cand = self.onetrm(a, b0, R, self.maxit, _CUTMIN)
            if cand[3] < best[3]:
                best = cand
        if phd == "probe":
            self.probe_win = None if best is smart else best
            return smart
        return best

    @staticmethod
    def _start_b(terms, q):
        """SMART's starting loadings of a new term for ``q`` responses (R's ``newb``)."""
        if q == 1:
            return np.ones(1)
        if not terms:
            return np.arange(1.0, q + 1)
        s = np.sum([np.abs(t[2]) for t in terms], axis=0)
        b = s.sum() - s
        for t in terms[-(q - 1):] if len(terms) >= q else terms:  # the last q - 1 at most
            bl = t[2]
            b = b - (b @ bl) / np.sqrt(bl @ bl) * bl
        if np.all(np.abs(np.diff(b)) <= 1.0 / _BIG):
            b = np.arange(1.0, q + 1)
        return b

    def asr(self, R):
        """Average squared residual (SMART's ``asr``), the criterion every step minimizes.

        Parameters
        ----------
        R : ndarray of shape (n, q)
            Residuals of the standardized responses.

        Returns
        -------
        float
            ``sum_i w_i ||R_i||^2 / sum_i w_i``: the weighted mean over rows of the squared
            residuals summed over responses.
        """
        return self.w @ np.sum(R**2, axis=1) / self.sw

    def fulfit(self, terms, R, lbf, asr):
        """Backfit all terms (R's ``fulfit``): each term is refitted to the residual of the
        others and kept when the fit beats the pass's starting residual; ``lbf < 3`` limits
        each direction to ``lbf - 1`` full Gauss-Newton steps. Returns ``(R, asr)``."""
        if lbf <= 0 or not terms:
            return R, asr
        mitone, cutmin = (lbf - 1, 1.0) if lbf < 3 else (self.maxit, _CUTMIN)
        it = 0
        while True:
            it += 1
            self.n_passes += 1
            asr_old = asr
            for term in terms:
                a, f, b = term
                R = R + np.outer(f, b)
                new = self.onetrm(a, b, R, mitone, cutmin)
                if new[3] < asr_old:
                    term[:], asr = list(new[:3]), new[3]
                else:
                    asr = asr_old
                R = R - np.outer(term[1], term[2])
            if it > self.maxit or asr <= 0 or (asr_old - asr) / asr_old < self.conv:
                return R, asr

    def run(self, n_terms, max_terms, optlevel, phd=False, fork=None):
        """Forward and backward stages; returns ``(terms, gofn, asr)``.

        With ``phd="probe"`` the fit is SMART's, and ``fork`` is left holding the state where a
        principal Hessian start first beat SMART's start (None if none did): up to there the
        fit with ``phd=True`` is the same, so ``run(..., phd=True, fork=self.fork)`` takes it
        on from that state.
        """
        if fork is None:
            self.n_passes, self.fork = 0, None
            R, terms, asr, first = self.Y.copy(), [], _BIG, None
        else:
            R, terms, asr, self.n_passes, first = fork
            R, terms = R.copy(), [list(t) for t in terms]
        # forward stage (R's subfit): add terms, refitting ridge functions (not directions)
        while len(terms) < max_terms:
            if self.asr(R) <= 1e-14 * max(self.asr(self.Y), 1e-300):
                break  # fitted exactly: no further term
            asr_old = asr
            if first is not None:
                (a, f, b, asr), first = first, None
            else:
                a, f, b, asr = self.new_term(R, terms, phd)
                if phd == "probe" and self.fork is None and self.probe_win is not None:
                    self.fork = (R.copy(), [list(t) for t in terms], asr_old, self.n_passes,
                                 self.probe_win)
            R = R - np.outer(f, b)
            terms.append([a, f, b])
            if len(terms) == 1:
                continue
            if optlevel > 0:
                if len(terms) == max_terms:
                    break
                R, _ = self.fulfit(terms, R, 1, asr)
            if len(terms) >= n_terms and (asr <= 0 or (asr_old - asr) / asr_old < self.conv):
                break  # the last term gained less than tol: stop adding (n_terms are kept)
        R, asr = self.fulfit(terms, R, optlevel, asr)
        gofn = np.zeros(max_terms)
        gofn[len(terms) - 1] = self.asr(R) * self.X.shape[0]
        # backward stage: drop the least important term, backfit, down to n_terms
        while len(terms) > n_terms:
            imp = [np.abs(t[2]).sum() for t in terms]
            drop = int(np.argmin(imp))
            R = R + np.outer(terms[drop][1], terms[drop][2])
            terms[drop] = terms[-1]  # the last term takes the dropped one's place, as in SMART
            terms.pop()
            R, _ = self.fulfit(terms, R, optlevel, self.asr(R))
            gofn[len(terms) - 1] = self.asr(R) * self.X.shape[0]
        return terms, gofn, self.asr(R)


