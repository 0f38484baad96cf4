"""diagnostics(): stationarity, Hessian conditioning, residuals (= statsmodels GLM), calibration."""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm

from neurostat import NeuralClassifier, NeuralRegressor
from neurostat.inference import InferenceWarning

RESULTS = Path(__file__).parents[1] / "results"
_spec = importlib.util.spec_from_file_location(
    "make_inference_reference", RESULTS / "make_inference_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


@pytest.mark.parametrize("name,family", [("spector_logit", sm.families.Binomial()),
                                         ("randhie_poisson", sm.families.Poisson()),
                                         ("stackloss_ols", sm.families.Gaussian())])
def test_residuals_equal_statsmodels_glm(name, family):
    X, y, kind = ref.load_case(name)
    if kind == "logit":
        est = NeuralClassifier((), solver="lbfgs")
    else:
        est = NeuralRegressor((), solver="lbfgs",
                              family="poisson" if kind == "poisson" else "gaussian")
    est.fit(X, y)
    d = est.inference().diagnostics()
    g = sm.GLM(y, sm.add_constant(X), family=family).fit(tol=1e-12)
    scale = np.max(np.abs(g.resid_deviance))
    np.testing.assert_allclose(d.resid_deviance, g.resid_deviance, atol=1e-5 * scale)
    np.testing.assert_allclose(d.resid_pearson, g.resid_pearson, atol=1e-5 * scale)
    assert d.stationary and d.gradient_norm < 1e-6 and d.converged
    # Hessian of the objective on the sum scale = X'WX for a GLM: its extreme eigenvalues
    Z = sm.add_constant(X).values
    mu = np.asarray(g.fittedvalues)
    wts = mu * (1 - mu) if kind == "logit" else (mu if kind == "poisson" else np.ones_like(mu))
    ev = np.linalg.eigvalsh((Z.T * wts) @ Z)
    np.testing.assert_allclose(d.hessian_min_eigenvalue, ev[0], rtol=1e-4)
    np.testing.assert_allclose(d.hessian_condition, ev[-1] / ev[0], rtol=1e-4)
    assert "stationary" in str(d)


def test_calibration_table_and_hosmer_lemeshow():
    X, y, _ = ref.load_case("breast_cancer_logit")
    res = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
    d = res.diagnostics()
    table = d.calibration
    assert table["n"].sum() == len(y) and len(table) == 10
    p = res.fittedvalues
    order = np.argsort(p, kind="stable")
    first = order[: table["n"].iloc[0]]
    np.testing.assert_allclose(table["observed"].iloc[0], y[first].mean())
    e, o, n = table.mean_predicted.values, table.observed.values, table.n.values
    np.testing.assert_allclose(d.hosmer_lemeshow[0], np.sum(n * (o - e) ** 2 / (e * (1 - e))))
    assert "Hosmer-Lemeshow" in str(d)


def test_non_stationary_fit_warns():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    y = X[:, 0] + rng.normal(size=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = NeuralRegressor((), solver="sgd", max_iter=1, learning_rate_init=1e-3,
                              random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = est.inference()
    with pytest.warns(InferenceWarning, match="stationary"):
        d = res.diagnostics()
    assert not d.stationary and not d.converged


def test_lasso_subgradient_is_stationary():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = X[:, 0] + 0.5 * rng.normal(size=200)
    est = NeuralRegressor((), solver="lbfgs", alpha=0.1, l1_ratio=1.0).fit(X, y)
    res = est.inference()
    assert np.sum(est.coef_ == 0) >= 2
    assert np.isnan(res.bse.values[1:][est.coef_ == 0]).all()  # zeros get no std err
    d = res.diagnostics()
    assert d.stationary, d.gradient_norm
