"""No hidden layer = GLM, exactly: neurostat's inference against statsmodels.

Every number is computed here with statsmodels (Logit, MNLogit with the first class as
reference, GLM(Poisson), OLS) and also compared with the frozen copy in
tests/results/inference_reference.json (made by tests/results/make_inference_reference.py).
Tolerances near what the code achieves (lbfgs fits end with Newton steps; measured worst
cases over all 8 cases x 3 covariances, live and frozen): params relative 1e-9 (measured 8e-14),
standard errors and intervals 1e-8 (2e-13, 4e-12), p-values relative 1e-8 down to the smallest
(log p compared, measured 4e-11 at randhie's 2e-119; p-values that underflow to 0 on both sides
compare equal), log-likelihoods, information criteria and scale 1e-9 (3e-16), the null
log-likelihood 1e-8 (1.7e-10: an iterative intercept-only fit for logit and MNLogit).
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from neurostat import NeuralClassifier, NeuralRegressor

RESULTS = Path(__file__).parents[1] / "results"
_spec = importlib.util.spec_from_file_location(
    "make_inference_reference", RESULTS / "make_inference_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)
FROZEN = json.loads((RESULTS / "inference_reference.json").read_text())["cases"]


def _fit(name):
    X, y, kind = ref.load_case(name)
    if kind in ("logit", "mnlogit"):
        est = NeuralClassifier((), solver="lbfgs", random_state=0)
    else:
        est = NeuralRegressor((), family="poisson" if kind == "poisson" else "gaussian",
                              solver="lbfgs", random_state=0)
    return est.fit(X, y), X


_FITS = {}


def fitted(name):
    if name not in _FITS:
        _FITS[name] = _fit(name)
    return _FITS[name]


def close(a, b, rtol):
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 1e-3 * np.max(np.abs(b)))


def close_pvalues(a, b, rtol):
    """Relative agreement of p-values at every size: log p within rtol, with p floored at
    1e-300 so that values that underflow (to 0 or denormals) on both sides compare equal."""
    la, lb = (np.log(np.maximum(np.asarray(v, float).ravel(), 1e-300)) for v in (a, b))
    np.testing.assert_allclose(la, lb, rtol=0, atol=rtol)


def check_against(res, expected):
    close(res.params, expected["params"], 1e-9)
    close(res.bse, expected["bse"], 1e-8)
    close_pvalues(res.pvalues, expected["pvalues"], 1e-8)
    close(res.conf_int().values, np.asarray(expected["conf_int"]), 1e-8)
    for key in ("llf", "aic", "bic", "scale", "df_model", "df_resid", "nobs"):
        np.testing.assert_allclose(getattr(res, key), expected[key], rtol=1e-9, err_msg=key)
    np.testing.assert_allclose(res.llnull, expected["llnull"], rtol=1e-8, err_msg="llnull")


@pytest.mark.parametrize("cov_type", ref.COV_TYPES)
@pytest.mark.parametrize("name", ref.CASES)
def test_glm_equals_statsmodels(name, cov_type):
    est, _ = fitted(name)
    res = est.inference(cov_type=cov_type)
    check_against(res, ref.reference(name, cov_type))  # live statsmodels
    check_against(res, FROZEN[name][cov_type])  # frozen numbers


@pytest.mark.parametrize("name", ["spector_logit", "anes96_mnlogit", "stackloss_ols"])
def test_term_names(name):
    est, X = fitted(name)
    res = est.inference()
    terms = ["intercept"] + list(X.columns)
    if name == "anes96_mnlogit":
        assert res.params.index.names == ["class", "term"]
        assert list(res.params.index.get_level_values("class").unique()) == [1, 2]
        assert list(res.params.index.get_level_values("term")[:4]) == terms
    else:
        assert list(res.params.index) == terms
    assert list(res.cov_params().columns) == list(res.params.index)
    numpy_fit = type(est)(**est.get_params()).fit(X.values, ref.load_case(name)[1])
    index = numpy_fit.inference().params.index
    terms = index.get_level_values("term") if index.nlevels == 2 else index
    assert list(terms[:2]) == ["intercept", "x0"]


def test_summary_layout():
    est, _ = fitted("spector_logit")
    s = est.summary()
    text = str(s)
    for word in ("coef", "std err", "P>|z|", "[0.025", "0.975]", "Log-Likelihood",
                 "LL-Null", "AIC", "BIC", "Covariance Type", "bernoulli", "logit"):
        assert word in text, word
    assert list(s.params_table.columns) == ["coef", "std err", "z", "P>|z|", "[0.025", "0.975]"]
    assert s.as_html().startswith("<h4>") and s._repr_html_() == s.as_html()
    assert s.as_text() == text
    ols, _ = fitted("stackloss_ols")
    assert list(ols.summary().params_table.columns)[2:4] == ["t", "P>|t|"]


def test_sample_weight_matches_glm_freq_weights():
    import statsmodels.api as sm
    X, y, _ = ref.load_case("spector_logit")
    w = np.random.default_rng(0).integers(1, 4, size=len(y)).astype(float)
    est = NeuralClassifier((), solver="lbfgs").fit(X, y, sample_weight=w)
    res = est.inference()
    # frequency weights, as statsmodels' freq_weights: a weight of 3 is three copies of the row
    sm_res = sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial(),
                    freq_weights=w).fit(tol=1e-12)
    close(res.params, sm_res.params, 1e-8)
    close(res.bse, sm_res.bse, 1e-7)
    np.testing.assert_allclose(res.llf, sm_res.llf, rtol=1e-10)
    np.testing.assert_allclose(res.df_resid, sm_res.df_resid, rtol=1e-10)
    hc0 = est.inference(cov_type="HC0")
    close(hc0.bse, sm.GLM(y, sm.add_constant(X), family=sm.families.Binomial(),
                          freq_weights=w).fit(tol=1e-12, cov_type="HC0").bse, 1e-7)
    # and the same numbers as the data with the rows repeated
    idx = np.repeat(np.arange(len(y)), w.astype(int))
    Xr, yr = np.asarray(X)[idx], np.asarray(y)[idx]
    rep = NeuralClassifier((), solver="lbfgs").fit(Xr, yr).inference()
    close(res.bse, rep.bse, 1e-7)
    np.testing.assert_allclose([res.llf, res.aic, res.bic, res.nobs],
                               [rep.llf, rep.aic, rep.bic, rep.nobs], rtol=1e-9)


@pytest.mark.parametrize("family", ["bernoulli", "poisson", "gaussian"])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0"])
def test_integer_weights_equal_repeated_rows_and_freq_weights(family, cov_type):
    # frequency weights: weight 3 = three copies of the row, for every reported number;
    # statsmodels GLM(freq_weights=w) agrees (its gaussian HC1 differs by convention, not tested)
    import statsmodels.api as sm
    rng = np.random.default_rng(3)
    n = 120
    X = rng.normal(size=(n, 3)) * [1.0, 20.0, 0.1]
    eta = 0.4 * X[:, 0] - 0.02 * X[:, 1] + 0.3
    w = rng.integers(0, 4, size=n).astype(float)  # zeros drop the row
    if family == "bernoulli":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
        est, fam = NeuralClassifier((), solver="lbfgs"), sm.families.Binomial()
    else:
        y = rng.poisson(np.exp(eta)) if family == "poisson" else eta + rng.normal(size=n)
        est, fam = NeuralRegressor((), family=family, solver="lbfgs"), (
            sm.families.Poisson() if family == "poisson" else sm.families.Gaussian())
    res = est.fit(X, y, sample_weight=w).inference(cov_type=cov_type)
    idx = np.repeat(np.arange(n), w.astype(int))
    rep = type(est)(**est.get_params()).fit(X[idx], y[idx]).inference(cov_type=cov_type)
    close(res.params, rep.params, 1e-9)
    close(res.bse, rep.bse, 1e-8)
    np.testing.assert_allclose([res.llf, res.aic, res.bic, res.nobs, res.df_resid, res.scale],
                               [rep.llf, rep.aic, rep.bic, rep.nobs, rep.df_resid, rep.scale],
                               rtol=1e-9)
    keep = w > 0  # statsmodels' robust covariance is NaN with zero frequency weights
    ref = sm.GLM(y[keep], sm.add_constant(X[keep]), family=fam,
                 freq_weights=w[keep]).fit(tol=1e-13, cov_type=cov_type)
    close(res.params, ref.params, 1e-9)
    close(res.bse, ref.bse, 1e-7)
    np.testing.assert_allclose([res.llf, res.df_resid], [ref.llf, ref.df_resid], rtol=1e-9)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1"])
def test_multi_output_least_squares_is_per_column_ols(cov_type):
    # no hidden layer, k outputs: k separate regressions, each with its own dispersion, so
    # every number equals statsmodels' OLS on that column (outputs with noise sd 0.3 and 5)
    import statsmodels.api as sm
    rng = np.random.default_rng(4)
    n = 80
    X = rng.normal(size=(n, 3))
    Y = np.column_stack([X @ [1.0, 0.5, 0.0] + 0.3 * rng.normal(size=n),
                         X @ [0.0, -2.0, 1.0] + 10 + 5 * rng.normal(size=n)])
    res = NeuralRegressor((), solver="lbfgs").fit(X, Y).inference(cov_type=cov_type)
    refs = [sm.OLS(Y[:, j], sm.add_constant(X)).fit(cov_type=cov_type) for j in range(2)]
    close(res.params, np.concatenate([r.params for r in refs]), 1e-9)
    close(res.bse, np.concatenate([r.bse for r in refs]), 1e-8)
    close(res.pvalues, np.concatenate([r.pvalues for r in refs]), 1e-7)
    close(res.conf_int().values, np.vstack([r.conf_int() for r in refs]), 1e-8)
    np.testing.assert_allclose(res.scale, [r.scale for r in refs], rtol=1e-9)
    np.testing.assert_allclose(res.llf, sum(r.llf for r in refs), rtol=1e-10)
    assert "Scale:" in res.summary().as_text()
