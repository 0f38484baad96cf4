"""The Riesz representers' propensity model against scikit-learn's logistic regression, and the
held-out choice of the ridge.

Written to kill the mutants of ``neurostat/inference/riesz.py`` that survived
``make mutation`` (tests/MUTATION.md): the binary input's propensity is the ridge-penalized
logistic regression on the standardized other inputs with penalty ``1e-4 * sum(w) / 2 *
||beta_-0||^2`` (intercept free), which is scikit-learn's ``LogisticRegression(C=1 / ridge)``;
the existing test compares it with an unpenalized Logit at 1e-3 only.
"""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from neurostat.inference.riesz import RieszRepresenter


def _standardized(X, w):
    m = np.average(X, axis=0, weights=w)
    s = np.sqrt(np.average((X - m) ** 2, axis=0, weights=w))
    return (X - m) / s


@pytest.mark.parametrize("weighted", [False, True])
def test_propensity_is_sklearn_ridge_logistic_on_standardized_inputs(weighted):
    """An unbalanced binary input (about 8% treated, propensities up to 0.99) so that Newton
    with a wrong curvature does not converge in the allotted steps; frequency weights enter
    the fit, the ridge and the standardization."""
    rng = np.random.default_rng(7)
    n = 300
    Z = rng.normal(size=(n, 2))
    pi = 1 / (1 + np.exp(-(-3.0 + 1.5 * Z[:, 0] - 1.0 * Z[:, 1])))
    D = (rng.random(n) < pi).astype(float)
    X = np.column_stack([Z[:, 0], 1.0 + 2.0 * D, Z[:, 1] * 3 + 1])
    w = rng.integers(1, 5, n).astype(float) if weighted else None
    rz = RieszRepresenter().fit(X, w)
    assert rz.kinds_ == ["continuous", "binary", "continuous"]
    ww = np.ones(n) if w is None else w
    others = _standardized(X, ww)[:, [0, 2]]
    ridge = 1e-4 * ww.sum()
    ref = LogisticRegression(C=1 / ridge, tol=1e-12, max_iter=10_000).fit(others, D, ww)
    np.testing.assert_allclose(rz.coef_[1], np.r_[ref.intercept_, ref.coef_[0]], rtol=1e-6,
                               atol=1e-8)
    # the representer at those propensities, clipped to [0.01, 0.99]
    p = np.clip(ref.predict_proba(others)[:, 1], 0.01, 0.99)
    alpha = (D / p - (1 - D) / (1 - p)) / 2.0
    np.testing.assert_allclose(rz.transform(X)[:, 1], alpha, rtol=1e-6)


def test_clip_bounds_the_binary_weights_where_propensities_are_extreme():
    rng = np.random.default_rng(8)
    n = 400
    z = rng.normal(size=n)
    D = (rng.random(n) < 1 / (1 + np.exp(-6 * z))).astype(float)
    X = np.column_stack([z, D])
    zs = (z - z.mean()) / z.std()
    ref = LogisticRegression(C=1 / (1e-4 * n), tol=1e-12, max_iter=10_000).fit(zs[:, None], D)
    raw = ref.predict_proba(zs[:, None])[:, 1]
    for clip in (0.01, 0.1):
        assert np.sum((raw < clip) | (raw > 1 - clip)) > 20  # the clip binds on many rows
        p = np.clip(raw, clip, 1 - clip)
        a = RieszRepresenter(clip=clip).fit(X).transform(X)[:, 1]
        np.testing.assert_allclose(a, D / p - (1 - D) / (1 - p), rtol=1e-6)


def test_held_out_loss_chooses_a_ridge_for_many_correlated_inputs():
    """40 inputs driven by two factors on 90 rows: the unpenalized representer of one input is
    mostly noise, the held-out Riesz loss picks a ridge from the grid, and that ridge gives a
    smaller held-out loss on fresh rows than the smallest one does."""
    rng = np.random.default_rng(9)

    L = rng.normal(size=(2, 40))

    def draw_inputs(n):
        F = rng.normal(size=(n, 2))
        return F @ L + 0.3 * rng.normal(size=(n, 40))

    X, fresh = draw_inputs(90), draw_inputs(20_000)
    chosen = RieszRepresenter(degree=1, knots=()).fit(X)
    assert chosen.ridge_[0] in (1e-3, 1e-2, 1e-1, 1.0)
    plain = RieszRepresenter(degree=1, knots=(), ridge_grid=()).fit(X)
    assert plain.ridge_[0] == 1e-6

    def loss(rz):
        # the Riesz loss mean(a^2 - 2 da/dx_0) on fresh rows; a linear representer's
        # derivative in x_0 is its constant slope, read off by a finite difference
        a = rz.transform(fresh)[:, 0]
        h = fresh.copy()
        h[:, 0] += 1e-3
        da = (rz.transform(h)[:, 0] - a) / 1e-3
        return np.mean(a**2 - 2 * da)

    assert loss(chosen) < loss(plain)
