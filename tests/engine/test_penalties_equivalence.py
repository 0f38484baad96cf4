"""Weight decay is ridge, L1 is the lasso: a net without hidden layer fitted by "lbfgs" gives
scikit-learn's penalized linear models.

Objective (README; :mod:`neurostat.engine.penalties`):
``sum_i w_i nll_i / sum_i w_i + alpha (l1_ratio ||b||_1 + 0.5 (1 - l1_ratio) ||b||^2)``.
With the gaussian nll ``0.5 (y - mu)^2`` this is scikit-learn's ``ElasticNet(alpha, l1_ratio)``
objective (weights rescaled to sum to n), hence ``Lasso(alpha)`` for ``l1_ratio=1`` and
``Ridge(alpha * sum_i w_i)`` for ``l1_ratio=0`` (Ridge does not rescale its weights); for the
bernoulli nll it is ``LogisticRegression(C=1 / (alpha * sum_i w_i))``.
The tolerance is the issue's: relative 1e-4 of the largest coefficient, exact zeros in the same
places. References run with tight tolerances (the code that makes them is in each test).
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from neurostat import NeuralClassifier, NeuralRegressor

RTOL = 1e-4


def _synthetic():
    # correlated inputs on very different scales and a shifted mean (nothing standardized)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6)) * [0.1, 1, 10, 0.5, 3, 1] + 3
    y = X @ rng.normal(size=6) + 2.0 * rng.normal(size=200)
    return X, y


def _datasets():
    return {"diabetes": load_diabetes(return_X_y=True), "synthetic": _synthetic()}


DATA = _datasets()


def _weights(n, kind):
    return None if kind == "none" else np.random.default_rng(1).uniform(0.2, 3.0, n)


def assert_same_fit(ours, ref):
    scale = max(np.abs(ref.coef_).max(), 1e-12)
    err = np.abs(np.ravel(ours.coef_) - np.ravel(ref.coef_)).max() / scale
    assert err < RTOL, f"relative coefficient error {err:.2e}"
    np.testing.assert_array_equal(np.ravel(ours.coef_) == 0, np.ravel(ref.coef_) == 0)
    ib = np.abs(np.ravel(ours.intercept_) - np.ravel(ref.intercept_)).max()
    assert ib < RTOL * max(1.0, np.abs(ref.intercept_).max())


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("weights", ["none", "random"])
@pytest.mark.parametrize("alpha", [0.02, 0.5, 5.0])
def test_l1_is_lasso(data, weights, alpha):
    X, y = DATA[data]
    sw = _weights(len(y), weights)
    ours = NeuralRegressor((), solver="lbfgs", alpha=alpha, l1_ratio=1.0).fit(X, y, sw)
    ref = Lasso(alpha=alpha, tol=1e-14, max_iter=1_000_000).fit(X, y, sample_weight=sw)
    assert_same_fit(ours, ref)


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("weights", ["none", "random"])
@pytest.mark.parametrize("alpha", [0.01, 0.3, 3.0])
def test_weight_decay_is_ridge(data, weights, alpha):
    X, y = DATA[data]
    sw = _weights(len(y), weights)
    ours = NeuralRegressor((), solver="lbfgs", alpha=alpha, l1_ratio=0.0).fit(X, y, sw)
    total = len(y) if sw is None else sw.sum()
    ref = Ridge(alpha=alpha * total, solver="cholesky").fit(X, y, sample_weight=sw)
    assert_same_fit(ours, ref)


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("l1_ratio", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("alpha", [0.05, 1.0])
def test_elastic_net_is_elasticnet(data, l1_ratio, alpha):
    X, y = DATA[data]
    sw = _weights(len(y), "random") if l1_ratio == 0.5 else None
    ours = NeuralRegressor((), solver="lbfgs", alpha=alpha, l1_ratio=l1_ratio).fit(X, y, sw)
    ref = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-14, max_iter=1_000_000)
    ref.fit(X, y, sample_weight=sw)
    assert_same_fit(ours, ref)


def test_lasso_zeros_are_exact_and_shared():
    # a strong penalty zeroes most coefficients; the pattern must be sklearn's, bit for bit
    X, y = DATA["diabetes"]
    for alpha in (0.3, 1.0, 3.0):
        ours = NeuralRegressor((), solver="lbfgs", alpha=alpha, l1_ratio=1.0).fit(X, y)
        ref = Lasso(alpha=alpha, tol=1e-14, max_iter=1_000_000).fit(X, y)
        assert (ref.coef_ == 0).sum() >= 5
        np.testing.assert_array_equal(ours.coef_ == 0, ref.coef_ == 0)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("weights", ["none", "random"])
@pytest.mark.parametrize("alpha", [1e-3, 1e-2, 0.1])
def test_weight_decay_is_logistic_ridge(cancer, weights, alpha):
    X, y = cancer
    sw = _weights(len(y), weights)
    ours = NeuralClassifier((), solver="lbfgs", alpha=alpha).fit(X, y, sample_weight=sw)
    total = len(y) if sw is None else sw.sum()
    ref = LogisticRegression(C=1.0 / (alpha * total), tol=1e-12, max_iter=100_000)
    ref.fit(X, y, sample_weight=sw)
    assert_same_fit(ours, ref)
