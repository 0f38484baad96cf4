"""MultiResponseRegressor: one network, one head per response, the joint likelihood.

With no hidden layer the joint fit factorizes: each response's head must be its separate GLM
exactly - statsmodels' OLS, Logit, GLM(Poisson) and NegativeBinomial per column (estimates
1e-6, standard errors 1e-5, log-likelihoods 1e-8, robust HC0 and HC1 too, Wald tests and
predictions). With a hidden layer the shared body must help where the responses share a
nonlinear signal (held-out likelihood against separate nets of the same size).
"""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.exceptions import ConvergenceWarning

from neurostat.estimators.multi import MultiResponseRegressor
from neurostat.inference import InferenceWarning

FAMILIES = {"bp": "gaussian", "diabetic": "bernoulli", "visits": "poisson",
            "stays": "negative_binomial"}


def _data(n=500, seed=31):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"age": rng.normal(size=n), "bmi": rng.normal(size=n),
                      "smoker": rng.integers(0, 2, n).astype(float)})
    mu = np.exp(0.2 + 0.3 * X.bmi - 0.2 * X.smoker)
    Y = pd.DataFrame({
        "bp": 120 + 6 * X.age + 3 * X.bmi + 5 * rng.normal(size=n),
        "diabetic": (rng.random(n) < 1 / (1 + np.exp(-(-0.5 + 0.8 * X.bmi)))).astype(float),
        "visits": rng.poisson(np.exp(0.5 + 0.4 * X.age)).astype(float),
        "stays": rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(float),
    })
    return X, Y


@pytest.fixture(scope="module")
def glm():
    X, Y = _data()
    est = MultiResponseRegressor(FAMILIES, hidden_layer_sizes=(), solver="lbfgs",
                                 max_iter=500).fit(X, Y)
    return X, Y, est


def _separate(X, Y, name, cov_type="nonrobust"):
    Xc = sm.add_constant(X)
    if name == "bp":
        return sm.OLS(Y.bp, Xc).fit(cov_type=cov_type)
    if name == "diabetic":
        return sm.Logit(Y.diabetic, Xc).fit(disp=0, method="newton", tol=1e-13,
                                            cov_type=cov_type)
    if name == "visits":
        return sm.GLM(Y.visits, Xc, family=sm.families.Poisson()).fit(tol=1e-13,
                                                                      cov_type=cov_type)
    return sm.NegativeBinomial(Y.stays, Xc).fit(disp=0, method="newton", tol=1e-13,
                                                maxiter=100, cov_type=cov_type)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1"])
def test_no_hidden_layer_equals_the_separate_glms(glm, cov_type):
    X, Y, est = glm
    res = est.inference(cov_type=cov_type)
    for name in FAMILIES:
        ref = _separate(X, Y, name, cov_type)
        np.testing.assert_allclose(res.params[name], ref.params, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(res.bse[name], ref.bse, rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(res.pvalues[name], ref.pvalues, rtol=1e-5, err_msg=name)
        ci = res.conf_int().loc[name].to_numpy()
        assert np.all(np.abs(ci - ref.conf_int().to_numpy()) <= 1e-6 * ref.bse.to_numpy()[:, None])
        assert res.llf_by_response[name] == pytest.approx(ref.llf, rel=1e-8)
        assert res.llnull_by_response[name] == pytest.approx(
            ref.llnull if name != "bp" else sm.OLS(Y.bp, np.ones(len(Y))).fit().llf, rel=1e-8)
    assert res.llf == pytest.approx(sum(_separate(X, Y, n).llf for n in FAMILIES), rel=1e-10)
    # one dispersion per gaussian response (OLS's RSS / df_resid), 1 elsewhere
    ols = _separate(X, Y, "bp")
    np.testing.assert_allclose(res.scale, [ols.scale, 1.0, 1.0, 1.0], rtol=1e-8)
    assert res.df_resid_by_response[0] == ols.df_resid


def test_per_response_wald_tests_and_predictions_equal_statsmodels(glm):
    X, Y, est = glm
    res = est.inference()
    wald = res.wald_test_terms()
    for name in ("bp", "visits"):
        ref = _separate(X, Y, name)
        table = ref.wald_test_terms(scalar=True).table
        for term in X.columns:
            assert wald.loc[(name, term), "chi2"] == pytest.approx(
                table.loc[term, "statistic"] * (1 if name != "bp" else 1), rel=1e-6)
    pred = res.get_prediction(X.head(10)).summary_frame(alpha=0.1)
    for name in ("bp", "visits"):
        ref = _separate(X, Y, name)
        sm_frame = ref.get_prediction(sm.add_constant(X).head(10)).summary_frame(alpha=0.1)
        for col in ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper"):
            np.testing.assert_allclose(pred[(name, col)], sm_frame[col], rtol=1e-6)
    obs = res.get_prediction(X.head(10)).summary_frame(alpha=0.1, obs=True)
    sm_frame = _separate(X, Y, "bp").get_prediction(sm.add_constant(X).head(10)).summary_frame(
        alpha=0.1)
    np.testing.assert_allclose(obs[("bp", "obs_ci_lower")], sm_frame["obs_ci_lower"], rtol=1e-6)
    assert ("visits", "obs_ci_lower") not in obs.columns


def test_predict_summary_and_names(glm):
    X, Y, est = glm
    pred = est.predict(X.head(4))
    assert isinstance(pred, pd.DataFrame) and list(pred.columns) == list(FAMILIES)
    np.testing.assert_allclose(pred.diabetic, _separate(X, Y, "diabetic").predict(
        sm.add_constant(X).head(4)), rtol=1e-6)
    res = est.inference()
    assert res.params.index.names == ["response", "term"]
    assert ("stays", "alpha") in res.params.index
    assert res.params[("stays", "alpha")] == pytest.approx(
        _separate(X, Y, "stays").params["alpha"], rel=1e-6)
    text = str(res.summary())
    assert all(f"Response: {name}" in text for name in FAMILIES)
    assert "scale:" in text.split("Response: bp")[1].split("Response:")[0]
    assert pickle.loads(pickle.dumps(est)).predict(X.head(4)).equals(pred)


def test_arrays_lists_and_formulas():
    X, Y = _data(n=200, seed=32)
    kinds = ["gaussian", "poisson"]
    a = MultiResponseRegressor(kinds, hidden_layer_sizes=(), solver="lbfgs").fit(
        X.to_numpy(), Y[["bp", "visits"]].to_numpy())
    assert isinstance(a.predict(X.to_numpy()[:3]), np.ndarray)
    df = pd.concat([X, Y], axis=1)
    f = MultiResponseRegressor({"bp": "gaussian", "visits": "poisson"}, hidden_layer_sizes=(),
                               solver="lbfgs", formula="bp + visits ~ age + bmi + C(smoker)")
    f.fit(df)
    np.testing.assert_allclose(f.coef_, a.coef_, rtol=1e-8)
    assert list(f.inference().params["bp"].index) == ["intercept", "age", "bmi",
                                                       "C(smoker)[T.1.0]"]
    assert f.score(df) == pytest.approx(a.score(X.to_numpy(), Y[["bp", "visits"]].to_numpy()))


@pytest.mark.parametrize("families, Y, match", [
    ({"bp": "gaussian", "bmi2": "poisson"}, None, r"responses \['bmi2'\] that Y does not have"),
    ({"bp": "gamma"}, None, "not among those of a joint model"),
    (["gaussian"], "two", "families has 1 entries but Y has 2 columns"),
    ({"visits": "poisson"}, "negative", "response 'visits'.*counts y >= 0"),
    ({"diabetic": "bernoulli"}, "labels", "must be numeric"),
])
def test_bad_inputs(families, Y, match):
    X, Yd = _data(n=60, seed=33)
    Y = {None: Yd, "two": Yd[["bp", "visits"]].to_numpy(),
         "negative": Yd.assign(visits=-Yd.visits),
         "labels": Yd.assign(diabetic=np.where(Yd.diabetic > 0, "yes", "no"))}[Y]
    with pytest.raises(ValueError, match=match):
        MultiResponseRegressor(families, hidden_layer_sizes=(), solver="lbfgs").fit(X, Y)


def test_no_offset():
    X, Y = _data(n=60, seed=34)
    with pytest.raises(ValueError, match="does not take an offset"):
        MultiResponseRegressor(hidden_layer_sizes=()).fit(X, Y[["bp"]], offset=np.zeros(60))


@pytest.mark.slow
def test_shared_hidden_layer_borrows_strength():
    """Two responses driven by one latent nonlinear score z(x) = tanh(2 x0 x1): the joint net
    with one hidden layer of 4 units predicts held-out data with a higher log-likelihood than
    two separate nets of the same size (the count response alone cannot learn z well from
    300 rows; the gaussian response shows it the way)."""
    from neurostat import NeuralRegressor

    rng = np.random.default_rng(35)

    def make(n):
        X = rng.normal(size=(n, 3))
        z = np.tanh(2 * X[:, 0] * X[:, 1])
        return X, pd.DataFrame({"g": 2 * z + 0.5 * rng.normal(size=n),
                                "c": rng.poisson(np.exp(0.5 + 0.8 * z)).astype(float)})

    X, Y = make(300)
    Xt, Yt = make(3000)
    kw = dict(hidden_layer_sizes=(4,), activation="tanh", solver="lbfgs", alpha=1e-3,
              max_iter=400, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (ConvergenceWarning, InferenceWarning))
        joint = MultiResponseRegressor({"g": "gaussian", "c": "poisson"}, **kw).fit(X, Y)
        sep = NeuralRegressor(family="poisson", **kw).fit(X, Y.c)
        joint_c = joint.inference(Xt, Yt).llf_by_response["c"]
        sep_c = sep.inference(Xt, Yt.c).llf
    assert joint_c > sep_c + 0.01 * abs(sep_c)
