"""The heteroscedastic gaussian (family="gaulss"): intervals that widen where the noise does.

Data with known heteroscedastic noise, ``y = 1 + 0.5 x + exp(-1 + 0.7 x) e``, x uniform on
[-2, 2]: the 90% prediction intervals of ``get_prediction(X).summary_frame(obs=True)`` cover
90% of new observations both where the noise is small (x < -1) and where it is large (x > 1),
where a homoscedastic gaussian covers about 100% and 70%; and over Monte-Carlo replications
the standard errors match the spread of the estimates and the 95% intervals cover the truth.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from neurostat import NeuralRegressor
from neurostat.inference import InferenceWarning

TRUTH = np.array([1.0, 0.5, -1.0, 0.7])  # mean: intercept, slope; log sd: intercept, slope


def _make(n, rng):
    x = rng.uniform(-2, 2, n)
    return x[:, None], TRUTH[0] + TRUTH[1] * x + np.exp(TRUTH[2] + TRUTH[3] * x) * \
        rng.standard_normal(n)


def _coverage(frame, y, where):
    hit = (y >= frame.obs_ci_lower.to_numpy()) & (y <= frame.obs_ci_upper.to_numpy())
    return hit[where].mean()


def test_prediction_intervals_follow_the_noise():
    rng = np.random.default_rng(41)
    X, y = _make(1000, rng)
    Xt, yt = _make(4000, rng)
    lo, hi = Xt[:, 0] < -1, Xt[:, 0] > 1
    est = NeuralRegressor((), family="gaulss", solver="lbfgs").fit(X, y)
    res = est.inference()
    assert list(res.params.index.get_level_values(0).unique()) == ["mean", "log_sd"]
    frame = res.get_prediction(Xt).summary_frame(alpha=0.1, obs=True)
    # 4000 test rows, about 1000 per region: a binomial SE of 1%
    for where in (np.ones(len(yt), bool), lo, hi):
        assert _coverage(frame, yt, where) == pytest.approx(0.9, abs=0.035)
    width = (frame.obs_ci_upper - frame.obs_ci_lower).to_numpy()
    ends = res.get_prediction(np.array([[-1.5], [1.5]])).summary_frame(alpha=0.1, obs=True)
    ratio = float((ends.obs_ci_upper - ends.obs_ci_lower).iloc[1]
                  / (ends.obs_ci_upper - ends.obs_ci_lower).iloc[0])
    assert ratio == pytest.approx(np.exp(3 * TRUTH[3]), rel=0.25)
    assert width[hi].mean() > 3 * width[lo].mean()
    # the homoscedastic gaussian's intervals are right on average only
    flat = NeuralRegressor((), solver="lbfgs").fit(X, y).inference()
    frame = flat.get_prediction(Xt).summary_frame(alpha=0.1, obs=True)
    assert _coverage(frame, yt, lo) > 0.97 and _coverage(frame, yt, hi) < 0.8
    # the mean is that of the data
    np.testing.assert_allclose(est.predict(Xt), frame["mean"], atol=0.1)


@pytest.mark.slow
def test_standard_errors_are_calibrated_by_monte_carlo():
    """60 replications of n = 400: the Monte-Carlo SD of each estimate over its mean SE is
    within 0.75..1.35 (the SD's own Monte-Carlo error is about 9%) and each 95% interval
    covers the truth at least 85% of the time (3 binomial SEs below 95%)."""
    rng = np.random.default_rng(42)
    est, se, cover = [], [], []
    for _ in range(60):
        X, y = _make(400, rng)
        res = NeuralRegressor((), family="gaulss", solver="lbfgs").fit(X, y).inference()
        ci = res.conf_int().to_numpy()
        est.append(res.params.to_numpy())
        se.append(res.bse.to_numpy())
        cover.append((ci[:, 0] <= TRUTH) & (TRUTH <= ci[:, 1]))
    ratio = np.std(est, axis=0, ddof=1) / np.mean(se, axis=0)
    assert np.all((ratio > 0.75) & (ratio < 1.35)), ratio
    assert np.all(np.mean(cover, axis=0) >= 0.85), np.mean(cover, axis=0)


def test_a_hidden_layer_learns_the_noise_as_a_function():
    """A tanh net of 16 units with mean sin(2x) and sd exp(-1.5 + 0.8 |x|): 90% intervals
    cover about 90% near x = 0 and at the edges."""
    rng = np.random.default_rng(43)

    def make(n):
        x = rng.uniform(-2, 2, n)
        return x[:, None], np.sin(2 * x) + np.exp(-1.5 + 0.8 * np.abs(x)) * \
            rng.standard_normal(n)

    X, y = make(1500)
    Xt, yt = make(4000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (ConvergenceWarning, InferenceWarning))
        est = NeuralRegressor((16,), activation="tanh", family="gaulss", solver="lbfgs",
                              alpha=1e-3, max_iter=500, random_state=0).fit(X, y)
        frame = est.inference().get_prediction(Xt).summary_frame(alpha=0.1, obs=True)
    centre, edges = np.abs(Xt[:, 0]) < 0.5, np.abs(Xt[:, 0]) > 1.5
    assert _coverage(frame, yt, centre) == pytest.approx(0.9, abs=0.05)
    assert _coverage(frame, yt, edges) == pytest.approx(0.9, abs=0.05)


def test_obs_intervals_need_a_gaussian_response():
    rng = np.random.default_rng(44)
    X = rng.normal(size=(100, 1))
    res = NeuralRegressor((), family="poisson", solver="lbfgs").fit(
        X, rng.poisson(2.0, 100)).inference()
    with pytest.raises(ValueError, match="needs a gaussian response"):
        res.get_prediction(X[:3]).summary_frame(obs=True)
