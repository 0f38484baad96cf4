"""RidgeFunctionDisplay: each projection pursuit term's ridge function with partial residuals."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["RidgeFunctionDisplay"]


class RidgeFunctionDisplay:
    """Ridge functions of a projection pursuit (or one-hidden-layer) model over their projections.

    Panel ``m`` shows the term :math:`\\beta_m f_m(z)` against the projection :math:`z = a_m^T x`
    and, as points, the partial residuals :math:`y_i - \\hat y_i + \\beta_m f_m(z_{im})`, the
    response with every other term removed: the plot PPR users read to judge each term's shape.

    Create it with :meth:`from_estimator` or :meth:`from_projections`; ``__init__`` only stores.

    Parameters
    ----------
    projections : ndarray of shape (n_samples, n_terms)
    term_values : ndarray of shape (n_samples, n_terms)
        Each term's contribution :math:`\\beta_m f_m(z_{im})` at the data.
    partial_residuals : ndarray of shape (n_samples, n_terms) or None
    directions : ndarray of shape (n_terms, n_features) or None
    feature_names : list of str or None

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes
    ax_ : matplotlib Axes
        The first panel.
    figure_ : matplotlib Figure
    """

    def __init__(self, projections, term_values, partial_residuals=None, directions=None,
                 feature_names=None):
        self.projections = projections
        self.term_values = term_values
        self.partial_residuals = partial_residuals
        self.directions = directions
        self.feature_names = feature_names

    @classmethod
    def from_projections(cls, projections, term_values, y=None, *, directions=None,
                         feature_names=None, ax=None, **kwargs):
        """Plot from projections and term values; ``y`` adds the partial residuals.

        Parameters
        ----------
        projections, term_values : array-like of shape (n_samples, n_terms)
        y : array-like of shape (n_samples,), default=None
            Response; the fitted value is taken to be an intercept plus the sum of the terms, so
            pass ``y - intercept`` (or any y whose mean the terms do not carry).
        ax : matplotlib Axes or array of Axes, default=None
        **kwargs : passed to :meth:`plot`

        Returns
        -------
        RidgeFunctionDisplay
        """
        Z = np.asarray(projections, dtype=float)
        T = np.asarray(term_values, dtype=float)
        if Z.ndim != 2 or Z.shape != T.shape:
            raise ValueError(f"projections and term_values must be 2-d of one shape, "
                             f"got {Z.shape} and {T.shape}")
        pr = None
        if y is not None:
            y = np.asarray(y, dtype=float)
            if y.shape != (Z.shape[0],):
                raise ValueError(f"y must have shape ({Z.shape[0]},), got {y.shape}")
            resid = y - T.sum(axis=1)
            pr = resid[:, None] + T
        disp = cls(Z, T, pr, directions, feature_names)
        return disp.plot(ax=ax, **kwargs)

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, output=0, ax=None, **kwargs):
        """Plot the ridge functions of a fitted :class:`ProjectionPursuitRegressor`.

        Parameters
        ----------
        estimator : fitted ProjectionPursuitRegressor
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            With ``y``, partial residuals are drawn.
        output : int, default=0
            Which response to show for a multi-response fit.
        ax : matplotlib Axes or array of Axes, default=None
        **kwargs : passed to :meth:`plot`

        Returns
        -------
        RidgeFunctionDisplay
        """
        check_is_fitted(estimator, "directions_")
        Z = estimator.transform(X)
        F = estimator.ridge_values(X)
        beta = np.asarray(estimator.beta_)
        intercept = np.asarray(estimator.intercept_)
        if beta.ndim == 2:
            beta, intercept = beta[output], intercept[output]
        T = F * beta
        if y is not None:
            y = np.asarray(y, dtype=float)
            y = (y[:, output] if y.ndim == 2 else y) - intercept
        names = getattr(estimator, "feature_names_in_", None)
        if names is None:
            names = [f"x{j}" for j in range(estimator.n_features_in_)]
        return cls.from_projections(Z, T, y, directions=estimator.directions_,
                                    feature_names=list(names), ax=ax, **kwargs)

    def plot(self, *, ax=None, n_cols=None, scatter_kw=None, line_kw=None, n_top=3):
        """Draw one panel per term.

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes, default=None
            One Axes per term; ``None`` makes a new figure.
        n_cols : int, default=None
            Panels per row (default: up to 3).
        scatter_kw, line_kw : dict, default=None
            Passed to ``Axes.scatter`` (partial residuals) and ``Axes.plot`` (ridge function).
        n_top : int, default=3
            How many of the largest direction weights to name in each panel title.

        Returns
        -------
        self : RidgeFunctionDisplay
        """
        import matplotlib.pyplot as plt

        Z, T = np.asarray(self.projections), np.asarray(self.term_values)
        M = Z.shape[1]
        if ax is None:
            n_cols = n_cols or min(M, 3)
            n_rows = int(np.ceil(M / n_cols))
            fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols, 3.0 * n_rows),
                                     squeeze=False)
            axes = axes.ravel()
            for extra in axes[M:]:
                extra.set_visible(False)
        else:
            axes = np.atleast_1d(np.asarray(ax, dtype=object)).ravel()
            if axes.size < M:
                raise ValueError(f"need {M} Axes, one per term, got {axes.size}")
            fig = axes[0].figure
        scatter_kw = {"s": 6, "alpha": 0.4, "color": "0.5", **(scatter_kw or {})}
        line_kw = {"color": "C0", "lw": 2, **(line_kw or {})}
        for m in range(M):
            a = axes[m]
            order = np.argsort(Z[:, m])
            if self.partial_residuals is not None:
                a.scatter(Z[:, m], self.partial_residuals[:, m], **scatter_kw)
            a.plot(Z[order, m], T[order, m], **line_kw)
            title = f"term {m + 1}"
            if self.directions is not None:
                d = np.asarray(self.directions)[m]
                names = self.feature_names or [f"x{j}" for j in range(d.size)]
                top = np.argsort(-np.abs(d))[:n_top]
                title += ": " + " ".join(f"{d[j]:+.2f}·{names[j]}" for j in top)
            a.set_title(title, fontsize=9)
            a.set_xlabel(f"projection z{m + 1}")
            a.set_ylabel("term (partial residual)" if m == 0 else "")
        self.axes_ = axes[:M]
        self.ax_ = axes[0]
        self.figure_ = fig
        return self
