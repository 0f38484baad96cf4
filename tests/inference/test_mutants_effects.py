"""Checks that kill the surviving mutants of ``neurostat/inference/effects.py``
(``tests/MUTATION.md``): the row-blocked autograd path of ``average_derivatives`` against the
closed form of a one-hidden-layer net, and which effects of an L1-penalized fit have no
standard error."""

import warnings

import numpy as np

import neurostat.inference.effects as effects
from neurostat import NeuralClassifier, NeuralRegressor


def _small_blocks(n, n_out, width):
    return [slice(s, min(n, s + 7)) for s in range(0, n, 7)]


def test_row_blocked_autograd_effects_equal_the_closed_form(monkeypatch):
    """``average_derivatives`` of a (5,) tanh classifier at new rows: the closed form
    (``mlp_effects``, used without weights) against autograd's Jacobians summed over row blocks
    (used with weights; unit weights here, blocks of 7 rows so that 50 rows take 8 blocks).
    Effects and their Jacobian in theta agree to 1e-12; a block sum that kept only the last
    block, subtracted blocks or evaluated them at the training rows does not."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + np.tanh(2 * X[:, 1]) + rng.logistic(size=200) > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = NeuralClassifier((5,), activation="tanh", solver="lbfgs", alpha=1e-2,
                               max_iter=300, random_state=0).fit(X, y)
        lik = est.inference(effects="delta").likelihood
    Xn = rng.normal(size=(50, 3))
    f0, D0 = effects.average_derivatives(lik, lik.theta, Xn)
    monkeypatch.setattr(effects, "_row_blocks", _small_blocks)
    f1, D1 = effects.average_derivatives(lik, lik.theta, Xn, sample_weight=np.ones(50))
    np.testing.assert_allclose(f1, f0, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(D1, D0, rtol=1e-12, atol=1e-14)
    # weights that are not all one: the weighted mean of per-row derivatives (central
    # differences of the decision function)
    w = rng.integers(1, 4, 50).astype(float)
    f2, _ = effects.average_derivatives(lik, lik.theta, Xn, sample_weight=w)
    h = 1e-5
    slopes = [w @ ((est.decision_function(Xn + h * e) - est.decision_function(Xn - h * e))
                   / (2 * h)) / w.sum() for e in np.eye(3)]
    icpt = w @ est.decision_function(Xn) / w.sum() - np.dot(slopes, w @ Xn / w.sum())
    np.testing.assert_allclose(f2, [icpt, *slopes], rtol=1e-7, atol=1e-9)


def test_a_single_lasso_zero_has_no_standard_error():
    """A lasso GLM with exactly one coefficient at zero: that coefficient's SE is NaN (it is
    not estimated), the others' are finite and positive."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = X[:, 0] + 0.5 * X[:, 1] + 0.02 * X[:, 2] + 0.3 * X[:, 3] + rng.normal(size=300)
    est = NeuralRegressor((), solver="lbfgs", alpha=0.03, l1_ratio=1.0).fit(X, y)
    coef = est.coefs_[0].ravel()
    assert np.flatnonzero(coef == 0).tolist() == [2]
    bse = est.inference().bse
    assert np.isnan(bse["x2"])
    assert np.all(np.isfinite(bse.drop("x2"))) and np.all(bse.drop("x2") > 0)


def test_an_input_with_some_lasso_zero_weights_keeps_its_standard_error():
    """A (3,) net under an L1 penalty whose first layer keeps some weights of x0 and x1 and
    none of x3: x0 and x1 (some weights at zero, some estimated) get finite SEs, x3 (every
    weight at zero) none."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = np.tanh(X[:, 0]) + 0.5 * X[:, 1] + 0.3 * rng.normal(size=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = NeuralRegressor((3,), activation="tanh", solver="lbfgs", alpha=0.02,
                              l1_ratio=1.0, max_iter=2000, random_state=0).fit(X, y)
        bse = est.inference(effects="delta").bse
    W = est.coefs_[0]  # (inputs, units)
    assert np.all(W[3] == 0) and np.any(W[0] == 0) and np.any(W[0] != 0)
    assert np.any(W[1] == 0) and np.any(W[1] != 0)
    assert np.isnan(bse["x3"])
    assert np.isfinite(bse["x0"]) and np.isfinite(bse["x1"]) and bse["x0"] > 0


def test_row_blocks_partition_the_rows():
    """The row blocks of the autograd path cover every row exactly once, in order (an
    overlapping or short cover would count rows twice or not at all), in blocks of at most
    ``max(64, 2**22 / (outputs x width))`` rows."""
    for n, n_out, width in ((10, 3, 5), (100_000, 21, 64), (5_000, 1_000, 1_000), (1, 1, 1)):
        blocks = effects._row_blocks(n, n_out, width)
        rows = np.concatenate([np.arange(n)[b] for b in blocks])
        np.testing.assert_array_equal(rows, np.arange(n))
        size = max(64, (1 << 22) // (n_out * width))
        assert all(b.stop - b.start <= size for b in blocks)
        assert len(blocks) == -(-n // size)
