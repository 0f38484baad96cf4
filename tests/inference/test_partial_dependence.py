"""Partial dependence (``neurostat.inference.predictions.partial_dependence``, drawn by
``EffectDisplay``): its curves against scikit-learn's brute-force ``partial_dependence`` on the
same fitted estimators, its delta-method standard errors against statsmodels' covariance with
the closed-form gradient of a GLM's curve, and frequency weights as repeated rows."""

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.datasets import load_iris
from sklearn.inspection import partial_dependence as sk_partial_dependence

from neurostat import NeuralClassifier, NeuralRegressor
from neurostat.inference.predictions import partial_dependence

GRID = np.linspace(-1.5, 1.5, 7)


def _binary(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    eta = 0.5 + X[:, 0] - np.tanh(2 * X[:, 1])
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return X, y, rng.integers(1, 4, n).astype(float)


def _sklearn(est, X, j, method, w=None):
    out = sk_partial_dependence(est, X, [j], custom_values={j: GRID}, method="brute",
                                response_method=method, kind="average", sample_weight=w)
    return out["average"]  # (n_outputs, grid)


@pytest.mark.parametrize("weighted", [False, True])
def test_net_curves_equal_scikit_learn_on_both_scales(weighted):
    """A (6,) tanh classifier: the response-scale curve is scikit-learn's predict_proba partial
    dependence and the link-scale one its decision_function partial dependence, weighted by
    the fit's frequency weights when it has them (before the fix the weighted curve was the
    unweighted mean over rows, 4.6e-3 away)."""
    X, y, w = _binary()
    sw = w if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = NeuralClassifier((6,), activation="tanh", solver="lbfgs", alpha=1e-2,
                               max_iter=300, random_state=0).fit(X, y, sample_weight=sw)
        res = net.inference(effects="delta")
    for scale, method in (("response", "predict_proba"), ("link", "decision_function")):
        values, se = partial_dependence(res, 1, GRID, scale=scale)
        np.testing.assert_allclose(values[:, 0], _sklearn(net, X, 1, method, sw)[0],
                                   rtol=1e-12, atol=1e-14)
        assert np.all(se > 0) and np.all(np.isfinite(se))


def test_multiclass_and_poisson_curves_equal_scikit_learn():
    """Every class's probability curve of a 3-class net (iris) and a poisson net's mean curve
    equal scikit-learn's."""
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = NeuralClassifier((4,), activation="tanh", solver="lbfgs", alpha=1e-1,
                               max_iter=300, random_state=0).fit(X, y)
        values, _ = partial_dependence(net.inference(effects="delta"), 2, GRID)
    ref = _sklearn(net, X, 2, "predict_proba")
    assert values.shape == (len(GRID), 3)
    np.testing.assert_allclose(values.T, ref, rtol=1e-10, atol=1e-13)
    rng = np.random.default_rng(1)
    Xp = rng.normal(size=(250, 2))
    yp = rng.poisson(np.exp(0.3 + 0.5 * np.sin(2 * Xp[:, 0]))).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = NeuralRegressor((5,), family="poisson", activation="tanh", solver="lbfgs",
                              alpha=1e-2, max_iter=300, random_state=0).fit(Xp, yp)
        values, _ = partial_dependence(reg.inference(effects="delta"), 0, GRID)
    np.testing.assert_allclose(values[:, 0], _sklearn(reg, Xp, 0, "auto")[0], rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_glm_curve_standard_errors_equal_statsmodels_closed_form(weighted):
    """Logistic regression (no hidden layer): the link-scale curve is
    ``b0 + b' xbar_(j=v)``, linear in the coefficients, and the response-scale one
    ``mean_i mu_i(v)`` with gradient ``mean_i mu_i (1 - mu_i) z_i(v)``; their SEs are
    ``sqrt(g' V g)`` with V statsmodels' covariance (GLM with freq_weights when weighted).
    A standard error scaled by any factor, or a gradient averaged without the weights, fails."""
    X, y, w = _binary(seed=2)
    sw = w if weighted else None
    res = NeuralClassifier((), solver="lbfgs").fit(X, y, sample_weight=sw).inference()
    Z = sm.add_constant(X)
    ref = sm.GLM(y, Z, family=sm.families.Binomial(), freq_weights=sw).fit(tol=1e-12)
    b, V = np.asarray(ref.params), np.asarray(ref.cov_params())
    ww = np.ones(len(y)) if sw is None else w
    for scale in ("link", "response"):
        values, se = partial_dependence(res, 0, GRID, scale=scale)
        for g, v in enumerate(GRID):
            Zv = Z.copy()
            Zv[:, 1] = v
            eta = Zv @ b
            if scale == "link":
                curve, grad = ww @ eta / ww.sum(), ww @ Zv / ww.sum()
            else:
                mu = 1 / (1 + np.exp(-eta))
                curve = ww @ mu / ww.sum()
                grad = (ww * mu * (1 - mu)) @ Zv / ww.sum()
            assert values[g, 0] == pytest.approx(curve, rel=1e-9)
            assert se[g, 0] == pytest.approx(np.sqrt(grad @ V @ grad), rel=1e-7)


def test_integer_weights_equal_repeated_rows():
    """The curve and its SEs of a weighted GLM fit equal those of the fit on repeated rows."""
    X, y, w = _binary(seed=3)
    reps = w.astype(int)
    fw = NeuralClassifier((), solver="lbfgs").fit(X, y, sample_weight=w).inference()
    fr = NeuralClassifier((), solver="lbfgs").fit(np.repeat(X, reps, 0),
                                                  np.repeat(y, reps)).inference()
    vw, sw = partial_dependence(fw, 1, GRID)
    vr, sr = partial_dependence(fr, 1, GRID, max_rows=10**6)
    np.testing.assert_allclose(vw, vr, rtol=1e-9)
    np.testing.assert_allclose(sw, sr, rtol=1e-7)
