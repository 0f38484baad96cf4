"""Dropout: Monte-Carlo predictions, adaptive ridge (Wager et al. 2013), Gal's predictive.

Monte-Carlo checks use tolerances of 4 standard errors computed from the draws themselves
(a false alarm about once in 16,000 runs per check); closed forms are checked to float64
round-off.
"""

import itertools
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from neurostat import NeuralClassifier, NeuralRegressor
from neurostat.dropout import (
    adaptive_ridge,
    dropout_prediction_variance,
    gal_precision,
    mc_dropout_predict,
    quadratic_dropout_glm,
    quadratic_dropout_penalty,
    sample_predictions,
)


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.fixture(scope="module")
def linear_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = X @ [1.5, -2.0, 0.5, 0.0] + 1.0 + 0.5 * rng.normal(size=200)
    return X, y


@pytest.fixture(scope="module")
def dropout_glm(linear_data):
    X, y = linear_data
    return _fit(NeuralRegressor((), input_dropout=0.3, max_iter=30, random_state=0), X, y)


# ----------------------------------------------------------------------------- MC dropout
def test_sample_predictions_shapes_scale_and_reproducibility(linear_data):
    X, y = linear_data
    reg = _fit(NeuralRegressor((8,), dropout=0.3, max_iter=5, random_state=0), X, y)
    draws = reg.sample_predictions(X[:7], n_samples=11, random_state=3)
    assert draws.shape == (11, 7)
    np.testing.assert_array_equal(draws, reg.sample_predictions(X[:7], 11, random_state=3))
    assert not np.array_equal(draws, reg.sample_predictions(X[:7], 11, random_state=4))
    assert np.ptp(draws, axis=0).min() > 0  # masks differ between draws
    assert not reg.module_.training  # left in evaluation mode
    # predict keeps the weight-scaling rule, untouched by the draws
    np.testing.assert_array_equal(reg.predict(X[:7]), reg.predict(X[:7]))
    clf = _fit(NeuralClassifier((8,), dropout=0.3, max_iter=5, random_state=0), X, y > 1)
    probs = clf.sample_predictions(X[:7], n_samples=5, random_state=0)
    assert probs.shape == (5, 7, 2)
    np.testing.assert_allclose(probs.sum(-1), 1.0)
    assert np.all((probs >= 0) & (probs <= 1))
    yk = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    multi = _fit(NeuralClassifier((8,), dropout=0.3, max_iter=5, random_state=0), X, yk)
    assert multi.sample_predictions(X[:7], n_samples=5).shape == (5, 7, 3)


def test_sample_predictions_without_dropout_warns_and_equals_predict(linear_data):
    X, y = linear_data
    est = NeuralRegressor((), solver="lbfgs").fit(X, y)
    with pytest.warns(UserWarning, match="no dropout"):
        draws = sample_predictions(est, X[:5], n_samples=3)
    np.testing.assert_allclose(draws, np.tile(est.predict(X[:5]), (3, 1)), rtol=1e-12)


def test_sample_predictions_bad_input(linear_data, dropout_glm):
    X, _ = linear_data
    with pytest.raises(NotFittedError):
        NeuralRegressor(input_dropout=0.2).sample_predictions(X)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_samples"):
            dropout_glm.sample_predictions(X, n_samples=bad)
    with pytest.raises(ValueError, match="features"):
        dropout_glm.sample_predictions(X[:, :2])


def test_mask_variance_of_linear_prediction_is_closed_form(linear_data, dropout_glm):
    # Var over masks of b + x~'w = p / (1 - p) sum_j x_j^2 w_j^2, and the mean is predict
    X, _ = linear_data
    rows = X[:6]
    T = 20_000
    draws = dropout_glm.sample_predictions(rows, n_samples=T, random_state=0)
    expected = dropout_prediction_variance(rows, dropout_glm.coef_, 0.3)
    m = draws.mean(0)
    c = draws - m
    var = (c**2).mean(0)
    se_var = np.sqrt(((c**4).mean(0) - var**2) / T)
    assert np.all(np.abs(var - expected) < 4 * se_var), (var, expected, se_var)
    se_mean = np.sqrt(var / T)
    assert np.all(np.abs(m - dropout_glm.predict(rows)) < 4 * se_mean)


# ----------------------------------------------------------------------------- Gal's predictive
def test_mc_dropout_moments_and_gal_precision(linear_data):
    X, y = linear_data
    est = _fit(NeuralRegressor((16,), dropout=0.2, max_iter=50, random_state=0), X, y)
    pred = mc_dropout_predict(est, X[:9], n_samples=200, tau=4.0, random_state=1)
    draws = est.sample_predictions(X[:9], n_samples=200, random_state=1)
    np.testing.assert_allclose(pred.mean, draws.mean(0), rtol=1e-12)
    np.testing.assert_allclose(pred.model_variance, draws.var(0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pred.variance, 0.25 + draws.var(0), rtol=1e-9)
    # tau="residual": the precision of the MC-mean residuals on the training data
    res = mc_dropout_predict(est, X[:9], n_samples=200, random_state=1)
    fit = est.sample_predictions(X, n_samples=200, random_state=1).mean(0)
    np.testing.assert_allclose(res.tau, 1.0 / np.mean((y - fit) ** 2), rtol=1e-10)
    frame = res.summary_frame(alpha=0.1)
    assert list(frame.columns) == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper",
                                   "obs_ci_lower", "obs_ci_upper"]
    assert np.all(frame.obs_ci_lower < frame.mean_ci_lower)
    # Gal & Ghahramani: tau = p_keep l^2 / (2 N lambda) with lambda = alpha / 2
    assert gal_precision(0.8, 2.0, 100, 0.01) == pytest.approx(0.8 * 4.0 / (100 * 0.01))
    with pytest.raises(ValueError, match="tau"):
        mc_dropout_predict(est, X[:3], tau=-1.0)
    with pytest.raises(ValueError, match="keep_prob"):
        gal_precision(1.5, 1.0, 10, 0.1)


@pytest.mark.slow
def test_mc_dropout_interval_coverage_on_held_out_data():
    # 95% predictive intervals, MC mean +- 1.96 sqrt(1/tau + model variance), on 2,000 fresh
    # points, in a design where the model term matters: 40 training rows on [-1, 1]^2 and test
    # points on [-1.5, 1.5]^2, more than half of them outside the training range (a linear
    # truth, which the ReLU net extrapolates linearly; noise sd 0.1). Measured over 5 seeds
    # (data and net): full band 0.930-0.971; noise-only band (MC mean +- 1.96 / sqrt(tau))
    # 0.66-0.79 and plain predict +- 1.96 / sqrt(tau) the same. tau="residual" comes from the
    # training residuals, which the net partly fits (1/tau 0.006 against the true 0.01): the
    # model variance, 2-3 times 1/tau away from the data, is what restores the coverage.
    rng = np.random.default_rng(0)

    def draw(n, half_width):
        X = rng.uniform(-half_width, half_width, size=(n, 2))
        return X, X[:, 0] + 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)

    X, y = draw(40, 1.0)
    Xt, yt = draw(2000, 1.5)
    est = _fit(NeuralRegressor((64,), dropout=0.2, learning_rate_init=1e-2, max_iter=200,
                               random_state=0), X, y)
    pred = mc_dropout_predict(est, Xt, n_samples=200, random_state=0)
    frame = pred.summary_frame(0.05)
    cover = np.mean((yt >= frame.obs_ci_lower) & (yt <= frame.obs_ci_upper))
    assert abs(cover - 0.95) < 0.04, cover
    # without the model variance the band under-covers, whichever centre it uses
    noise_only = np.mean(np.abs(yt - pred.mean) <= 1.96 * np.sqrt(pred.noise_variance))
    plain = np.mean(np.abs(yt - est.predict(Xt)) <= 1.96 / np.sqrt(pred.tau))
    assert noise_only < 0.85 and plain < 0.85, (noise_only, plain)


def test_mc_dropout_classifier_moments(linear_data):
    X, y = linear_data
    clf = _fit(NeuralClassifier((8,), dropout=0.3, max_iter=20, random_state=0), X, y > 1)
    pred = mc_dropout_predict(clf, X[:5], n_samples=50, random_state=0)
    # against the draws of the same seed: the mean, the variance over masks (divisor T), and
    # the noise part, the mean over draws of p (1 - p)
    draws = clf.sample_predictions(X[:5], n_samples=50, random_state=0)
    assert draws.shape == (50, 5, 2) and np.ptp(draws, axis=0).max() > 0.01
    np.testing.assert_allclose(pred.mean, draws.mean(0), rtol=1e-12)
    np.testing.assert_allclose(pred.model_variance, draws.var(0), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(pred.noise_variance, np.mean(draws * (1 - draws), axis=0),
                               rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(pred.mean.sum(1), 1.0)
    # the predictive Bernoulli: its variance is mean (1 - mean) = noise + model
    np.testing.assert_allclose(pred.variance, pred.mean * (1 - pred.mean))
    assert pred.tau is None and pred.n_samples == 50


def test_mc_dropout_poisson_moments(linear_data):
    X, _ = linear_data
    rng = np.random.default_rng(3)
    counts = rng.poisson(np.exp(0.5 + 0.4 * X[:, 0] - 0.3 * X[:, 1]))
    est = _fit(NeuralRegressor((8,), family="poisson", dropout=0.3, max_iter=20,
                               random_state=0), X, counts)
    pred = mc_dropout_predict(est, X[:7], n_samples=60, random_state=2)
    draws = est.sample_predictions(X[:7], n_samples=60, random_state=2)
    assert draws.shape == (60, 7) and np.all(draws > 0) and np.ptp(draws, axis=0).min() > 0
    # a mixture of Poissons over the masks: mean E mu_t, noise E mu_t (Poisson variance = mean),
    # model Var mu_t, predictive variance the sum (law of total variance)
    np.testing.assert_allclose(pred.mean, draws.mean(0), rtol=1e-12)
    np.testing.assert_allclose(pred.model_variance, draws.var(0), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(pred.noise_variance, draws.mean(0), rtol=1e-12)
    np.testing.assert_allclose(pred.variance, draws.mean(0) + draws.var(0), rtol=1e-9)
    assert pred.tau is None


@pytest.mark.slow
def test_mc_dropout_poisson_interval_coverage_on_held_out_data():
    # Poisson counts of mean exp(4 + 0.8 x1 - 0.5 x2) (about 20 to 200), 40 training rows,
    # 2,000 fresh points from the same range: the Poisson noise is then small relative to the
    # uncertainty of a 40-row fit, and the model variance is 40-60% of the noise variance.
    # Measured over 4 seeds: the normal band mean +- 1.96 sqrt(mean + model variance) covers
    # 0.948-0.966 and its squared standardized errors average 0.87-1.06; the noise-only band
    # mean +- 1.96 sqrt(mean) covers 0.904-0.936, with mean squared standardized errors
    # 1.17-1.39.
    rng = np.random.default_rng(0)

    def draw(n):
        X = rng.uniform(-1, 1, size=(n, 2))
        return X, rng.poisson(np.exp(4 + 0.8 * X[:, 0] - 0.5 * X[:, 1]))

    X, y = draw(40)
    Xt, yt = draw(2000)
    est = _fit(NeuralRegressor((64,), family="poisson", dropout=0.2, learning_rate_init=1e-2,
                               max_iter=200, random_state=0), X, y)
    pred = mc_dropout_predict(est, Xt, n_samples=200, random_state=0)
    err2 = (yt - pred.mean) ** 2
    cover = np.mean(err2 <= 1.96**2 * pred.variance)
    assert abs(cover - 0.95) < 0.025, cover
    assert 0.8 < np.mean(err2 / pred.variance) < 1.15
    noise_only = np.mean(err2 <= 1.96**2 * pred.noise_variance)
    assert noise_only < 0.945 and np.mean(err2 / pred.noise_variance) > 1.1, noise_only


# ----------------------------------------------------------------------------- adaptive ridge
def test_adaptive_ridge_closed_form_minimises_the_exact_expected_loss():
    # enumerate all 2^d masks per row: the expected dropout loss exactly, no Monte Carlo
    rng = np.random.default_rng(1)
    n, d, p = 40, 4, 0.3
    X = rng.normal(size=(n, d)) + 0.5  # not centred: the intercept is handled jointly
    y = X @ [1.0, -1.0, 2.0, 0.5] + rng.normal(size=n)
    sw = rng.uniform(0.5, 2.0, n)
    masks = np.array(list(itertools.product([0, 1], repeat=d)), dtype=float)
    prob = np.prod(np.where(masks == 1, 1 - p, p), axis=1)

    def expected_loss_gradient(theta):
        b, w = theta[0], theta[1:]
        g = np.zeros(d + 1)
        for m, pm in zip(masks, prob, strict=False):
            Xm = X * m / (1 - p)
            r = y - b - Xm @ w
            g += pm * np.concatenate([[-(sw * r).sum()], -(Xm.T @ (sw * r))])
        return g / sw.sum()

    coef, intercept = adaptive_ridge(X, y, p, sample_weight=sw)
    grad = expected_loss_gradient(np.concatenate([[intercept], coef]))
    assert np.abs(grad).max() < 1e-10 * np.abs(y).max()
    # and the centred form of the issue: w* = (X'X + p/(1-p) diag(X'X))^-1 X'y
    Xc = X - X.mean(0)
    G = Xc.T @ Xc
    w_star = np.linalg.solve(G + p / (1 - p) * np.diag(np.diag(G)), Xc.T @ (y - y.mean()))
    np.testing.assert_allclose(adaptive_ridge(Xc, y, p)[0], w_star, rtol=1e-10)
    with pytest.raises(ValueError, match="dropout rate"):
        adaptive_ridge(X, y, 1.0)


# ----------------------------------------------------------------------------- quadratic GLM
def _mc_dropout_penalty(X, w, b, p, family, T, rng):
    """Monte-Carlo E_masks[A(b + x~'w)] - A(b + x'w), averaged over rows, and its MC s.e."""
    A = {"bernoulli": lambda e: np.logaddexp(0.0, e), "gaussian": lambda e: 0.5 * e**2}[family]
    base = A(X @ w + b)
    vals = np.array([np.mean(A((X * (rng.uniform(size=X.shape) >= p) / (1 - p)) @ w + b) - base)
                     for _ in range(T)])
    return vals.mean(), vals.std() / np.sqrt(T)


def test_quadratic_dropout_penalty_is_exact_for_gaussian():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 5))
    w = rng.normal(size=5)
    q = quadratic_dropout_penalty(X, w, 0.7, 0.4, family="gaussian")
    mc, se = _mc_dropout_penalty(X, w, 0.7, 0.4, "gaussian", 2000, rng)
    assert abs(q - mc) < 4 * se
    np.testing.assert_allclose(q, 0.5 * dropout_prediction_variance(X, w, 0.4).mean())


@pytest.mark.parametrize("shrink, rtol", [(1.0, 0.15), (0.1, 0.02)])
def test_quadratic_dropout_penalty_approximates_mc_dropout_on_logistic(shrink, rtol):
    # Second-order expansion of the cumulant: error O(|x_j w_j|^3) against O(|x_j w_j|^2),
    # so it shrinks with the coefficients (measured: -9% at p=0.1 with |w| ~ 1, about -1% at
    # |w| ~ 0.1); tolerance = rtol * value + 4 MC standard errors
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    w = shrink * np.array([1.0, -0.8, 0.5, 0.0, 0.3])
    q = quadratic_dropout_penalty(X, w, 0.2, 0.1, family="bernoulli")
    mc, se = _mc_dropout_penalty(X, w, 0.2, 0.1, "bernoulli", 3000, rng)
    assert abs(q - mc) < rtol * mc + 4 * se, (q, mc, se)


@pytest.mark.slow
def test_quadratic_dropout_glm_matches_mc_dropout_logistic_fit():
    # the minimiser of the logistic loss averaged over 150 fixed dropout masks (sample average
    # approximation of dropout training) against the quadratic surrogate's minimiser
    import torch
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    n, d, p = 300, 5, 0.2
    X = rng.normal(size=(n, d))
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(X @ [1.0, -0.8, 0.5, 0.0, 0.3] + 0.2))))
    y = y.astype(float)
    T = 150
    XX = torch.tensor(np.concatenate([X * (rng.uniform(size=X.shape) >= p) / (1 - p)
                                      for _ in range(T)]))
    yy = torch.tensor(np.tile(y, T))

    def f(theta):
        t = torch.tensor(theta, requires_grad=True)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(XX @ t[1:] + t[0], yy)
        loss.backward()
        return loss.item(), t.grad.numpy()

    saa = minimize(f, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-10, "ftol": 0.0}).x[1:]
    coef, _ = quadratic_dropout_glm(X, y, p)
    mle = quadratic_dropout_glm(X, y, 0.0)[0]
    err = np.abs(coef - saa).max() / np.abs(saa).max()
    assert err < 0.1, err  # measured 0.065 (approximation + mask sampling)
    # and the shrinkage is real: far larger than the approximation error
    assert np.abs(mle - saa).max() / np.abs(saa).max() > 3 * err


# ----------------------------------------------------------------------------- the call
@pytest.fixture(scope="module")
def diabetes_standardized():
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.slow
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_input_dropout_net_converges_to_adaptive_ridge(diabetes_standardized, p):
    # the exact call of issue 4; default Adam, iterate averaging under dropout (training.py).
    # Measured: 0.9% (p=0.2) and 1.3% (p=0.5); tolerance 2% of the largest |w*|
    Xs, y = diabetes_standardized
    Xc = Xs - Xs.mean(0)
    G = Xc.T @ Xc
    w_star = np.linalg.solve(G + p / (1 - p) * np.diag(np.diag(G)), Xc.T @ y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = NeuralRegressor(hidden_layer_sizes=(), input_dropout=p, max_iter=2000,
                              random_state=0).fit(Xs, y)
    err = np.abs(est.coef_ - w_star).max() / np.abs(w_star).max()
    assert err < 0.02, err
    # and it is not the unpenalized fit: the dropout penalty moves the solution by far more
    ols = np.linalg.lstsq(Xc, y - y.mean(), rcond=None)[0]
    assert np.abs(ols - w_star).max() / np.abs(w_star).max() > 10 * 0.02
