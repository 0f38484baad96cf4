"""Covariances: exact Hessians, penalized sandwiches (ridge closed forms), effective df, errors."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from neurostat import NeuralClassifier, NeuralRegressor
from neurostat.inference import InferenceWarning, inference
from neurostat.inference.likelihood import Likelihood


def _ridge_data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) * [1.0, 2.0, 0.5, 1.0]
    y = X @ [1.0, -1.0, 0.5, 0.0] + 3.0 + rng.normal(size=n)
    return X, y


def _ridge_closed_form(X, y, alpha):
    """Ridge with unpenalized intercept on the objective's scale: lambda = n * alpha."""
    n = len(y)
    Z = np.column_stack([np.ones(n), X])
    P = np.diag([0.0] + [n * alpha] * X.shape[1])
    B = np.linalg.inv(Z.T @ Z + P)
    beta = B @ Z.T @ y
    edf = np.trace(Z @ B @ Z.T)  # trace of the hat matrix
    r = y - Z @ beta
    s2 = r @ r / (n - edf)
    cov = s2 * B @ Z.T @ Z @ B
    cov_hc0 = B @ (Z.T * r**2) @ Z @ B
    return beta, cov, cov_hc0, edf, s2


@pytest.mark.parametrize("alpha", [0.0, 0.05, 1.0])
def test_ridge_sandwich_closed_form(alpha):
    # sigma^2 (X'X + n alpha D)^-1 X'X (X'X + n alpha D)^-1, D = diag(0, 1, ..., 1), to 1e-6
    X, y = _ridge_data()
    beta, cov, cov_hc0, edf, s2 = _ridge_closed_form(X, y, alpha)
    est = NeuralRegressor((), solver="lbfgs", alpha=alpha).fit(X, y)
    res = est.inference()
    np.testing.assert_allclose(res.params.values, beta, rtol=1e-6, atol=1e-8)
    # entries near zero are compared on the matrix's scale: the fitted beta (an optimizer's
    # answer, 1e-6 relative) moves a near-cancelling entry more than 1e-6 of itself
    np.testing.assert_allclose(res.cov_params().values, cov, rtol=1e-6,
                               atol=1e-6 * np.abs(cov).max())
    np.testing.assert_allclose(res.df_model, edf - 1, rtol=1e-8)  # effective df
    np.testing.assert_allclose(res.df_resid, len(y) - edf, rtol=1e-8)
    np.testing.assert_allclose(res.scale, s2, rtol=1e-6)
    np.testing.assert_allclose(res.aic, -2 * res.llf + 2 * edf, rtol=1e-10)
    np.testing.assert_allclose(res.bic, -2 * res.llf + np.log(len(y)) * edf, rtol=1e-10)
    hc0 = est.inference(cov_type="HC0")
    np.testing.assert_allclose(hc0.cov_params().values, cov_hc0, rtol=1e-6,
                               atol=1e-6 * np.abs(cov_hc0).max())


def test_ridge_logistic_edf_and_sandwich():
    # penalized logistic: A = X'WX + n alpha D, I = X'WX, cov = A^-1 I A^-1, edf = tr(I A^-1)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = (X @ [1.0, -0.5, 0.0] + rng.logistic(size=200) > 0).astype(int)
    alpha = 0.02
    res = NeuralClassifier((), solver="lbfgs", alpha=alpha).fit(X, y).inference()
    Z = np.column_stack([np.ones(200), X])
    p = 1 / (1 + np.exp(-Z @ res.params.values))
    info = (Z.T * (p * (1 - p))) @ Z
    A = info + np.diag([0.0] + [200 * alpha] * 3)
    Ai = np.linalg.inv(A)
    np.testing.assert_allclose(res.cov_params().values, Ai @ info @ Ai, rtol=1e-6)
    np.testing.assert_allclose(res.df_model + 1, np.trace(info @ Ai), rtol=1e-8)


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_hessian_and_scores_match_autograd(activation, n_classes):
    # closed-form network curvature + G'WG == torch.func.hessian of the full loglik (1e-10)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, n_classes, size=60)
    est = NeuralClassifier((4,), activation=activation, solver="lbfgs", max_iter=30,
                           random_state=0)
    with pytest.warns(Warning):
        est.fit(X, y)
    lik = Likelihood(est.module_, est.family_, X, est._encode_target(y))
    ref = torch.func.hessian(lambda t: -lik.loglik(lik.eta(t)))(lik.theta)
    H = lik.hessian()
    assert torch.allclose(H, ref, rtol=1e-10, atol=1e-10 * ref.abs().max())
    grad = torch.func.grad(lambda t: lik.loglik(lik.eta(t)))(lik.theta)
    assert torch.allclose(lik.score_obs().sum(0), grad, atol=1e-10)


def test_two_hidden_layers_use_autograd_curvature():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = X[:, 0] - X[:, 1] ** 2 + 0.1 * rng.normal(size=40)
    est = NeuralRegressor((3, 2), activation="tanh", solver="lbfgs", random_state=0).fit(X, y)
    lik = Likelihood(est.module_, est.family_, X, y)
    ref = torch.func.hessian(lambda t: -lik.loglik(lik.eta(t)))(lik.theta)
    assert torch.allclose(lik.hessian(), ref, rtol=1e-10, atol=1e-10 * ref.abs().max())


def test_errors():
    X, y = _ridge_data(30)
    with pytest.raises(NotFittedError):
        NeuralRegressor(()).inference()
    est = NeuralRegressor((), solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="cov_type"):
        est.inference(cov_type="HC3")
    with pytest.raises(ValueError, match="features"):
        est.inference(X[:, :3], y)
    with pytest.raises(ValueError, match="both X and y"):
        est.inference(X)
    with pytest.raises(ValueError, match="alpha"):
        est.inference(alpha=1.5)
    clf = NeuralClassifier((), solver="lbfgs").fit(X, y > 3)
    with pytest.raises(ValueError, match="labels"):
        clf.inference(X, np.where(y > 3, "a", "b"))


def test_explicit_data_equals_training_data():
    X, y = _ridge_data(50)
    est = NeuralRegressor((), solver="lbfgs").fit(X, y)
    a, b = est.inference(), inference(est, X, y)
    np.testing.assert_allclose(a.bse.values, b.bse.values, rtol=1e-12)


def test_perfect_separation_warns_and_flags():
    X = np.array([[-2.0], [-1.5], [-1.0], [-0.5], [0.5], [1.0], [1.5], [2.0]])
    y = (X[:, 0] > 0).astype(int)
    est = NeuralClassifier((), solver="lbfgs", max_iter=2000).fit(X, y)
    with pytest.warns(InferenceWarning, match="separation"):
        res = est.inference()
    assert res.separated
    assert "separation" in str(res.summary())


def test_collinear_inputs_warn_pseudo_inverse():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 1))
    X = np.hstack([x, 2 * x])
    y = x[:, 0] + rng.normal(size=50)
    est = NeuralRegressor((), solver="lbfgs").fit(X, y)
    with pytest.warns(InferenceWarning, match="pseudo-inverse"):
        res = est.inference()
    assert res.statistics.hess_info["singular"]
    assert np.all(np.isfinite(res.bse.values))


def test_too_many_parameters_suggests_bootstrap():
    """Above MAX_HESSIAN_PARAMS the dense Hessian is never formed: the delta method has no
    covariance and is refused with the alternatives named; the default (cross-fitted effects,
    last-layer covariance for predictions) still runs."""
    X, y = _ridge_data(30)
    est = NeuralRegressor((4,), solver="lbfgs", max_iter=5).fit(X, y)
    import neurostat.inference.covariance as covariance
    old = covariance.MAX_HESSIAN_PARAMS
    covariance.MAX_HESSIAN_PARAMS = 10
    try:
        with pytest.raises(ValueError, match="bootstrap"):
            est.inference(effects="delta")
        res = est.inference(random_state=0)
        assert np.all(np.isfinite(res.bse)) and np.all(res.bse > 0)
    finally:
        covariance.MAX_HESSIAN_PARAMS = old


def test_no_residual_df_warns_that_the_dispersion_is_not_estimable():
    """An unpenalized (64,) net on 300 rows has more effective parameters than rows: its
    training-residual dispersion is meaningless (the calibration study measured a scale of
    1e298 and NaN observation intervals there), so inference says so; a penalized small net
    on the same data does not warn."""
    import warnings as _w

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = 0.8 * X[:, 0] + np.tanh(2 * X[:, 1]) + rng.normal(size=300)
    big = NeuralRegressor((64,), activation="tanh", solver="lbfgs", alpha=0.0, max_iter=500,
                          random_state=0).fit(X, y)
    with pytest.warns(InferenceWarning, match="not estimable"):
        res = big.inference(effects="delta")
    assert not (res.df_resid > 0 and res.scale < 1e100)
    small = NeuralRegressor((4,), activation="tanh", solver="lbfgs", alpha=1e-2, max_iter=500,
                            random_state=0).fit(X, y)
    with _w.catch_warnings():
        _w.simplefilter("error", InferenceWarning)
        small.inference(effects="delta")
