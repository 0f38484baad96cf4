"""NNGPRegressor: Gaussian-process regression with an NNGP or NTK kernel, sklearn style."""

import os
from numbers import Integral, Real

import gpytorch
import numpy as np
import torch
from gpytorch.constraints import GreaterThan, Positive
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._compat import Interval, StrOptions, _fit_context
from ._exact import (
    TrainKernel,
    cholesky_solve,
    cross_kernel,
    factorize,
    half_solve,
)
from ._iterative import KernelOperator, _Woodbury, kernel_fn, pivoted_cholesky, solve
from ._optimize import fit_hyperparameters
from ._recursions import ACTIVATIONS
from .nngp_kernel import NNGPKernel
from .ntk_kernel import NTKKernel

__all__ = ["NNGPRegressor"]

# bytes per n^2 of the exact float64 solver: the Cholesky factor, computed in place
_EXACT_BYTES_PER_ENTRY = 8
# bytes per block of test points in predict (the chunk x n cross-kernel and its solve)
_PREDICT_BYTES = 2**26


class _ExactGP(gpytorch.models.ExactGP):
    def __init__(self, train_x, train_y, likelihood, kernel):
        super().__init__(train_x, train_y, likelihood)
        self.mean_module = gpytorch.means.ZeroMean()
        self.covar_module = kernel

    def forward(self, x):
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


class NNGPRegressor(RegressorMixin, BaseEstimator):
    r"""Gaussian-process regression with the kernel of an infinitely wide network.

    A zero-mean GP with :class:`NNGPKernel` (the Bayesian infinite-width net) or
    :class:`NTKKernel` (the infinite-width net trained by gradient descent, used as a GP kernel),
    Gaussian noise, hyperparameters fitted by maximizing the exact float64 marginal likelihood.
    The posterior is exact (one in-place Cholesky factorization, float64) up to
    ``max_exact_size`` rows, and beyond that computed by preconditioned conjugate gradients to
    a stated residual tolerance.

    Parameters
    ----------
    depth : int, default=1
        Number of hidden layers of the network.
    activation : str or callable, default="relu"
        ``"relu"``, ``"erf"``, ``"identity"`` (closed forms, with hand-written derivatives in
        the fit), ``"tanh"``, ``"sigmoid"``, ``"gelu"``, ``"softplus"``, ``"elu"`` or an
        elementwise torch callable (quadrature and autograd; much slower, and a lambda cannot
        be pickled).
    kernel : {"nngp", "ntk"}, default="nngp"
        Which limit kernel to use.
    weight_variance : float, default=1.0
        Initial :math:`\sigma_w^2`.
    bias_variance : float, default=0.1
        Initial :math:`\sigma_b^2`; ``0`` fixes it at zero.
    noise : float, default=0.1
        Initial noise variance :math:`\sigma^2` (of the standardized target if ``normalize_y``).
    optimize : bool, default=True
        Fit ``weight_variance``, ``bias_variance`` and ``noise`` by the marginal likelihood;
        if False keep the initial values.
    max_iter : int, default=100
        BFGS iterations per stage of the fit. The fit runs on nested random subsamples of
        about 300, 1,200, ... rows up to all of them (or ``max_fit_rows``), each stage started
        from the previous one's answer and inverse Hessian, and stops when the gradient of the
        per-observation log marginal likelihood in the log variances is below 1e-6.
    normalize_y : bool, default=True
        Center and scale the target before fitting (the kernel has no output scale of its own).
    max_exact_size : int or "auto", default="auto"
        Largest training set conditioned on exactly. ``"auto"``: the largest ``n`` whose
        Cholesky factor (``8 n^2`` bytes) takes at most half the device's memory (38,000 rows
        at 24 GB).
    max_fit_rows : int or None, default=5000
        The hyperparameters maximize the marginal likelihood of a random subsample of this many
        rows when there are more (``None``: all rows). The fit of ``m`` rows keeps four
        ``m x m`` float64 matrices (0.8 GB at 5,000) and costs ``O(m^3)`` per evaluation.
    cg_tol : float, default=1e-8
        Iterative solver: every column's relative residual ``||A x - b|| / ||b||`` is below
        this (checked with an explicit product).
    cg_max_iter : int, default=1000
        Iterative solver: conjugate-gradient iterations per round (at most 5 restarts).
    preconditioner_rank : int, default=300
        Iterative solver: rank of the pivoted-Cholesky preconditioner.
    device : str, default="auto"
        ``"auto"`` picks CUDA when available, else ``"cpu"``; any torch device string.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsamples of the fit.

    Attributes
    ----------
    weight_variance_, bias_variance_, noise_ : float
        Fitted hyperparameters (``noise_`` in standardized units if ``normalize_y``).
    log_marginal_likelihood_ : float
        :math:`\log p(y \mid X)` at the fitted hyperparameters, in the units of ``y`` (exact
        solver; ``nan`` for the iterative one).
    kernel_ : NNGPKernel or NTKKernel
        The fitted gpytorch kernel.
    model_ : gpytorch.models.ExactGP
        A gpytorch exact GP with the fitted kernel and likelihood (``model_.likelihood``).
    L_ : torch.Tensor of shape (n_samples, n_samples) or None
        Lower Cholesky factor of ``K + noise_ I`` (exact solver; ``None`` for the iterative one).
    alpha_ : torch.Tensor of shape (n_samples,)
        :math:`(K + \sigma^2 I)^{-1} \tilde y`.
    solver_ : {"cholesky", "iterative"}
    n_iter_ : int
        BFGS iterations run, over all stages.
    fit_rows_ : int
        Rows used for the hyperparameters (0 without ``optimize``).
    fit_stages_ : list of int
        Subsample sizes of the fit's stages.
    cg_residual_ : float or None
        Largest relative residual of the iterative solve of ``alpha_``.
    y_mean_, y_std_ : float
        Target standardization (0 and 1 without ``normalize_y``).
    device_ : torch.device
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string column names.

    See Also
    --------
    NNGPKernel, NTKKernel
    sklearn.gaussian_process.GaussianProcessRegressor : the same model with stationary kernels.

    Notes
    -----
    With :math:`\tilde y = (y - \bar y)/s`, :math:`K` the kernel matrix on the training inputs
    and :math:`k_*` between a test point and them, the latent posterior is

    .. math::

        \mu_* = \bar y + s\, k_*^\top (K + \sigma^2 I)^{-1} \tilde y, \qquad
        \operatorname{Var}_* = s^2 \left(k(x_*, x_*) - k_*^\top (K + \sigma^2 I)^{-1} k_*\right),

    and the hyperparameters maximize
    :math:`\log p(y) = -\tfrac12 \tilde y^\top (K + \sigma^2 I)^{-1} \tilde y
    - \tfrac12 \log|K + \sigma^2 I| - \tfrac n2 \log 2\pi - n \log s`.
    ``predict(return_std=True)`` returns the standard deviation of the latent function; add
    ``s**2 * noise_`` to its square for a new observation.

    The fit's kernel matrix is filled by row blocks of its upper triangle, with its derivatives
    in the log variances in the same pass for the closed-form activations; each evaluation is
    one LAPACK ``potrf`` and, for the gradient
    :math:`	frac12 \operatorname{tr}((K^{-1} - lphalpha^	op) \partial K)`, one ``potri``,
    in place (SciPy's LAPACK on the CPU, torch's on CUDA). Measured against scikit-learn's
    ``GaussianProcessRegressor(ConstantKernel() * RBF() + WhiteKernel())`` (fit + predict with
    standard deviations at 1,000 points, one thread, benchmarks/bench_gp.py): 0.41x its time at
    n = 1,000, 0.18x at 2,000, 0.07x at 5,000, with latent variances within 4e-10 of a
    textbook float64 GP at the fitted values. The iterative solver (beyond ``max_exact_size``)
    computes kernel products by row blocks (storing the matrix when it fits in a quarter of the
    memory), preconditions with a rank-``preconditioner_rank`` pivoted Cholesky factor (Woodbury
    inverse) and solves with linear_operator's ``linear_cg``; its hyperparameters come from an
    exact fit of ``min(max_fit_rows, max_exact_size)`` random rows.

    References
    ----------
    .. [1] C. E. Rasmussen and C. K. I. Williams (2006). Gaussian Processes for Machine Learning,
       ch. 2 and 5. MIT Press.
    .. [2] J. Lee et al. (2018). Deep neural networks as Gaussian processes. ICLR.

    Examples
    --------
    >>> import numpy as np
    >>> from neurostat.gp import NNGPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 2)); y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=50)
    >>> gp = NNGPRegressor(depth=2).fit(X, y)
    >>> mean, std = gp.predict(X[:3], return_std=True)
    >>> mean.shape, std.shape
    ((3,), (3,))
    """

    _parameter_constraints = {
        "depth": [Interval(Integral, 0, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS)), callable],
        "kernel": [StrOptions({"nngp", "ntk"})],
        "weight_variance": [Interval(Real, 0, None, closed="neither")],
        "bias_variance": [Interval(Real, 0, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="neither")],
        "optimize": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "normalize_y": ["boolean"],
        "max_exact_size": [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left")],
        "max_fit_rows": [Interval(Integral, 1, None, closed="left"), None],
        "cg_tol": [Interval(Real, 0, 1, closed="neither")],
        "cg_max_iter": [Interval(Integral, 1, None, closed="left")],
        "preconditioner_rank": [Interval(Integral, 0, None, closed="left")],
        "device": [str],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        depth=1,
        activation="relu",
        kernel="nngp",
        weight_variance=1.0,
        bias_variance=0.1,
        noise=0.1,
        optimize=True,
        max_iter=100,
        normalize_y=True,
        max_exact_size="auto",
        max_fit_rows=5000,
        cg_tol=1e-8,
        cg_max_iter=1000,
        preconditioner_rank=300,
        device="auto",
        random_state=None,
    ):
        self.depth = depth
        self.activation = activation
        self.kernel = kernel
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.noise = noise
        self.optimize = optimize
        self.max_iter = max_iter
        self.normalize_y = normalize_y
        self.max_exact_size = max_exact_size
        self.max_fit_rows = max_fit_rows
        self.cg_tol = cg_tol
        self.cg_max_iter = cg_max_iter
        self.preconditioner_rank = preconditioner_rank
        self.device = device
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the hyperparameters by the marginal likelihood and condition on ``(X, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : NNGPRegressor
        """
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        self.device_ = _resolve_device(self.device)
        limit = (
            _max_exact_size(self.device_) if self.max_exact_size == "auto" else self.max_exact_size
        )
        n = X.shape[0]
        self.solver_ = "cholesky" if n <= limit else "iterative"
        if self.normalize_y:
            self.y_mean_, self.y_std_ = float(np.mean(y)), float(np.std(y))
        else:
            self.y_mean_, self.y_std_ = 0.0, 1.0
        if not self.y_std_ > 0:
            self.y_std_ = 1.0
        like = dict(dtype=torch.float64, device=self.device_)
        train_x = torch.tensor(X, **like)  # a copy: X may be a read-only memmap
        train_y = torch.as_tensor((y - self.y_mean_) / self.y_std_, **like)
        rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31 - 1))
        order = rng.permutation(n)

        values = {"weight_variance": float(self.weight_variance),
                  "bias_variance": float(self.bias_variance), "noise": float(self.noise)}
        fit_rows = min(n, limit, n if self.max_fit_rows is None else self.max_fit_rows)
        self.fit_rows_ = fit_rows if self.optimize else 0
        self.n_iter_ = 0
        last = None
        if self.optimize:
            free = ["weight_variance", "noise"] + (["bias_variance"] if self.bias_variance else [])
            sub = np.sort(order[:fit_rows]) if fit_rows < n else np.arange(n)
            xs, ys = (train_x, train_y) if fit_rows == n else (train_x[sub], train_y[sub])
            values, info = fit_hyperparameters(
                xs, ys, self.depth, self.activation, self.kernel == "ntk", values, free,
                max_iter=self.max_iter, rng=np.random.default_rng(rng.integers(2**31 - 1)),
            )
            self.n_iter_ = info["n_iter"]
            self.fit_stages_ = info["stages"]
            last = info["objective"].last
            if fit_rows < n or last is None or not np.array_equal(last[0], info["theta"]):
                last = None
        kernel = self._make_kernel(values, like)
        likelihood = gpytorch.likelihoods.GaussianLikelihood(
            noise_constraint=GreaterThan(1e-6, transform=torch.exp, inv_transform=torch.log)
        ).to(**like)
        likelihood.noise = torch.as_tensor(values["noise"], **like)
        self.model_ = _ExactGP(train_x, train_y, likelihood, kernel).to(**like)
        self.model_.eval()
        self.kernel_ = kernel
        self.weight_variance_ = kernel.weight_variance.item()
        self.bias_variance_ = kernel.bias_variance.item()
        self.noise_ = likelihood.noise.item()
        if self.solver_ == "cholesky":
            self._condition_exact(train_x, train_y, values, last)
        else:
            self._condition_iterative(train_x, train_y, rng)
        return self

    def _make_kernel(self, values, like):
        kernel_cls = NTKKernel if self.kernel == "ntk" else NNGPKernel
        # log-parametrized variances, as in the fit
        kernel = kernel_cls(
            depth=self.depth,
            activation=self.activation,
            weight_variance_constraint=Positive(transform=torch.exp, inv_transform=torch.log),
            bias_variance_constraint=Positive(transform=torch.exp, inv_transform=torch.log),
        ).to(**like)
        kernel.weight_variance = values["weight_variance"]
        kernel.bias_variance = values["bias_variance"]
        return kernel

    def _condition_exact(self, train_x, train_y, values, last):
        """One Cholesky factorization of ``K + noise I`` in place (``8 n^2`` bytes), reused by
        every prediction: the fit's last one when it was at the answer on all rows."""
        n = train_x.shape[0]
        if last is not None:
            _, L, alpha, f = last
            if L.device.type == "cpu":
                L.T.triu_()  # zero the other triangle: L_ is a clean lower-triangular factor
        else:
            tk = TrainKernel(train_x, self.depth, self.activation, self.kernel == "ntk")
            buf = torch.empty(n, n, dtype=train_x.dtype, device=train_x.device)
            tk.fill(values["weight_variance"], values["bias_variance"], values["noise"], buf)
            L = factorize(buf, clean=True)
            if L is None:
                raise np.linalg.LinAlgError(
                    "K + noise I is not positive definite at these hyperparameters; increase "
                    "noise (or set optimize=True)"
                )
            alpha = cholesky_solve(L, train_y)
            f = 0.5 * float(train_y @ alpha) + float(torch.log(L.diagonal()).sum())
            f += 0.5 * n * np.log(2 * np.pi)
        self.L_, self.alpha_ = L, alpha
        self.log_marginal_likelihood_ = -f - n * np.log(self.y_std_)
        self.cg_residual_ = None

    def _condition_iterative(self, train_x, train_y, rng):
        """``alpha = (K + noise I)^-1 y`` by preconditioned CG (see neurostat.gp._iterative)."""
        n = train_x.shape[0]
        if self.device_.type == "cuda":
            memory = torch.cuda.get_device_properties(self.device_).total_memory
        else:
            memory = _physical_memory()
        store = 8 * n * n <= memory // 4
        op = KernelOperator(train_x, kernel_fn(self.kernel_), self.noise_, store=store)
        F = pivoted_cholesky(op, self.preconditioner_rank)
        self.preconditioner_ = _Woodbury(F, self.noise_)
        self._operator = op
        self.alpha_, self.cg_residual_ = solve(
            op, train_y, self.cg_tol, self.cg_max_iter, self.preconditioner_
        )
        self.L_ = None
        self.log_marginal_likelihood_ = float("nan")

    def predict(self, X, return_std=False, return_cov=False):
        """Posterior mean of the latent function, optionally with its std or covariance.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the posterior standard deviation at each point.
        return_cov : bool, default=False
            Also return the posterior covariance between the points.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
        y_std : ndarray of shape (n_samples,), only with ``return_std``
        y_cov : ndarray of shape (n_samples, n_samples), only with ``return_cov``
        """
        if return_std and return_cov:
            raise RuntimeError("At most one of return_std or return_cov can be requested.")
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        x = torch.tensor(X, dtype=torch.float64, device=self.device_)
        kfn = kernel_fn(self.kernel_)
        train_x = self.model_.train_inputs[0]
        w, b, ntk = self.weight_variance_, self.bias_variance_, self.kernel == "ntk"
        s, m = self.y_std_, self.y_mean_
        means, variances = [], []
        # test points in chunks: k_star is chunk x n, and so is the solve for the variances
        chunk = max(1, _PREDICT_BYTES // (8 * max(train_x.shape[0], 1)))
        if return_cov:
            chunk = x.shape[0]
        for start in range(0, x.shape[0], chunk):
            xc = x[start : start + chunk]
            k_star = cross_kernel(xc, train_x, self.depth, self.activation, ntk, w, b)
            means.append((k_star @ self.alpha_).cpu().numpy() * s + m)
            if not (return_std or return_cov):
                continue
            if self.solver_ == "cholesky":
                v = half_solve(self.L_, k_star.T.contiguous())
                reduction = v.T @ v if return_cov else (v * v).sum(0)
            else:
                sol, _ = solve(
                    self._operator, k_star.T.contiguous(), self.cg_tol, self.cg_max_iter,
                    self.preconditioner_,
                )
                reduction = k_star @ sol if return_cov else (k_star * sol.T).sum(1)
            if return_cov:
                cov = kfn(xc, xc) - reduction
                return np.concatenate(means), cov.cpu().numpy() * s**2
            variances.append((kfn(xc, xc, diag=True) - reduction).clamp_min(0).cpu().numpy())
        mean = np.concatenate(means)
        if return_std:
            return mean, np.sqrt(np.concatenate(variances)) * s
        return mean


def _resolve_device(device):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device={device!r} is not a torch device: {exc}") from None


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def _max_exact_size(device):
    """The largest n whose float64 Cholesky factor (8 n^2 bytes) takes half the memory."""
    if device.type == "cuda":
        memory = torch.cuda.get_device_properties(device).total_memory
    else:
        memory = _physical_memory()
    return int(np.sqrt(0.5 * memory / _EXACT_BYTES_PER_ENTRY))
