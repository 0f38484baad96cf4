"""The families of the menu with no hidden layer = their statsmodels models, exactly.

Binomial proportions with trials (GLM(Binomial) on successes and failures), gamma with a log
link (GLM(Gamma(Log()))), NB2 with alpha estimated (discrete NegativeBinomial, alpha a row of
params), Tweedie (GLM(Tweedie(var_power, Log()))) and offsets (GLM(Poisson, exposure=),
NegativeBinomial(exposure=)): every number is
computed here with the installed statsmodels and also compared with the frozen copy in
tests/results/families_reference.json (made by tests/results/make_families_reference.py).
Tolerances (relative): params 1e-6, standard errors 1e-5, log-likelihoods and information
criteria 1e-8; the measured agreement is 1e-8 or better for params and 1e-9 for SEs.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from neurostat import NeuralRegressor
from neurostat.engine.glm_families import Tweedie

RESULTS = Path(__file__).parents[1] / "results"
_spec = importlib.util.spec_from_file_location(
    "make_families_reference", RESULTS / "make_families_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)
FROZEN = json.loads((RESULTS / "families_reference.json").read_text())

_FITS = {}


def fitted(name):
    if name not in _FITS:
        X, y, w, offset, family = ref.load_case(name)
        est = NeuralRegressor((), family=family, solver="lbfgs", max_iter=500)
        _FITS[name] = est.fit(X, y, sample_weight=w, offset=offset), X, offset
    return _FITS[name]


def close(a, b, rtol, what):
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    np.testing.assert_allclose(a, b, rtol=rtol, atol=0, err_msg=what)


def check_against(res, expected):
    close(res.params, expected["params"], 1e-6, "params")
    close(res.bse, expected["bse"], 1e-5, "bse")
    # interval ends to 1e-6 of the standard error (an end near zero has no relative digits)
    ci, bse = np.asarray(expected["conf_int"]), np.asarray(expected["bse"])
    assert np.all(np.abs(res.conf_int().values - ci) <= 1e-6 * bse[:, None]), "conf_int"
    # p-values relative 1e-5 where they are representable (those below 1e-300 underflow)
    p = np.asarray(expected["pvalues"])
    ok = p > 1e-300
    close(res.pvalues.values[ok], p[ok], 1e-5, "pvalues")
    assert np.all(res.pvalues.values[~ok] < 1e-290), "tiny pvalues"
    for key in ("llf", "llnull", "aic", "bic"):
        close(getattr(res, key), expected[key], 1e-8, key)
    close(res.scale, expected["scale"], 1e-6, "scale")
    for key in ("df_model", "df_resid", "nobs"):
        assert getattr(res, key) == pytest.approx(expected[key], abs=1e-9), key


@pytest.mark.parametrize("cov_type", ref.COV_TYPES)
@pytest.mark.parametrize("name", ref.CASES)
def test_family_equals_statsmodels(name, cov_type):
    est, _, _ = fitted(name)
    res = est.inference(cov_type=cov_type)
    check_against(res, ref.reference(name, cov_type))  # live statsmodels
    check_against(res, FROZEN["cases"][name][cov_type])  # frozen numbers


@pytest.mark.parametrize("name", ref.PREDICTION_CASES)
def test_get_prediction_equals_statsmodels(name):
    est, X, offset = fitted(name)
    kw = {} if offset is None else {"offset": offset[:20]}
    frame = est.inference().get_prediction(X.iloc[:20], **kw).summary_frame(alpha=0.1)
    for expected in (ref.prediction_reference(name), FROZEN["prediction"][name]):
        for col, values in expected.items():
            close(frame[col], values, 1e-6, col)


def test_tweedie_of_another_power_equals_statsmodels():
    """A family object carries the power: Tweedie(power=1.3) on the same data, live."""
    import statsmodels.api as sm

    X, y, _, _, _ = ref.load_case("fair_tweedie")
    est = NeuralRegressor((), family=Tweedie(power=1.3), solver="lbfgs").fit(X, y)
    fam = sm.families.Tweedie(var_power=1.3, link=sm.families.links.Log())
    for cov_type in ("nonrobust", "HC0"):
        res = est.inference(cov_type=cov_type)
        r = sm.GLM(y, sm.add_constant(X), family=fam).fit(tol=1e-13, cov_type=cov_type)
        close(res.params, r.params, 1e-6, "params")
        close(res.bse, r.bse, 1e-5, "bse")
        close(res.llf, r.llf, 1e-8, "llf")
        close(res.scale, r.scale, 1e-6, "scale")
    assert est.family_ == Tweedie(1.3) and est.get_params()["family"] == Tweedie(1.3)


def test_negative_binomial_reports_alpha_as_statsmodels_does():
    est, X, _ = fitted("randhie_negbin")
    res = est.inference()
    sm_res = ref.statsmodels_fit("randhie_negbin")
    assert list(res.params.index) == ["intercept", *X.columns, "alpha"]
    assert res.params["alpha"] == pytest.approx(sm_res.params["alpha"], rel=1e-6)
    assert res.bse["alpha"] == pytest.approx(sm_res.bse["alpha"], rel=1e-5)
    # the null model re-estimates its own alpha (statsmodels' llnull); the LR test has
    # df = number of slopes
    assert res.llr_pvalue == pytest.approx(sm_res.llr_pvalue, rel=1e-6, abs=1e-300)
    assert res.df_model == sm_res.df_model == X.shape[1]
    # average marginal effects on the mean: statsmodels' get_margeff; on the link scale (log
    # mu, not alpha): the coefficients themselves
    ours = res.get_margeff().summary_frame()
    theirs = sm_res.get_margeff().summary_frame()
    np.testing.assert_allclose(ours["dy/dx"], theirs["dy/dx"], rtol=1e-6)
    np.testing.assert_allclose(ours["Std. Err."], theirs["Std. Err."], rtol=1e-5)
    np.testing.assert_allclose(res.get_margeff("link").margeff, res.params[X.columns],
                               rtol=1e-10)


def _menu_data(family, n=200, seed=51):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    eta = 0.3 + 0.8 * X[:, 0]  # x1 has no effect
    if family == "binomial":
        trials = rng.integers(1, 12, n).astype(float)
        return X, rng.binomial(trials.astype(int), 1 / (1 + np.exp(-eta))) / trials, trials
    if family == "gamma":
        return X, rng.gamma(3.0, np.exp(eta) / 3.0), None
    return X, rng.negative_binomial(2.0, 2.0 / (2.0 + np.exp(eta))).astype(float), None


@pytest.mark.parametrize("family", ["binomial", "gamma", "negative_binomial"])
def test_parametric_bootstrap_draws_from_the_family(family):
    """compare_lr_test(method="bootstrap") simulates from the restricted fit with the family's
    own draws (binomial: the data's trials; NB: its alpha; gamma: its dispersion) and refits:
    a strong effect (x0) gets the smallest p-value 1 / (B + 1), and the null replicates are
    finite, of the chi-square's size on average (the mean of 9 draws of a chi2(1) is within
    0..3 with probability > 0.99) and non-negative - but for gamma, whose two log-likelihoods
    are each at its own Pearson dispersion (statsmodels' convention), so that LR can dip
    slightly below zero."""
    X, y, w = _menu_data(family)
    fit = lambda cols: NeuralRegressor((), family=family, solver="lbfgs").fit(  # noqa: E731
        X[:, cols], y, sample_weight=w).inference()
    full, no_x0, no_x1 = fit([0, 1]), fit([1]), fit([0])
    strong = full.compare_lr_test(no_x0, method="bootstrap", n_bootstrap=9, random_state=0)
    assert strong.pvalue == pytest.approx(0.1)
    null = full.compare_lr_test(no_x1, method="bootstrap", n_bootstrap=9, random_state=1)
    draws = null.null_distribution
    assert np.all(np.isfinite(draws)) and 0 < draws.mean() < 3
    assert np.all(draws >= (-0.5 if family == "gamma" else -1e-8))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::neurostat.inference.InferenceWarning")
def test_a_negative_binomial_net_reports_effects_and_alpha():
    """One hidden layer: average effects on log mu with delta-method SEs, alpha as a row, the
    prediction's interval on the log-mean scale; alpha within 3 SEs of the truth (0.5)."""
    X, y, _ = _menu_data("negative_binomial", n=600, seed=52)
    est = NeuralRegressor((3,), activation="tanh", family="negative_binomial", solver="lbfgs",
                          alpha=1e-2, random_state=0, max_iter=500).fit(X, y)
    res = est.inference()
    assert list(res.params.index) == ["intercept", "x0", "x1", "alpha"]
    assert abs(res.params["alpha"] - 0.5) < 3 * res.bse["alpha"]
    assert abs(res.params["x0"] - 0.8) < 3 * res.bse["x0"]
    frame = res.get_prediction(X[:5]).summary_frame()
    assert np.all(frame.mean_ci_lower < frame["mean"]) and np.all(frame["mean"] <
                                                                  frame.mean_ci_upper)
    np.testing.assert_allclose(frame["mean"], est.predict(X[:5]), rtol=1e-10)
