"""Every net gets inference: nets over the dense-Hessian limit, conv nets and wide Cox nets,
checked against the case bootstrap of the same fit."""

import warnings

import numpy as np
import pytest

import neurostat.inference.covariance as covariance
from neurostat import ConvNetClassifier, NeuralClassifier, NeuralCoxRegressor
from neurostat.datasets import load_digit_pairs


@pytest.fixture
def small_limit(monkeypatch):
    """A dense-Hessian limit of 60 parameters, so a small net takes the large-net path."""
    monkeypatch.setattr(covariance, "MAX_HESSIAN_PARAMS", 60)


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    eta = X[:, 0] - 0.6 * np.tanh(2 * X[:, 1])
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return X, y


@pytest.mark.slow
def test_net_over_the_dense_limit_has_inference_checked_against_the_bootstrap(small_limit):
    """A (16,) net (97 parameters, over the patched limit of 60) gets cross-fitted effects and
    the output layer's covariance (last-layer Laplace): no p x p matrix. Its effect SEs agree
    with 40 case-bootstrap refits within the bootstrap's own error (relative sd of a bootstrap
    SE at B=40 is about 11%: a band of [0.6, 1.6])."""
    X, y = _data()
    est = NeuralClassifier((16,), activation="tanh", solver="lbfgs", alpha=1e-2, max_iter=300,
                           random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = est.inference(random_state=0)
        boot = est.inference(cov_type="bootstrap", n_bootstrap=40, random_state=0)
    assert res.cov_theta is None and res.statistics.cov_subspace is not None
    idx, cov = res.statistics.cov_subspace
    assert cov.shape == (17, 17) and len(idx) == 17  # 16 output weights + 1 bias
    assert "last-layer" in res.statistics.method
    ratio = res.bse.values[1:3] / boot.bse.values[1:3]  # the two real effects
    assert np.all((0.6 < ratio) & (ratio < 1.6)), ratio
    text = str(res.summary())
    assert "Tests per input" in text
    frame = res.get_prediction(X[:5]).summary_frame()
    assert np.all(frame["mean_se"] > 0) and np.all(np.isfinite(frame["mean_se"]))
    with pytest.raises(ValueError, match="effects='crossfit'"):
        est.inference(effects="delta")


def _small_conv_net():
    X, y = load_digit_pairs(0, 1)
    X, y = X[:240] / 16.0, y[:240]
    est = ConvNetClassifier(conv_layers=((4, 3), "pool"), dense_layers=(8,), max_iter=30,
                            learning_rate_init=1e-2, alpha=1e-3, random_state=0).fit(X, y)
    return est


def test_conv_net_prints_a_summary():
    """A small ConvNetClassifier on 8x8 digits (0 vs 1) prints a summary whose header
    describes the convolutions, with finite positive SEs for every pixel that varies."""
    est = _small_conv_net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = est.inference(random_state=0)
    text = str(res.summary())
    assert "Convolutions:" in text and "conv 4x3x3, pool" in text and "none (GLM)" not in text
    central = [f"x{8 * r + c}" for r in (3, 4) for c in (3, 4)]
    assert np.all(np.isfinite(res.bse[central])) and np.all(res.bse[central] > 0)


@pytest.mark.xfail(strict=True, reason=(
    "a pixel's average derivative is not root-n estimable without the model: images lie near a "
    "low-dimensional set, so a pixel's Riesz representer has sd 40-250 and the cross-fitted "
    "SEs are 13-42x the bootstrap's (the delta method's 4-9x); calibrated conv-net effects are "
    "open in issue 12"))
@pytest.mark.slow
def test_conv_net_summary_against_the_bootstrap():
    """For the four central pixels the default SEs agree with 30 bootstrap refits within
    [0.5, 2] (B=30, and pixel effects of a conv net are noisy)."""
    est = _small_conv_net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = est.inference(random_state=0)
        boot = est.inference(cov_type="bootstrap", n_bootstrap=30, random_state=0)
    central = [f"x{8 * r + c}" for r in (3, 4) for c in (3, 4)]
    ratio = res.bse[central].values / boot.bse[central].values
    assert np.all((0.5 < ratio) & (ratio < 2.0)), ratio


@pytest.mark.slow
def test_wide_cox_net_summary_against_the_bootstrap():
    """A (64,) Cox net prints its summary; the delta-method SEs of its log-hazard effects agree
    with 30 bootstrap refits within [0.5, 2]."""
    rng = np.random.default_rng(3)
    n = 300
    X = rng.normal(size=(n, 3))
    t = rng.exponential(np.exp(-(0.8 * X[:, 0] - 0.5 * np.tanh(X[:, 1]))))
    c = rng.exponential(2.0, n)
    y = np.column_stack([np.minimum(t, c), t <= c])
    est = NeuralCoxRegressor((64,), activation="tanh", solver="lbfgs", alpha=1e-2,
                             max_iter=300, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = est.inference()
        boot = est.inference(cov_type="bootstrap", n_bootstrap=30, random_state=0)
    assert "exp(coef)" in str(res.summary())
    ratio = res.bse.values[:2] / boot.bse.values[:2]
    assert np.all((0.5 < ratio) & (ratio < 2.0)), ratio
