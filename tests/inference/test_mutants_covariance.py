"""symmetric_pinv against numpy, and the active set under a ridge, written against the
survivors of a mutation run (tests/MUTATION.md): the inverse of a badly scaled positive-definite
matrix, the pseudo-inverse of a singular one on the unit-diagonal scale with its documented cut
(eigenvalues above 1e-10 of the largest), the info dict and the warning's words."""

import warnings

import numpy as np
import pytest

from neurostat.inference.covariance import RCOND, InferenceWarning, symmetric_pinv


def _spd(rng, p, scales):
    B = rng.normal(size=(p + 3, p))
    return (B.T @ B) * np.outer(scales, scales)


def test_positive_definite_matrix_in_any_units_is_inverted_exactly():
    rng = np.random.default_rng(0)
    scales = np.array([1e-4, 1.0, 30.0, 1e5])
    A = _spd(rng, 4, scales)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on the fast path
        M = A + 1e-3 * np.triu(A, 1)  # not symmetric: it is symmetrized first
        inv, info = symmetric_pinv(M)
    A = 0.5 * (M + M.T)
    np.testing.assert_allclose(inv, np.linalg.inv(A), rtol=1e-9)
    np.testing.assert_allclose(inv, inv.T, rtol=1e-14)
    d = np.sqrt(np.diag(A))
    As = A / np.outer(d, d)
    cond1 = np.linalg.cond(As, 1)
    assert cond1 / 3 <= info["condition"] <= cond1 * 1.0001  # LAPACK's lower estimate
    assert info["singular"] is False and info["rank"] == 4
    assert np.isnan(info["min_eig"]) and np.isnan(info["max_eig"])


def _reference_pinv(A):
    d = np.sqrt(np.where(np.diag(A) > 0, np.diag(A), 1.0))
    As = A / np.outer(d, d)
    ev, V = np.linalg.eigh(As)
    keep = ev > RCOND * np.abs(ev).max()
    return (V[:, keep] / ev[keep]) @ V[:, keep].T / np.outer(d, d), ev, keep


def test_singular_matrix_gets_the_unit_diagonal_pseudo_inverse_and_a_warning():
    rng = np.random.default_rng(1)
    B = rng.normal(size=(6, 3)) * np.array([1e-3, 1.0, 1e3])
    B = np.c_[B, B[:, 0] * 2.0]  # a collinear column: rank 3 of 4
    A = B.T @ B
    ref, ev, keep = _reference_pinv(A)
    with pytest.warns(InferenceWarning) as rec:
        inv, info = symmetric_pinv(A, what="information matrix", cause="a duplicated column")
    msg = str(rec[0].message)
    assert msg.startswith("The information matrix is singular or ill-conditioned "
                          "(eigenvalues of its unit-diagonal scaling from ")
    assert "using its pseudo-inverse. Likely cause: a duplicated column. Standard errors of " \
        "unidentified directions are not meaningful; consider alpha > 0, fewer hidden units " \
        "or cov_type='bootstrap'." in msg
    assert f" to {ev[-1]:.3g}); using" in msg  # the smallest is round-off here
    np.testing.assert_allclose(inv, ref, rtol=1e-7, atol=1e-12 * np.abs(ref).max())
    assert info["singular"] is True and info["rank"] == 3 == keep.sum()
    assert info["min_eig"] == pytest.approx(ev[0], abs=1e-12)
    assert info["max_eig"] == pytest.approx(ev[-1], rel=1e-12)
    # the smallest eigenvalue is round-off of either sign (LAPACK's and numpy's differ), so
    # the condition is infinite or the ratio of the two reported eigenvalues, past the cut
    expected = (info["max_eig"] / info["min_eig"] if info["min_eig"] > 0 else np.inf)
    assert info["condition"] == pytest.approx(expected) and info["condition"] > 1e10
    with pytest.warns(InferenceWarning, match="Likely cause: the network has more parameters "
                                              "than the data identify"):
        symmetric_pinv(A)  # the default cause and the default name
    with pytest.warns(InferenceWarning, match="^The Hessian is singular"):
        symmetric_pinv(A)


def test_ill_conditioned_but_positive_matrix_reports_its_condition():
    """Positive definite but past the cut (condition above 1e10 on the unit-diagonal scale):
    the eigen path, a finite condition equal to the eigenvalue ratio, the small direction cut."""
    Q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))
    A = (Q * np.array([1e-12, 0.5, 2.0])) @ Q.T
    ref, ev, keep = _reference_pinv(A)
    with pytest.warns(InferenceWarning):
        inv, info = symmetric_pinv(A)
    assert ev[0] > 0 and keep.sum() == 2
    assert info["condition"] == pytest.approx(ev[-1] / ev[0], rel=1e-6)
    np.testing.assert_allclose(inv, ref, rtol=1e-7, atol=1e-12 * np.abs(ref).max())


def test_zero_diagonal_and_empty_matrices():
    """A parameter with no information at all (a zero row) is scaled by 1, not divided by
    zero; a matrix with no parameters returns an empty inverse."""
    A = np.diag([4.0, 0.0, 9.0])
    with pytest.warns(InferenceWarning):
        inv, info = symmetric_pinv(A)
    np.testing.assert_allclose(inv, np.diag([0.25, 0.0, 1 / 9]), atol=1e-15)
    assert info["rank"] == 2
    inv, info = symmetric_pinv(np.zeros((0, 0)))
    assert inv.shape == (0, 0) and info["rank"] == 0 and info["singular"] is False
    assert np.isnan(info["condition"]) and np.isnan(info["min_eig"])
    assert np.isnan(info["max_eig"])


def test_a_ridge_keeps_an_exactly_zero_weight_estimated():
    """Only an L1 penalty fixes zero weights (no SE). Under a pure ridge an input that is
    all zeros keeps its coefficient at exactly 0 (L-BFGS starts GLMs at zero slopes) and is
    still estimated. Its estimate is 0 whatever y is, so its sampling SD is 0, and the
    penalized sandwich ``A^-1 F A^-1`` says exactly that (not NaN, as for a lasso zero)."""
    from neurostat import NeuralRegressor

    rng = np.random.default_rng(3)
    X = np.c_[rng.normal(size=200), np.zeros(200)]
    y = X[:, 0] + rng.normal(size=200)
    res = NeuralRegressor((), solver="lbfgs", alpha=0.1).fit(X, y).inference()
    assert res.params.iloc[-1] == 0.0
    assert res.bse.iloc[-1] == 0.0 and np.isfinite(res.bse).all()
