"""Projection pursuit regression (Friedman & Stuetzle, 1981), fitted by Friedman's SMART algorithm.

A one-hidden-layer network ``b + sum_m v_m phi(w_m . x)`` is a projection pursuit regression
whose ridge functions all share the shape ``phi``; here each ridge function is a free smooth.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._compat import Interval, StrOptions, _fit_context
from .display import RidgeFunctionDisplay  # noqa: F401  (public in neurostat.ppr)
from .smart import _N_PHD, Smart, sample_weights

__all__ = ["ProjectionPursuitRegressor", "RidgeFunction", "RidgeFunctionDisplay"]




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
        w = sample_weights(sample_weight, X.shape[0])
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        sw = w.sum()
        ybar = w @ Y / sw
        Yc = Y - ybar
        # one common scale for all responses, as in SMART: the root of the summed weighted
        # variances (SMART's start for a new term's loadings is not scale-invariant)
        ys = np.sqrt(w @ np.sum(Yc**2, axis=1) / sw)
        ys = ys if ys > 0 else 1.0
        smart = Smart(X, Yc / ys, w, self, check_random_state(self.random_state))
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

