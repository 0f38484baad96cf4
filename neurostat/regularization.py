"""Regularization paths: coefficients (or covariate effects) of a net over a grid of penalties.

:func:`regularization_path` refits one estimator along a decreasing grid of ``alpha`` with warm
starts (each fit starts from the previous solution, as glmnet does) and returns a tidy
DataFrame; :class:`PathDisplay` draws it in glmnet's style.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone, is_classifier

from ._utils import default_feature_names

__all__ = ["PathDisplay", "regularization_path"]

PATH_COLUMNS = ["alpha", "term", "coef", "weight_norm", "df", "train_score",
                "validation_score", "n_iter"]


def _check_estimator(estimator):
    params = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    if not {"alpha", "l1_ratio", "warm_start"} <= set(params) or not hasattr(estimator, "fit"):
        raise TypeError(
            "regularization_path needs a neurostat estimator (NeuralRegressor, "
            f"NeuralClassifier, ...) with alpha, l1_ratio and warm_start; got "
            f"{type(estimator).__name__}."
        )


def _null_gradient(est, X, y, sample_weight):
    """``max_j |d mean nll / d w_j|`` at the intercept-only GLM: glmnet's ``lambda_max * l1``.

    For a GLM with canonical link the gradient is ``-X'W(y - mu0) / sum w`` with ``mu0`` the
    (weighted) mean response; for class labels y is one-hot coded. It is the smallest lasso
    penalty that sets every coefficient to zero, and the top of the default grid for any net.
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, float)
    if is_classifier(est):
        classes, codes = np.unique(np.asarray(y), return_inverse=True)
        Y = np.eye(len(classes))[codes][:, 1:]
    else:
        Y = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
    R = Y - np.average(Y, axis=0, weights=w)
    Xc = X - np.average(X, axis=0, weights=w)
    return float(np.abs(Xc.T @ (w[:, None] * R)).max() / w.sum())


def _alpha_grid(est, X, y, sample_weight, alphas, eps):
    if isinstance(alphas, Integral) and not isinstance(alphas, bool):
        if alphas < 1:
            raise ValueError(f"alphas must be a positive number of values; got {alphas}.")
        # a hair above the knife edge, where zero is the unique solution rather than a tie
        top = (1 + 1e-6) * _null_gradient(est, X, y, sample_weight) / max(
            float(est.l1_ratio), 1e-3)
        if not top > 0:
            raise ValueError("The target is constant: every penalty gives the null model.")
        return np.geomspace(top, top * eps, alphas)
    grid = np.asarray(alphas, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
        raise ValueError(
            "alphas must be an int (number of values on glmnet's grid) or a non-empty 1-d "
            f"array of finite penalties >= 0; got {alphas!r}."
        )
    return np.sort(grid)[::-1]


def _effects(est, X):
    """Average partial derivatives of each linear predictor w.r.t. each input, shape (k, d)."""
    module = est.module_
    params = {k: v.detach().to(torch.float64) for k, v in module.named_parameters()}
    Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float64)).requires_grad_(True)
    module.eval()
    eta = torch.func.functional_call(module, params, (Xt,))
    out = []
    for j in range(eta.shape[1]):
        (g,) = torch.autograd.grad(eta[:, j].sum(), Xt, retain_graph=j + 1 < eta.shape[1])
        out.append(g.mean(0).numpy())
    return np.array(out)


def _coefficients(est, X):
    """``(coef, weight_norm)``, each (k, d): GLM coefficients or effects; weights leaving inputs."""
    layers = getattr(est.module_, "layers", None)
    if layers is None:
        raise TypeError(f"{type(est).__name__} has no fully connected input layer; "
                        "regularization_path supports NeuralRegressor and NeuralClassifier.")
    W = layers[0].weight.detach().to(torch.float64).cpu().numpy()  # (units, d)
    if len(layers) == 1:
        return W.copy(), np.abs(W)
    norm = np.sqrt((W**2).sum(0))[None, :]
    return _effects(est, X), norm


def _collapsed(est):
    layers = getattr(est.module_, "layers", [])
    if len(layers) < 2:
        return False
    return all(float(w.detach().abs().max()) < 1e-6 for w in est.module_.penalized_parameters())


def _effective_df(est):
    from .inference import InferenceWarning
    with warnings.catch_warnings():
        # a path visits deliberately weak and strong penalties: the singular-Hessian and
        # convergence notes of each fit are not the path's business
        warnings.simplefilter("ignore", InferenceWarning)
        try:
            return float(est.inference().df_model)
        except ValueError:  # too many parameters for a dense Hessian
            return np.nan


def regularization_path(estimator, X, y, alphas=30, *, sample_weight=None,
                        validation_data=None, compute_df=True, eps=1e-3):
    """Fit ``estimator`` along a decreasing grid of penalties with warm starts.

    Each fit starts from the previous solution; for a net with hidden layers whose weights the
    previous penalty set to zero (a stationary point it could not leave) the next fit starts
    from the estimator's own initialization instead.

    Parameters
    ----------
    estimator : NeuralRegressor or NeuralClassifier
        Cloned; its ``l1_ratio`` (lasso, ridge or elastic net) and everything else are kept,
        ``alpha`` is varied. ``solver="lbfgs"`` gives exact paths (and exact zeros for the
        lasso).
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    alphas : int or array-like, default=30
        Penalties, fitted from the largest to the smallest. An int gives glmnet's grid:
        that many values log-spaced from ``alpha_max`` down to ``eps * alpha_max``, with
        ``alpha_max = max_j |x_j' W (y - mu0)| / (sum_i w_i * max(l1_ratio, 1e-3))`` (the
        smallest lasso penalty that zeroes every coefficient of a GLM).
    sample_weight : array-like of shape (n_samples,), default=None
    validation_data : tuple (X_val, y_val), default=None
        Scored with ``estimator.score`` at each penalty (NaN when None).
    compute_df : bool, default=True
        Effective degrees of freedom from :meth:`inference` (``df_model``); False skips the
        Hessian (NaN).
    eps : float, default=1e-3
        Ratio of the smallest to the largest penalty of the default grid.

    Returns
    -------
    path : DataFrame
        One row per (alpha, term) - and per output when there are several linear predictors
        (an ``output`` column) - in fitting order, with columns ``alpha``, ``term``, ``coef``
        (the coefficient of a GLM; for a net the covariate effect, the average partial
        derivative of the linear predictor), ``weight_norm`` (the Euclidean norm of the
        first-layer weights leaving the input; ``|coef|`` for a GLM), ``df`` (effective
        degrees of freedom of the fit, intercepts excluded), ``train_score``,
        ``validation_score`` and ``n_iter``.

    Notes
    -----
    At each ``alpha`` the fit minimises ``sum_i w_i nll_i / sum_i w_i + alpha (l1_ratio
    ||W||_1 + 0.5 (1 - l1_ratio) ||W||_2^2)`` (all weight matrices, never the biases); for a
    gaussian GLM the lasso path is scikit-learn's ``lasso_path`` and glmnet's path with
    ``lambda = alpha`` (glmnet standardizes X by default: pass standardized X to compare).
    The effective df is ``trace(I A^-1)`` minus the intercepts (:mod:`neurostat.inference`):
    the trace of the hat matrix for ridge, the number of nonzero coefficients for the lasso.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from neurostat import NeuralRegressor, regularization_path
    >>> X, y = load_diabetes(return_X_y=True)
    >>> path = regularization_path(NeuralRegressor((), solver="lbfgs", l1_ratio=1.0), X, y,
    ...                            alphas=[1.0, 0.1])
    >>> path.groupby("alpha")["df"].first().to_dict()
    {0.1: 7.0, 1.0: 3.0}
    """
    _check_estimator(estimator)
    if validation_data is not None and (not isinstance(validation_data, tuple | list)
                                        or len(validation_data) != 2):
        raise ValueError("validation_data must be a pair (X_val, y_val).")
    if not isinstance(eps, Real) or not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1); got {eps!r}.")
    est = clone(estimator).set_params(warm_start=True)
    grid = _alpha_grid(estimator, X, y, sample_weight, alphas, eps)
    rows = []
    n_iter = 0
    for alpha in grid:
        est.set_params(alpha=float(alpha))
        est.fit(X, y, sample_weight=sample_weight)
        # a net whose weights a strong penalty drove to zero sits at a stationary point (every
        # weight's gradient vanishes there), so warm starts would never leave it: start the
        # next fit afresh (same random_state) until the net comes alive
        est.set_params(warm_start=not _collapsed(est))
        Xv = est._validate_X_predict(X)
        coef, norm = _coefficients(est, Xv)
        df = _effective_df(est) if compute_df else np.nan
        train = float(est.score(X, y, sample_weight=sample_weight))
        val = np.nan if validation_data is None else float(est.score(*validation_data))
        terms = (list(est.feature_names_in_) if hasattr(est, "feature_names_in_")
                 else default_feature_names(coef.shape[1]))
        outputs = _output_names(est, coef.shape[0])
        fit_iter, n_iter = int(est.n_iter_) - n_iter, int(est.n_iter_)  # the history accumulates
        for k in range(coef.shape[0]):
            for j, term in enumerate(terms):
                rows.append({"alpha": float(alpha), "output": outputs[k], "term": str(term),
                             "coef": coef[k, j],
                             "weight_norm": norm[k if norm.shape[0] > 1 else 0, j],
                             "df": df, "train_score": train, "validation_score": val,
                             "n_iter": fit_iter})
    path = pd.DataFrame(rows)
    cols = PATH_COLUMNS if len(set(path["output"])) == 1 else \
        PATH_COLUMNS[:1] + ["output"] + PATH_COLUMNS[1:]
    return path[cols]


def _output_names(est, k):
    classes = getattr(est, "classes_", None)
    if classes is not None and k == len(classes) - 1 and k > 1:
        return [str(c) for c in classes[1:]]
    return list(range(k))


class PathDisplay:
    """Regularization path plot in glmnet's style.

    Each term's coefficient (or effect, or weight norm) against ``log(alpha)``, the effective
    degrees of freedom along the top axis, a dashed zero line, and the curves labelled by term
    at the least penalized end. Build it with :meth:`from_estimator` or :meth:`from_path`;
    ``__init__`` only stores.

    Parameters
    ----------
    alphas : ndarray of shape (n_alphas,)
    coefs : ndarray of shape (n_alphas, n_terms)
    terms : list of str
    df : ndarray of shape (n_alphas,), default=None
    value : str, default="coef"
        What ``coefs`` hold (axis label).
    estimator_name : str, default=None

    Attributes
    ----------
    lines_ : list of matplotlib Line2D
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
    """

    def __init__(self, alphas, coefs, terms, *, df=None, value="coef", estimator_name=None):
        self.alphas = alphas
        self.coefs = coefs
        self.terms = terms
        self.df = df
        self.value = value
        self.estimator_name = estimator_name

    def plot(self, *, ax=None, xvar="log_alpha", label=True, **kwargs):
        """Draw the path.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            A new figure when None.
        xvar : {"log_alpha", "norm"}, default="log_alpha"
            ``log(alpha)`` (glmnet's ``xvar="lambda"``) or the L1 norm of the coefficients
            (glmnet's default ``xvar="norm"``).
        label : bool, default=True
            Write each term's name at the least penalized end of its curve.
        **kwargs
            Passed to ``ax.plot`` for every curve.

        Returns
        -------
        self : PathDisplay
        """
        import matplotlib.pyplot as plt

        if xvar not in ("log_alpha", "norm"):
            raise ValueError(f"xvar must be 'log_alpha' or 'norm'; got {xvar!r}.")
        alphas = np.asarray(self.alphas, dtype=float)
        coefs = np.asarray(self.coefs, dtype=float)
        if coefs.shape != (alphas.size, len(self.terms)):
            raise ValueError(f"coefs must have shape (n_alphas, n_terms) = "
                             f"({alphas.size}, {len(self.terms)}); got {coefs.shape}.")
        if xvar == "log_alpha":
            if np.any(alphas <= 0):
                raise ValueError("xvar='log_alpha' needs alphas > 0; use xvar='norm'.")
            x, xlabel = np.log(alphas), "log(alpha)"
        else:
            x, xlabel = np.abs(coefs).sum(1), "L1 norm"
        order = np.argsort(x)
        x, coefs = x[order], coefs[order]
        if ax is None:
            _, ax = plt.subplots(figsize=(6.4, 4.4))
        kwargs.setdefault("lw", 1.2)
        self.lines_ = [ax.plot(x, coefs[:, j], label=t, **kwargs)[0]
                       for j, t in enumerate(self.terms)]
        ax.axhline(0.0, color="0.5", lw=0.8, ls="--")
        ax.set_xlabel(xlabel)
        ax.set_ylabel({"coef": "coefficient / effect", "weight_norm": "norm of input weights"}
                      .get(self.value, self.value))
        if label:
            end = 0 if xvar == "log_alpha" else -1  # the least penalized end
            for line, t in zip(self.lines_, self.terms, strict=False):
                ax.annotate(t, (x[end], line.get_ydata()[end]), fontsize=7,
                            color=line.get_color(), xytext=(-3 if end == 0 else 3, 0),
                            textcoords="offset points", va="center",
                            ha="right" if end == 0 else "left")
        if self.df is not None:
            df = np.asarray(self.df, dtype=float)[order]
            top = ax.secondary_xaxis("top")
            idx = np.unique(np.linspace(0, len(x) - 1, min(6, len(x))).round().astype(int))
            top.set_xticks(x[idx])
            top.set_xticklabels([f"{v:.3g}" if np.isfinite(v) else "" for v in df[idx]])
            top.set_xlabel("effective df")
        if self.estimator_name:
            ax.set_title(self.estimator_name, fontsize=10, pad=32 if self.df is not None else 6)
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_path(cls, path, *, value="coef", output=None, ax=None, xvar="log_alpha",
                  label=True, estimator_name=None, **kwargs):
        """Plot a DataFrame returned by :func:`regularization_path`.

        Parameters
        ----------
        path : DataFrame
        value : {"coef", "weight_norm"}, default="coef"
        output : label, default=None
            Which linear predictor, when the path has an ``output`` column (default: the
            first).
        ax, xvar, label, **kwargs
            See :meth:`plot`.

        Returns
        -------
        display : PathDisplay
        """
        if not isinstance(path, pd.DataFrame) or not {"alpha", "term", value} <= set(path):
            raise ValueError("path must be a DataFrame from regularization_path with columns "
                             f"'alpha', 'term' and {value!r}.")
        if "output" in path:
            output = path["output"].iloc[0] if output is None else output
            path = path[path["output"] == output]
        wide = path.pivot_table(index="alpha", columns="term", values=value, sort=False)
        terms = list(dict.fromkeys(path["term"]))
        wide = wide[terms].sort_index(ascending=False)
        df = None
        if "df" in path:
            df = path.groupby("alpha")["df"].first().reindex(wide.index).to_numpy()
        disp = cls(wide.index.to_numpy(), wide.to_numpy(), terms, df=df, value=value,
                   estimator_name=estimator_name)
        return disp.plot(ax=ax, xvar=xvar, label=label, **kwargs)

    @classmethod
    def from_estimator(cls, estimator, X, y, alphas=30, *, sample_weight=None, value="coef",
                       compute_df=True, ax=None, xvar="log_alpha", label=True, **kwargs):
        """Compute :func:`regularization_path` for ``estimator`` and plot it.

        Returns
        -------
        display : PathDisplay
            With the path DataFrame as ``path_``.
        """
        path = regularization_path(estimator, X, y, alphas, sample_weight=sample_weight,
                                   compute_df=compute_df)
        disp = cls.from_path(path, value=value, ax=ax, xvar=xvar, label=label,
                             estimator_name=type(estimator).__name__, **kwargs)
        disp.path_ = path
        return disp
