"""Implicit regularization: early stopping is (nearly) ridge, gradient descent from zero finds the
minimum-norm solution, and the sharpness of a fitted net is its Hessian's top eigenvalue.

Every identity is checked against an independent computation: an explicit float64 gradient-
descent loop, scikit-learn's Ridge, ``scipy.linalg.expm`` for gradient flow, ``lstsq``'s
minimum-norm solution, the float32 training loop of ``NeuralRegressor``, a Monte-Carlo estimate
of the risk, and dense Hessians (closed form for GLMs, autograd for a net).
"""

import doctest
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

import neurostat.implicit
from neurostat import (
    NeuralClassifier,
    NeuralCoxRegressor,
    NeuralRegressor,
    early_stopping_path,
    sharpness,
)

# the bound of Ali, Kolter & Tibshirani (2019), Theorem 1, and its exact value
BOUND = 1.6862
FLOW_SUP = 1.685909  # max_x [(1 - exp(-x)) (1 + 1/x)]^2, at x = 1.7933


def _design(n, p, seed=0, rho=0.5):
    # AR(1)-correlated columns (corr rho^|i-j|), standardized: condition number ~10 at 0.5
    rng = np.random.default_rng(seed)
    L = np.linalg.cholesky(rho ** np.abs(np.subtract.outer(np.arange(p), np.arange(p))))
    X = rng.normal(size=(n, p)) @ L.T
    X = (X - X.mean(0)) / X.std(0)
    beta = rng.normal(size=p) / np.sqrt(p)
    y = 3.0 * (X @ beta + rng.normal(size=n)) + 5.0  # off-center, off-scale: target scaling
    return X, y, beta


def _gd_net(eta, t, n, init="zeros", **kw):
    return NeuralRegressor(hidden_layer_sizes=(), solver="sgd", init=init, batch_size=n,
                           momentum=0.0, learning_rate_init=eta, max_iter=t, shuffle=False,
                           tol=0.0, n_iter_no_change=t + 1, **kw)


def _fit_quiet(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


def test_doctests():
    res = doctest.testmod(neurostat.implicit, optionflags=doctest.ELLIPSIS)
    assert res.attempted >= 4 and res.failed == 0


# ----------------------------------------------------------------------------- closed forms


def test_paths_match_explicit_iterations_ridge_and_flow():
    # uncentered X on purpose: the path centers, the explicit loop below runs on centered data
    rng = np.random.default_rng(1)
    n, p, eta, T = 60, 8, 0.3, 40
    X = rng.normal(size=(n, p)) + 2.0
    y = X @ rng.normal(size=p) + rng.normal(size=n) + 1.0
    path = early_stopping_path(X, y, eta, T)
    Xc, yc = X - X.mean(0), y - y.mean()
    b = np.zeros(p)
    for k in range(T + 1):
        np.testing.assert_allclose(path.coef_gd[k], b, rtol=0, atol=1e-12 * (1 + abs(b).max()))
        b = b + eta * Xc.T @ (yc - Xc @ b) / n
    H = Xc.T @ Xc / n
    for k in (1, 7, T):
        lam = 1.0 / (eta * k)
        assert path.alphas[k] == pytest.approx(lam)
        ridge = Ridge(alpha=lam * n, solver="cholesky").fit(X, y)
        np.testing.assert_allclose(path.coef_ridge[k], ridge.coef_, rtol=1e-10)
        assert path.intercept_ridge[k] == pytest.approx(ridge.intercept_, rel=1e-10)
        # gradient flow b(t) = (I - exp(-t H)) H^-1 Xc'yc / n (H is invertible here)
        flow = (np.eye(p) - scipy.linalg.expm(-eta * k * H)) @ np.linalg.solve(H, Xc.T @ yc / n)
        np.testing.assert_allclose(path.coef_flow[k], flow, rtol=1e-9)
    assert np.all(path.coef_ridge[0] == 0) and np.all(path.coef_flow[0] == 0)
    np.testing.assert_allclose(path.intercept_gd, y.mean() - path.coef_gd @ X.mean(0))


def test_large_step_filter_and_divergence():
    # eta s^2 >= 1 (oscillating but convergent steps) must still be the exact iteration
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 4))
    y = rng.normal(size=50)
    s2max = np.linalg.svd((X - X.mean(0)) / np.sqrt(50), compute_uv=False)[0] ** 2
    eta = 1.7 / s2max
    path = early_stopping_path(X, y, eta, 15)
    Xc, yc = X - X.mean(0), y - y.mean()
    b = np.zeros(4)
    for _ in range(15):
        b = b + eta * Xc.T @ (yc - Xc @ b) / 50
    np.testing.assert_allclose(path.coef_gd[-1], b, rtol=1e-11)
    with pytest.raises(ValueError, match="diverge.*below 2"):
        early_stopping_path(X, y, 2.01 / s2max, 5)


def test_net_gradient_descent_is_the_closed_form_filter():
    # NeuralRegressor's float32 full-batch SGD from zero, on standardized X and a target off
    # center and off scale (so the internal target standardization and the initial intercept
    # are exercised), against the float64 closed form: at iteration t, and at every iteration
    n, p, eta, T = 200, 10, 0.5, 60
    X, y, _ = _design(n, p)
    path = early_stopping_path(X, y, eta, T)
    est = _fit_quiet(_gd_net(eta, T, n), X, y)
    assert est.n_iter_ == T
    assert _rel(est.coef_, path.coef_gd[T]) < 1e-6
    assert est.intercept_ == pytest.approx(path.intercept_gd[T], rel=1e-6)
    step = _gd_net(eta, 1, n)
    worst = 0.0
    for k in range(1, T + 1):
        step.partial_fit(X, y)
        worst = max(worst, _rel(step.coef_, path.coef_gd[k]))
    assert worst < 1e-6, worst
    # the matched ridge: neurostat's own ridge (lbfgs, alpha = 1 / (eta t)) is the ridge path
    ridge = NeuralRegressor((), solver="lbfgs", alpha=float(path.alphas[T]), tol=1e-8).fit(X, y)
    assert _rel(ridge.coef_, path.coef_ridge[T]) < 1e-6


def test_min_norm_limit_underdetermined():
    # n < p: gradient descent from zero stays in the row space of Xc and converges to the
    # minimum-norm least-squares solution; from w0 it converges to it plus the null-space
    # part of w0, which no gradient step changes
    rng = np.random.default_rng(3)
    n, p = 30, 80
    X = rng.normal(size=(n, p))
    X = (X - X.mean(0)) / X.std(0)
    y = X @ rng.normal(size=p) / 8 + rng.normal(size=n) + 2.0
    Xc, yc = X - X.mean(0), y - y.mean()
    mn = np.linalg.lstsq(Xc, yc, rcond=None)[0]
    s = np.linalg.svd(Xc / np.sqrt(n), compute_uv=False)
    s = s[s > 1e-10 * s[0]]
    eta, T = 1.0 / s[0] ** 2, 500
    assert (1 - eta * s[-1] ** 2) ** T < 1e-9  # converged to well below float32 resolution
    path = early_stopping_path(X, y, eta, T)
    assert path.singular_values.size == n - 1  # centering removes one dimension
    np.testing.assert_allclose(path.coef_min_norm, mn, rtol=1e-10, atol=1e-12)
    assert _rel(path.coef_gd[T], mn) < 1e-8
    # the minimum-norm solution interpolates and is orthogonal to the null space of Xc
    np.testing.assert_allclose(Xc @ mn, yc, atol=1e-9)

    net = _fit_quiet(_gd_net(eta, T, n), X, y)
    assert _rel(net.coef_, mn) < 2e-5
    # nonzero start (init="normal"): w_T = mn + P_null(w_1), w_1 the iterate after one step
    P_row = np.linalg.pinv(Xc) @ Xc
    w1 = _fit_quiet(_gd_net(eta, 1, n, init="normal", random_state=0), X, y).coef_
    wT = _fit_quiet(_gd_net(eta, T, n, init="normal", random_state=0), X, y).coef_
    null = w1 - P_row @ w1
    assert np.linalg.norm(null) > 0.3 * np.linalg.norm(mn)  # the start matters visibly
    assert _rel(wT, mn + null) < 2e-5
    # and the extra norm is exactly the null-space part: ||w_T||^2 = ||mn||^2 + ||P_0 w_1||^2
    assert wT @ wT == pytest.approx(mn @ mn + null @ null, rel=1e-4)


# ----------------------------------------------------------------------------- risk


def test_gradient_flow_risk_within_the_bound():
    # Theorem 1 (estimation risk, every beta, every t) and the in-sample prediction risk, for
    # gradient flow at t against ridge at 1/t, exact expectations over the noise
    X, y, beta = _design(100, 20, seed=4)
    s2max = np.linalg.svd(X / 10.0, compute_uv=False)[0] ** 2
    path = early_stopping_path(X, y, 0.05 / s2max, 4000)
    for kind in ("estimation", "prediction"):
        for sigma2 in (0.1, 1.0, 10.0):
            r = path.risk(sigma2, beta, kind=kind)
            ratio = r["flow"][1:] / r["ridge"][1:]
            assert ratio.max() <= BOUND, (kind, sigma2, ratio.max())
            # gradient descent with a small step (eta s_1^2 = 0.05) stays within it too here
            assert (r["gd"][1:] / r["ridge"][1:]).max() <= BOUND
        rb = path.risk(1.0, prior_var=1.0 / 20, kind=kind)
        assert (rb["flow"][1:] / rb["ridge"][1:]).max() <= BOUND


def test_bound_is_attained_by_pure_variance_on_an_orthogonal_design():
    # beta = 0 and equal singular values: the ratio is the variance ratio of one component,
    # whose maximum over t is FLOW_SUP at t = 1.7933 / s^2. With a unit step on s^2 = 1
    # gradient descent's first iterate is least squares (filter 1) and ridge's is half of it:
    # the discrete ratio is exactly 4, so the bound really is one for gradient flow.
    n, p = 64, 4
    G = np.column_stack([np.ones(n), np.random.default_rng(5).normal(size=(n, p))])
    X = np.linalg.qr(G)[0][:, 1:] * np.sqrt(n)  # orthogonal columns, each orthogonal to 1
    y = np.random.default_rng(6).normal(size=n)
    path = early_stopping_path(X, y, 1e-3, 5000)
    np.testing.assert_allclose(path.singular_values, 1.0, rtol=1e-12)
    r = path.risk(1.0, np.zeros(p))
    ratio = r["flow"][1:] / r["ridge"][1:]
    assert ratio.max() == pytest.approx(FLOW_SUP, abs=2e-6)
    assert path.times[1:][ratio.argmax()] == pytest.approx(1.7933, abs=2e-3)
    unit = early_stopping_path(X, y, 1.0, 3).risk(1.0, np.zeros(p))
    assert unit["gd"][1] / unit["ridge"][1] == pytest.approx(4.0, rel=1e-12)


@pytest.mark.parametrize("n, p", [(80, 6), (20, 30)], ids=["n>p", "n<p"])
def test_exact_risk_matches_monte_carlo(n, p):
    # the closed-form risk against simulated noise: mean loss of each path over 2,000 noise
    # draws, within 4 standard errors. The paths are linear in y, so the smoother matrices
    # (the paths of the unit responses e_j) give every draw's path in one product. With
    # n < p the null-space part of beta, which no path reaches, is part of the risk.
    T = 60
    X, _, beta = _design(n, p, seed=7)
    rng = np.random.default_rng(8)
    units = [early_stopping_path(X, e, 0.2, T) for e in np.eye(n)]
    path = early_stopping_path(X, X @ beta, 0.2, T)
    Y = (X @ beta)[:, None] + 1.5 * rng.normal(size=(n, 2000))  # sigma^2 = 2.25
    for name in ("gd", "ridge", "flow"):
        A = np.stack([getattr(u, f"coef_{name}") for u in units], axis=-1)  # (T+1, p, n)
        for kind in ("estimation", "prediction"):
            exact = path.risk(2.25, beta, kind=kind)[name]
            for k in (3, 20, 60):
                err = A[k] @ Y - beta[:, None]  # (p, draws)
                loss = (err**2).sum(0) if kind == "estimation" else (
                    ((X - X.mean(0)) @ err) ** 2).mean(0)
                se = loss.std(ddof=1) / np.sqrt(loss.size)
                assert abs(loss.mean() - exact[k]) < 4 * se, (kind, k, name)


# ----------------------------------------------------------------------------- sharpness


def test_sharpness_of_glms_is_the_closed_form_hessian():
    rng = np.random.default_rng(9)
    n = 300
    X = rng.normal(size=(n, 4)) * [1.0, 2.0, 0.5, 1.0] + 1.0
    y = X @ [0.5, -1.0, 2.0, 0.0] + rng.normal(size=n)
    Z = np.column_stack([X, np.ones(n)])
    for alpha in (0.0, 0.7):
        ols = NeuralRegressor((), solver="lbfgs", alpha=alpha).fit(X, y)
        H = Z.T @ Z / n + np.diag([alpha] * 4 + [0.0])  # the intercept is not penalized
        top = np.linalg.eigvalsh(H)[-1]
        assert sharpness(ols, X, y) == pytest.approx(top, rel=1e-9)
    assert sharpness(ols, X, y, penalty=False) == pytest.approx(
        np.linalg.eigvalsh(Z.T @ Z / n)[-1], rel=1e-9)
    # logistic regression: Z' diag(p (1 - p)) Z / n, weighted
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xb = StandardScaler().fit_transform(Xb)[:, :6]
    lab = np.where(yb == 1, "benign", "malignant")
    w = rng.uniform(0.5, 2.0, size=len(yb))
    logit = NeuralClassifier((), solver="lbfgs", alpha=0.01).fit(Xb, lab)
    prob = logit.predict_proba(Xb)[:, 1]
    Zb = np.column_stack([Xb, np.ones(len(yb))])
    H = (Zb * (w * prob * (1 - prob))[:, None]).T @ Zb / w.sum() + np.diag([0.01] * 6 + [0])
    assert sharpness(logit, Xb, lab, sample_weight=w) == pytest.approx(
        np.linalg.eigvalsh(H)[-1], rel=1e-9)


def test_sharpness_of_a_net_is_the_dense_hessian_top_eigenvalue():
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xb = StandardScaler().fit_transform(Xb)[:200, :5]
    yb = yb[:200]
    net = _fit_quiet(NeuralClassifier((6,), activation="tanh", solver="adam", max_iter=30,
                                      alpha=1e-3, random_state=0, learning_rate_init=0.01),
                     Xb, yb)
    params = [p.detach().double() for p in net.module_.parameters()]
    names = [k for k, _ in net.module_.named_parameters()]
    shapes = [p.shape for p in params]
    X = torch.as_tensor(Xb)
    y = torch.as_tensor(yb, dtype=torch.float64)

    def objective(flat):
        parts = dict(zip(names, (t.view(s) for t, s in zip(
            flat.split([int(np.prod(s)) for s in shapes]), shapes))))
        eta = torch.func.functional_call(net.module_, parts, (X,))
        nll = torch.nn.functional.binary_cross_entropy_with_logits(eta[:, 0], y)
        return nll + 0.5e-3 * sum((parts[k] ** 2).sum() for k in names if "weight" in k)

    H = torch.autograd.functional.hessian(objective, torch.cat([p.reshape(-1) for p in params]))
    top = torch.linalg.eigvalsh(H)[-1].item()
    assert sharpness(net, Xb, yb) == pytest.approx(top, rel=1e-8)
    assert sharpness(net, Xb, yb, random_state=1) == pytest.approx(top, rel=1e-8)


def test_sharpness_counts_only_trainable_parameters():
    # a frozen hidden layer (transfer learning, freeze=1) leaves a linear model in its
    # features h = tanh(X W1' + b1): the Hessian of the gaussian objective in the output layer
    # is [h, 1]'[h, 1] / n, and the frozen layer's curvature must not enter
    rng = np.random.default_rng(12)
    X = rng.normal(size=(150, 3))
    y = np.sin(X[:, 0]) + X[:, 1] + 0.1 * rng.normal(size=150)
    src = _fit_quiet(NeuralRegressor((4,), activation="tanh", solver="lbfgs", max_iter=50,
                                     random_state=0), X, y)  # any fitted body will do
    est = NeuralRegressor((4,), activation="tanh", solver="lbfgs", init=src, freeze=1).fit(X, y)
    h = np.tanh(X @ est.coefs_[0] + est.intercepts_[0])
    Z = np.column_stack([h, np.ones(150)])
    assert sharpness(est, X, y) == pytest.approx(np.linalg.eigvalsh(Z.T @ Z / 150)[-1],
                                                 rel=1e-9)


def test_sharpness_input_errors():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    clf = NeuralClassifier((), solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="not in the estimator's classes_"):
        sharpness(clf, X, np.where(y == 1, 2, 0))
    with pytest.raises(TypeError, match="NeuralRegressor or NeuralClassifier"):
        sharpness(Ridge().fit(X, y), X, y)
    with pytest.raises(TypeError, match="NeuralRegressor or NeuralClassifier"):
        sharpness(NeuralCoxRegressor(), X, y)
    with pytest.raises(ValueError, match="one label per row"):
        sharpness(clf, X, y[:-1])


def test_early_stopping_path_input_errors():
    X = np.random.default_rng(11).normal(size=(20, 3))
    y = X[:, 0]
    for bad, msg in (((X, y[:5], 0.1, 5), "one value per row"),
                     ((X[:, 0], y, 0.1, 5), "2-d array"),
                     ((np.where(X > 1, np.nan, X), y, 0.1, 5), "finite"),
                     ((X, y, 0.0, 5), "learning_rate must be"),
                     ((X, y, 0.1, 0), "n_iter must be"),
                     ((X, y, 0.1, 2.5), "n_iter must be"),
                     ((np.ones((20, 3)), y, 0.1, 5), "no variation")):
        with pytest.raises(ValueError, match=msg):
            early_stopping_path(*bad)
    path = early_stopping_path(X, y, 0.1, 5)
    with pytest.raises(ValueError, match="exactly one of"):
        path.risk(1.0)
    with pytest.raises(ValueError, match="3 finite slopes"):
        path.risk(1.0, np.ones(2))
    with pytest.raises(ValueError, match="noise_var"):
        path.risk(-1.0, np.ones(3))
    with pytest.raises(ValueError, match="kind must be"):
        path.risk(1.0, np.ones(3), kind="oracle")
    with pytest.raises(ValueError, match="kind must be"):
        path.filters("lasso")
    frame = path.to_frame()
    assert len(frame) == 6 * 3 and list(frame.columns[:4]) == ["iteration", "time", "alpha",
                                                               "term"]
