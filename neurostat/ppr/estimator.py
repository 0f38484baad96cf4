"""Projection pursuit regression (Friedman & Stuetzle, 1981), fitted by Friedman's SMART algorithm.

A one-hidden-layer network ``b + sum_m v_m phi(w_m . x)`` is a projection pursuit regression
whose ridge functions all share the shape ``phi``; here each ridge function is a free smooth.
"""

from numbers import Integral, Real

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._compat import Interval, StrOptions, _fit_context
from .display import RidgeFunctionDisplay  # noqa: F401  (public in neurostat.ppr)
from .smoothers import _scale_sorted, _smart_spline, _supsmu_sorted

__all__ = ["ProjectionPursuitRegressor", "RidgeFunction", "RidgeFunctionDisplay"]

_N_PHD = 2  # principal Hessian directions tried as extra starts for each new term
_CUTMIN = 0.1  # smallest Gauss-Newton step-halving factor before giving up (R's cutmin)
_FDEL = 0.02  # derivative pooling width, as a fraction of twice the rank interquartile range
_BIG = 1e20  # SMART's "infinite" residual sum of squares (R's big); weights floor at 1 / _BIG


class RidgeFunction:
    """A fitted ridge function: linear interpolation of the smooth through its knots.

    Outside the knots it is constant at the end values, as ``predict.ppr`` in R.

    Parameters
    ----------
    knots : ndarray of shape (n_knots,)
        Sorted unique projections of the training data.
    values : ndarray of shape (n_knots,)
        The standardized smooth at the knots (weighted mean 0, weighted variance 1).
    """

    def __init__(self, knots, values):
        self.knots = knots
        self.values = values

    def __call__(self, z):
        return np.interp(np.asarray(z, dtype=float), self.knots, self.values)

    def __repr__(self):
        return f"RidgeFunction(n_knots={self.knots.size})"


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


def _sample_weight(sample_weight, n):
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


class _Smart:
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


class ProjectionPursuitRegressor(RegressorMixin, TransformerMixin, BaseEstimator):
    """Projection pursuit regression fitted by Friedman's SMART algorithm (as R's ``stats::ppr``).

    Parameters
    ----------
    n_terms : int, default=2
        Number of ridge terms in the final model.
    max_terms : int or None, default=None
        Number of terms fitted in the forward stage before pruning back to ``n_terms``;
        ``None`` means ``n_terms``.
    smoother : {"supsmu", "spline", "gcvspline"}, default="supsmu"
        Ridge-function smoother: Friedman's super smoother, a cubic smoothing spline with ``df``
        degrees of freedom, or one with the penalty chosen by GCV. The splines are R's ``ppr``
        splines: 15 cubic B-splines with knots at quantiles of the projections, and the
        penalty searched as R does (to a tolerance of 0.01 in R's ``spar``, so the trace is
        ``df`` within about 1%).
    span : float in [0, 1], default=0.0
        Super smoother span; 0 chooses it locally by cross-validation.
    bass : float in [0, 10], default=0.0
        Super smoother bass enhancement (larger is smoother).
    df : float, default=5
        Degrees of freedom (trace of the smoother) of each ridge function when
        ``smoother="spline"``.
    optlevel : {0, 1, 2, 3}, default=2
        How thoroughly terms are refitted when a term is added or dropped: 0 never; 1 refits
        ridge functions and loadings but not directions; 2 adds one Gauss-Newton step per
        direction and backfitting pass; 3 refits each direction to convergence.
    max_iter : int, default=20
        Most backfitting passes and Gauss-Newton steps per direction (R's ``maxit``/``mitone``).
    tol : float, default=0.005
        Relative decrease of the residual sum of squares below which iterations stop (R's ``conv``).
    random_state : int, RandomState instance or None, default=None
        Only used to draw a starting direction when least squares gives none.

    Attributes
    ----------
    directions_ : ndarray of shape (n_terms, n_features)
        Unit-norm projection directions, most important term first.
    ridge_functions_ : list of RidgeFunction
        Standardized ridge functions (weighted mean 0, variance 1 on the training data).
    beta_ : ndarray of shape (n_terms,) or (n_outputs, n_terms)
        Loadings of the ridge functions.
    intercept_ : float or ndarray of shape (n_outputs,)
        Weighted mean of the response.
    gofn_ : ndarray of shape (max_terms,)
        Residual sum of squares of the fitted model with ``m + 1`` terms at index ``m`` (0 below
        ``n_terms``), as R's ``gofn``: with weights, ``n_samples`` times the weighted mean of the
        squared residuals.
    n_terms_ : int
        Terms in the fitted model: ``n_terms``, or fewer when the data are fitted exactly earlier.
    n_iter_ : int
        Backfitting passes over all terms, summed over the forward and backward stages (at
        least 1).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X has string feature names.

    See Also
    --------
    neurostat.NeuralRegressor : the one-hidden-layer net, PPR with one shared ridge shape.
    RidgeFunctionDisplay : plots the ridge functions with partial residuals.

    Notes
    -----
    The model is :math:`\\hat y(x) = \\bar y + \\sum_{m=1}^M \\beta_m f_m(a_m^T x)`,
    :math:`\\|a_m\\| = 1`, fitted to minimize :math:`\\sum_i w_i (y_i - \\hat y(x_i))^2`.

    The fit is Friedman's SMART as R's ``ppr.f`` runs it, step for step (the tests compare
    every fitted value with R's to 1e-6). The forward stage adds terms one at a time up to
    ``max_terms``, each from the least-squares direction of the current residuals. A term's
    fit alternates smoothing the residuals against :math:`a^T x` with a Gauss-Newton step for
    :math:`a`: the smooth's derivative (difference quotients between neighbouring groups of
    projections, those closer than 0.04 interquartile ranges being pooled) linearizes
    :math:`f(a^T x)`, the step is the weighted least-squares fit of the residuals on the
    centred :math:`f'(a^T x)\\, x`, and a step that does not lower the residual sum of squares
    is shrunk to 1/2, 1/8 and 1/64 of itself (SMART's schedule) before the direction is kept.
    After each addition the ridge functions (not the directions) are refitted
    (``optlevel > 0``); adding stops early, once ``n_terms`` are in, when a term lowers the
    residual by less than ``tol``. All terms are then backfitted (``optlevel``; a
    refit is kept when it beats the residual at the start of the pass). The backward stage
    drops the least important term (smallest :math:`\\sum_k |\\beta_{km}|`), backfits and
    repeats down to ``n_terms``, recording the fit of each model size in ``gofn_``.

    SMART's least-squares start misses a ridge with no linear trend, such as a quadratic one.
    So each new term is also fitted from the two leading principal Hessian directions of the
    residuals (Li, 1992), which see such curvature. From the first term where one of them
    fits better than SMART's start, a second fit goes on with the best start for every new
    term; it replaces SMART's fit when its residual sum of squares is lower by more than the
    relative ``tol``. Where SMART's start is never beaten, the fit is SMART's alone.

    For several responses the term is :math:`\\beta_{km} f_m(a_m^T x)` with one direction and ridge
    function shared by all responses (Friedman, 1984).

    References
    ----------
    Friedman, J. H. and Stuetzle, W. (1981). Projection pursuit regression. JASA 76, 817-823.
    Friedman, J. H. (1984). SMART user's guide. Technical Report 1, Laboratory for Computational
    Statistics, Stanford University.
    Li, K.-C. (1992). On principal Hessian directions for data visualization and dimension
    reduction. JASA 87, 1025-1039.

    Examples
    --------
    >>> import numpy as np
    >>> from neurostat import ProjectionPursuitRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = np.tanh(X @ [0.6, 0.8, 0.0]) + 0.05 * rng.normal(size=200)
    >>> ppr = ProjectionPursuitRegressor(n_terms=1).fit(X, y)
    >>> bool(abs(ppr.directions_[0] @ [0.6, 0.8, 0.0]) > 0.99)
    True
    """

    _parameter_constraints = {
        "n_terms": [Interval(Integral, 1, None, closed="left")],
        "max_terms": [Interval(Integral, 1, None, closed="left"), None],
        "smoother": [StrOptions({"supsmu", "spline", "gcvspline"})],
        "span": [Interval(Real, 0, 1, closed="both")],
        "bass": [Interval(Real, 0, 10, closed="both")],
        "df": [Interval(Real, 2, None, closed="left")],
        "optlevel": [Interval(Integral, 0, 3, closed="both")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_terms=2,
        *,
        max_terms=None,
        smoother="supsmu",
        span=0.0,
        bass=0.0,
        df=5,
        optlevel=2,
        max_iter=20,
        tol=0.005,
        random_state=None,
    ):
        self.n_terms = n_terms
        self.max_terms = max_terms
        self.smoother = smoother
        self.span = span
        self.bass = bass
        self.df = df
        self.optlevel = optlevel
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : ProjectionPursuitRegressor
        """
        max_terms = self.n_terms if self.max_terms is None else self.max_terms
        if max_terms < self.n_terms:
            raise ValueError(f"max_terms={max_terms} must be at least n_terms={self.n_terms}")
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        w = _sample_weight(sample_weight, X.shape[0])
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        sw = w.sum()
        ybar = w @ Y / sw
        Yc = Y - ybar
        # one common scale for all responses, as in SMART: the root of the summed weighted
        # variances (SMART's start for a new term's loadings is not scale-invariant)
        ys = np.sqrt(w @ np.sum(Yc**2, axis=1) / sw)
        ys = ys if ys > 0 else 1.0
        smart = _Smart(X, Yc / ys, w, self, check_random_state(self.random_state))
        phd = _N_PHD > 0 and X.shape[1] > 1
        terms, gofn, asr = smart.run(self.n_terms, max_terms, self.optlevel,
                                     phd="probe" if phd else False)
        n_iter = smart.n_passes
        if smart.fork is not None:
            # the fit with the best of the starts for every new term, taken on from the first
            # term where a principal Hessian start wins; kept only when its final residual is
            # lower by more than tol, else the fit is SMART's (R's)
            alt = smart.run(self.n_terms, max_terms, self.optlevel, phd=True, fork=smart.fork)
            if alt[2] < asr * (1 - self.tol):
                terms, gofn, asr = alt
                n_iter = smart.n_passes
        order = np.argsort([-np.abs(t[2]).sum() for t in terms], kind="stable")
        terms = [terms[i] for i in order]
        self.directions_ = np.array([t[0] for t in terms]).reshape(len(terms), X.shape[1])
        B = np.array([t[2] for t in terms]).reshape(len(terms), Y.shape[1]).T * ys
        self.ridge_functions_ = []
        for a, f, _ in terms:
            z = X @ a
            knots, idx = np.unique(z, return_index=True)
            self.ridge_functions_.append(RidgeFunction(knots, f[idx]))
        self.beta_ = B[0] if y.ndim == 1 else B
        self.intercept_ = float(ybar[0]) if y.ndim == 1 else ybar
        self.gofn_ = gofn * ys**2
        self.n_terms_ = len(terms)
        self.n_iter_ = max(n_iter, 1)
        return self

    def transform(self, X):
        """Projections of X on the fitted directions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_terms)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.directions_.T

    def ridge_values(self, X):
        """Standardized ridge functions at X, before the loadings ``beta_`` are applied.

        Returns
        -------
        ndarray of shape (n_samples, n_terms)
        """
        Z = self.transform(X)
        cols = [f(Z[:, m]) for m, f in enumerate(self.ridge_functions_)]
        return np.column_stack(cols) if cols else np.zeros((Z.shape[0], 0))

    def predict(self, X):
        """Predict the response.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        F = self.ridge_values(X)
        return self.intercept_ + F @ np.asarray(self.beta_).T

