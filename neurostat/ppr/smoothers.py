"""Scatterplot smoothers for projection pursuit: Friedman's super smoother and a smoothing spline.

All smoothers take ``x``, ``y`` and optional case weights ``w`` and return the fitted values at
``x``. The running-line smooths are vectorized with cumulative sums: every window sum is a
difference of two prefix sums, so a smooth costs a few O(n) numpy passes rather than a Python
loop over the window updates of Friedman's Fortran.
"""

import functools

import numpy as np
from scipy import linalg, optimize
from scipy.interpolate import BSpline, make_smoothing_spline

__all__ = ["running_line", "supsmu", "smoothing_spline", "gcv_spline", "spline_df"]

# Friedman's (1984) tweeter, midrange and woofer spans, as fractions of n.
SPANS = (0.05, 0.2, 0.5)
_BIG, _SML, _EPS = 1e20, 1e-7, 1e-3


def _as_xyw(x, y, w):
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"x and y must be 1-d of the same length, got {x.shape} and {y.shape}")
    if w is None:
        w = np.ones_like(x)
    else:
        w = np.asarray(w, dtype=float).ravel()
        if w.shape != x.shape:
            raise ValueError(f"w must have shape {x.shape}, got {w.shape}")
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError("weights w must be finite and non-negative")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite")
    return x, y, w


def _tie_average(x, values, w):
    """Replace the values at tied (sorted) x by their weighted mean, as supsmu does."""
    if x.shape[0] < 2 or np.all(np.diff(x) > 0):
        return values
    start = np.r_[True, np.diff(x) > 0]
    group = np.cumsum(start) - 1
    ng = group[-1] + 1
    sw = np.bincount(group, weights=w, minlength=ng)
    out = np.empty_like(values)
    for k in range(values.shape[0]):
        swy = np.bincount(group, weights=w * values[k], minlength=ng)
        safe = np.where(sw > 0, sw, 1.0)
        avg = np.where(sw > 0, swy / safe, values[k][np.searchsorted(group, np.arange(ng))])
        out[k] = avg[group]
    return out


@functools.lru_cache(maxsize=64)
def _windows(n, span):
    """Index windows [lo, lo + k) of Friedman's running lines (fixed size, shifted at the ends)."""
    ibw = max(int(0.5 * span * n + 0.5), 2)
    k = min(2 * ibw + 1, n)
    lo = np.clip(np.arange(n) - ibw, 0, n - k)
    lo.flags.writeable = False
    return lo, lo + k


def _prefix(a):
    """Prefix sums with a leading 0: every window sum is a difference of two entries."""
    out = np.zeros(a.shape[:-1] + (a.shape[-1] + 1,))
    np.cumsum(a, axis=-1, out=out[..., 1:])
    return out


class _Lines:
    """Running-line smooths on one sorted ``x`` with weights ``w``.

    The x-only window statistics (weight, mean, spread, leverage) are computed once per span
    and reused by every smooth on the same x, as the super smoother's four stages are.
    """

    def __init__(self, x, w, vsmlsq):
        self.x, self.w, self.n, self.vsmlsq = x, w, x.shape[0], vsmlsq
        sw = w.sum()
        self.xc = x - (w @ x / sw if sw > 0 else x.mean())
        self.wxc = w * self.xc
        self.cw, self.cx, self.cxx = _prefix(w), _prefix(self.wxc), _prefix(self.wxc * self.xc)
        self.ties = self.n > 1 and not np.all(np.diff(x) > 0)
        self._stats = {}

    def stats(self, span):
        if span not in self._stats:
            lo, hi = _windows(self.n, span)
            sw = self.cw[hi] - self.cw[lo]
            safe = np.where(sw > 0, sw, 1.0)
            xm = (self.cx[hi] - self.cx[lo]) / safe
            var = (self.cxx[hi] - self.cxx[lo]) - sw * xm * xm
            ok = var > self.vsmlsq
            ivar = np.where(ok, 1.0 / np.where(ok, var, 1.0), 0.0)
            dx = self.xc - xm
            h = np.where(sw > 0, 1.0 / safe, 0.0) + dx * dx * ivar
            self._stats[span] = (lo, hi, sw, safe, xm, ivar, dx, h)
        return self._stats[span]

    def smooth(self, Y, spans, cv=False):
        """Local linear fits of each row of ``Y`` (s, n), row i with ``spans[i]``.

        Returns the smooths (s, n) and, when ``cv``, the absolute leave-one-out residuals.
        """
        Y = np.atleast_2d(Y)
        st = [self.stats(s) for s in spans]
        if len(set(spans)) == 1:
            lo, hi, sw, safe, xm, ivar, dx, h = st[0]
        else:
            lo, hi, sw, safe, xm, ivar, dx, h = (np.stack(z) for z in zip(*st, strict=True))
        rows = np.arange(Y.shape[0])[:, None]
        cy, cxy = _prefix(self.w * Y), _prefix(self.wxc * Y)
        ym = (cy[rows, hi] - cy[rows, lo]) / safe
        cvar = (cxy[rows, hi] - cxy[rows, lo]) - sw * xm * ym
        raw = ym + cvar * ivar * dx
        smo = _tie_average(self.x, raw, self.w) if self.ties else raw
        if not cv:
            return smo, None
        denom = 1.0 - self.w * h
        good = denom > 0
        # residuals before tie averaging, as in Friedman's code
        acvr = np.where(good, np.abs(Y - raw) / np.where(good, denom, 1.0), 0.0)
        if not good.all():  # carry the previous point's value forward, as Friedman does
            good = np.broadcast_to(good, acvr.shape)
            idx = np.maximum.accumulate(np.where(good, np.arange(self.n), 0), axis=-1)
            acvr = np.where(good, acvr, np.take_along_axis(acvr, idx, axis=-1))
            acvr[:, 0] = np.where(good[:, 0], acvr[:, 0], 0.0)
        return smo, acvr


def _running_lines(x, Y, w, spans, vsmlsq, cv=False):
    return _Lines(x, w, vsmlsq).smooth(Y, spans, cv)


def _scale_sorted(x):
    n = x.shape[0]
    i, j = n // 4, 3 * (n // 4)
    i, j = max(i - 1, 0), max(j - 1, 0)
    scale = x[j] - x[i]
    while scale <= 0 and (j < n - 1 or i > 0):
        j, i = min(j + 1, n - 1), max(i - 1, 0)
        scale = x[j] - x[i]
    return scale


def _supsmu_sorted(x, y, w, span=0.0, bass=0.0):
    """Super smoother on sorted ``x``; see :func:`supsmu`."""
    n = x.shape[0]
    if n == 0:
        return y.copy()
    if x[-1] <= x[0] or n < 3:
        return np.full(n, np.average(y, weights=w) if w.sum() > 0 else y.mean())
    lines = _Lines(x, w, (_EPS * _scale_sorted(x)) ** 2)
    if span > 0:
        return lines.smooth(y, [span])[0][0]
    smo3, acvr = lines.smooth(np.broadcast_to(y, (3, n)), SPANS, cv=True)
    res, _ = lines.smooth(acvr, [SPANS[1]] * 3)
    best = np.argmin(res, axis=0)  # first minimum, as the Fortran's strict '<'
    resmin = res[best, np.arange(n)]
    chosen = np.asarray(SPANS)[best]
    if 0 < bass <= 10:
        boost = (resmin < res[2]) & (resmin > 0)
        ratio = np.maximum(_SML, resmin / np.where(res[2] > 0, res[2], 1.0))
        chosen = np.where(boost, chosen + (SPANS[2] - chosen) * ratio ** (10 - bass), chosen)
    sspan, _ = lines.smooth(chosen, [SPANS[1]])
    sspan = np.clip(sspan[0], SPANS[0], SPANS[2])
    f = sspan - SPANS[1]
    up = f >= 0
    fu = f / (SPANS[2] - SPANS[1])
    fd = -f / (SPANS[1] - SPANS[0])
    mixed = np.where(up, (1 - fu) * smo3[1] + fu * smo3[2], (1 - fd) * smo3[1] + fd * smo3[0])
    return lines.smooth(mixed, [SPANS[0]])[0][0]


def _sorted_apply(func, x, y, w, **kw):
    # windows count ranks, so the order within tied x matters: by x then y, as R's supsmu
    order = np.lexsort((y, x))
    out = np.empty_like(y)
    out[order] = func(x[order], y[order], w[order], **kw)
    return out


def running_line(x, y, w=None, *, span=0.2):
    """Friedman's running-line smoother: a local least-squares line in a window of ``span * n``.

    Parameters
    ----------
    x, y : array-like of shape (n_samples,)
    w : array-like of shape (n_samples,), default=None
        Case weights.
    span : float, default=0.2
        Fraction of the observations in each (symmetric, nearest-in-rank) window.

    Returns
    -------
    ndarray of shape (n_samples,)
        Fitted values at ``x``, averaged over tied ``x``.

    Notes
    -----
    At the i-th smallest ``x`` the window holds the ``k = 2 * floor(span * n / 2 + 1/2) + 1``
    observations of ranks ``i - k//2 .. i + k//2``, shifted inward at the ends (Friedman, 1984).
    """
    x, y, w = _as_xyw(x, y, w)

    def rl(xs, ys, ws):
        if xs.shape[0] < 3 or xs[-1] <= xs[0]:
            return np.full(xs.shape[0], np.average(ys, weights=ws))
        return _running_lines(xs, ys, ws, [span], (_EPS * _scale_sorted(xs)) ** 2)[0][0]

    return _sorted_apply(rl, x, y, w)


def supsmu(x, y, w=None, *, span=0.0, bass=0.0):
    """Friedman's super smoother, a running-lines smoother with a locally cross-validated span.

    Parameters
    ----------
    x, y : array-like of shape (n_samples,)
    w : array-like of shape (n_samples,), default=None
        Case weights.
    span : float, default=0.0
        Fraction of observations in each window; ``0`` chooses it locally by cross-validation.
    bass : float in [0, 10], default=0.0
        Bass enhancement: larger values push the chosen span towards the woofer (smoother fits).

    Returns
    -------
    ndarray of shape (n_samples,)
        Fitted values at ``x``.

    Notes
    -----
    Three running-line smooths with spans 0.05, 0.2 and 0.5 are fitted together with their
    absolute leave-one-out residuals :math:`|y_i - s(x_i)| / (1 - h_{ii})`. These residuals are
    smoothed (span 0.2); at each point the span with the smallest smoothed residual is chosen,
    optionally enhanced towards 0.5 by :math:`J + (0.5 - J)(e_J/e_{0.5})^{10 - \\text{bass}}`. The
    chosen spans are smoothed (span 0.2), the fit is interpolated between the two smooths whose
    spans bracket the smoothed span, and the result smoothed with span 0.05.

    References
    ----------
    Friedman, J. H. (1984). A variable span smoother. Technical Report 5, Laboratory for
    Computational Statistics, Stanford University.
    """
    x, y, w = _as_xyw(x, y, w)
    if not 0 <= bass <= 10:
        raise ValueError(f"bass must be in [0, 10], got {bass}")
    if not 0 <= span <= 1:
        raise ValueError(f"span must be in [0, 1], got {span}")
    return _sorted_apply(_supsmu_sorted, x, y, w, span=span, bass=bass)


# ---------------------------------------------------------------- smoothing splines
def _collapse(x, y, w):
    """Unique sorted x, summed weights, weighted-mean y: the spline criterion is unchanged."""
    ux, inv = np.unique(x, return_inverse=True)
    sw = np.bincount(inv, weights=w, minlength=ux.size)
    swy = np.bincount(inv, weights=w * y, minlength=ux.size)
    return ux, np.where(sw > 0, swy / np.where(sw > 0, sw, 1.0), 0.0), sw, inv


class _PenalizedSpline:
    """Cubic B-spline basis on given knots with the roughness penalty integral of g''^2.

    With a knot at every unique x this is the natural cubic smoothing spline (the minimizer of
    the penalized criterion over all functions lies in this space).
    """

    def __init__(self, ux, n_knots, inner=None):
        lo, hi = ux[0], ux[-1]
        self.lo, self.width = lo, hi - lo
        u = (ux - lo) / self.width
        if inner is None:
            m = ux.size if n_knots is None else min(n_knots, ux.size)
            inner = u if m == ux.size else np.quantile(u, np.linspace(0, 1, m))
        inner = np.unique(inner)
        self.t = np.r_[[0.0] * 3, inner, [1.0] * 3]
        self.K = self.t.size - 4
        basis = BSpline(self.t, np.eye(self.K), 3, extrapolate=False)
        self.basis = basis
        # integral of B_i'' B_j'': B'' is linear between knots, so 2-point Gauss-Legendre is exact
        gx, gw = np.polynomial.legendre.leggauss(2)
        a, b = inner[:-1], inner[1:]
        mid, half = (a + b) / 2, (b - a) / 2
        q = (mid[:, None] + half[:, None] * gx).ravel()
        qw = (half[:, None] * gw).ravel()
        d2 = basis.derivative(2)(q)
        self.P = (d2 * qw[:, None]).T @ d2
        # change of each B'' across each interval (B'' is linear there): the 2 Gauss points are
        # 1/sqrt(3) of the interval apart
        self._jump = (d2[1::2] - d2[0::2]) * np.sqrt(3.0)
        self._width = 2 * half

    def penalty_r(self):
        """The penalty matrix as R's ``sgram`` computes it: exactly, but for the square of the
        linear part integrated with 0.333 in place of 1/3 (R's constant)."""
        J = self._jump
        return self.P + (0.333 - 1.0 / 3.0) * (J * self._width[:, None]).T @ J

    def design(self, ux):
        u = np.clip((ux - self.lo) / self.width, 0.0, 1.0)
        return np.nan_to_num(self.basis(u))


def _spline_system(ux, uy, sw, n_knots, inner=None):
    """Basis, and the simultaneous diagonalization of the Gram matrix G and the penalty P.

    With M = G + mu P and V'MV = I, V'GV = diag(theta): the hat matrix of penalty lam has trace
    sum_k theta_k / (theta_k + lam (1 - theta_k) / mu), stable even when G is singular.
    """
    sp = _PenalizedSpline(ux, n_knots, inner)
    B = sp.design(ux)
    G = (B * sw[:, None]).T @ B
    P = sp.P / sp.width**3  # penalty on the original x scale: g''(x) = h''(u) / width^2
    mu = np.trace(G) / np.trace(P)
    theta, V = linalg.eigh(G, G + mu * P)
    theta = np.clip(theta, 0.0, 1.0)
    # theta = 1 exactly on the penalty's null space, the straight lines (dimension 2 once there
    # are two distinct x): eigh returns 1 - O(1e-12) there, and a huge lam would then shrink the
    # line itself (a 1e-6 error at df=2 with SSE kernels, where AVX-512 happened to round to 1)
    theta[-2:] = 1.0
    return B, theta, V, (B * sw[:, None]).T @ uy, mu


def _shrink(theta, mu, lam):
    if np.isinf(lam):
        return np.where(theta > 1 - 1e-9, 1.0, 0.0)
    den = theta + lam * (1.0 - theta) / mu
    # directions the data do not see (theta = 0) get no weight at lam = 0: a pseudo-inverse
    return np.where(den > 1e-12, 1.0 / np.where(den > 1e-12, den, 1.0), 0.0)


def _lam_for_df(theta, mu, df):
    def g(loglam):
        return np.sum(theta * _shrink(theta, mu, np.exp(loglam))) - df

    lo, hi = np.log(mu) - 80, np.log(mu) + 80
    if g(lo) <= 0:
        return 0.0
    if g(hi) >= 0:
        return np.inf
    return float(np.exp(optimize.brentq(g, lo, hi, xtol=1e-12)))


def _lam_gcv(B, theta, V, bwy, mu, uy, sw, gcvpen):
    n = sw.sum()
    BV = B @ V
    vb = V.T @ bwy

    def crit(loglam):
        sh = _shrink(theta, mu, np.exp(loglam))
        fit = BV @ (sh * vb)
        rss = np.sum(sw * (uy - fit) ** 2)
        tr = np.sum(theta * sh)
        return n * rss / max(n - gcvpen * tr, 1e-12) ** 2

    grid = np.linspace(-25, 25, 51) + np.log(mu)
    vals = [crit(g) for g in grid]
    i = int(np.argmin(vals))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = optimize.minimize_scalar(crit, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x if res.fun <= vals[i] else grid[i]))


def spline_df(x, w=None, *, lam, n_knots=None):
    """Equivalent degrees of freedom (trace of the hat matrix) of a cubic smoothing spline.

    Parameters
    ----------
    x : array-like of shape (n_samples,)
    w : array-like of shape (n_samples,), default=None
    lam : float
        Penalty on the integral of the squared second derivative (scipy's ``lam``).
    n_knots : int, default=None
        Number of knots; ``None`` puts one at each unique ``x``.

    Returns
    -------
    float
    """
    x, _, w = _as_xyw(x, np.zeros_like(np.asarray(x, dtype=float).ravel()), w)
    ux, uy, sw, _ = _collapse(x, np.zeros_like(x), w)
    _, theta, _, _, mu = _spline_system(ux, uy, sw, n_knots)
    return float(np.sum(theta * _shrink(theta, mu, lam)))


def smoothing_spline(x, y, w=None, *, df=5.0, n_knots=20, gcvpen=1.0, return_lam=False):
    r"""Cubic smoothing spline with a given equivalent degrees of freedom.

    Parameters
    ----------
    x, y : array-like of shape (n_samples,)
    w : array-like of shape (n_samples,), default=None
        Case weights.
    df : float or None, default=5.0
        Target trace of the smoother (hat) matrix, at least 2 (a straight line); ``None``
        chooses the penalty by generalized cross-validation.
    n_knots : int or None, default=20
        Knots at quantiles of the unique ``x``; ``None`` puts a knot at each unique ``x``, which
        gives exactly the natural cubic smoothing spline of
        :func:`scipy.interpolate.make_smoothing_spline`.
    gcvpen : float, default=1.0
        Charge per degree of freedom in GCV, :math:`n\,\text{RSS}/(n - \text{gcvpen}\,\text{df})^2`
        (as in R's ``ppr(sm.method="gcvspline")``); only used when ``df`` is None.
    return_lam : bool, default=False
        Also return the penalty ``lam`` (on scipy's scale) that gives ``df``.

    Returns
    -------
    fitted : ndarray of shape (n_samples,)
    lam : float, only when ``return_lam``

    Notes
    -----
    Minimizes :math:`\sum_i w_i (y_i - g(x_i))^2 + \lambda \int g''(t)^2 dt` over cubic
    splines on the knots, with :math:`\lambda` solved from
    :math:`\operatorname{tr} S_\lambda
    = \sum_k \theta_k / (\theta_k + \lambda (1 - \theta_k)/\mu) = \text{df}`,
    where :math:`\theta_k` are the generalized eigenvalues of the weighted Gram matrix
    :math:`G = B^T W B` against :math:`G + \mu P` (:math:`P` the penalty matrix), a
    Demmler-Reinsch (1975) diagonalization that stays stable when :math:`G` is singular.
    Fewer knots than observations (a penalized
    regression spline) keep the cost low inside projection pursuit, as R's ``ppr`` does.
    """
    x, y, w = _as_xyw(x, y, w)
    if df is not None and df < 2:
        raise ValueError(f"df must be at least 2 or None (GCV), got {df}")
    ux, uy, sw, inv = _collapse(x, y, w)
    if ux.size < 4:
        coef = np.polyfit(ux, uy, min(1, ux.size - 1), w=np.sqrt(sw)) if ux.size > 1 else [uy[0]]
        fit = np.polyval(coef, x)
        return (fit, np.inf) if return_lam else fit
    B, theta, V, bwy, mu = _spline_system(ux, uy, sw, n_knots)
    if df is None:
        lam = _lam_gcv(B, theta, V, bwy, mu, uy, sw, gcvpen)
    else:
        lam = _lam_for_df(theta, mu, df)
    coef = V @ (_shrink(theta, mu, lam) * (V.T @ bwy))
    fit = (B @ coef)[inv]
    return (fit, lam) if return_lam else fit


def _smart_knots(x):
    """Knots of the ridge-function spline in R's ``ppr`` (its Fortran ``spline``), on the [0, 1]
    scale of sorted ``x``: ``min(n, 15)`` cubic B-splines, the interior knots at the
    ``k / (nk - 3)`` quantiles (``k = 1 .. nk - 4``, linear interpolation between order
    statistics of all n points, ties included) and the two ends."""
    n = x.shape[0]
    u = (x - x[0]) / (x[-1] - x[0])
    nk = min(n, 15)
    pos = (n - 1) * np.arange(1, nk - 3) / (nk - 3)
    ip = pos.astype(int)
    frac = pos - ip
    inner = (1 - frac) * u[ip] + frac * u[np.minimum(ip + 1, n - 1)]
    return np.r_[0.0, inner, 1.0]


def _fmin_last(f, lo, hi, tol, eps, maxit=500):
    """Brent's (1973) golden-section and parabolic minimization of ``f`` on ``[lo, hi]``, the
    Forsythe-Malcolm-Moler ``fmin`` with absolute tolerance ``tol / 3 + eps |x|``.

    Returns ``(x_best, x_last)``: the minimizer found and the last point evaluated (R's
    smoothing-spline search leaves its fit at the latter).
    """
    golden = (3.0 - np.sqrt(5.0)) / 2
    a, b = lo, hi
    x = w = v = a + golden * (b - a)
    fx = fw = fv = f(x)
    last = x
    d = e = 0.0
    for _ in range(maxit):
        xm = 0.5 * (a + b)
        tol1 = eps * abs(x) + tol / 3
        tol2 = 2 * tol1
        if abs(x - xm) <= tol2 - 0.5 * (b - a):
            break
        parabolic = False
        if abs(e) > tol1 and max(fx, fv, fw) < 1e100:
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = 2 * (q - r)
            if q > 0:
                p = -p
            q = abs(q)
            r, e = e, d
            if abs(p) < abs(0.5 * q * r) and q != 0 and q * (a - x) < p < q * (b - x):
                parabolic = True
                d = p / q
                u = x + d
                if u - a < tol2 or b - u < tol2:  # not too close to the ends
                    d = tol1 if xm >= x else -tol1
        if not parabolic:
            e = (a - x) if x >= xm else (b - x)
            d = golden * e
        u = x + (d if abs(d) >= tol1 else (tol1 if d >= 0 else -tol1))
        fu = f(u)
        last = u
        if not np.isfinite(fu):
            fu = 2e100
        if fu <= fx:
            if u >= x:
                a = x
            else:
                b = x
            v, fv, w, fw, x, fx = w, fw, x, fx, u, fu
        else:
            if u < x:
                a = u
            else:
                b = u
            if fu <= fw or w == x:
                v, fv, w, fw = w, fw, u, fu
            elif fu <= fv or v == x or v == w:
                v, fv = u, fu
    return x, last


def _smart_spline(x, y, w, df=None, gcvpen=1.0):
    """The ridge-function smoother of ``ProjectionPursuitRegressor(smoother="spline" or
    "gcvspline")`` on sorted ``x``, as the spline of R's ``ppr``: a penalized cubic spline on
    :func:`_smart_knots` whose penalty ``lambda = r 256^(3 spar - 1)`` (``r`` the ratio of the
    traces of the weighted Gram and penalty matrices over the inner coefficients) is searched
    over ``spar`` in [0, 1.5] (Brent, tolerance 0.01) for trace ``df``, or for the smallest GCV
    when ``df`` is None. R keeps the fit at the search's last evaluation, and so does this."""
    n = x.shape[0]
    if n < 4 or not x[-1] > x[0]:
        return smoothing_spline(x, y, w, df=df, n_knots=None, gcvpen=gcvpen)
    ux, uy, sw, inv = _collapse(x, y, w)
    if ux.size < 4:
        return smoothing_spline(x, y, w, df=df, n_knots=None, gcvpen=gcvpen)
    sp = _PenalizedSpline(ux, None, _smart_knots(x))
    B = sp.design(ux)
    G = (B * sw[:, None]).T @ B
    P = sp.penalty_r()  # on the [0, 1] scale of x, with R's 0.333
    mu = np.trace(G) / np.trace(P)
    theta, V = linalg.eigh(G, G + mu * P)
    theta = np.clip(theta, 0.0, 1.0)
    theta[-2:] = 1.0  # the straight lines, unpenalized (see _spline_system)
    vb = V.T @ ((B * sw[:, None]).T @ uy)
    BV = B @ V
    inner = slice(2, sp.K - 3)
    ratio = np.trace(G[inner, inner]) / np.trace(P[inner, inner])
    ssw = np.sum(w * (y - uy[inv]) ** 2)  # within-tie sum of squares, part of R's rss
    total = sw.sum()
    fits = {}

    def crit(spar):
        sh = _shrink(theta, mu, ratio * 256.0 ** (3 * spar - 1))
        fits[spar] = fit = BV @ (sh * vb)
        tr = np.sum(theta * sh)
        if df is not None:
            return 3 + (df - tr) ** 2
        rss = ssw + np.sum(sw * (uy - fit) ** 2)
        return rss / total / (1 - gcvpen * tr / total) ** 2

    _, last = _fmin_last(crit, 0.0, 1.5, tol=1e-2, eps=2.44e-4)
    return fits[last][inv]


def gcv_spline(x, y, w=None):
    """Natural cubic smoothing spline with the penalty chosen by generalized cross-validation.

    A thin wrapper over :func:`scipy.interpolate.make_smoothing_spline` (``lam=None``), fitted to
    the unique ``x`` with summed weights and weighted-mean responses.

    Returns
    -------
    ndarray of shape (n_samples,)
        Fitted values at ``x``.
    """
    x, y, w = _as_xyw(x, y, w)
    ux, uy, sw, inv = _collapse(x, y, w)
    keep = sw > 0
    ux, uy, sw = ux[keep], uy[keep], sw[keep]
    if ux.size < 5:
        coef = np.polyfit(ux, uy, min(1, ux.size - 1), w=np.sqrt(sw)) if ux.size > 1 else [uy[0]]
        return np.polyval(coef, x)
    spl = make_smoothing_spline(ux, uy, w=sw / sw.mean())
    return spl(x)
