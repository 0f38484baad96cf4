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

from neurostat.gp import NNGPKernel, NNGPRegressor


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


@pytest.mark.parametrize("kind, mode", [("ntk", "forward"), ("nngp", "reverse")])
def test_fit_in_row_blocks_matches_one_block(kind, mode, monkeypatch):
    """The training kernel is filled and differentiated (by hand in forward mode, or by
    autograd block by block, the path of the quadrature activations) by row blocks of the upper
    triangle; 16-row blocks at n = 60 give the fit of one block."""
    from neurostat.gp import _exact, _optimize

    X, y = _data(n=60)
    if mode == "reverse":  # relu by the generic path: autograd through its closed form
        monkeypatch.setattr(_exact, "_CLOSED", ())
    assert (_exact.TrainKernel(torch.from_numpy(X), 2, "relu", False).closed is None) == (
        mode == "reverse")
    x, t = torch.from_numpy(X), torch.from_numpy((y - y.mean()) / y.std())
    names, theta = ["weight_variance", "bias_variance", "noise"], np.log([1.7, 0.4, 0.08])

    def objective():
        obj = _optimize._Objective(_exact.TrainKernel(x, 2, "relu", kind == "ntk"), t, names,
                                   {})
        return obj.value(theta), obj.gradient(), len(obj.kernel.blocks)

    args = dict(depth=2, kernel=kind, max_iter=30, random_state=0)
    plain, (f1, g1, b1) = NNGPRegressor(**args).fit(X, y), objective()
    monkeypatch.setattr(_exact, "_BLOCK_BYTES", 8 * 60)
    blocked, (f2, g2, b2) = NNGPRegressor(**args).fit(X, y), objective()
    assert (b1, b2) == (1, 4)  # 16-row blocks (the smallest), the last one short
    assert f2 == pytest.approx(f1, rel=1e-13)
    np.testing.assert_allclose(g2, g1, rtol=1e-11, atol=1e-14)
    # the fits stop at a gradient of 1e-6 per observation: they agree to about that
    assert blocked.log_marginal_likelihood_ == pytest.approx(plain.log_marginal_likelihood_,
                                                             rel=1e-10)
    for name in ("weight_variance_", "bias_variance_", "noise_"):
        assert getattr(blocked, name) == pytest.approx(getattr(plain, name), rel=1e-5)
    np.testing.assert_allclose(blocked.predict(X[:5]), plain.predict(X[:5]), rtol=1e-6)


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


def test_iterative_solver_matches_exact_posterior():
    """Beyond max_exact_size: hyperparameters from an exact fit of max_exact_size random rows,
    the posterior by preconditioned CG (relative residual < cg_tol), against the exact
    float64 posterior at the same hyperparameters."""
    X, y = _data(n=300)
    Xs = _data(n=40, seed=3)[0]
    gp = NNGPRegressor(depth=2, max_exact_size=200, preconditioner_rank=20, random_state=0)
    gp.fit(X, y)
    assert gp.solver_ == "iterative" and gp.L_ is None and gp.fit_rows_ == 200
    assert gp.cg_residual_ < gp.cg_tol
    exact = NNGPRegressor(depth=2, optimize=False, weight_variance=gp.weight_variance_,
                          bias_variance=gp.bias_variance_, noise=gp.noise_).fit(X, y)
    mean, std = gp.predict(Xs, return_std=True)
    ref_mean, ref_std = exact.predict(Xs, return_std=True)
    # residuals below 1e-8 relative; the variance k** - k*' A^-1 k* cancels ~100-fold: seen
    # 1e-9 relative for the means and 1.1e-6 for the standard deviations
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-7, atol=1e-7 * y.std())
    np.testing.assert_allclose(std, ref_std, rtol=1e-5, atol=1e-9)
    _, cov = gp.predict(Xs[:5], return_cov=True)
    np.testing.assert_allclose(cov, exact.predict(Xs[:5], return_cov=True)[1], atol=1e-7)


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


@pytest.mark.parametrize("kind, activation", [("nngp", "relu"), ("ntk", "erf"), ("nngp", "tanh")])
def test_training_objective_matches_gpytorch_exact_mll(kind, activation):
    """The fit's objective (blocked upper-triangle kernel, LAPACK) and its gradient in the log
    variances (forward mode for closed forms, reverse mode for quadrature) equal gpytorch's
    ExactMarginalLogLikelihood and its autograd gradient."""
    import gpytorch

    from neurostat.gp import NTKKernel
    from neurostat.gp._exact import TrainKernel
    from neurostat.gp._optimize import _Objective
    from neurostat.gp.regressor import _ExactGP

    X, y = _data(n=30)
    x, t = torch.from_numpy(X), torch.from_numpy((y - y.mean()) / y.std())
    cls = NTKKernel if kind == "ntk" else NNGPKernel
    log_constraint = dict(transform=torch.exp, inv_transform=torch.log)
    k = cls(depth=2, activation=activation,
            weight_variance_constraint=gpytorch.constraints.Positive(**log_constraint),
            bias_variance_constraint=gpytorch.constraints.Positive(**log_constraint)).double()
    k.weight_variance, k.bias_variance = 1.4, 0.3
    lik = gpytorch.likelihoods.GaussianLikelihood(
        noise_constraint=gpytorch.constraints.GreaterThan(1e-6, **log_constraint)).double()
    lik.noise = 0.05
    model = _ExactGP(x, t, lik, k).double()
    model.train()
    with gpytorch.settings.max_cholesky_size(10**6), gpytorch.settings.fast_computations(
        False, False, False
    ):
        ref = -gpytorch.mlls.ExactMarginalLogLikelihood(lik, model)(model(x), t)  # mean NLL
    params = [k.raw_weight_variance, k.raw_bias_variance, lik.noise_covar.raw_noise]
    ref_grad = [g.item() for g in torch.autograd.grad(ref, params)]
    names = ["weight_variance", "bias_variance", "noise"]
    obj = _Objective(TrainKernel(x, 2, activation, kind == "ntk"), t, names, {})
    # gpytorch's noise is lower + exp(raw) with a float32 lower bound: 0.05 + 7e-10 here
    noise, lower = lik.noise.item(), lik.noise_covar.raw_noise_constraint.lower_bound.item()
    theta = np.log([k.weight_variance.item(), k.bias_variance.item(), noise])
    f = obj.value(theta)
    g = obj.gradient()
    # tanh: quadrature rules picked per block here, per matrix there (both ~1e-9 accurate)
    assert f == pytest.approx(ref.item(), rel=1e-12 if activation != "tanh" else 1e-8)
    # d / d raw_noise = (noise - lower) / noise * d / d log noise
    scale = np.array([1.0, 1.0, (noise - lower) / noise])
    np.testing.assert_allclose(g * scale, ref_grad, rtol=1e-8, atol=1e-12)


def test_staged_fit_reaches_the_single_stage_optimum():
    """Nested subsamples (60 -> 120 -> 240 rows here, 300 -> ... -> n by default) warm-start
    the fit: the same maximum of the full marginal likelihood, fewer full-size evaluations."""
    from neurostat.gp._optimize import fit_hyperparameters

    X, y = _data(n=240)
    x, t = torch.from_numpy(X), torch.from_numpy((y - y.mean()) / y.std())
    start = {"weight_variance": 1.0, "bias_variance": 0.1, "noise": 0.1}
    free = ["weight_variance", "bias_variance", "noise"]
    one, info1 = fit_hyperparameters(x, t, 2, "relu", False, start, free, first=10**9)
    staged, info2 = fit_hyperparameters(x, t, 2, "relu", False, start, free, first=60, ratio=2,
                                        rng=np.random.default_rng(0))
    assert info1["stages"] == [240] and info2["stages"] == [60, 120, 240]
    for name in free:
        assert staged[name] == pytest.approx(one[name], rel=1e-4)
    f1, f2 = info1["objective"].last[3], info2["objective"].last[3]
    # both stop at a gradient of at most gtol = 1e-6, so their objectives agree to about
    # gtol^2 / (smallest Hessian eigenvalue): 1e-10 relative held on one BLAS, not on another
    # (2.9e-10 on a fresh install); 1e-8 is that bound with the flattest direction at 1e-4
    assert f2 == pytest.approx(f1, rel=1e-8)
    assert np.abs(info2["grad"]).max() < 1e-6 and np.abs(info1["grad"]).max() < 1e-6
    assert info2["n_evals_last_stage"] < info1["n_evals_last_stage"]


@pytest.mark.parametrize("activation", ["relu", "erf", "identity"])
@pytest.mark.parametrize("ntk", [False, True])
def test_forward_mode_kernel_derivatives_match_autograd(activation, ntk, monkeypatch):
    """The training kernel's blocks and their derivatives in log w and log b, written by hand
    (forward mode), against autograd through the tested recursion of layer_kernels; with a
    duplicated row (correlation 1 off the diagonal) and blocks of 16 rows."""
    from neurostat.gp import _exact
    from neurostat.gp._recursions import layer_kernels

    monkeypatch.setattr(_exact, "_BLOCK_BYTES", 8)  # 16-row blocks: two
    x = torch.from_numpy(_data(n=19)[0])
    x[5] = x[9]
    tk = _exact.TrainKernel(x, 3, activation, ntk)
    assert len(tk.blocks) > 1
    buf, dw, db = (torch.zeros(19, 19, dtype=torch.float64) for _ in range(3))
    tk.fill(1.3, 0.2, 0.0, buf, dw, db)
    up = torch.triu(torch.ones(19, 19, dtype=torch.bool))

    def kern(lw, lb):
        out = layer_kernels(x, x, 3, activation, lw.exp(), lb.exp(), ntk=ntk)
        return out[1] if ntk else out[0]

    lw = torch.tensor([[np.log(1.3)]], dtype=torch.float64)
    lb = torch.tensor([[np.log(0.2)]], dtype=torch.float64)
    jw, jb = torch.autograd.functional.jacobian(kern, (lw, lb))
    torch.testing.assert_close(buf[up], kern(lw, lb)[up], rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(dw[up], jw.squeeze()[up], rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(db[up], jb.squeeze()[up], rtol=1e-12, atol=1e-13)


@pytest.mark.cuda
def test_cuda_fit_matches_cpu_and_iterative_runs():
    """torch's Cholesky on CUDA gives the CPU (LAPACK) fit; the CG path runs there too."""
    X, y = _data(n=80)
    cpu = NNGPRegressor(depth=2, random_state=0, device="cpu").fit(X, y)
    gpu = NNGPRegressor(depth=2, random_state=0, device="cuda").fit(X, y)
    assert gpu.L_.device.type == "cuda"
    assert gpu.log_marginal_likelihood_ == pytest.approx(cpu.log_marginal_likelihood_, rel=1e-8)
    m0, s0 = cpu.predict(X[:9], return_std=True)
    m1, s1 = gpu.predict(X[:9], return_std=True)
    np.testing.assert_allclose(m1, m0, rtol=1e-6)
    np.testing.assert_allclose(s1, s0, rtol=1e-6)
    it = NNGPRegressor(depth=2, max_exact_size=50, random_state=0, device="cuda").fit(X, y)
    assert it.solver_ == "iterative" and it.cg_residual_ < it.cg_tol
