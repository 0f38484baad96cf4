"""ProjectionPursuitRegressor: the scikit-learn contract, direction recovery, closed forms."""

import matplotlib
import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from neurostat import ProjectionPursuitRegressor, RidgeFunctionDisplay

matplotlib.use("Agg")

_WINDOWS = (
    "supsmu's windows count observations (as Friedman's and R's), so a weight of 2 is not a "
    "repeated row; weights scale each point's pull within its window"
)


@parametrize_with_checks(
    [ProjectionPursuitRegressor(), ProjectionPursuitRegressor(n_terms=1, smoother="spline")],
    expected_failed_checks=lambda est: {
        "check_sample_weight_equivalence_on_dense_data": _WINDOWS
    } if est.smoother == "supsmu" else {
        "check_sample_weight_equivalence_on_dense_data": "the spline's 20 knots sit at quantiles "
        "of the unique projections, which dropping zero-weight rows moves, and the Gauss-Newton "
        "derivative's difference width uses rank quartiles, which repeating rows moves",
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# R 4.2.2, stats::ppr on deterministic data (no random numbers, so no generator to match):
#   i <- 1:150
#   X <- cbind(sin(0.7 * i), cos(1.3 * i + 1), sin(2.1 * i + 0.5) * 1.5)
#   a <- c(0.6, -0.48, 0.64); a <- a / sqrt(sum(a^2))
#   y <- exp(0.8 * drop(X %*% a)) + 0.05 * sin(17 * i)
#   m <- ppr(X, y, nterms = 1, max.terms = 1); m$alpha; fitted(m)[seq(1, 150, 10)]
#   m2 <- ppr(X, y, nterms = 1, max.terms = 1, sm.method = "spline", df = 5)   # same for m2
R_PPR_ALPHA = [0.6003083828, -0.4816845867, 0.6384432665]
R_PPR_FITTED = [2.611051, 1.057471, 3.450816, 2.154296, 0.479881, 1.212017, 0.693029, 0.305994,
                1.439777, 1.010438, 0.59357, 2.181544, 0.850097, 0.437262, 1.593918]
R_PPR_SPLINE_ALPHA = [0.599741379, -0.4848067697, 0.6366103002]
R_PPR_SPLINE_FITTED = [2.657293, 1.064953, 3.397743, 2.186925, 0.49046, 1.217492, 0.68174,
                       0.287379, 1.43665, 1.003469, 0.579462, 2.203798, 0.835938, 0.437224,
                       1.601153]


@pytest.mark.parametrize(
    "smoother, alpha, fitted",
    [("supsmu", R_PPR_ALPHA, R_PPR_FITTED), ("spline", R_PPR_SPLINE_ALPHA, R_PPR_SPLINE_FITTED)],
)
def test_single_term_matches_r(smoother, alpha, fitted):
    i = np.arange(1, 151)
    X = np.column_stack([np.sin(0.7 * i), np.cos(1.3 * i + 1), 1.5 * np.sin(2.1 * i + 0.5)])
    y = np.exp(0.8 * X @ _unit([0.6, -0.48, 0.64])) + 0.05 * np.sin(17 * i)
    est = ProjectionPursuitRegressor(n_terms=1, smoother=smoother, df=5).fit(X, y)
    # same direction up to sign (the Gauss-Newton paths and stopping points differ slightly)
    assert abs(est.directions_[0] @ np.asarray(alpha)) > 0.9999
    # fitted values within 0.02 (sd(y) = 0.85); the spline's knots differ from R's
    np.testing.assert_allclose(est.predict(X)[::10], fitted, rtol=0, atol=0.02)


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("smoother", ["supsmu", "spline", "gcvspline"])
def test_single_index_direction_recovered(smoother):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    a = _unit([1, 2, 0, 0, -1])
    y = np.sin(X @ a) + 0.1 * rng.normal(size=300)
    est = ProjectionPursuitRegressor(n_terms=1, smoother=smoother).fit(X, y)
    assert abs(est.directions_[0] @ a) > 0.995
    # the ridge function is sin up to sign and scale: correlation with the truth
    z = X @ a
    g = est.ridge_values(X)[:, 0] * est.beta_[0]
    assert np.corrcoef(g, np.sin(z))[0, 1] > 0.99


def test_symmetric_ridge_found_without_a_linear_signal():
    # y = (a . x)^2 has no linear trend in x (least squares sees nothing); the principal Hessian
    # direction start finds a (from the least-squares start alone, seeds 4 and 5 end at
    # |cos| 0.15 and 0.09)
    for seed in (4, 5):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(300, 6))
        a = _unit([0, 1, -1, 2, 0, 0])
        y = (X @ a) ** 2 + 0.1 * rng.normal(size=300)
        est = ProjectionPursuitRegressor(n_terms=1).fit(X, y)
        assert abs(est.directions_[0] @ a) > 0.995
        assert est.score(X, y) > 0.98


def test_two_term_additive_model_directions_recovered():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 4))
    a1, a2 = _unit([1, 1, 0, 0]), _unit([0, 0, 1, -1])
    y = (X @ a1) ** 2 + 2 * np.tanh(2 * X @ a2) + 0.1 * rng.normal(size=400)
    est = ProjectionPursuitRegressor(n_terms=2, max_terms=3).fit(X, y)
    cos = np.abs(est.directions_ @ np.column_stack([a1, a2]))
    # each true direction is matched by one fitted direction, in either order
    assert max(cos[0, 0] * cos[1, 1], cos[0, 1] * cos[1, 0]) > 0.98**2
    resid = y - est.predict(X)
    assert np.var(resid) < 3 * 0.1**2


def test_noise_free_linear_model_is_exact():
    # a straight line is reproduced exactly by every running line, so one term is the OLS fit
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, size=(100, 3))
    b = np.array([0.5, -2.0, 1.0])
    y = 3 + X @ b
    est = ProjectionPursuitRegressor(n_terms=2).fit(X, y)
    # the first term fits exactly, so no second term is added
    assert est.n_terms_ == 1 and est.directions_.shape == (1, 3)
    assert abs(est.directions_[0] @ _unit(b)) == pytest.approx(1, abs=1e-8)
    np.testing.assert_allclose(est.predict(X), y, atol=1e-6)
    Xn = rng.uniform(-0.9, 0.9, size=(20, 3))
    np.testing.assert_allclose(est.predict(Xn), 3 + Xn @ b, atol=1e-2)


def test_fitted_structure_and_gofn():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 4))
    y = X[:, 0] * X[:, 1] + 0.1 * rng.normal(size=200)
    w = rng.uniform(0.5, 2.0, 200)
    est = ProjectionPursuitRegressor(n_terms=2, max_terms=4).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(np.linalg.norm(est.directions_, axis=1), 1, atol=1e-12)
    np.testing.assert_allclose(est.transform(X), X @ est.directions_.T, atol=1e-12)
    F = est.ridge_values(X)
    # ridge functions standardized on the training data: weighted mean 0, weighted variance 1
    np.testing.assert_allclose(w @ F / w.sum(), 0, atol=1e-10)
    np.testing.assert_allclose(w @ F**2 / w.sum(), 1, atol=1e-10)
    np.testing.assert_allclose(est.predict(X), est.intercept_ + F @ est.beta_, atol=1e-12)
    assert est.intercept_ == pytest.approx(np.average(y, weights=w), abs=1e-12)
    # gofn: 0 below n_terms; at n_terms, n times the weighted mean squared residual of the final
    # model (R's definition: in R, ppr(x, y, weights = w)$gofn[nterms] equals
    # length(y) * sum(w * (y - fitted)^2) / sum(w))
    assert est.gofn_.shape == (4,) and est.gofn_[0] == 0
    mse_w = w @ (y - est.predict(X)) ** 2 / w.sum()
    assert est.gofn_[1] == pytest.approx(200 * mse_w, rel=1e-10)
    assert np.all(est.gofn_[1:] > 0)
    # x0 * x1 = ((x0 + x1)^2 - (x0 - x1)^2) / 4: two quadratic ridges along (1, +-1, 0, 0)
    cos = np.abs(est.directions_ @ np.column_stack([_unit([1, 1, 0, 0]), _unit([1, -1, 0, 0])]))
    assert np.sort(cos.max(axis=1)).min() > 0.97
    # most important term first
    assert abs(est.beta_[0]) >= abs(est.beta_[1])


def test_multi_response_shares_directions():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 3))
    g = np.sin(X @ _unit([1, -1, 1]))
    Y = np.column_stack([g, -2 * g + 1])
    est = ProjectionPursuitRegressor(n_terms=1).fit(X, Y)
    assert est.beta_.shape == (2, 1) and est.intercept_.shape == (2,)
    # exactly proportional responses: the loadings keep the ratio -2
    assert est.beta_[1, 0] / est.beta_[0, 0] == pytest.approx(-2, rel=1e-8)
    # same fit as the first response alone, up to where the Gauss-Newton steps stop (tol is
    # relative to differently scaled targets)
    single = ProjectionPursuitRegressor(n_terms=1).fit(X, g)
    np.testing.assert_allclose(est.predict(X)[:, 0], single.predict(X), atol=1e-3)
    assert abs(est.directions_[0] @ single.directions_[0]) > 1 - 1e-6


@pytest.mark.parametrize("optlevel", [0, 1, 2, 3])
def test_optlevels_fit_and_pruning_never_hurts_the_forward_fit_much(optlevel):
    rng = np.random.default_rng(5)
    X = rng.uniform(size=(200, 5))
    y = 10 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20 * (X[:, 2] - 0.5) ** 2 + 10 * X[:, 3]
    est = ProjectionPursuitRegressor(n_terms=2, max_terms=4, optlevel=optlevel).fit(X, y)
    assert np.isfinite(est.gofn_).all() and est.directions_.shape == (2, 5)
    # with backfitting (optlevel > 0), the best 3-term model fits better than the best 2-term one
    if optlevel > 0:
        assert est.gofn_[2] < est.gofn_[1]
    assert est.score(X, y) > 0.8


def test_optlevel_1_keeps_forward_directions():
    # level 1 refits ridge functions and loadings only: with max_terms == n_terms the
    # directions equal those of level 0, which never refits
    rng = np.random.default_rng(6)
    X = rng.normal(size=(150, 3))
    y = X[:, 0] ** 2 + np.sin(X[:, 1] + X[:, 2])
    d0 = ProjectionPursuitRegressor(n_terms=2, optlevel=0).fit(X, y).directions_
    d1 = ProjectionPursuitRegressor(n_terms=2, optlevel=1).fit(X, y).directions_
    np.testing.assert_allclose(np.abs(d0 @ d1.T).max(axis=1), 1, atol=1e-12)


def test_bad_parameters_raise():
    X, y = np.random.default_rng(0).normal(size=(30, 2)), np.arange(30.0)
    with pytest.raises(ValueError, match="max_terms"):
        ProjectionPursuitRegressor(n_terms=3, max_terms=2).fit(X, y)
    with pytest.raises(ValueError, match="smoother"):
        ProjectionPursuitRegressor(smoother="loess").fit(X, y)
    with pytest.raises(ValueError, match="bass"):
        ProjectionPursuitRegressor(bass=11).fit(X, y)
    with pytest.raises(ValueError, match="zero"):
        ProjectionPursuitRegressor().fit(X, y, sample_weight=np.zeros(30))


def test_ridge_function_display():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, 3))
    y = np.sin(X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.normal(size=120)
    est = ProjectionPursuitRegressor(n_terms=2).fit(X, y)
    disp = RidgeFunctionDisplay.from_estimator(est, X, y)
    assert len(disp.axes_) == 2 and disp.figure_ is disp.ax_.figure
    T = est.ridge_values(X) * est.beta_
    resid = y - est.predict(X)
    for m, ax in enumerate(disp.axes_):
        line = ax.get_lines()[0]
        order = np.argsort(est.transform(X)[:, m])
        np.testing.assert_allclose(line.get_ydata(), T[order, m], atol=1e-12)
        pts = ax.collections[0].get_offsets()
        np.testing.assert_allclose(pts[:, 1], resid + T[:, m], atol=1e-10)
    import matplotlib.pyplot as plt

    plt.close(disp.figure_)
    with pytest.raises(ValueError, match="one per term"):
        _, ax = plt.subplots()
        RidgeFunctionDisplay.from_estimator(est, X, ax=ax)
    plt.close("all")
