"""NNGPRegressor against a plain float64 GP computed here, plus scikit-learn's estimator checks."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import approx_fprime
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_gp_kernels import numpy_kernels

from neurostat.gp import NNGPRegressor, _recursions


def _data(n=40, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = 3.0 + 2.0 * np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.3 * rng.normal(size=n)
    return X, y


def plain_gp(X, y, Xs, depth, activation, kind, w, b, noise):
    """Textbook GP regression (Rasmussen & Williams, Alg. 2.1) on the standardized target."""
    m, s = y.mean(), y.std()
    z = (y - m) / s
    pick = 1 if kind == "ntk" else 0
    K = numpy_kernels(X, X, depth, activation, w, b)[pick] + noise * np.eye(len(X))
    Ks = numpy_kernels(Xs, X, depth, activation, w, b)[pick]
    Kss = numpy_kernels(Xs, Xs, depth, activation, w, b)[pick]
    L = np.linalg.cholesky(K)
    alpha = np.linalg.solve(L.T, np.linalg.solve(L, z))
    V = np.linalg.solve(L, Ks.T)
    lml = (
        -0.5 * z @ alpha
        - np.log(np.diag(L)).sum()
        - len(X) / 2 * np.log(2 * np.pi)
        - len(X) * np.log(s)
    )
    return m + s * Ks @ alpha, s**2 * (Kss - V.T @ V), lml


@pytest.mark.parametrize(
    "kind, activation, depth", [("nngp", "relu", 1), ("nngp", "erf", 3), ("ntk", "relu", 2)]
)
def test_fixed_hyperparameters_match_plain_float64_gp(kind, activation, depth):
    X, y = _data()
    Xs = _data(n=15, seed=1)[0]
    gp = NNGPRegressor(
        depth=depth,
        activation=activation,
        kernel=kind,
        weight_variance=1.7,
        bias_variance=0.2,
        noise=0.05,
        optimize=False,
    ).fit(X, y)
    mean, cov = plain_gp(X, y, Xs, depth, activation, kind, 1.7, 0.2, 0.05)[:2]
    got_mean, got_std = gp.predict(Xs, return_std=True)
    _, got_cov = gp.predict(Xs, return_cov=True)
    assert gp.solver_ == "cholesky" and gp.n_iter_ == 0
    # float64 Cholesky on both sides: agreement to rounding
    np.testing.assert_allclose(got_mean, mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got_cov, cov, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(got_std, np.sqrt(np.diag(cov)), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("kind", ["nngp", "ntk"])
def test_fit_with_blocked_kernel_matches_plain_kernel(kind, monkeypatch):
    # large n fits compute the training matrix in row blocks; force it at n = 60
    X, y = _data(n=60)
    args = dict(depth=2, kernel=kind, max_iter=30, random_state=0)
    plain = NNGPRegressor(**args).fit(X, y)
    monkeypatch.setattr(_recursions, "BLOCK_MIN_BYTES", 8 * 50 * 50)
    monkeypatch.setattr(_recursions, "BLOCK_BYTES", 8 * 60 * 9)  # 9 rows a block
    blocked = NNGPRegressor(**args).fit(X, y)
    assert blocked.n_iter_ == plain.n_iter_
    for name in ("weight_variance_", "bias_variance_", "noise_", "log_marginal_likelihood_"):
        assert getattr(blocked, name) == pytest.approx(getattr(plain, name), rel=1e-9)
    np.testing.assert_allclose(blocked.predict(X[:5]), plain.predict(X[:5]), rtol=1e-9)


@pytest.mark.parametrize("kind", ["nngp", "ntk"])
def test_fitted_hyperparameters_maximize_the_marginal_likelihood(kind):
    X, y = _data(n=50)
    gp = NNGPRegressor(depth=2, kernel=kind, max_iter=200).fit(X, y)
    theta = np.log([gp.weight_variance_, gp.bias_variance_, gp.noise_])

    def lml(t):
        return plain_gp(X, y, X[:1], 2, "relu", kind, *np.exp(t))[2]

    # the reported value is the float64 log-likelihood at the fitted values ...
    assert gp.log_marginal_likelihood_ == pytest.approx(lml(theta), rel=1e-9)
    # ... which is a stationary point: |d lml / d log(theta)| < 5e-3 (forward differences; seen
    # here: <= 5e-4, the L-BFGS gradient tolerance of 1e-5 per observation)
    grad = approx_fprime(theta, lml, 1e-6)
    assert np.abs(grad).max() < 5e-3
    # and no worse than the start
    start = np.log([1.0, 0.1, 0.1])
    assert gp.log_marginal_likelihood_ > lml(start)
    mean, _ = plain_gp(X, y, X[:7], 2, "relu", kind, *np.exp(theta))[:2]
    # fitted noise ~1e-2: K + noise I has condition number ~1e5, so rounding gives ~1e-9 relative
    np.testing.assert_allclose(gp.predict(X[:7]), mean, rtol=1e-7, atol=1e-8)


def test_return_std_and_cov_are_consistent():
    X, y = _data()
    gp = NNGPRegressor(optimize=False).fit(X, y)
    mean_a = gp.predict(X[:6])
    mean_b, std = gp.predict(X[:6], return_std=True)
    mean_c, cov = gp.predict(X[:6], return_cov=True)
    np.testing.assert_allclose(mean_a, mean_b, rtol=1e-12)
    np.testing.assert_allclose(mean_a, mean_c, rtol=1e-12)
    np.testing.assert_allclose(std**2, np.diag(cov), rtol=1e-9, atol=1e-12)
    with pytest.raises(RuntimeError, match="At most one"):
        gp.predict(X, return_std=True, return_cov=True)


def test_iterative_solver_beyond_max_exact_size_warns():
    X, y = _data(n=120)
    with pytest.warns(UserWarning, match="iterative solvers"):
        gp = NNGPRegressor(max_exact_size=100, max_iter=20, random_state=0).fit(X, y)
    assert gp.solver_ == "iterative"
    assert gp.model_.train_inputs[0].dtype == torch.float32
    exact = NNGPRegressor(
        optimize=False,
        weight_variance=gp.weight_variance_,
        bias_variance=gp.bias_variance_,
        noise=gp.noise_,
    ).fit(X, y)
    # CG in float32 with gpytorch's tolerances: the mean agrees to a few percent of sd(y)
    assert np.abs(gp.predict(X[:20]) - exact.predict(X[:20])).max() < 0.05 * y.std()


def test_random_state_reproducible_and_global_rng_untouched():
    X, y = _data()
    state = torch.random.get_rng_state()
    a = NNGPRegressor(max_iter=10, random_state=0).fit(X, y).predict(X)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = NNGPRegressor(max_iter=10, random_state=0).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


def test_pickled_model_predicts_the_same():
    X, y = _data()
    gp = NNGPRegressor(depth=2, kernel="ntk", max_iter=10).fit(X, y)
    before = gp.predict(X[:5], return_std=True)
    clone = pickle.loads(pickle.dumps(gp))
    after = clone.predict(X[:5], return_std=True)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_zero_bias_variance_stays_zero():
    X, y = _data()
    gp = NNGPRegressor(bias_variance=0.0, max_iter=20).fit(X, y)
    assert gp.bias_variance_ == 0.0 and np.isfinite(gp.log_marginal_likelihood_)


def test_bad_inputs_raise_clear_errors():
    X, y = _data()
    with pytest.raises(NotFittedError):
        NNGPRegressor().predict(X)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        NNGPRegressor().fit(Xn, y)
    with pytest.raises(ValueError, match="kernel"):
        NNGPRegressor(kernel="rbf").fit(X, y)
    with pytest.raises(ValueError, match="device"):
        NNGPRegressor(device="tpu:7").fit(X, y)
    gp = NNGPRegressor(max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        gp.predict(X[:, :2])
    with pytest.raises(ValueError):
        gp.predict(np.full((2, 3), np.inf))


@parametrize_with_checks(
    [NNGPRegressor(max_iter=15), NNGPRegressor(kernel="ntk", depth=2, max_iter=15)]
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check(estimator)


def test_training_objective_matches_gpytorch_exact_mll():
    """The one-Cholesky objective and gradient equal gpytorch's ExactMarginalLogLikelihood."""
    import gpytorch

    from neurostat.gp import NTKKernel
    from neurostat.gp._mll import cholesky_nll
    from neurostat.gp.regressor import _ExactGP

    X, y = _data(n=30)
    x, t = torch.from_numpy(X), torch.from_numpy((y - y.mean()) / y.std())
    k = NTKKernel(depth=2).double()
    k.bias_variance = 0.3
    lik = gpytorch.likelihoods.GaussianLikelihood().double()
    lik.noise = 0.05
    model = _ExactGP(x, t, lik, k).double()
    model.train()
    with (
        gpytorch.settings.max_cholesky_size(10**6),
        gpytorch.settings.fast_computations(False, False, False),
    ):
        ref = -gpytorch.mlls.ExactMarginalLogLikelihood(lik, model)(model(x), t) * len(t)
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    ours = cholesky_nll(k(x).to_dense() + lik.noise * torch.eye(len(t), dtype=torch.float64), t)
    grads = torch.autograd.grad(ours, list(model.parameters()))
    assert ours.item() == pytest.approx(ref.item(), rel=1e-10)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-8, atol=1e-10)


def test_large_fit_starts_from_a_subsample_fit(monkeypatch):
    # exact fits of n >= _WARM_START_MIN_ROWS start from the hyperparameters fitted to a random
    # subsample: fewer O(n^3) evaluations, the same maximum of the marginal likelihood
    import neurostat.gp.regressor as regressor

    X, y = _data(n=240)
    monkeypatch.setattr(regressor, "_WARM_START_MIN_ROWS", 10**9)
    cold = NNGPRegressor(max_iter=200, random_state=0).fit(X, y)
    monkeypatch.setattr(regressor, "_WARM_START_MIN_ROWS", 200)
    monkeypatch.setattr(regressor, "_WARM_ROWS", 60)
    warm = NNGPRegressor(max_iter=200, random_state=0).fit(X, y)
    again = NNGPRegressor(max_iter=200, random_state=0).fit(X, y)
    assert warm.log_marginal_likelihood_ >= cold.log_marginal_likelihood_ - 1e-6 * abs(
        cold.log_marginal_likelihood_
    )
    assert warm.n_iter_ < cold.n_iter_
    assert again.log_marginal_likelihood_ == warm.log_marginal_likelihood_  # seeded subsample
