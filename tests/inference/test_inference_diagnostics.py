"""diagnostics(): stationarity, Hessian conditioning, residuals (= statsmodels GLM), calibration."""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as sps

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


def _deciles_of_risk(p, y, g=10):
    """Hosmer & Lemeshow's (2013, sec. 5.2.2) "deciles of risk", written out here: rows sorted
    by fitted probability (ties in row order) and cut into g groups of n // g or n // g + 1
    rows, the larger groups first; per group its size, mean fitted probability, observed
    frequency; C = sum_k (O_k - E_k)^2 / (E_k (1 - E_k / n_k)), E_k the sum of the fitted
    probabilities, O_k of the outcomes, and its chi-square(g - 2) p-value."""
    order = np.argsort(p, kind="stable")
    q, r = divmod(len(p), g)
    sizes = np.array([q + 1] * r + [q] * (g - r))
    group = np.repeat(np.arange(g), sizes)
    n_k = np.bincount(group, minlength=g)
    e_k = np.bincount(group, weights=p[order], minlength=g)
    o_k = np.bincount(group, weights=y[order], minlength=g)
    stat = np.sum((o_k - e_k) ** 2 / (e_k * (1 - e_k / n_k)))
    return n_k, e_k / n_k, o_k / n_k, stat, sps.chi2.sf(stat, g - 2)


def test_calibration_table_and_hosmer_lemeshow():
    # Grouping conventions differ: statsmodels has no Hosmer-Lemeshow test; R's
    # ResourceSelection::hoslem.test cuts at the (type 7) quantiles of the fitted values, which
    # ties and an n not divisible by g make unequal. neurostat documents deciles of risk: equal
    # counts in order of the fitted probability, the first n mod g groups one row larger
    # (ties in row order). The reference is built here from the fitted probabilities of
    # predict_proba, independently of the diagnostics' code.
    X, y, _ = ref.load_case("breast_cancer_logit")
    est = NeuralClassifier((), solver="lbfgs").fit(X, y)
    d = est.inference().diagnostics()
    p = est.predict_proba(X)[:, 1]
    n_k, pbar, obs, stat, pval = _deciles_of_risk(p, y.astype(float))
    table = d.calibration
    assert len(y) == 569 and list(table.index) == list(range(1, 11))
    np.testing.assert_array_equal(table["n"], n_k)  # 9 groups of 57, then one of 56
    np.testing.assert_allclose(table["mean_predicted"], pbar, rtol=1e-10)
    np.testing.assert_allclose(table["observed"], obs, rtol=1e-12)
    order = np.sort(p)
    ends = np.cumsum(n_k)
    np.testing.assert_allclose(table["p_min"], order[ends - n_k], rtol=1e-12)
    np.testing.assert_allclose(table["p_max"], order[ends - 1], rtol=1e-12)
    np.testing.assert_allclose(d.hosmer_lemeshow, (stat, pval), rtol=1e-9)
    assert stat == pytest.approx(2.414, abs=1e-3) and "Hosmer-Lemeshow" in str(d)
    # with n divisible by 10 and no ties the two conventions give the same groups: the first
    # 560 rows, against groups cut at the fitted values' deciles as hoslem.test cuts them
    X560, y560 = X.iloc[:560], y[:560]
    est = NeuralClassifier((), solver="lbfgs").fit(X560, y560)
    p = est.predict_proba(X560)[:, 1]
    assert np.unique(p).size == 560
    breaks = np.quantile(p, np.linspace(0, 1, 11))
    group = np.searchsorted(breaks[1:-1], p, side="left")  # (b_k, b_k+1], lowest included
    n_k = np.bincount(group, minlength=10)
    e_k = np.bincount(group, weights=p, minlength=10)
    o_k = np.bincount(group, weights=y560.astype(float), minlength=10)
    stat = np.sum((o_k - e_k) ** 2 / e_k + (o_k - e_k) ** 2 / (n_k - e_k))  # over y = 1 and 0
    hl = est.inference().diagnostics().hosmer_lemeshow
    np.testing.assert_allclose(hl, (stat, sps.chi2.sf(stat, 8)), rtol=1e-9)


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
