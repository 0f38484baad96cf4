"""Covariate effects, marginal effects and predictions: statsmodels for GLMs, autograd and
finite differences for nets."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm

from neurostat import NeuralClassifier, NeuralRegressor

RESULTS = Path(__file__).parents[1] / "results"
_spec = importlib.util.spec_from_file_location(
    "make_inference_reference", RESULTS / "make_inference_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)
FROZEN = json.loads((RESULTS / "inference_reference.json").read_text())


def _glm(name):
    X, y, kind = ref.load_case(name)
    if kind in ("logit", "mnlogit"):
        est = NeuralClassifier((), solver="lbfgs")
    else:
        est = NeuralRegressor((), solver="lbfgs",
                              family="poisson" if kind == "poisson" else "gaussian")
    return est.fit(X, y), X, y


@pytest.mark.parametrize("name", ["spector_logit", "breast_cancer_logit", "anes96_mnlogit"])
def test_margeff_equals_statsmodels(name):
    # average marginal effects (at="overall") and delta-method SEs: relative 1e-4 / 1e-3
    est, X, y = _glm(name)
    Xc = sm.add_constant(X)
    model = sm.Logit if name.endswith("logit") and "mn" not in name else sm.MNLogit
    sm_res = model(y, Xc).fit(disp=0, method="newton", tol=1e-12)
    expected = sm_res.get_margeff(at="overall").summary_frame()
    got = est.inference().get_margeff().summary_frame()
    assert list(got.columns) == list(expected.columns)
    np.testing.assert_allclose(got["dy/dx"], expected["dy/dx"], rtol=1e-4)
    np.testing.assert_allclose(got["Std. Err."], expected["Std. Err."], rtol=1e-3)
    np.testing.assert_allclose(got["Pr(>|z|)"], expected["Pr(>|z|)"], rtol=1e-3, atol=1e-12)
    frozen = FROZEN["margeff"][name]
    np.testing.assert_allclose(got["dy/dx"], frozen["dy/dx"], rtol=1e-4)
    np.testing.assert_allclose(got["Std. Err."], frozen["Std. Err."], rtol=1e-3)
    # on the link scale the marginal effects are the coefficients
    link = est.inference().get_margeff(scale="link").summary_frame()
    params = est.inference().params
    params = params[params.index.get_level_values(-1) != "intercept"]
    np.testing.assert_allclose(link["dy/dx"].values, params.values, rtol=1e-10)


@pytest.mark.parametrize("name,family", [("spector_logit", sm.families.Binomial()),
                                         ("randhie_poisson", sm.families.Poisson()),
                                         ("diabetes_poisson", sm.families.Poisson())])
def test_prediction_equals_statsmodels_glm(name, family):
    est, X, y = _glm(name)
    Xc = sm.add_constant(X)
    g = sm.GLM(y, Xc, family=family).fit(tol=1e-12)
    expected = g.get_prediction(Xc.iloc[:25]).summary_frame(alpha=0.1)
    got = est.inference().get_prediction(X.iloc[:25]).summary_frame(alpha=0.1)
    assert list(got.columns) == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
    np.testing.assert_allclose(got.values, expected[got.columns].values, rtol=1e-4)
    frozen = FROZEN["prediction"][name]
    np.testing.assert_allclose(got.values, np.column_stack([frozen[c] for c in got.columns]),
                               rtol=1e-4)


def test_prediction_equals_statsmodels_ols():
    est, X, y = _glm("stackloss_ols")
    expected = sm.OLS(y, sm.add_constant(X)).fit().get_prediction(
        sm.add_constant(X)).summary_frame(alpha=0.05)
    got = est.inference().get_prediction().summary_frame(alpha=0.05)
    np.testing.assert_allclose(got.values, expected[got.columns].values, rtol=1e-5)


def _net_data(n=150, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (np.tanh(X[:, 0]) * 2 - X[:, 1] + rng.logistic(size=n) * 0.7 > 0).astype(int)
    return X, y


def test_net_effects_are_average_derivatives_with_delta_se():
    X, y = _net_data()
    est = NeuralClassifier((4,), activation="tanh", solver="lbfgs", alpha=1e-2,
                           random_state=0).fit(X, y)
    res = est.inference(effects="delta")
    # effect_j = mean_i d eta / d x_ij by central finite differences (1e-6)
    h = 1e-5
    for j in range(3):
        e = np.zeros(3)
        e[j] = h
        fd = (est.decision_function(X + e) - est.decision_function(X - e)).mean() / (2 * h)
        np.testing.assert_allclose(res.params.iloc[j + 1], fd, rtol=1e-6)
    intercept = est.decision_function(X).mean() - res.params.values[1:] @ X.mean(0)
    np.testing.assert_allclose(res.params.iloc[0], intercept, rtol=1e-10)
    # delta method: D cov(theta) D' with D by finite differences of the effect in theta
    from neurostat.inference.effects import average_derivatives
    lik = res.likelihood
    f0, D = average_derivatives(lik, lik.theta, X)
    k = 5
    step = np.zeros(lik.n_params)
    step[k] = 1e-6
    import torch
    fp, _ = average_derivatives(lik, lik.theta + torch.as_tensor(step), X)
    fm, _ = average_derivatives(lik, lik.theta - torch.as_tensor(step), X)
    np.testing.assert_allclose(D[:, k], (fp - fm) / 2e-6, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(res.cov_params().values, D @ res.cov_theta @ D.T, rtol=1e-10)
    assert "Wald tests per input" in str(res.summary())


def test_net_prediction_delta_method():
    X, y = _net_data()
    est = NeuralClassifier((4,), activation="tanh", solver="lbfgs", alpha=1e-2,
                           random_state=0).fit(X, y)
    res = est.inference()
    pred = res.get_prediction(X[:5]).summary_frame()
    np.testing.assert_allclose(pred["mean"], est.predict_proba(X[:5])[:, 1], rtol=1e-10)
    lo, hi = pred["mean_ci_lower"].values, pred["mean_ci_upper"].values
    assert np.all((lo < pred["mean"]) & (pred["mean"] < hi) & (lo > 0) & (hi < 1))


def test_categorical_prediction_rows_sum_to_one():
    X, y, _ = ref.load_case("anes96_mnlogit")
    est = NeuralClassifier((), solver="lbfgs").fit(X, y)
    frame = est.inference().get_prediction(X.iloc[:4]).summary_frame()
    assert frame.index.names == ["row", "class"]
    np.testing.assert_allclose(frame["mean"].groupby(level="row").sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(frame["mean"].values, est.predict_proba(X.iloc[:4]).ravel())


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus"])
def test_closed_form_effects_match_autograd(activation):
    # one hidden layer: closed-form effects and Jacobian == nested autograd, 1e-10
    from neurostat.inference.effects import average_derivatives
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = rng.integers(0, 3, 80)
    est = NeuralClassifier((4,), activation=activation, solver="lbfgs", max_iter=20,
                           random_state=0)
    with pytest.warns(Warning):
        est.fit(X, y)
    from neurostat.inference.likelihood import Likelihood
    lik = Likelihood(est.module_, est.family_, X, est._encode_target(y))
    f0, D0 = average_derivatives(lik, lik.theta, X)  # closed form
    f1, D1 = average_derivatives(lik, lik.theta, X, transform=lambda e: e)  # autograd
    np.testing.assert_allclose(f0, f1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(D0, D1, rtol=1e-10, atol=1e-12)


def test_multi_target_gaussian_intervals_are_not_clipped():
    """Two gaussian targets (means near +5 and -7, noise sd 1 and 2): each row's prediction
    equals the OLS one of its column (statsmodels, same data; each output has its own
    dispersion), not an interval clipped to [0, 1] as class probabilities are. The widths
    differ by 1e-4 only through the t quantile's df (the joint fit's n m - p against
    OLS's n - p per column)."""
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    Y = np.column_stack([5 + X[:, 0] + rng.normal(size=200),
                         -7 + X[:, 1] + 2 * rng.normal(size=200)])
    frame = NeuralRegressor((), solver="lbfgs").fit(X, Y).inference().get_prediction(
        X[:3]).summary_frame()
    for j in range(2):
        ref = sm.OLS(Y[:, j], sm.add_constant(X)).fit().get_prediction(
            sm.add_constant(X)[:3]).summary_frame()
        got = frame.xs(j, level="class")
        np.testing.assert_allclose(got["mean"], ref["mean"], rtol=1e-8)
        np.testing.assert_allclose(got["mean_se"], ref["mean_se"], rtol=1e-7)
        np.testing.assert_allclose(got.mean_ci_lower, ref.mean_ci_lower, rtol=1e-3)
        np.testing.assert_allclose(got.mean_ci_upper, ref.mean_ci_upper, rtol=1e-3)
