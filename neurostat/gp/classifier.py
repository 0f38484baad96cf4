"""NNGPClassifier: Gaussian-process classification (Laplace approximation) with the kernels of
infinitely wide fully connected or convolutional networks, scikit-learn style."""

import math
from numbers import Integral, Real

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._compat import Interval, StrOptions, _fit_context
from ._recursions import ACTIVATIONS, layer_kernels
from .conv_kernel import _check_shape, conv_kernel

__all__ = ["NNGPClassifier"]

_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(64)
_GH_W = _GH_W / _GH_W.sum()


class NNGPClassifier(ClassifierMixin, BaseEstimator):
    r"""Gaussian-process classifier with an infinite-width network kernel (Laplace).

    A latent GP with covariance ``scale * k`` (``k`` the NNGP or NTK kernel of a fully
    connected or convolutional network), the logistic likelihood, and Laplace's approximation
    to the posterior (Rasmussen and Williams 2006, algorithms 3.1 and 3.2, as scikit-learn's
    :class:`~sklearn.gaussian_process.GaussianProcessClassifier`); several classes are fitted
    one-vs-rest. ``scale`` (one factor on the readout layer's weight and bias variances) is
    fitted per binary problem by maximizing the approximate marginal likelihood; the other
    kernel hyperparameters stay as given (the kernel is computed once).

    Parameters
    ----------
    architecture : {"dense", "conv"}, default="dense"
        Fully connected (:class:`NNGPKernel`) or convolutional (:class:`ConvNNGPKernel`).
    kernel : {"nngp", "ntk"}, default="nngp"
    depth : int, default=2
        Hidden (dense) or convolution layers.
    activation : str or callable, default="relu"
    weight_variance : float, default=1.0
    bias_variance : float, default=0.0
    image_shape : tuple or None, default=None
        For ``architecture="conv"``: ``(c, h, w)`` or ``(h, w)`` of the flat rows; ``None``
        reads ``s * s`` features as an ``s x s`` image and anything else as a ``1 x p`` row.
    kernel_size : int, default=3
        Conv filter size (odd; SAME padding, stride 1).
    pooling : {"gap", "flatten"}, default="gap"
        Conv readout.
    scale : float, default=1.0
        Prior scale of the latent function (the start of its fit when ``optimize``).
    optimize : bool, default=True
        Fit ``scale`` per binary problem by the Laplace marginal likelihood: the best of a
        41-point grid of ``log scale`` over ``[-12, 12]``, refined by bounded Brent.
    max_iter : int, default=100
        Newton iterations for the posterior mode.

    Attributes
    ----------
    classes_ : ndarray
    scale_ : ndarray of shape (n_problems,)
        Fitted scales (one binary problem for two classes, one per class otherwise).
    log_marginal_likelihood_ : ndarray of shape (n_problems,)
        Laplace approximate :math:`\log p(y \mid X)` of each binary problem.
    n_iter_ : ndarray of shape (n_problems,)
        Newton iterations of the final posterior-mode search of each binary problem.
    n_features_in_ : int

    See Also
    --------
    NNGPRegressor : exact GP regression with the same kernels.
    sklearn.gaussian_process.GaussianProcessClassifier : the same approximation.

    Notes
    -----
    Predictive probabilities integrate the logistic function against the Gaussian predictive
    distribution of the latent function by a 64-node Gauss-Hermite rule (scikit-learn uses an
    erf-mixture approximation, ~1e-4 apart). The Gram matrix costs ``O(n^2)`` kernel entries
    (for the conv kernels ``O(n^2 (HW)^2)``, see :class:`ConvNNGPKernel`) and the Newton
    iterations ``O(n^3)`` each.

    References
    ----------
    .. [1] C. E. Rasmussen and C. K. I. Williams (2006). Gaussian Processes for Machine
       Learning, ch. 3. MIT Press.
    .. [2] R. Novak et al. (2019). Bayesian deep convolutional networks with many channels are
       Gaussian processes. ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> from neurostat.gp import NNGPClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 2)); y = (X[:, 0] * X[:, 1] > 0).astype(int)
    >>> clf = NNGPClassifier(depth=2).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints = {
        "architecture": [StrOptions({"dense", "conv"})],
        "kernel": [StrOptions({"nngp", "ntk"})],
        "depth": [Interval(Integral, 0, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS)), callable],
        "weight_variance": [Interval(Real, 0, None, closed="neither")],
        "bias_variance": [Interval(Real, 0, None, closed="left")],
        "image_shape": [None, tuple, list],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "pooling": [StrOptions({"gap", "flatten"})],
        "scale": [Interval(Real, 0, None, closed="neither")],
        "optimize": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self, *, architecture="dense", kernel="nngp", depth=2, activation="relu",
        weight_variance=1.0, bias_variance=0.0, image_shape=None, kernel_size=3, pooling="gap",
        scale=1.0, optimize=True, max_iter=100,
    ):
        self.architecture = architecture
        self.kernel = kernel
        self.depth = depth
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.image_shape = image_shape
        self.kernel_size = kernel_size
        self.pooling = pooling
        self.scale = scale
        self.optimize = optimize
        self.max_iter = max_iter

    def _image_shape(self, n_features):
        if self.image_shape is not None:
            shape = _check_shape(self.image_shape)
            if math.prod(shape) != n_features:
                raise ValueError(
                    f"image_shape={self.image_shape} has {math.prod(shape)} values but X has "
                    f"{n_features} features"
                )
            return shape
        s = math.isqrt(n_features)
        return (1, s, s) if s * s == n_features else (1, 1, n_features)

    def _gram(self, A, B, diag=False):
        """The network kernel between rows of ``A`` and ``B`` (float64 numpy)."""
        # copies: validated inputs may be read-only views, which torch will not wrap
        a = torch.tensor(A, dtype=torch.float64)
        b = a if B is A else torch.tensor(B, dtype=torch.float64)
        w, bv, ntk = float(self.weight_variance), float(self.bias_variance), self.kernel == "ntk"
        with torch.no_grad():
            if self.architecture == "conv":
                if self.kernel_size % 2 == 0:
                    raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
                out = conv_kernel(a, b, self.image_shape_, self.depth, self.kernel_size,
                                  self.pooling, self.activation, w, bv, ntk=ntk, diag=diag)
            else:
                wt = torch.tensor(w, dtype=torch.float64)
                bt = torch.tensor(bv, dtype=torch.float64)
                out = layer_kernels(a, b, self.depth, self.activation, wt, bt, diag=diag,
                                    ntk=ntk)[1 if ntk else 0]
        return out.numpy()

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the Laplace approximation (and ``scale``) for each binary problem.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : NNGPClassifier
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"NNGPClassifier needs samples of at least 2 classes; got 1 class "
                f"({self.classes_[0]!r})"
            )
        self.image_shape_ = (
            self._image_shape(X.shape[1]) if self.architecture == "conv" else None
        )
        self.X_train_ = X
        K = self._gram(X, X)
        problems = [codes == 1] if len(self.classes_) == 2 else [
            codes == c for c in range(len(self.classes_))]
        self._fits = [_fit_binary(K, t.astype(float), self.scale, self.optimize, self.max_iter)
                      for t in problems]
        self.scale_ = np.array([f["scale"] for f in self._fits])
        self.log_marginal_likelihood_ = np.array([f["log_z"] for f in self._fits])
        # Newton iterations of the final mode search, per one-vs-rest problem
        self.n_iter_ = np.array([f["n_iter"] for f in self._fits])
        return self

    def _latent(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        Ks = self._gram(X, self.X_train_)
        kss = self._gram(X, X, diag=True)
        out = []
        for f in self._fits:
            s = f["scale"]
            mean = s * Ks @ (f["y"] - f["pi"])
            v = _solve_lower(f["L"], f["sw"][:, None] * (s * Ks.T))
            var = np.maximum(s * kss - (v * v).sum(0), 0.0)
            out.append((mean, var))
        return out

    def decision_function(self, X):
        """Log-odds of :meth:`predict_proba` (binary) or its log-probabilities (one column per
        class), so that rankings agree with the probabilities.

        The posterior mean of the latent function, which ranks points differently where their
        predictive variances differ, is :meth:`predict_latent`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        P = np.clip(self.predict_proba(X), 1e-300, None)
        if P.shape[1] == 2:
            return np.log(P[:, 1]) - np.log(P[:, 0])
        return np.log(P)

    def predict_latent(self, X, return_std=False):
        """Laplace posterior of the latent function at ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the latent posterior standard deviation.

        Returns
        -------
        mean : ndarray of shape (n_samples,) or (n_samples, n_classes)
            One column per one-vs-rest problem beyond two classes.
        std : ndarray of the same shape, only if ``return_std``
        """
        check_is_fitted(self)
        lat = self._latent(X)
        means = np.column_stack([m for m, _ in lat])
        stds = np.sqrt(np.column_stack([v for _, v in lat]))
        if means.shape[1] == 1:
            means, stds = means[:, 0], stds[:, 0]
        return (means, stds) if return_std else means

    def predict_proba(self, X):
        """Class probabilities: the logistic function averaged over the latent predictive
        distribution (64-node Gauss-Hermite); one-vs-rest probabilities are normalized.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        probs = [_average_logistic(m, v) for m, v in self._latent(X)]
        if len(probs) == 1:
            p = probs[0]
            return np.column_stack([1 - p, p])
        P = np.column_stack(probs)
        return P / P.sum(1, keepdims=True)

    def predict(self, X):
        """Most probable class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _average_logistic(mean, var):
    z = mean[:, None] + np.sqrt(var)[:, None] * _GH_X[None, :]
    return expit(z) @ _GH_W


def _solve_lower(L, B):
    from scipy.linalg import solve_triangular

    return solve_triangular(L, B, lower=True, check_finite=False)


def _laplace(K, t, f0, max_iter):
    """Posterior mode of a logistic GP with covariance ``K`` and 0/1 targets ``t`` by Newton
    (Rasmussen and Williams, algorithm 3.1). Returns the approximate log marginal likelihood
    and the pieces of algorithm 3.2."""
    from scipy.linalg import cho_solve, cholesky

    n = len(t)
    f = f0.copy()
    s = 2 * t - 1
    log_z_old = -np.inf
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (the count is returned)
        pi = expit(f)
        W = pi * (1 - pi)
        sw = np.sqrt(W)
        B = np.eye(n) + sw[:, None] * K * sw[None, :]
        L = cholesky(B, lower=True, check_finite=False)
        b = W * f + (t - pi)
        a = b - sw * cho_solve((L, True), sw * (K @ b), check_finite=False)
        f = K @ a
        log_z = -0.5 * a @ f - np.logaddexp(0, -s * f).sum() - np.log(np.diag(L)).sum()
        if log_z - log_z_old < 1e-10 * max(1.0, abs(log_z)):
            break
        log_z_old = log_z
    # the pieces at the final mode
    pi = expit(f)
    sw = np.sqrt(pi * (1 - pi))
    B = np.eye(n) + sw[:, None] * K * sw[None, :]
    L = cholesky(B, lower=True, check_finite=False)
    return {"f": f, "pi": pi, "sw": sw, "L": L, "y": t, "log_z": _log_z(t, f, L),
            "n_iter": n_iter}


def _log_z(t, f, L):
    """``-f' K^-1 f / 2 + sum log p(t | f) - sum log diag(L)`` at the mode, where
    ``K^-1 f = t - pi`` (the mode's stationarity condition)."""
    s = 2 * t - 1
    grad = t - expit(f)
    return -0.5 * f @ grad - np.logaddexp(0, -s * f).sum() - np.log(np.diag(L)).sum()


def _fit_binary(K, t, scale, optimize, max_iter):
    state = {"f": np.zeros(len(t))}

    def neg(log_s):
        out = _laplace(np.exp(log_s) * K, t, state["f"], max_iter)
        state["f"] = out["f"]  # warm start the next Newton run
        return -out["log_z"]

    log_s = math.log(scale)
    if optimize:
        # the Laplace evidence in log scale can have a second, flat maximum at small scales
        # (the latent function ~ 0): a grid of 41 points over [-12, 12] first, then bounded
        # Brent within one step of the best
        grid = np.linspace(-12.0, 12.0, 41)
        values = []
        for g in grid:
            values.append(neg(g))
        best = int(np.argmin(values))
        lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
        state["f"] = np.zeros(len(t))
        res = minimize_scalar(neg, bounds=(lo, hi), method="bounded", options={"xatol": 1e-5})
        log_s = float(res.x) if res.fun <= values[best] else float(grid[best])
    s = math.exp(log_s)
    out = _laplace(s * K, t, np.zeros(len(t)), max_iter)
    out["scale"] = s
    return out
