"""Invariants that must hold for any data, checked on data that hypothesis draws.

Each strategy draws a seed, sizes and scales, and numpy generators make well-conditioned data
from them (standard-normal inputs, coefficients of at most 0.5 on them, at least 50 rows for at
most 3 inputs), so a failure is a bug rather than an ill-posed fit. The GLMs (no hidden layer,
solver="lbfgs") end with Newton steps, so their fits are reproducible to about 1e-13; the
tolerances below are 1e-10 relative (1e-12 absolute) for coefficients and 1e-9 for standard
errors. Measured worst cases over 80 drawn data sets of each property are in the tests.

Not tested here: weights = repeated rows for hidden-layer nets. Their inference has a known
bug (being fixed with the inference rewrite), and their lbfgs coefs_ differ, 5e-4 to 0.4
relative on 12 drawn data sets: the weighted and the repeated L-BFGS paths agree to rounding
(1e-14 after 40 iterations on one data set) but, on a flat non-convex objective, stop at
different iterations (33 against 42 on another), so no tight tolerance holds.

Examples are derandomized (the same examples on every run) and no example database is written.
"""

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from neurostat import NeuralClassifier, NeuralRegressor, ProjectionPursuitRegressor

FAMILIES = ("bernoulli", "poisson", "gaussian")
PROPERTY = settings(max_examples=12, deadline=None, derandomize=True, database=None)


@st.composite
def glm_data(draw, min_rows=50, max_rows=120):
    """``(family, X, y, rng)``: a GLM of the family on standard-normal inputs."""
    family = draw(st.sampled_from(FAMILIES))
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(min_rows, max_rows))
    p = draw(st.integers(1, 3))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    eta = 0.3 + X @ rng.uniform(-0.5, 0.5, size=p)
    if family == "bernoulli":
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
        assume(min(np.sum(y == 0), np.sum(y == 1)) >= 10)  # no separation (all but certain)
    elif family == "poisson":
        y = rng.poisson(np.exp(eta)).astype(float)
    else:
        y = eta + rng.normal(size=n)
    return family, X, y, rng


def glm(family):
    if family == "bernoulli":
        return NeuralClassifier((), solver="lbfgs")
    return NeuralRegressor((), family=family, solver="lbfgs")


def coef(est):
    """Intercept and coefficients of a single-output GLM as one vector."""
    return np.r_[np.ravel(est.intercept_), np.ravel(est.coef_)]


@PROPERTY
@given(glm_data())
def test_integer_weights_equal_repeated_rows(data):
    # frequency weights: a weight of k is k copies of the row (0 drops it), for the fit and for
    # every standard error (measured: coefficients 1.5e-14, standard errors 1.1e-15 relative)
    family, X, y, rng = data
    w = rng.integers(0, 4, size=len(y))
    w[:10] = np.maximum(w[:10], 1)
    if family == "bernoulli":  # keep both classes among the rows that stay
        w[np.flatnonzero(y == 0)[0]] = w[np.flatnonzero(y == 1)[0]] = 2
    weighted = glm(family).fit(X, y, sample_weight=w.astype(float))
    repeated = glm(family).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(coef(weighted), coef(repeated), rtol=1e-10, atol=1e-12)
    a, b = weighted.inference(), repeated.inference()
    np.testing.assert_allclose(a.bse, b.bse, rtol=1e-9)
    np.testing.assert_allclose(a.llf, b.llf, rtol=1e-10)
    assert a.nobs == b.nobs == w.sum()


@PROPERTY
@given(glm_data(), st.randoms(use_true_random=False))
def test_row_order_does_not_change_the_fit(data, random):
    # measured: coefficients 3.2e-14, standard errors 6.5e-16 relative
    family, X, y, _ = data
    perm = np.array(random.sample(range(len(y)), len(y)))
    a, b = glm(family).fit(X, y), glm(family).fit(X[perm], y[perm])
    np.testing.assert_allclose(coef(a), coef(b), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.inference().bse, b.inference().bse, rtol=1e-9)


@PROPERTY
@given(glm_data(), st.floats(0.2, 5.0), st.data())
def test_scaling_an_input_scales_its_coefficient_and_se_inversely(data, c, more):
    # x_j -> c x_j is a reparameterization: beta_j -> beta_j / c, se_j -> se_j / c, and nothing
    # else moves (measured: 2.6e-14 on coefficients, 7.8e-16 on standard errors)
    family, X, y, _ = data
    j = more.draw(st.integers(0, X.shape[1] - 1))
    Xc = X.copy()
    Xc[:, j] *= c
    a, b = glm(family).fit(X, y), glm(family).fit(Xc, y)
    scale = np.ones(X.shape[1] + 1)
    scale[1 + j] = 1 / c
    np.testing.assert_allclose(coef(b), coef(a) * scale, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.inference().bse, a.inference().bse * scale, rtol=1e-9)
    np.testing.assert_allclose(b.predict(Xc), a.predict(X), rtol=1e-10, atol=1e-12)


@PROPERTY
@given(glm_data(), st.floats(-100.0, 100.0), st.sampled_from([0.0, 0.1]))
def test_a_constant_added_to_a_gaussian_response_moves_only_the_intercept(data, k, alpha):
    # with or without a ridge (which never touches the intercept); measured: slopes 1.2e-15
    # absolute, intercept 1.4e-14 absolute, standard errors 1.7e-15 relative
    _, X, y, _ = data
    a = NeuralRegressor((), solver="lbfgs", alpha=alpha).fit(X, y)
    b = NeuralRegressor((), solver="lbfgs", alpha=alpha).fit(X, y + k)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-10, atol=1e-12)
    assert b.intercept_ == pytest.approx(a.intercept_ + k, rel=0, abs=1e-10)
    np.testing.assert_allclose(b.inference().bse, a.inference().bse, rtol=1e-9)


def _fitted(kind, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if kind == "glm":
            return NeuralRegressor((), solver="lbfgs").fit(X, y)
        if kind == "net_adam":
            return NeuralRegressor((8,), max_iter=20, random_state=0).fit(X, y)
        if kind == "net_dropout":
            return NeuralRegressor((8, 4), dropout=0.3, input_dropout=0.1, max_iter=20,
                                   random_state=0).fit(X, y)
        if kind == "classifier":
            return NeuralClassifier((8,), solver="lbfgs", max_iter=30,
                                    random_state=0).fit(X, np.digitize(y, [-0.5, 0.5]))
        return ProjectionPursuitRegressor(n_terms=1).fit(X, y)


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(st.sampled_from(["glm", "net_adam", "net_dropout", "classifier", "ppr"]),
       glm_data(), st.data())
def test_a_rows_prediction_does_not_depend_on_the_other_rows(kind, data, more):
    # predict on a row alone, inside its batch, and inside a shuffled batch with other rows
    # (measured: 5e-15 relative at most, over 40 data sets of each kind)
    _, X, y, rng = data
    est = _fitted(kind, X, y)
    Xnew = rng.normal(size=(more.draw(st.integers(2, 40)), X.shape[1]))
    method = est.predict_proba if kind == "classifier" else est.predict
    batch = method(Xnew)
    perm = rng.permutation(len(Xnew))
    np.testing.assert_allclose(method(Xnew[perm]), batch[perm], rtol=1e-12, atol=1e-15)
    i = more.draw(st.integers(0, len(Xnew) - 1))
    np.testing.assert_allclose(method(Xnew[i:i + 1])[0], batch[i], rtol=1e-12, atol=1e-15)
    mixed = np.vstack([X[:5], Xnew[i:i + 1], X[5:9]])
    np.testing.assert_allclose(method(mixed)[5], batch[i], rtol=1e-12, atol=1e-15)
