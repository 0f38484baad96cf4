"""Implicit regularization: what the solver and its starting point do without a penalty.

The lecture's last regularization claims - "SGD itself provides regularization" and
"initialization regularization" - as views with exact statements where they exist:

* :func:`early_stopping_path` - full-batch gradient descent on least squares, started at zero and
  stopped at iteration ``k``, is a spectral filter on the singular values of the (centered)
  design, as ridge is: ``1 - (1 - eta s_i^2)^k`` against ``s_i^2 / (s_i^2 + lambda)``. The path
  of the gradient-descent iterates, the ridge path at the matched penalty ``lambda = 1 / (eta k)``
  (Ali, Kolter & Tibshirani 2019) and the gradient flow at time ``t = eta k``, in closed form,
  with their exact risks. Its limit is the minimum-norm least-squares solution: gradient descent
  from zero on an underdetermined problem never leaves the row space of X.
* :func:`sharpness` - the top eigenvalue of the Hessian of a fitted net's training objective, by
  Lanczos iterations on Hessian-vector products: the quantity that the noise of stochastic
  gradients (learning rate over batch size) is argued to keep small.

Vignette 11 (``vignettes/11_sgd_regularizes.py``) measures both on data, together with the effect
of the initialization's scale; transfer learning as an informative starting point is vignette 06.
"""

from numbers import Integral, Real

import numpy as np
import torch

__all__ = ["EarlyStoppingPath", "early_stopping_path", "sharpness"]


# ----------------------------------------------------------------------------- early stopping


def _check_design(X, y):
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-d array (n_samples, n_features); got shape {X.shape}.")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"y must be a 1-d array with one value per row of X ({X.shape[0]}); got shape "
            f"{y.shape}."
        )
    if X.shape[0] < 2 or X.shape[1] < 1:
        raise ValueError(f"X needs at least 2 rows and 1 column; got shape {X.shape}.")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("X and y must be finite (no NaN or infinity).")
    return X, y


class EarlyStoppingPath:
    """Gradient-descent iterates of least squares and the ridge path they match.

    Built by :func:`early_stopping_path`; row ``k`` of every path is iteration ``k``
    (``k = 0`` is the starting point, zero slopes).

    Attributes
    ----------
    iterations : ndarray of shape (n_iter + 1,)
        ``0, 1, ..., n_iter``.
    times : ndarray of shape (n_iter + 1,)
        Gradient-flow time of each iteration, ``t = learning_rate * k``.
    alphas : ndarray of shape (n_iter + 1,)
        The matched ridge penalties ``1 / t`` (``inf`` at ``k = 0``), in neurostat's
        parametrization: the ``alpha`` of ``NeuralRegressor(hidden_layer_sizes=(), alpha=...)``
        and of ``sklearn.linear_model.Ridge(alpha=alpha * n_samples)``.
    coef_gd, coef_ridge, coef_flow : ndarray of shape (n_iter + 1, n_features)
        Slopes of gradient descent at iteration ``k``, of ridge at ``alphas[k]`` and of
        gradient flow at ``times[k]``.
    intercept_gd, intercept_ridge, intercept_flow : ndarray of shape (n_iter + 1,)
        ``mean(y) - mean(X, 0) @ coef`` for each path (the intercept is never penalized).
    coef_min_norm : ndarray of shape (n_features,)
        The limit of the gradient-descent path: the minimum-norm least-squares slopes,
        ``pinv(Xc) @ yc``.
    singular_values : ndarray of shape (rank,)
        The nonzero singular values ``s_i`` of ``Xc / sqrt(n_samples)`` (descending); ``s_i^2``
        are the eigenvalues of the Hessian ``Xc' Xc / n`` of the objective.
    components : ndarray of shape (rank, n_features)
        The matching right singular vectors ``v_i`` (rows).
    learning_rate : float
    n_samples : int
    """

    def __init__(self, X, y, learning_rate, n_iter):
        n, p = X.shape
        self.learning_rate = float(learning_rate)
        self.n_samples = n
        self._x_mean = X.mean(0)
        self._y_mean = float(y.mean())
        Xc = X - self._x_mean
        yc = y - self._y_mean
        U, s, Vt = np.linalg.svd(Xc / np.sqrt(n), full_matrices=False)
        # rank cut as numpy's pinv: centering leaves one exact zero direction (the constant)
        keep = s > max(n, p) * np.finfo(np.float64).eps * (s[0] if s.size else 0.0)
        if not np.any(keep):
            raise ValueError("X has no variation (every column constant): nothing to fit.")
        U, s, Vt = U[:, keep], s[keep], Vt[keep]
        self.singular_values = s
        self.components = Vt
        self._z = U.T @ yc / np.sqrt(n)  # the response in the singular basis
        self.iterations = np.arange(n_iter + 1)
        self.times = self.learning_rate * self.iterations
        with np.errstate(divide="ignore"):
            self.alphas = np.where(self.times > 0, 1.0 / np.where(self.times > 0, self.times, 1),
                                   np.inf)
        self.coef_gd = self._coef(self.filters("gd"))
        self.coef_ridge = self._coef(self.filters("ridge"))
        self.coef_flow = self._coef(self.filters("flow"))
        self.coef_min_norm = Vt.T @ (self._z / s)
        self.intercept_gd = self._intercept(self.coef_gd)
        self.intercept_ridge = self._intercept(self.coef_ridge)
        self.intercept_flow = self._intercept(self.coef_flow)

    def filters(self, kind="gd"):
        """Spectral filter factors ``f_i`` of a path, shape (n_iter + 1, rank).

        Every path is ``coef = sum_i f_i (z_i / s_i) v_i`` with ``z = U' yc / sqrt(n)``;
        ``f = 1`` everywhere is the minimum-norm least-squares fit.

        Parameters
        ----------
        kind : {"gd", "ridge", "flow"}, default="gd"
            ``1 - (1 - eta s_i^2)^k`` (gradient descent), ``s_i^2 / (s_i^2 + 1 / (eta k))``
            (ridge at the matched penalty), ``1 - exp(-eta k s_i^2)`` (gradient flow).

        Returns
        -------
        f : ndarray of shape (n_iter + 1, rank)
        """
        s2 = self.singular_values[None, :] ** 2
        k = self.iterations[:, None].astype(np.float64)
        t = self.times[:, None]
        if kind == "gd":
            # 1 - (1 - c)^k, without cancellation for small c = eta s^2 (log1p needs c < 1)
            c = self.learning_rate * s2
            small = c < 0.5
            f_small = -np.expm1(k * np.log1p(-np.where(small, c, 0.0)))
            return np.where(small, f_small, 1.0 - (1.0 - c) ** k)
        if kind == "ridge":
            return t * s2 / (t * s2 + 1.0)  # s^2 / (s^2 + 1/t), 0 at t = 0
        if kind == "flow":
            return -np.expm1(-t * s2)
        raise ValueError(f"kind must be 'gd', 'ridge' or 'flow'; got {kind!r}.")

    def _coef(self, f):
        return (f * (self._z / self.singular_values)[None, :]) @ self.components

    def _intercept(self, coef):
        return self._y_mean - coef @ self._x_mean

    def risk(self, noise_var, coef_true=None, *, kind="estimation", prior_var=None):
        """Exact expected risk of each path, given X, under ``y = a + X beta + noise``.

        The expectation is over the noise (mean zero, covariance ``noise_var * I``) in closed
        form - no Monte Carlo: each path is a linear smoother ``coef = A_k yc``, so its risk is
        squared bias plus the trace of its covariance.

        Parameters
        ----------
        noise_var : float
            ``sigma^2 >= 0``.
        coef_true : array-like of shape (n_features,), default=None
            The true slopes ``beta``. Give either this or ``prior_var``.
        kind : {"estimation", "prediction"}, default="estimation"
            ``E ||coef - beta||^2`` (estimation risk) or ``E ||Xc (coef - beta)||^2 / n``
            (in-sample prediction risk of the centered fit).
        prior_var : float, default=None
            Instead of a fixed ``beta``: its average over a prior with ``E beta beta' =
            prior_var * I`` (Bayes risk).

        Returns
        -------
        risk : dict
            ``{"gd": ..., "ridge": ..., "flow": ...}``, each of shape (n_iter + 1,).

        Notes
        -----
        In the singular basis, with ``b_i = v_i' beta`` and ``f_i`` the filter factors,
        estimation risk is ``sum_i (1 - f_i)^2 b_i^2 + ||P_0 beta||^2 + (sigma^2 / n) sum_i
        f_i^2 / s_i^2`` (``P_0`` projects on the null space of ``Xc``, which no path reaches),
        prediction risk ``sum_i s_i^2 (1 - f_i)^2 b_i^2 + (sigma^2 / n) sum_i f_i^2``.
        """
        if not isinstance(noise_var, Real) or not noise_var >= 0 or not np.isfinite(noise_var):
            raise ValueError(f"noise_var must be a finite number >= 0; got {noise_var!r}.")
        if kind not in ("estimation", "prediction"):
            raise ValueError(f"kind must be 'estimation' or 'prediction'; got {kind!r}.")
        V = self.components
        p = V.shape[1]
        if (coef_true is None) == (prior_var is None):
            raise ValueError("Give exactly one of coef_true (fixed slopes) and prior_var "
                             "(their prior variance, for the Bayes risk).")
        if coef_true is not None:
            beta = np.asarray(coef_true, dtype=np.float64)
            if beta.shape != (p,) or not np.all(np.isfinite(beta)):
                raise ValueError(f"coef_true must be {p} finite slopes; got shape {beta.shape}.")
            b2 = (V @ beta) ** 2
            null2 = max(float(beta @ beta - b2.sum()), 0.0)
        else:
            if not isinstance(prior_var, Real) or not prior_var >= 0:
                raise ValueError(f"prior_var must be a number >= 0; got {prior_var!r}.")
            b2 = np.full(V.shape[0], float(prior_var))
            null2 = float(prior_var) * (p - V.shape[0])
        s2 = self.singular_values**2
        out = {}
        for name in ("gd", "ridge", "flow"):
            f = self.filters(name)
            if kind == "estimation":
                bias = ((1 - f) ** 2 * b2).sum(1) + null2
                var = noise_var / self.n_samples * (f**2 / s2).sum(1)
            else:
                bias = (s2 * (1 - f) ** 2 * b2).sum(1)
                var = noise_var / self.n_samples * (f**2).sum(1)
            out[name] = bias + var
        return out

    def to_frame(self):
        """The three paths as a tidy DataFrame: one row per (iteration, term).

        Returns
        -------
        frame : pandas.DataFrame
            Columns ``iteration``, ``time``, ``alpha``, ``term`` (``x0, x1, ...``),
            ``coef_gd``, ``coef_ridge``, ``coef_flow``.
        """
        import pandas as pd

        k, p = self.coef_gd.shape
        return pd.DataFrame({
            "iteration": np.repeat(self.iterations, p),
            "time": np.repeat(self.times, p),
            "alpha": np.repeat(self.alphas, p),
            "term": np.tile([f"x{j}" for j in range(p)], k),
            "coef_gd": self.coef_gd.ravel(),
            "coef_ridge": self.coef_ridge.ravel(),
            "coef_flow": self.coef_flow.ravel(),
        })

    def plot(self, axes=None):
        """The gradient-descent and ridge paths side by side, against ``t = eta k = 1/lambda``.

        Parameters
        ----------
        axes : sequence of two matplotlib Axes, default=None
            A new 1 x 2 figure when None.

        Returns
        -------
        axes : the two Axes
        """
        import matplotlib.pyplot as plt

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        t = self.times[1:]
        for ax, coef, title in ((axes[0], self.coef_gd, "gradient descent, iteration k"),
                                (axes[1], self.coef_ridge, "ridge, lambda = 1 / (eta k)")):
            ax.plot(t, coef[1:], lw=1.2)
            ax.set_xscale("log")
            ax.axhline(0, color="0.6", lw=0.8, ls="--")
            ax.set_xlabel("t = eta k = 1 / lambda")
            ax.set_title(title, fontsize=10)
        axes[0].set_ylabel("coefficient")
        return axes


def early_stopping_path(X, y, learning_rate, n_iter):
    """Gradient descent on least squares from zero, iteration by iteration, and matched ridge.

    The objective is neurostat's gaussian one with no hidden layer, ``(1 / 2n) ||yc - Xc b||^2``
    on centered data: gradient descent with step ``eta = learning_rate`` from ``b = 0``,
    ``b_k = b_{k-1} + eta Xc' (yc - Xc b_{k-1}) / n``, is in closed form the spectral filter

        ``b_k = sum_i [1 - (1 - eta s_i^2)^k] (u_i' yc / (sqrt(n) s_i)) v_i``

    on the singular value decomposition ``Xc / sqrt(n) = sum_i s_i u_i v_i'``, and ridge,
    ``argmin (1 / 2n) ||yc - Xc b||^2 + (lambda / 2) ||b||^2``, is the filter
    ``s_i^2 / (s_i^2 + lambda)``. The returned ridge path uses the matched penalty
    ``lambda = 1 / (eta k)`` of Ali, Kolter & Tibshirani (2019); the gradient flow (``eta -> 0``
    at fixed time ``t = eta k``) is the filter ``1 - exp(-t s_i^2)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    learning_rate : float
        The step ``eta > 0``; gradient descent converges for ``eta < 2 / s_1^2`` (``s_1^2``
        the largest eigenvalue of ``Xc' Xc / n``), and a larger step is refused.
    n_iter : int
        Iterations ``k = 1 .. n_iter`` (row 0 of each path is the start).

    Returns
    -------
    path : EarlyStoppingPath
        ``coef_gd``, ``coef_ridge``, ``coef_flow`` (each (n_iter + 1, n_features)), their
        intercepts, ``alphas``, ``times``, the filters and exact risks.

    Notes
    -----
    *The intercept.* X and y are centered and the intercept is ``mean(y) - mean(X) @ b_k``,
    never penalized. This is exactly full-batch gradient descent on ``(b, intercept)`` jointly,
    started at ``(0, mean(y))`` - what ``NeuralRegressor(hidden_layer_sizes=(), solver="sgd",
    init="zeros", batch_size=n_samples, momentum=0, shuffle=False)`` runs - when the columns of
    X have mean zero: the intercept's gradient ``-mean(y - X b - intercept)`` is then zero at
    every step. For uncentered X the joint iteration moves the intercept too and its slopes
    differ from this path; standardize (or center) X first.

    *Risk.* Componentwise, gradient flow at ``t`` has a smaller squared bias than ridge at
    ``1 / t`` (``exp(-x) <= 1 / (1 + x)``) and a variance at most ``max_x [(1 - exp(-x))
    (1 + 1 / x)]^2 = 1.6859`` times ridge's (at ``x = 1.793``), so its estimation risk is at
    most 1.6862 times ridge's for every ``beta`` and ``t`` (their Theorem 1), and the same
    argument bounds the in-sample prediction risk. The bound is for gradient flow. For
    discrete steps the bias comparison still holds when ``eta s_1^2 <= 1`` (``(1 - c)^k <=
    exp(-ck)``), but the variance ratio of a component with ``c = eta s_i^2`` reaches
    ``max_k [(1 - (1 - c)^k)(1 + 1 / (ck))]^2``: 1.692 at ``c = 0.01``, 1.75 at 0.1, 4 at
    ``c = 1`` (``k = 1``). :meth:`EarlyStoppingPath.risk` gives the exact risks of all three
    paths to compare.

    References
    ----------
    Ali, A., Kolter, J. Z. and Tibshirani, R. J. (2019). A continuous-time view of early
    stopping for least squares regression. AISTATS, PMLR 89, 1370-1378.

    Examples
    --------
    >>> import numpy as np
    >>> from neurostat import early_stopping_path
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 3)); y = X @ [1.0, -1.0, 0.5] + rng.normal(size=100)
    >>> path = early_stopping_path(X, y, learning_rate=0.1, n_iter=200)
    >>> path.coef_gd.shape, float(path.alphas[200])
    ((201, 3), 0.05)
    >>> bool(np.allclose(path.coef_gd[-1], path.coef_min_norm, atol=1e-6))
    True
    """
    X, y = _check_design(X, y)
    if (not isinstance(learning_rate, Real) or isinstance(learning_rate, bool)
            or not np.isfinite(learning_rate) or not learning_rate > 0):
        raise ValueError(f"learning_rate must be a finite number > 0; got {learning_rate!r}.")
    if not isinstance(n_iter, Integral) or isinstance(n_iter, bool) or n_iter < 1:
        raise ValueError(f"n_iter must be an integer >= 1; got {n_iter!r}.")
    path = EarlyStoppingPath(X, y, learning_rate, int(n_iter))
    top = float(path.singular_values[0] ** 2)
    if learning_rate * top >= 2.0:
        raise ValueError(
            f"learning_rate={learning_rate:g} makes gradient descent diverge: the largest "
            f"eigenvalue of Xc'Xc/n is {top:.6g}, so the step must be below 2 / {top:.6g} = "
            f"{2.0 / top:.6g} (standardizing X helps)."
        )
    return path


# ----------------------------------------------------------------------------- sharpness


def _encoded_target(estimator, y, n):
    """y as the fitted estimator's family expects it (classes -> codes), without refitting."""
    if hasattr(estimator, "classes_"):
        classes = np.asarray(estimator.classes_)
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(f"y must have one label per row of X ({n}); got shape {y.shape}.")
        codes = np.searchsorted(classes, y)
        codes = np.clip(codes, 0, len(classes) - 1)
        if not np.all(classes[codes] == y):
            raise ValueError(
                f"y contains labels not in the estimator's classes_ {classes.tolist()}."
            )
        return codes.astype(np.float64) if len(classes) == 2 else codes.astype(np.int64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape[0] != n or not np.all(np.isfinite(y)):
        raise ValueError(f"y must be finite with one row per row of X ({n}); got {y.shape}.")
    return y


def sharpness(estimator, X, y, *, sample_weight=None, penalty=True, tol=1e-10,
              random_state=0):
    """Top eigenvalue of the Hessian of a fitted net's training objective (Lanczos).

    The objective is the one the net was fitted to, ``mean_i w_i nll_i`` plus, with
    ``penalty=True``, the ridge part ``0.5 * alpha * (1 - l1_ratio) * ||W||^2`` of its
    penalty (the L1 part has no curvature away from zero), as a function of the trainable
    parameters (weights and biases; layers frozen by ``freeze`` are excluded) at their fitted
    values, on the original scale of y. Its largest eigenvalue is found by implicitly
    restarted Lanczos iterations (ARPACK, through ``scipy.sparse.linalg.eigsh``) on exact
    Hessian-vector products (double backpropagation, float64): the Hessian is never formed.

    Parameters
    ----------
    estimator : fitted NeuralRegressor or NeuralClassifier
        (or a subclass such as ConvNetClassifier). Dropout is switched off (evaluation mode):
        the Hessian is that of the deterministic network the estimator predicts with.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Responses, or class labels among ``estimator.classes_``.
    sample_weight : array-like of shape (n_samples,), default=None
    penalty : bool, default=True
        Include the ridge part of the fitted penalty.
    tol : float, default=1e-10
        Relative accuracy asked of the Lanczos iterations.
    random_state : int, default=0
        Seed of the Lanczos starting vector (the answer does not depend on it beyond ``tol``).

    Returns
    -------
    lambda_max : float
        The largest (algebraic) eigenvalue. Gradient descent with step ``eta`` is stable
        near a minimum only where it is below ``2 / eta``.

    Examples
    --------
    >>> import numpy as np
    >>> from neurostat import NeuralRegressor, sharpness
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = X @ [1.0, 2.0, 0.0] + rng.normal(size=200)
    >>> ols = NeuralRegressor((), solver="lbfgs").fit(X, y)
    >>> Z = np.column_stack([X, np.ones(200)])  # the Hessian of a gaussian GLM is Z'Z / n
    >>> bool(np.isclose(sharpness(ols, X, y), np.linalg.eigvalsh(Z.T @ Z / 200)[-1]))
    True
    """
    from scipy.sparse.linalg import LinearOperator, eigsh
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted

    from .engine.penalties import ElasticNetPenalty
    from .estimators.neural import NeuralClassifier, NeuralRegressor

    if not isinstance(estimator, (NeuralClassifier, NeuralRegressor)):
        raise TypeError(
            "sharpness needs a fitted NeuralRegressor or NeuralClassifier (or a subclass); got "
            f"{type(estimator).__name__}."
        )
    check_is_fitted(estimator, "module_")
    if not isinstance(tol, Real) or not tol >= 0:
        raise ValueError(f"tol must be a number >= 0; got {tol!r}.")
    Xv = estimator._validate_X_predict(X)
    n = Xv.shape[0]
    yv = _encoded_target(estimator, y, n)
    w = None
    if sample_weight is not None:
        w = _check_sample_weight(sample_weight, Xv, dtype=np.float64, ensure_non_negative=True)
        if not np.all(np.isfinite(w)) or w.sum() <= 0:
            raise ValueError("sample_weight must be finite, >= 0 and not all zero.")

    module = estimator.module_
    device = next(module.parameters()).device
    family = estimator.family_
    named = [(k, v) for k, v in module.named_parameters() if v.requires_grad]
    if not named:
        raise ValueError("The network has no trainable parameters (everything is frozen).")
    names = [k for k, _ in named]
    theta = [v.detach().to(torch.float64).clone().requires_grad_(True) for _, v in named]
    frozen = {k: v.detach().to(torch.float64) for k, v in module.named_parameters()
              if not v.requires_grad}
    buffers = {k: v.to(torch.float64) if v.is_floating_point() else v
               for k, v in module.named_buffers()}
    Xt = torch.as_tensor(np.ascontiguousarray(Xv), dtype=torch.float64, device=device)
    yt = torch.as_tensor(yv, device=device)
    yt = yt.to(torch.float64) if yt.is_floating_point() else yt
    wt = None if w is None else torch.as_tensor(w, dtype=torch.float64, device=device)

    was_training = module.training
    module.eval()
    try:
        params = {**frozen, **dict(zip(names, theta)), **buffers}
        eta = torch.func.functional_call(module, params, (Xt,))
        obj = family.loss(eta, yt, wt)
        if penalty:
            pen = ElasticNetPenalty(getattr(estimator, "alpha", 0.0),
                                    getattr(estimator, "l1_ratio", 0.0))
            weight_ids = {id(p) for p in module.penalized_parameters()}
            weights = [t for (k, v), t in zip(named, theta) if id(v) in weight_ids]
            obj = obj + pen.smooth(weights)
        grads = torch.autograd.grad(obj, theta, create_graph=True)
        g = torch.cat([gi.reshape(-1) for gi in grads])
    finally:
        module.train(was_training)
    size = g.numel()

    def hvp(v):
        v = torch.as_tensor(np.ascontiguousarray(v, dtype=np.float64).ravel(), device=device)
        hv = torch.autograd.grad(g, theta, grad_outputs=v, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in hv]).detach().cpu().numpy()

    if size <= 2:  # ARPACK needs k < size; form the (tiny) Hessian instead
        H = np.column_stack([hvp(e) for e in np.eye(size)])
        return float(np.linalg.eigvalsh(0.5 * (H + H.T))[-1])
    op = LinearOperator((size, size), matvec=hvp, dtype=np.float64)
    v0 = np.random.default_rng(random_state).standard_normal(size)
    vals = eigsh(op, k=1, which="LA", v0=v0, tol=tol, return_eigenvectors=False)
    return float(vals[-1])
