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
from .smoothers import _supsmu_sorted, smoothing_spline

__all__ = ["ProjectionPursuitRegressor", "RidgeFunction", "RidgeFunctionDisplay"]

_N_PHD = 2  # principal Hessian directions tried as extra starts for each new term
_CUTMIN = 0.1  # smallest Gauss-Newton step fraction tried before giving up (R's cutmin)
_FDEL = 0.02  # half-width of the derivative's difference quotient, as a fraction of the range


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


def _derivative(zs, fs):
    """Central difference quotient of a smooth at sorted ``zs`` over a window of +-fdel * range."""
    n = zs.size
    rng = zs[-1] - zs[0]
    if n < 3 or rng <= 0:
        return np.zeros(n)
    d = _FDEL * rng
    lo = np.searchsorted(zs, zs - d, side="left")
    hi = np.searchsorted(zs, zs + d, side="right") - 1
    dz = zs[hi] - zs[lo]
    return np.where(dz > 0, (fs[hi] - fs[lo]) / np.where(dz > 0, dz, 1.0), 0.0)


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
    """The SMART fitting state; lives only inside ``fit`` (nothing is written on the estimator)."""

    def __init__(self, X, Y, w, est, rng):
        self.X, self.Y, self.w = X, Y, w
        self.sw = w.sum()
        self.Xc = X - (w @ X) / self.sw
        self.est, self.rng = est, rng
        self.conv, self.maxit = est.tol, est.max_iter
        self.n_passes = 0
        sm = est.smoother
        if sm == "supsmu":
            self.smooth_sorted = lambda z, t, ww: _supsmu_sorted(z, t, ww, est.span, est.bass)
        else:
            df = est.df if sm == "spline" else None
            self.smooth_sorted = lambda z, t, ww: smoothing_spline(z, t, ww, df=df, n_knots=20)

    # --- one ridge function along one direction
    def _smooth(self, a, t):
        z = self.X @ a
        order = np.argsort(z, kind="stable")
        zs = z[order]
        fs = self.smooth_sorted(zs, t[order], self.w[order])
        g = np.empty_like(t)
        g[order] = fs
        return g, zs, fs, order

    def _asr1(self, t, g):
        return self.w @ (t - g) ** 2 / self.sw

    def oneone(self, a, t, mitone, cutmin):
        """Direction and ridge function for a single target by Gauss-Newton with step halving."""
        g, zs, fs, order = self._smooth(a, t)
        asr = self._asr1(t, g)
        for _ in range(mitone):
            deriv = np.empty_like(t)
            deriv[order] = _derivative(zs, fs)
            e = t - g
            wd = self.w * deriv
            H = (self.Xc * (wd * deriv)[:, None]).T @ self.Xc
            grad = self.Xc.T @ (wd * e)
            H[np.diag_indices_from(H)] += 1e-8 * max(np.trace(H), 1e-300) / H.shape[0]
            try:
                delta = np.linalg.solve(H, grad)
            except np.linalg.LinAlgError:
                delta = np.linalg.lstsq(H, grad, rcond=None)[0]
            step, improved = 1.0, False
            while step >= cutmin:
                cand = a + step * delta
                norm = np.linalg.norm(cand)
                if norm > 0:
                    cand = cand / norm
                    gc, zc, fc, oc = self._smooth(cand, t)
                    asr_c = self._asr1(t, gc)
                    if asr_c < asr:
                        improved = True
                        break
                step *= 0.5
            if not improved:
                break
            old = asr
            a, g, zs, fs, order, asr = cand, gc, zc, fc, oc, asr_c
            if (old - asr) / max(old, 1e-300) < self.conv:
                break
        return a, g

    def _standardize(self, g):
        g = g - self.w @ g / self.sw
        v = self.w @ g**2 / self.sw
        return g / np.sqrt(v) if v > 0 else g

    def onetrm(self, a, b, R, mitone, cutmin):
        """One term for (possibly several) responses: alternate the combined target and loadings."""
        q = R.shape[1]
        asr = np.inf
        for _ in range(self.maxit if q > 1 else 1):
            bb = b @ b
            t = R @ b / bb if bb > 0 else R.mean(axis=1)
            a, g = self.oneone(a, t, mitone, cutmin)
            f = self._standardize(g)
            b = (self.w * f) @ R / self.sw
            old, asr = asr, self.w @ np.sum((R - np.outer(f, b)) ** 2, axis=1) / self.sw
            if q == 1 or (np.isfinite(old) and (old - asr) / max(old, 1e-300) < self.conv):
                break
        return a, f, b

    def starts(self, R, b):
        """Starting directions for a new term: least squares of the combined residual on X, and
        the leading principal Hessian directions (Li, 1992), which find curvature (such as a
        quadratic ridge) that a linear fit cannot see. Random if all are degenerate."""
        t = R @ b
        sw = np.sqrt(self.w)
        cands = []
        coef = np.linalg.lstsq(self.Xc * sw[:, None], t * sw, rcond=None)[0]
        cands.append(coef)
        if _N_PHD and self.X.shape[1] > 1:
            S = (self.Xc * self.w[:, None]).T @ self.Xc / self.sw
            r = t - self.Xc @ coef
            H = (self.Xc * (self.w * r)[:, None]).T @ self.Xc / self.sw
            try:
                vals, vecs = linalg.eigh(H, S)
                for k in np.argsort(-np.abs(vals))[:_N_PHD]:
                    cands.append(vecs[:, k])
            except (np.linalg.LinAlgError, ValueError):
                pass
        out = []
        for c in cands:
            norm = np.linalg.norm(c)
            if np.isfinite(norm) and norm > 1e-12:
                out.append(c / norm)
        if not out:
            c = self.rng.standard_normal(self.X.shape[1])
            out.append(c / np.linalg.norm(c))
        return out

    def new_term(self, R):
        b0 = self._start_b(R)
        best, best_asr = None, np.inf
        for a in self.starts(R, b0):
            a, f, b = self.onetrm(a, b0, R, self.maxit, _CUTMIN)
            asr = self.asr(R - np.outer(f, b))
            if asr < best_asr:
                best, best_asr = (a, f, b), asr
        return best

    def _start_b(self, R):
        if R.shape[1] == 1:
            return np.ones(1)
        _, vecs = np.linalg.eigh((R * self.w[:, None]).T @ R)
        return vecs[:, -1]

    def asr(self, R):
        return self.w @ np.sum(R**2, axis=1) / self.sw

    def fulfit(self, terms, R, lbf):
        """Backfit all terms; lbf < 3 limits each direction to lbf - 1 full Gauss-Newton steps."""
        if lbf <= 0 or not terms:
            return R
        mitone, cutmin = (lbf - 1, 1.0) if lbf < 3 else (self.maxit, _CUTMIN)
        for _ in range(self.maxit):
            self.n_passes += 1
            asri = self.asr(R)
            for term in terms:
                a, f, b = term
                R = R + np.outer(f, b)
                term[:] = self.onetrm(a, b, R, mitone, cutmin)
                R = R - np.outer(term[1], term[2])
            if (asri - self.asr(R)) / max(asri, 1e-300) < self.conv:
                break
        return R

    def run(self, n_terms, max_terms, optlevel):
        R = self.Y.copy()
        terms = []
        for _ in range(max_terms):
            if self.asr(R) <= 1e-14 * max(self.asr(self.Y), 1e-300):
                break
            a, f, b = self.new_term(R)
            R = R - np.outer(f, b)
            terms.append([a, f, b])
            if len(terms) > 1 and optlevel > 0:
                R = self.fulfit(terms, R, optlevel)
        gofn = np.zeros(max_terms)
        gofn[len(terms) - 1] = self.asr(R) * self.X.shape[0]
        while len(terms) > n_terms:
            imp = [np.abs(t[2]).sum() for t in terms]
            a, f, b = terms.pop(int(np.argmin(imp)))
            R = R + np.outer(f, b)
            R = self.fulfit(terms, R, optlevel)
            gofn[len(terms) - 1] = self.asr(R) * self.X.shape[0]
        return terms, gofn


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
        degrees of freedom, or one with the penalty chosen by GCV (both penalized splines on 20
        knots at quantiles of the projection, see :func:`neurostat.smoothers.smoothing_spline`).
    span : float in [0, 1], default=0.0
        Super smoother span; 0 chooses it locally by cross-validation.
    bass : float in [0, 10], default=0.0
        Super smoother bass enhancement (larger is smoother).
    df : float, default=5
        Degrees of freedom of each ridge function when ``smoother="spline"``.
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

    The forward stage adds terms one at a time up to ``max_terms``. Each new term is fitted from
    three starts, keeping the best: the least-squares direction of the current residuals
    (SMART's start) and their two leading principal Hessian directions (Li, 1992), which see
    curvature, such as a quadratic ridge, that a linear fit cannot. A fit alternates smoothing
    the residuals against :math:`a^T x` with a Gauss-Newton step for :math:`a` (the smooth's
    derivative linearizes :math:`f(a^T x)`), halving steps that do not lower the residual sum of
    squares. After each addition all terms are backfitted (``optlevel``). The backward stage then
    drops the least important term (smallest :math:`\\sum_k |\\beta_{km}|`), backfits and repeats
    down to ``n_terms``, recording the fit of each model size in ``gofn_``.

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
        # one common scale for all responses so that tol is relative, as in SMART
        ys = np.sqrt(w @ np.sum(Yc**2, axis=1) / sw / Y.shape[1])
        ys = ys if ys > 0 else 1.0
        smart = _Smart(X, Yc / ys, w, self, check_random_state(self.random_state))
        terms, gofn = smart.run(self.n_terms, max_terms, self.optlevel)
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
        self.n_iter_ = max(smart.n_passes, 1)
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

