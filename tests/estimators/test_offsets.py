"""Offsets (glum's name): ``eta = f(x) + offset`` in fit, predict, score, inference,
get_prediction and the refits of the bootstrap.

References: statsmodels' GLM(exposure=) / GLM(offset=) and OLS on ``y - offset`` (1e-8), the
identity ``predict(X, offset) = exp(offset) * predict(X)`` of a log link, and L-BFGS for the
stochastic solvers.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.exceptions import ConvergenceWarning

from neurostat import NeuralClassifier, NeuralCoxRegressor, NeuralRegressor


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(11)
    n = 400
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(-1, 1, n)})
    exposure = rng.uniform(0.3, 5.0, n)
    y = rng.poisson(exposure * np.exp(0.2 + 0.4 * X.a - 0.6 * X.b)).astype(float)
    return X, y, exposure


@pytest.fixture(scope="module")
def poisson_fit(counts):
    X, y, exposure = counts
    est = NeuralRegressor((), family="poisson", solver="lbfgs").fit(X, y, offset=np.log(exposure))
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Poisson(), exposure=exposure)
    return est, ref


def test_poisson_rates_with_exposure_equal_statsmodels(counts, poisson_fit):
    X, y, exposure = counts
    est, ref = poisson_fit
    for cov_type in ("nonrobust", "HC0"):
        res, r = est.inference(cov_type=cov_type), ref.fit(cov_type=cov_type, tol=1e-13)
        np.testing.assert_allclose(res.params, r.params, rtol=1e-8)
        np.testing.assert_allclose(res.bse, r.bse, rtol=1e-8)
        for key in ("llf", "llnull", "aic", "bic"):
            assert getattr(res, key) == pytest.approx(getattr(r, key), rel=1e-10), key
    np.testing.assert_allclose(res.fittedvalues, r.fittedvalues, rtol=1e-10)


def test_predict_score_and_prediction_take_the_offset(counts, poisson_fit):
    X, y, exposure = counts
    est, ref = poisson_fit
    r = ref.fit(tol=1e-13)
    off = np.log(exposure)
    np.testing.assert_allclose(est.predict(X, offset=off), r.predict(exog=sm.add_constant(X),
                                                                     exposure=exposure),
                               rtol=1e-10)
    # without an offset: the rate per unit exposure
    np.testing.assert_allclose(est.predict(X, offset=off), exposure * est.predict(X), rtol=1e-12)
    from sklearn.metrics import r2_score
    assert est.score(X, y, offset=off) == pytest.approx(r2_score(y, r.fittedvalues), rel=1e-10)
    frame = est.inference().get_prediction(X.iloc[:15], offset=off[:15]).summary_frame(0.1)
    sm_frame = r.get_prediction(sm.add_constant(X).iloc[:15],
                                exposure=exposure[:15]).summary_frame(alpha=0.1)
    for col in ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper"):
        np.testing.assert_allclose(frame[col], sm_frame[col], rtol=1e-8)
    # the training rows and their offset by default: the fitted values
    np.testing.assert_allclose(est.inference().get_prediction().summary_frame()["mean"],
                               r.fittedvalues, rtol=1e-10)


def test_inference_on_other_data_takes_their_offset(counts, poisson_fit):
    X, y, exposure = counts
    est, _ = poisson_fit
    half = slice(0, 200)
    res = est.inference(X.iloc[half], y[half], offset=np.log(exposure[half]))
    ref = sm.GLM(y[half], sm.add_constant(X.iloc[half]), family=sm.families.Poisson(),
                 exposure=exposure[half])
    # the same coefficients evaluated on the half: its log-likelihood and score are those of
    # statsmodels' model at these parameters
    params = est.inference().params.values
    assert res.llf == pytest.approx(ref.loglike(params), rel=1e-10)
    np.testing.assert_allclose(res.bse, np.sqrt(np.diag(np.linalg.inv(-ref.hessian(params)))),
                               rtol=1e-8)


def test_binomial_and_gaussian_offsets_equal_statsmodels():
    rng = np.random.default_rng(12)
    n = 300
    X = pd.DataFrame({"a": rng.normal(size=n)})
    off = rng.normal(scale=0.5, size=n)
    yb = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + X.a + off)))).astype(int)
    est = NeuralClassifier((), solver="lbfgs").fit(X, yb, offset=off)
    r = sm.GLM(yb, sm.add_constant(X), family=sm.families.Binomial(), offset=off).fit(tol=1e-13)
    res = est.inference()
    np.testing.assert_allclose(res.params, r.params, rtol=1e-8)
    np.testing.assert_allclose(res.bse, r.bse, rtol=1e-8)
    assert res.llnull == pytest.approx(r.llnull, rel=1e-10)
    np.testing.assert_allclose(est.predict_proba(X, offset=off)[:, 1], r.fittedvalues,
                               rtol=1e-10)
    yg = 2.0 + 1.5 * X.a + off + rng.normal(size=n)
    ols = sm.OLS(yg - off, sm.add_constant(X)).fit()
    res = NeuralRegressor((), solver="lbfgs").fit(X, yg, offset=off).inference()
    np.testing.assert_allclose(res.params, ols.params, rtol=1e-8)
    np.testing.assert_allclose(res.bse, ols.bse, rtol=1e-8)


def test_stochastic_solvers_take_the_offset(counts, poisson_fit):
    """Adam on minibatches (offsets shuffled with their rows; for gaussian, scaled with the
    standardized target; with early stopping, split with the rows) reaches L-BFGS' fit."""
    X, y, exposure = counts
    off = np.log(exposure)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        adam = NeuralRegressor((), family="poisson", learning_rate_init=0.02, max_iter=150,
                               batch_size=100, random_state=0).fit(X, y, offset=off)
    lbfgs, _ = poisson_fit
    np.testing.assert_allclose(adam.coef_, lbfgs.coef_, atol=0.02)
    rng = np.random.default_rng(13)
    yg = 50 + 10 * X.a.to_numpy() + 20 * off + rng.normal(size=len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g = NeuralRegressor((), learning_rate_init=0.05, max_iter=200, random_state=0,
                            early_stopping=True, n_iter_no_change=30).fit(X, yg, offset=20 * off)
    # early stopping holds out 10% of the rows and stops near, not at, the minimizer; an
    # offset left out (or not split with the rows) would move the intercept by ~20 and the
    # slopes by more than 1
    ols = sm.OLS(yg - 20 * off, sm.add_constant(X)).fit()
    np.testing.assert_allclose([g.intercept_, *g.coef_], ols.params, atol=0.4)


def test_bootstrap_refits_keep_the_offset(counts, poisson_fit):
    """Case resampling moves each row's offset with it: the bootstrap SEs are near the
    sandwich's (50 resamples: a Monte-Carlo error of about 10%); without the offset in the
    refits the intercept would move by the mean log exposure."""
    est, _ = poisson_fit
    boot = est.inference(cov_type="bootstrap", n_bootstrap=50, random_state=0)
    robust = est.inference(cov_type="HC0")
    np.testing.assert_allclose(boot.bse, robust.bse, rtol=0.3)
    lr = est.inference().compare_lr_test(
        NeuralRegressor((), family="poisson", solver="lbfgs").fit(
            counts[0][["a"]], counts[1], offset=np.log(counts[2])).inference(),
        method="bootstrap", n_bootstrap=9, random_state=0)
    assert lr.pvalue == pytest.approx(0.1)  # b's effect is strong: no replicate reaches it


@pytest.mark.parametrize("offset, match", [
    (np.zeros(5), r"one value per row of X \(400 rows\)"),
    (np.zeros((400, 2)), "1-D"),
    (np.r_[np.zeros(399), np.nan], "NaN or infinity"),
    (np.r_[np.zeros(399), -np.inf], "log of a zero exposure"),
    (["a"] * 400, "numeric"),
])
def test_bad_offsets_are_refused(counts, offset, match):
    X, y, _ = counts
    with pytest.raises(ValueError, match=match):
        NeuralRegressor((), family="poisson", solver="lbfgs").fit(X, y, offset=offset)


def test_bad_offsets_at_predict_time(counts, poisson_fit):
    X, _, _ = counts
    est, _ = poisson_fit
    with pytest.raises(ValueError, match="one value per row"):
        est.predict(X.iloc[:10], offset=np.zeros(3))
    with pytest.raises(ValueError, match="Pass X with the offset"):
        est.inference().get_prediction(offset=np.zeros(400))


def test_cox_refuses_an_offset():
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = np.column_stack([np.arange(1, 21), np.ones(20)])
    with pytest.raises(ValueError, match="does not take an offset"):
        NeuralCoxRegressor((), solver="lbfgs").fit(X, y, offset=np.zeros(20))
