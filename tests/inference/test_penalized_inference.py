"""Inference for penalized fits: effective degrees of freedom and sandwich standard errors.

Closed forms (X centred by the weighted mean, W = diag(sample weights normalized to mean 1),
G = X'WX, A = G + n alpha I):

* ridge regression: df = trace of the hat matrix = 1 + tr(W^1/2 X A^-1 X' W^1/2) (with the
  unpenalized intercept), cov(b) = sigma^2 A^-1 G A^-1, sigma^2 = RSS_W / (n - df);
* ridge logistic regression: with Z = [1, X], F = Z'VZ (V the Bernoulli variances) and
  A = F + n alpha diag(0, 1, ..., 1): df = tr(F A^-1), cov = A^-1 F A^-1;
* lasso: the standard errors are those of the unpenalized fit on the selected inputs
  (sigma^2 (Z_S'Z_S)^-1), df = number of nonzero coefficients (Zou, Hastie & Tibshirani
  2007). They are conditional on the selected set and ignore the shrinkage bias and the
  selection itself: they are NOT valid post-selection standard errors, and a zero coefficient
  gets none.

Tolerance: relative 1e-6 (the lbfgs fit converges to about 1e-9).
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.preprocessing import StandardScaler

from neurostat import NeuralClassifier, NeuralRegressor

RTOL = 1e-6


def _synthetic():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 5)) @ rng.normal(size=(5, 5)) + 1.0
    return X, X @ rng.normal(size=5) + rng.normal(size=150)


DATA = {"diabetes": load_diabetes(return_X_y=True), "synthetic": _synthetic()}


def _inference(est):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.inference()


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha", [1e-3, 0.05, 1.0])
def test_ridge_effective_df_and_standard_errors_are_closed_forms(data, weighted, alpha):
    X, y = DATA[data]
    n = len(y)
    sw = np.random.default_rng(1).uniform(0.2, 3.0, n) if weighted else None
    est = NeuralRegressor((), solver="lbfgs", alpha=alpha).fit(X, y, sample_weight=sw)
    res = _inference(est)
    # frequency weights: N = sum(w) observations; the objective sum_i w_i l_i / N + penalty
    # is, on the log-likelihood's sum scale, a ridge of N * alpha
    w = np.ones(n) if sw is None else sw
    N = w.sum()
    Xc = X - np.average(X, axis=0, weights=w)
    G = Xc.T @ (w[:, None] * Xc)
    Ainv = np.linalg.inv(G + N * alpha * np.eye(X.shape[1]))
    S = np.sqrt(w)[:, None] * Xc
    df = 1.0 + np.trace(S @ Ainv @ S.T)  # trace of the hat matrix
    sigma2 = np.sum(w * (y - est.predict(X)) ** 2) / (N - df)
    cov = sigma2 * Ainv @ G @ Ainv
    np.testing.assert_allclose(res.df_model, df - 1.0, rtol=RTOL)
    np.testing.assert_allclose(res.df_resid, N - df, rtol=RTOL)
    np.testing.assert_allclose(res.bse.values[1:], np.sqrt(np.diag(cov)), rtol=RTOL)
    np.testing.assert_allclose(res.cov_params().values[1:, 1:], cov, rtol=1e-5,
                               atol=1e-9 * np.abs(cov).max())
    assert res.df_model < X.shape[1]  # shrinkage spends fewer than p degrees of freedom


def test_ridge_df_decreases_from_p_to_zero():
    X, y = DATA["diabetes"]
    dfs = [_inference(NeuralRegressor((), solver="lbfgs", alpha=a).fit(X, y)).df_model
           for a in (0.0, 1e-4, 1e-2, 1.0, 100.0)]
    assert dfs[0] == pytest.approx(X.shape[1], rel=1e-9)
    assert all(a > b for a, b in zip(dfs, dfs[1:], strict=False))
    assert dfs[-1] < 1e-3


@pytest.mark.parametrize("alpha", [1e-3, 0.03])
def test_ridge_logistic_df_and_standard_errors_are_closed_forms(alpha):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:, :8]
    n = len(y)
    est = NeuralClassifier((), solver="lbfgs", alpha=alpha).fit(X, y)
    res = _inference(est)
    Z = np.column_stack([np.ones(n), X])
    mu = est.predict_proba(X)[:, 1]
    F = Z.T @ ((mu * (1 - mu))[:, None] * Z)
    Ainv = np.linalg.inv(F + n * alpha * np.diag([0.0] + [1.0] * X.shape[1]))
    np.testing.assert_allclose(res.df_model, np.trace(F @ Ainv) - 1, rtol=RTOL)
    np.testing.assert_allclose(res.bse.values, np.sqrt(np.diag(Ainv @ F @ Ainv)), rtol=RTOL)


@pytest.mark.parametrize("alpha", [0.1, 0.3, 1.0])
def test_lasso_standard_errors_are_those_of_the_selected_model(alpha):
    X, y = DATA["diabetes"]
    n = len(y)
    est = NeuralRegressor((), solver="lbfgs", alpha=alpha, l1_ratio=1.0).fit(X, y)
    res = _inference(est)
    sel = est.coef_ != 0
    assert 0 < sel.sum() < X.shape[1]
    np.testing.assert_allclose(res.df_model, sel.sum(), rtol=1e-9)  # Zou et al. (2007)
    Z = np.column_stack([np.ones(n), X[:, sel]])
    sigma2 = np.sum((y - est.predict(X)) ** 2) / (n - sel.sum() - 1)
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(Z.T @ Z)))
    np.testing.assert_allclose(res.bse.values[1:][sel], se[1:], rtol=RTOL)
    # a coefficient set to zero is treated as fixed: no standard error
    assert np.all(np.isnan(res.bse.values[1:][~sel]))


def test_penalized_net_effective_df_shrinks_with_alpha():
    # no closed form with a hidden layer; the effective df tr(I A^-1) must fall with alpha
    # from the number of identified parameters towards the intercept alone
    X, y = DATA["synthetic"]
    Xs = StandardScaler().fit_transform(X)
    ys = (y - y.mean()) / y.std()
    dfs = []
    for a in (0.05, 0.3, 2.0):
        est = NeuralRegressor((3,), activation="tanh", solver="lbfgs", alpha=a, max_iter=500,
                              random_state=0).fit(Xs, ys)
        dfs.append(_inference(est).df_model)
    n_params = 5 * 3 + 3 + 3
    assert n_params > dfs[0] > dfs[1] > dfs[2] > 0
