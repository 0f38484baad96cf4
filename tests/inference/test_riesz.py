"""Riesz representers of average effects: closed forms, the defining identity, Monte Carlo."""

import numpy as np
import pytest
import statsmodels.api as sm

from neurostat.inference.riesz import RieszRepresenter


def _correlated(rng, n):
    L = np.array([[1.0, 0, 0], [0.6, 0.8, 0], [-0.3, 0.2, 0.9]])
    return rng.normal(size=(n, 3)) @ L.T * [2.0, 1.0, 0.5] + [1.0, -2.0, 0.0]


def test_linear_dictionary_is_the_gaussian_score():
    """With the linear dictionary the representer of every input is (S^-1 (x - xbar))_j, S the
    sample covariance (with ddof 0): -d log p / dx_j of the fitted normal."""
    X = _correlated(np.random.default_rng(0), 500)
    a = RieszRepresenter(degree=1, ridge=0.0, knots=(), ridge_grid=()).fit(X).transform(X)
    S = np.cov(X, rowvar=False, bias=True)
    np.testing.assert_allclose(a, (X - X.mean(0)) @ np.linalg.inv(S), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_defining_identity_holds_on_the_dictionary(weighted):
    """The sample identity mean(alpha_j f) = mean(d f / d x_j) is exact for every f in the
    dictionary (the normal equations of the Riesz regression), with frequency weights too."""
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.gamma(3, 1, 400), rng.normal(size=400), rng.logistic(size=400)])
    w = rng.integers(1, 4, 400).astype(float) if weighted else np.ones(400)
    rz = RieszRepresenter(degree=3, ridge=0.0, select=False).fit(X, w if weighted else None)
    a = rz.transform(X)
    m = np.average(X, axis=0, weights=w)
    for j in range(3):
        for f, df in [(X[:, j], np.ones(400)), ((X[:, j] - 1) ** 3, 3 * (X[:, j] - 1) ** 2),
                      (X[:, (j + 1) % 3], np.zeros(400)), (np.ones(400), np.zeros(400)),
                      (X[:, j] ** 2 - m[j], 2 * X[:, j])]:
            assert np.average(a[:, j] * f, weights=w) == pytest.approx(
                np.average(df, weights=w), rel=1e-8, abs=1e-8)


def test_dictionary_is_chosen_by_cross_validated_riesz_loss():
    """Gaussian inputs keep the linear dictionary (exact for them); a skewed input with enough
    rows gets the spline; a small sample of it the smaller dictionaries."""
    rng = np.random.default_rng(4)
    X = np.column_stack([rng.normal(size=4000), rng.gamma(2, 1, 4000)])
    rz = RieszRepresenter().fit(X)
    assert rz.dictionary_size_[1] == 3 + 2 + 5  # linear + cubic powers + 5 knots
    assert rz.dictionary_size_[0] == 3  # 1, z_0, z_1: linear
    small = RieszRepresenter().fit(X[:120])
    assert small.dictionary_size_[0] == 3 and small.dictionary_size_[1] <= 5


def test_monte_carlo_functional_identity_for_smooth_functions():
    """E[d f / d x_j] = E[alpha_j f] for functions outside the dictionary, on a large sample
    of non-gaussian, correlated inputs (logistic and gamma marginals): within 2% (cubic powers
    without the spline knots were 10% off on the gamma input)."""
    rng = np.random.default_rng(2)
    n = 400_000
    X = np.column_stack([rng.normal(1, 2, n), rng.logistic(0, 1, n), rng.gamma(6, 1, n)])
    X[:, 1] += 0.5 * X[:, 0]
    a = RieszRepresenter().fit(X).transform(X)

    def f(X):
        return np.sin(X[:, 0]) + X[:, 1] ** 2 / 5 + np.tanh(X[:, 2] - 6) * X[:, 0] * 0.3

    for j in range(3):
        h = 1e-5
        Xp, Xm = X.copy(), X.copy()
        Xp[:, j] += h
        Xm[:, j] -= h
        target = np.mean((f(Xp) - f(Xm)) / (2 * h))
        assert np.mean(a[:, j] * f(X)) == pytest.approx(target, rel=0.02)


def test_binary_input_representer_is_the_propensity_weighting():
    """For a binary input the representer is (D / pi - (1 - D) / (1 - pi)) / (hi - lo) with pi
    the logistic propensity given the other inputs (statsmodels' Logit to 1e-3), and
    E[alpha f] is the average discrete change per unit (Monte Carlo, 3%)."""
    rng = np.random.default_rng(3)
    n = 200_000
    Z = rng.normal(size=(n, 2))
    pi = 1 / (1 + np.exp(-(0.3 + 0.8 * Z[:, 0] - 0.5 * Z[:, 1])))
    D = (rng.random(n) < pi).astype(float)
    X = np.column_stack([Z[:, 0], 2.0 + 3.0 * D, Z[:, 1]])  # binary coded 2 / 5
    rz = RieszRepresenter().fit(X)
    assert rz.kinds_ == ["continuous", "binary", "continuous"]
    assert (rz.low_[1], rz.high_[1]) == (2.0, 5.0)
    ref = sm.Logit(D, sm.add_constant(Z)).fit(disp=0)
    Zs = (Z - Z.mean(0)) / Z.std(0)
    p_ref = ref.predict(sm.add_constant(Z))
    p_ours = 1 / (1 + np.exp(-(np.column_stack([np.ones(n), Zs]) @ rz.coef_[1])))
    np.testing.assert_allclose(p_ours, p_ref, atol=1e-3)  # a ridge of 1e-4 per row
    a = rz.transform(X)[:, 1]

    def f(X):
        return np.exp(0.2 * X[:, 1]) * (1 + X[:, 0] ** 2) + X[:, 2]

    Xh, Xl = X.copy(), X.copy()
    Xh[:, 1], Xl[:, 1] = 5.0, 2.0
    target = np.mean(f(Xh) - f(Xl)) / 3.0
    assert np.mean(a * f(X)) == pytest.approx(target, rel=0.03)


def test_constant_and_separated_inputs():
    """A constant input gets the zero representer (its effect is the plug-in); a binary input
    perfectly predicted by another (separation) still gets finite, clipped weights."""
    rng = np.random.default_rng(0)
    n = 200
    x = rng.normal(size=n)
    d = (x > 0).astype(float)  # separated by x
    X = np.column_stack([x, np.zeros(n), d])
    r = RieszRepresenter().fit(X)
    A = r.transform(X)
    assert r.kinds_ == ["continuous", "constant", "binary"]
    assert np.all(A[:, 1] == 0) and np.all(np.isfinite(A))
    # clipped propensities bound the binary weights by 1 / clip
    assert np.abs(A[:, 2]).max() <= 1 / r.clip + 1e-9
