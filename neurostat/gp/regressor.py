"""NNGPRegressor: exact Gaussian-process regression with an NNGP or NTK kernel, scikit-learn style."""

import os
import warnings
from contextlib import ExitStack
from numbers import Integral, Real

import gpytorch
import numpy as np
import torch
from gpytorch.constraints import GreaterThan, Positive
from gpytorch.utils.warnings import GPInputWarning
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._compat import Interval, StrOptions, _fit_context
from ._mll import _cholesky, cholesky_nll
from ._recursions import ACTIVATIONS
from .nngp_kernel import NNGPKernel
from .ntk_kernel import NTKKernel

__all__ = ["NNGPRegressor"]

# large exact fits start from the hyperparameters of a subsample of this many rows
_WARM_START_MIN_ROWS = 2000
_WARM_ROWS = 1000

# bytes per n^2 of the exact float64 fit: kernel, noisy kernel, Cholesky factor, autograd buffers
_EXACT_BYTES_PER_ENTRY = 8 * 8


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
    Gaussian noise, hyperparameters fitted by maximizing the marginal likelihood. It runs on a
    gpytorch exact GP with Cholesky solves in float64 while the training set fits in memory,
    and only beyond that on gpytorch's iterative solvers in float32 (with a warning).

    Parameters
    ----------
    depth : int, default=1
        Number of hidden layers of the network.
    activation : str or callable, default="relu"
        ``"relu"``, ``"erf"``, ``"identity"`` (closed forms), ``"tanh"``, ``"sigmoid"``, ``"gelu"``,
        ``"softplus"``, ``"elu"`` or an elementwise torch callable (quadrature; slower, and a
        lambda cannot be pickled).
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
        L-BFGS iterations (exact solver) or Adam steps (iterative solver). Exact fits of 2,000
        rows or more first fit a random subsample of 1,000 rows (seeded by ``random_state``)
        from the initial values above and start the full fit from its answer: each full
        evaluation costs O(n^3), and starting near the optimum saves most of them.
    normalize_y : bool, default=True
        Center and scale the target before fitting (the kernel has no output scale of its own).
    max_exact_size : int or "auto", default="auto"
        Largest training set fitted exactly (Cholesky, float64). ``"auto"``: the largest ``n``
        whose ~64 n^2 bytes use at most half the device's memory.
    device : str, default="auto"
        ``"auto"`` picks CUDA when available, else ``"cpu"``; any torch device string.
    random_state : int, RandomState instance or None, default=None
        Seeds torch inside ``fit`` (random probe vectors of the iterative solver) without changing
        the global torch RNG state.

    Attributes
    ----------
    weight_variance_, bias_variance_, noise_ : float
        Fitted hyperparameters (``noise_`` in standardized units if ``normalize_y``).
    log_marginal_likelihood_ : float
        :math:`\log p(y \mid X)` at the fitted hyperparameters, in the units of ``y``.
    kernel_ : NNGPKernel or NTKKernel
        The fitted gpytorch kernel.
    model_ : gpytorch.models.ExactGP
        The fitted exact GP (its likelihood is ``model_.likelihood``).
    L_ : torch.Tensor of shape (n_samples, n_samples) or None
        Lower Cholesky factor of ``K + noise_ I`` (exact solver; ``None`` for the iterative one).
    alpha_ : torch.Tensor of shape (n_samples,) or None
        :math:`(K + \sigma^2 I)^{-1} \tilde y`.
    solver_ : {"cholesky", "iterative"}
    n_iter_ : int
        Optimizer iterations run.
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
    :math:`\log p(y) = -\tfrac12 \tilde y^\top (K + \sigma^2 I)^{-1} \tilde y - \tfrac12 \log|K + \sigma^2 I|
    - \tfrac n2 \log 2\pi - n \log s`. ``predict(return_std=True)`` returns the standard
    deviation of the latent function; add ``s**2 * noise_`` to its square for a new observation.

    gpytorch's defaults switch to conjugate gradients and stochastic Lanczos log-determinants
    beyond 800 points in float32, whose predictive variances were off by a median factor of 2
    at ``n=1000`` in our measurements; this estimator forces Cholesky in float64 instead
    (``max_cholesky_size``, ``fast_computations(False, False, False)``, no ``fast_pred_var``).

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
        if self.solver_ == "iterative":
            warnings.warn(
                f"n_samples={n} exceeds max_exact_size={limit}: using gpytorch's iterative solvers "
                "(conjugate gradients, stochastic Lanczos log-determinant) in float32; predictive "
                "means and variances are approximate.",
                UserWarning,
                stacklevel=2,
            )
        dtype = torch.float64 if self.solver_ == "cholesky" else torch.float32
        self.y_mean_, self.y_std_ = (
            (float(np.mean(y)), float(np.std(y))) if self.normalize_y else (0.0, 1.0)
        )
        if not self.y_std_ > 0:
            self.y_std_ = 1.0
        like = dict(dtype=dtype, device=self.device_)
        train_x = torch.tensor(X, **like)  # a copy: X may be a read-only memmap
        train_y = torch.as_tensor((y - self.y_mean_) / self.y_std_, **like)

        kernel_cls = NTKKernel if self.kernel == "ntk" else NNGPKernel
        # log-parametrized variances (as scikit-learn's GPR): L-BFGS needs ~2x fewer steps than
        # with gpytorch's default softplus, which is linear, i.e. badly scaled, for large values
        kernel = kernel_cls(
            depth=self.depth,
            activation=self.activation,
            weight_variance_constraint=Positive(transform=torch.exp, inv_transform=torch.log),
            bias_variance_constraint=Positive(transform=torch.exp, inv_transform=torch.log),
        ).to(**like)
        w0, b0, noise0 = self._initial_values(X, y)
        kernel.weight_variance, kernel.bias_variance = w0, b0
        noise_constraint = GreaterThan(1e-6, transform=torch.exp, inv_transform=torch.log)
        likelihood = gpytorch.likelihoods.GaussianLikelihood(noise_constraint=noise_constraint).to(
            **like
        )
        likelihood.noise = torch.as_tensor(noise0, **like)
        if self.bias_variance == 0:
            kernel.raw_bias_variance.requires_grad_(False)
        model = _ExactGP(train_x, train_y, likelihood, kernel).to(**like)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        devices = [self.device_] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), self._settings():
            torch.manual_seed(seed)
            mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
            self.n_iter_ = self._optimize(model, mll, train_x, train_y) if self.optimize else 0
            model.train()
            with torch.no_grad():
                if self.solver_ == "cholesky":
                    # one factorization serves the likelihood and every later prediction
                    K = kernel(train_x).to_dense()
                    K.diagonal(dim1=-2, dim2=-1).add_(likelihood.noise)
                    self.L_ = _cholesky(K)
                    self.alpha_ = torch.cholesky_solve(train_y.unsqueeze(-1), self.L_).squeeze(-1)
                    value = -cholesky_nll(K, train_y).item()
                else:
                    self.L_ = self.alpha_ = None
                    value = mll(model(train_x), train_y).item() * n
        model.eval()
        self.model_, self.kernel_ = model, kernel
        self.weight_variance_ = kernel.weight_variance.item()
        self.bias_variance_ = kernel.bias_variance.item()
        self.noise_ = likelihood.noise.item()
        self.log_marginal_likelihood_ = value - n * np.log(self.y_std_)
        return self

    def _initial_values(self, X, y):
        """Starting hyperparameters: the given ones, or for a large exact fit those fitted to a
        random subsample of ``_WARM_ROWS`` rows (seeded by ``random_state``).

        Each evaluation of the full marginal likelihood costs a Cholesky factorization and an
        inverse (O(n^3)); starting near the optimum saves most of them, while the subsample's
        fit costs (n / 1000)^3 times less per evaluation.
        """
        start = (self.weight_variance, self.bias_variance, self.noise)
        n = X.shape[0]
        if not (self.optimize and self.solver_ == "cholesky" and n >= _WARM_START_MIN_ROWS):
            return start
        from sklearn.base import clone

        rows = check_random_state(self.random_state).choice(n, _WARM_ROWS, replace=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sub = clone(self).fit(X[rows], y[rows])
        found = (sub.weight_variance_, sub.bias_variance_, sub.noise_)
        return found if all(np.isfinite(found)) else start

    def _optimize(self, model, mll, train_x, train_y):
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        if self.solver_ == "iterative":
            # the stochastic objective suits Adam, gpytorch's usual recipe
            opt = torch.optim.Adam(params, lr=0.1)
            for _ in range(self.max_iter):
                opt.zero_grad()
                (-mll(model(train_x), train_y)).backward()
                opt.step()
            return self.max_iter
        opt = torch.optim.LBFGS(
            params, lr=1.0, max_iter=self.max_iter, line_search_fn="strong_wolfe"
        )
        n = train_y.shape[0]

        def closure():
            # the same value as -mll(model(train_x), train_y) (tests/test_gp_regressor.py), with
            # half the cost of linear_operator's backward at large n
            opt.zero_grad()
            K = model.covar_module(train_x).to_dense()
            K.diagonal(dim1=-2, dim2=-1).add_(model.likelihood.noise)  # in place: no n x n identity
            loss = cholesky_nll(K, train_y) / n
            loss.backward()
            return loss

        opt.step(closure)
        return int(opt.state[params[0]].get("n_iter", 0)) if params else 0

    def _settings(self):
        stack = ExitStack()
        if self.solver_ == "cholesky":
            stack.enter_context(gpytorch.settings.max_cholesky_size(2**62))
            stack.enter_context(gpytorch.settings.fast_computations(False, False, False))
        else:
            stack.enter_context(gpytorch.settings.max_cholesky_size(0))
        stack.enter_context(gpytorch.settings.fast_pred_var(False))
        return stack

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
        model = self.model_
        dtype = model.train_inputs[0].dtype
        x = torch.tensor(X, dtype=dtype, device=self.device_)
        if self.solver_ == "cholesky":
            return self._predict_cholesky(x, return_std, return_cov)
        model.eval()
        with (
            self._settings(),
            torch.no_grad(),
            warnings.catch_warnings(),
            gpytorch.settings.skip_posterior_variances(not (return_std or return_cov)),
        ):
            # predicting at the training inputs is legitimate here
            warnings.simplefilter("ignore", GPInputWarning)
            post = model(x)
            mean = post.mean.double().cpu().numpy() * self.y_std_ + self.y_mean_
            if return_cov:
                cov = post.covariance_matrix.double().cpu().numpy() * self.y_std_**2
                return mean, cov
            if return_std:
                var = post.variance.double().clamp_min(0).cpu().numpy()
                return mean, np.sqrt(var) * self.y_std_
        return mean

    def _predict_cholesky(self, x, return_std, return_cov):
        """Exact float64 posterior from the Cholesky factor ``L_`` and ``alpha_`` kept by ``fit``
        (gpytorch's prediction strategy would factorize the training covariance again)."""
        kernel, train_x = self.kernel_, self.model_.train_inputs[0]
        s, m = self.y_std_, self.y_mean_
        with torch.no_grad():
            k_star = kernel(x, train_x).to_dense()
            mean = (k_star @ self.alpha_).cpu().numpy() * s + m
            if not (return_std or return_cov):
                return mean
            v = torch.linalg.solve_triangular(self.L_, k_star.transpose(-1, -2), upper=False)
            if return_cov:
                cov = kernel(x).to_dense() - v.transpose(-1, -2) @ v
                return mean, cov.cpu().numpy() * s**2
            var = (kernel(x, diag=True) - (v * v).sum(0)).clamp_min(0)
            return mean, np.sqrt(var.cpu().numpy()) * s


def _resolve_device(device):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device={device!r} is not a torch device: {exc}") from None


def _max_exact_size(device):
    if device.type == "cuda":
        memory = torch.cuda.get_device_properties(device).total_memory
    else:
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            memory = 8 * 2**30
    return int(np.sqrt(0.5 * memory / _EXACT_BYTES_PER_ENTRY))
