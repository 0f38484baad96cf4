"""Formulas (formulaic) and categorical columns: the design, its names, its terms.

References: statsmodels' formula API on the same data (``smf.glm`` / ``smf.logit``: names,
estimates 1e-6, standard errors 1e-5, ``wald_test_terms`` with a categorical term on levels - 1
df), and the network fitted to the design built by hand.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from formulaic import ModelSpec
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from neurostat import ConvNetClassifier, NeuralClassifier, NeuralCoxRegressor, NeuralRegressor

FORMULA = "y ~ age + C(region) + np.log(income)"


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(21)
    n = 400
    df = pd.DataFrame({"age": rng.normal(50, 10, n),
                       "region": rng.choice(["east", "north", "south"], n),
                       "sex": rng.choice(["f", "m"], n),
                       "income": rng.lognormal(10, 0.5, n)})
    eta = (-0.5 + 0.03 * (df.age - 50) + df.region.map({"east": 0, "north": 0.8, "south": -0.5})
           + 0.6 * (np.log(df.income) - 10))
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    df["visits"] = rng.poisson(np.exp(0.3 + 0.2 * (df.sex == "m") + 0.01 * (df.age - 50)))
    return df


@pytest.fixture(scope="module")
def logit(frame):
    est = NeuralClassifier((), solver="lbfgs", formula=FORMULA).fit(frame)
    ref = smf.glm(FORMULA, frame, family=sm.families.Binomial()).fit(tol=1e-13)
    return est, est.inference(), ref


def _by_name(ours, ref):
    """statsmodels' Series renamed to neurostat's names (its intercept is 'Intercept')."""
    return ref.rename({"Intercept": "intercept"}).reindex(ours.index)


def test_formula_glm_equals_statsmodels(logit):
    est, res, ref = logit
    assert set(res.params.index) == {"intercept", "age", "C(region)[T.north]",
                                     "C(region)[T.south]", "np.log(income)"}
    np.testing.assert_allclose(res.params, _by_name(res.params, ref.params), rtol=1e-6)
    np.testing.assert_allclose(res.bse, _by_name(res.bse, ref.bse), rtol=1e-5)
    assert res.llf == pytest.approx(ref.llf, rel=1e-10)
    assert isinstance(est.model_spec_, ModelSpec)
    assert list(est.feature_names_in_) == [n for n in res.params.index if n != "intercept"]


def test_wald_test_terms_equals_statsmodels(logit):
    """One row per formula term; the categorical term is one joint test on levels - 1 = 2 df,
    as statsmodels' ``wald_test_terms``."""
    _, res, ref = logit
    ours = res.wald_test_terms()
    theirs = ref.wald_test_terms(scalar=True).table
    assert list(ours.index) == ["age", "C(region)", "np.log(income)"]
    assert ours.loc["C(region)", "df constraint"] == 2
    for term in ours.index:
        assert ours.loc[term, "chi2"] == pytest.approx(theirs.loc[term, "statistic"], rel=1e-6)
        assert ours.loc[term, "P>chi2"] == pytest.approx(theirs.loc[term, "pvalue"], rel=1e-5)
        assert ours.loc[term, "df constraint"] == theirs.loc[term, "df_constraint"]
    text = str(res.summary())
    assert "Wald tests per term" in text and "C(region)" in text.split("Wald tests")[1]


def test_interactions_and_counts_equal_statsmodels(frame):
    f = "visits ~ age * C(sex) + C(region)"
    res = NeuralRegressor((), family="poisson", solver="lbfgs", formula=f).fit(frame).inference()
    ref = smf.glm(f, frame, family=sm.families.Poisson()).fit(tol=1e-13)
    assert "age:C(sex)[T.m]" in res.params.index
    np.testing.assert_allclose(res.params, _by_name(res.params, ref.params), rtol=1e-6)
    np.testing.assert_allclose(res.bse, _by_name(res.bse, ref.bse), rtol=1e-5)


def test_levels_from_fit_are_kept_at_predict(logit, frame):
    """A frame holding one region only is encoded with the training levels (the same rows
    predict the same), and the formula's transforms are re-applied."""
    est, _, ref = logit
    sub = frame[frame.region == "south"].head(7)
    np.testing.assert_allclose(est.predict_proba(sub)[:, 1], ref.predict(sub), rtol=1e-8)
    np.testing.assert_allclose(est.predict_proba(sub), est.predict_proba(frame)[sub.index])
    frame_pred = est.inference().get_prediction(sub).summary_frame()
    sm_pred = ref.get_prediction(sub).summary_frame()
    np.testing.assert_allclose(frame_pred["mean_se"], sm_pred["mean_se"], rtol=1e-5)


def test_unseen_level_missing_column_and_missing_values_are_errors(logit, frame):
    est, _, _ = logit
    bad = frame.head(3).copy()
    bad.loc[bad.index[0], "region"] = "west"
    with pytest.raises(ValueError, match="categorical level not seen at fit.*west"):
        est.predict(bad)
    with pytest.raises(ValueError, match="names something X does not have.*agex"):
        NeuralClassifier((), solver="lbfgs", formula="y ~ agex").fit(frame)
    with pytest.raises(ValueError, match="income.*X has the columns"):
        est.predict(frame.drop(columns="income").head(3))
    na = frame.head(30).copy()
    na.loc[na.index[2], "age"] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        NeuralClassifier((), solver="lbfgs", formula=FORMULA).fit(na)
    with pytest.raises(ValueError, match="response column.*'z'"):
        NeuralClassifier((), solver="lbfgs", formula="z ~ age").fit(frame)


@pytest.mark.parametrize("formula, X, y, exc, match", [
    ("y ~ age - 1", "frame", None, ValueError, "removes the intercept"),
    ("y ~ 0 + age", "frame", None, ValueError, "removes the intercept"),
    ("y ~ age", "array", None, TypeError, "needs X as a pandas DataFrame"),
    ("y ~ age", "frame", "y", ValueError, "has a response.*and y was passed"),
    ("~ age", "frame", None, ValueError, "has no response"),
    ("y ~ (age", "frame", None, ValueError, "could not be parsed"),
])
def test_bad_formulas(frame, formula, X, y, exc, match):
    X = frame if X == "frame" else frame[["age"]].to_numpy()
    y = None if y is None else frame.y
    with pytest.raises(exc, match=match):
        NeuralClassifier((), solver="lbfgs", formula=formula).fit(X, y)


def test_categorical_columns_without_a_formula(frame):
    """String and pandas categorical columns are one-hot encoded against their first level
    and grouped into one term each, as the formula naming the columns would (patsy's names
    without ``C()``: ``region[T.north]``)."""
    X = frame[["age", "region", "sex"]].astype({"sex": "category"})
    X = X.astype({"region": "string"})
    est = NeuralRegressor((), family="poisson", solver="lbfgs").fit(X, frame.visits)
    res = est.inference()
    ref = smf.glm("visits ~ age + region + sex", frame, family=sm.families.Poisson()).fit(
        tol=1e-13)
    assert list(res.params.index) == ["intercept", "age", "region[T.north]", "region[T.south]",
                                      "sex[T.m]"]
    np.testing.assert_allclose(res.params, _by_name(res.params, ref.params), rtol=1e-6)
    assert [t for t, _ in res.model.layout.term_groups] == ["age", "region", "sex"]
    assert res.wald_test_terms().loc["region", "df constraint"] == 2
    np.testing.assert_allclose(est.predict(X.head(5)), ref.predict(frame.head(5)), rtol=1e-8)


def test_columns_named_by_numbers_are_encoded_too(frame):
    X = frame[["age", "region"]].set_axis([0, 1], axis=1)
    res = NeuralRegressor((), family="poisson", solver="lbfgs").fit(X, frame.visits).inference()
    assert list(res.params.index) == ["intercept", "0", "1[T.north]", "1[T.south]"]


def test_numeric_frames_are_unchanged():
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    est = NeuralRegressor((), solver="lbfgs").fit(X, [0.0, 1.0, 2.5, 2.9])
    assert list(est.feature_names_in_) == ["a", "b"] and not hasattr(est, "model_spec_")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::neurostat.inference.InferenceWarning")
def test_a_net_with_a_formula_tests_terms_jointly(frame):
    est = NeuralClassifier((3,), solver="lbfgs", alpha=1e-2, random_state=0, formula=FORMULA,
                           max_iter=300).fit(frame)
    wald = est.inference(effects="delta").wald_test_terms()  # the first-layer Wald tests
    assert list(wald.index) == ["age", "C(region)", "np.log(income)"]
    # the weights leaving both region columns into 3 hidden units: 6 df
    assert wald.loc["C(region)", "df constraint"] == 6
    assert wald.loc["age", "df constraint"] == 3


def test_pickle_clone_cross_validation_and_inference_on_new_frames(logit, frame):
    est, res, _ = logit
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict_proba(frame.head(9)),
                                  est.predict_proba(frame.head(9)))
    assert clone(est).formula == FORMULA
    scores = cross_val_score(NeuralClassifier((), solver="lbfgs", formula=FORMULA), frame, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.5)
    # inference on other rows reads y from the formula's response
    half = est.inference(X=frame.head(200))
    assert half.nobs == 200 and half.llf == pytest.approx(
        float(np.sum(np.log(np.where(frame.y.head(200) == 1,
                                     est.predict_proba(frame.head(200))[:, 1],
                                     est.predict_proba(frame.head(200))[:, 0])))), rel=1e-10)
    assert est.score(frame) == pytest.approx(
        np.mean(est.predict(frame) == frame.y), rel=1e-12)


def test_bootstrap_refits_a_formula_model(frame):
    est = NeuralClassifier((), solver="lbfgs", formula=FORMULA).fit(frame)
    boot = est.inference(cov_type="bootstrap", n_bootstrap=20, random_state=0)
    np.testing.assert_allclose(boot.bse, est.inference().bse, rtol=0.5)


def test_cox_takes_a_formula_for_its_inputs(frame):
    rng = np.random.default_rng(22)
    t = rng.exponential(np.exp(-(0.5 * (frame.sex == "m") + 0.02 * (frame.age - 50))))
    y = np.column_stack([t, np.ones(len(t))])
    est = NeuralCoxRegressor((), solver="lbfgs", formula="~ age + C(sex)").fit(frame, y)
    X = np.column_stack([frame.age, (frame.sex == "m").astype(float)])
    ref = NeuralCoxRegressor((), solver="lbfgs").fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-8)
    assert list(est.inference().params.index) == ["age", "C(sex)[T.m]"]
    np.testing.assert_allclose(est.predict(frame.head(4)), ref.predict(X[:4]), rtol=1e-8)


def test_convnet_refuses_a_formula():
    X = np.zeros((4, 1, 4, 4))
    with pytest.raises(ValueError, match="does not take a formula"):
        ConvNetClassifier(formula="y ~ x").fit(X, [0, 1, 0, 1])


def test_an_array_of_the_design_width_is_taken_as_the_design(logit, frame):
    est, _, _ = logit
    design = est.model_spec_.get_model_matrix(frame.head(5)).to_numpy()[:, 1:]
    np.testing.assert_allclose(est.predict_proba(design), est.predict_proba(frame.head(5)))
    with pytest.raises(TypeError, match="needs X as a pandas DataFrame"):
        est.predict(frame[["age", "income"]].head(5).to_numpy())
