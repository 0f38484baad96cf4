"""Display objects (scikit-learn style) for fitted nets: loss curves and covariate effects.

``from_estimator`` computes, ``__init__`` only stores, ``plot(*, ax=None, **kw)`` draws and keeps
``ax_``, ``figure_`` (and the artists), returning self. matplotlib is imported only in ``plot``.
"""

import numpy as np

__all__ = ["EffectDisplay", "LossCurveDisplay"]


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax


class LossCurveDisplay:
    """Training loss per epoch (iteration for lbfgs) and, with early stopping, the validation
    score: the curves to "babysit" a fit.

    Parameters
    ----------
    loss_curve : array-like of shape (n_epochs,)
    validation_scores : array-like of shape (n_epochs,) or None
    estimator_name : str, default=None

    Attributes
    ----------
    line_, validation_line_ : matplotlib Line2D
    ax_, figure_ : matplotlib Axes and Figure

    Examples
    --------
    >>> import numpy as np
    >>> from neurostat import NeuralRegressor, LossCurveDisplay
    >>> X = np.random.default_rng(0).normal(size=(100, 2)); y = X[:, 0]
    >>> est = NeuralRegressor((8,), max_iter=20, random_state=0).fit(X, y)  # doctest: +SKIP
    >>> LossCurveDisplay.from_estimator(est).plot()  # doctest: +SKIP
    """

    def __init__(self, loss_curve, validation_scores=None, estimator_name=None):
        self.loss_curve = loss_curve
        self.validation_scores = validation_scores
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(estimator, "loss_curve_")
        return cls(np.asarray(estimator.loss_curve_, dtype=float),
                   None if getattr(estimator, "validation_scores_", None) is None
                   else np.asarray(estimator.validation_scores_, dtype=float),
                   type(estimator).__name__)

    def plot(self, *, ax=None, logy=True, **kwargs):
        """Draw the loss (left axis, log scale by default) and validation score (right axis)."""
        ax = _axes(ax)
        epochs = np.arange(1, len(self.loss_curve) + 1)
        (self.line_,) = ax.plot(epochs, self.loss_curve, label="training loss", **kwargs)
        if logy and np.all(np.asarray(self.loss_curve) > 0):
            ax.set_yscale("log")
        ax.set_xlabel("epoch (iteration for lbfgs)")
        ax.set_ylabel("penalized training loss")
        self.validation_line_ = None
        if self.validation_scores is not None:
            ax2 = ax.twinx()
            (self.validation_line_,) = ax2.plot(
                np.arange(1, len(self.validation_scores) + 1), self.validation_scores,
                color="C1", label="validation score")
            ax2.set_ylabel("validation score")
            self.ax2_ = ax2
        if self.estimator_name:
            ax.set_title(self.estimator_name)
        ax.legend(loc="upper right")
        self.ax_, self.figure_ = ax, ax.figure
        return self


class EffectDisplay:
    """Partial dependence of the response on each input with pointwise confidence bands.

    The curve for input j is ``v -> mean_i g(x_i with x_ij = v)`` (g the mean, or eta with
    ``scale="link"``) and its band the delta-method interval from the parameter covariance of
    ``est.inference(cov_type=...)``. For a GLM on the link scale these are straight lines.

    Parameters
    ----------
    grids : list of ndarray
        Grid values per feature.
    values, lower, upper : list of ndarray of shape (n_grid, n_outputs)
    feature_names : list of str
    output_names : list of str
    scale : {"response", "link"}

    Attributes
    ----------
    axes_ : ndarray of Axes
    ax_, figure_ : the first Axes and the Figure
    """

    def __init__(self, grids, values, lower, upper, feature_names, output_names=None,
                 scale="response"):
        self.grids = grids
        self.values = values
        self.lower = lower
        self.upper = upper
        self.feature_names = feature_names
        self.output_names = output_names
        self.scale = scale

    @classmethod
    def from_estimator(cls, estimator, X=None, y=None, *, features=None, grid_resolution=30,
                       scale="response", alpha=0.05, cov_type="nonrobust", results=None):
        """Compute the curves from a fitted estimator (or precomputed ``results``)."""
        from scipy import stats as sps

        from .inference.predictions import partial_dependence

        if scale not in ("response", "link"):
            raise ValueError(f"scale must be 'response' or 'link'; got {scale!r}.")
        res = results if results is not None else estimator.inference(X, y, cov_type)
        Xd = res.likelihood.X.numpy()
        names = list(res.model.layout.input_names)
        features = range(Xd.shape[1]) if features is None else features
        features = [names.index(f) if isinstance(f, str) else int(f) for f in features]
        q = sps.norm.isf(alpha / 2)
        grids, values, lower, upper = [], [], [], []
        for j in features:
            lo, hi = np.quantile(Xd[:, j], [0.02, 0.98])
            grid = np.unique(Xd[:, j]) if len(np.unique(Xd[:, j])) <= grid_resolution \
                else np.linspace(lo, hi, grid_resolution)
            v, se = partial_dependence(res, j, grid, scale)
            grids.append(grid)
            values.append(v)
            lower.append(v - q * se)
            upper.append(v + q * se)
        classes = getattr(estimator, "classes_", None)
        m = values[0].shape[1] if values else 1
        outputs = [str(c) for c in classes[-m:]] if classes is not None else \
            [f"y{i}" for i in range(m)]
        return cls(grids, values, lower, upper, [names[j] for j in features], outputs, scale)

    def plot(self, *, ax=None, n_cols=3, **kwargs):
        """One panel per feature (``ax``: one Axes per feature, or None for a new figure)."""
        import matplotlib.pyplot as plt

        k = len(self.grids)
        if ax is None:
            n_cols = min(n_cols, k)
            n_rows = int(np.ceil(k / n_cols))
            fig, axes = plt.subplots(n_rows, n_cols, figsize=(4 * n_cols, 3 * n_rows),
                                     squeeze=False)
            axes = axes.ravel()
            for a in axes[k:]:
                a.set_visible(False)
            fig.set_layout_engine("tight")
        else:
            axes = np.atleast_1d(ax).ravel()
            if len(axes) < k:
                raise ValueError(f"Need {k} axes (one per feature); got {len(axes)}.")
            fig = axes[0].figure
        self.lines_ = []
        for i in range(k):
            a = axes[i]
            m = self.values[i].shape[1]
            for c in range(m):
                label = None if m == 1 else (self.output_names[c] if self.output_names else c)
                (line,) = a.plot(self.grids[i], self.values[i][:, c], label=label, **kwargs)
                a.fill_between(self.grids[i], self.lower[i][:, c], self.upper[i][:, c],
                               alpha=0.25, color=line.get_color())
                self.lines_.append(line)
            a.set_xlabel(self.feature_names[i])
            a.set_ylabel("mean response" if self.scale == "response" else "linear predictor")
            if m > 1:
                a.legend(title="class")
        self.axes_, self.ax_, self.figure_ = axes[:k], axes[0], fig
        return self
