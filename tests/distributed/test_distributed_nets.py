"""Networks on dask collections: minibatches streamed from the chunks (the in-memory solver's
steps exactly, when the batches coincide), reshuffled every epoch, and inference of a net over
chunked data (Gauss-Newton and observed curvature, effects) equal to the in-memory one."""

import warnings

import dask.array as da
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from neurostat import NeuralClassifier, NeuralRegressor


def _data(n=2000, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = np.tanh(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.3 * rng.normal(size=n) + 5.0
    return X, y


def test_streamed_training_takes_the_in_memory_steps(client):
    # without shuffling, chunks of whole batches give the in-memory minibatches in the same
    # order: the streamed fit is the in-memory fit, bit for bit (a gaussian target is
    # standardized inside, as in memory)
    X, y = _data()
    Xd, yd = da.from_array(X, chunks=(400, 3)), da.from_array(y, chunks=400)
    kw = dict(hidden_layer_sizes=(6,), activation="tanh", batch_size=100, shuffle=False,
              max_iter=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = NeuralRegressor(**kw).fit(Xd, yd)
        ref = NeuralRegressor(**kw).fit(X, y)
    for a, b in zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-6)
    assert est._chunk_order == list(range(5)) * 4
    pred = est.predict(Xd)
    assert isinstance(pred, da.Array)
    np.testing.assert_allclose(pred.compute(), ref.predict(X), rtol=1e-12)


def test_streamed_training_reshuffles_chunks_and_reaches_the_in_memory_loss(client):
    X, y = _data(seed=1)
    Xd, yd = da.from_array(X, chunks=(450, 3)), da.from_array(y, chunks=450)
    kw = dict(hidden_layer_sizes=(8,), activation="tanh", max_iter=15, random_state=0,
              learning_rate_init=3e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = NeuralRegressor(**kw).fit(Xd, yd)
        ref = NeuralRegressor(**kw).fit(X, y)
    # as many optimizer steps per epoch as in memory: batches run across chunk boundaries
    steps = [int(st["step"]) for st in est._solver.optimizer.state.values()]
    ref_steps = [int(st["step"]) for st in ref._solver.optimizer.state.values()]
    assert steps == [est.n_iter_ * 10] * len(steps)  # 2000 rows, batches of 200
    assert ref_steps == [ref.n_iter_ * 10] * len(ref_steps)
    orders = np.array(est._chunk_order).reshape(est.n_iter_, 5)
    assert all(sorted(o) == list(range(5)) for o in orders)  # every chunk once per epoch
    assert len({tuple(o) for o in orders}) == est.n_iter_  # in a new order each epoch
    # the same objective reached: only the draws of the minibatches differ
    assert est.loss_ == pytest.approx(ref.loss_, rel=0.05)
    assert est.score(Xd, yd) == pytest.approx(ref.score(X, y), abs=0.02)


def test_net_inference_over_chunks_equals_in_memory(client):
    rng = np.random.default_rng(2)
    n = 1500
    X = rng.normal(size=(n, 3))
    y = (np.tanh(2 * X[:, 0]) + X[:, 1] + rng.logistic(size=n) > 0).astype(int)
    est = NeuralClassifier((3,), activation="tanh", solver="lbfgs", alpha=1e-3,
                           max_iter=500, random_state=0).fit(X, y)
    Xd, yd = da.from_array(X, chunks=(400, 3)), da.from_array(y, chunks=400)
    for cov in ("nonrobust", "HC0"):
        # on chunks a net keeps the delta method (cross-fitting refits in memory)
        rd = est.inference(Xd, yd, cov_type=cov)
        rm = est.inference(X, y, cov_type=cov, effects="delta")
        np.testing.assert_allclose(rd.statistics.H, rm.statistics.H, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(rd.params.values, rm.params.values, rtol=1e-9, atol=1e-12)
        assert np.max(np.abs(rd.bse.values / rm.bse.values - 1)) < 1e-7
    np.testing.assert_allclose(rd.wald_test_terms().values, rm.wald_test_terms().values,
                               rtol=1e-7)
    np.testing.assert_allclose([rd.llf, rd.llnull, rd.aic], [rm.llf, rm.llnull, rm.aic],
                               rtol=1e-10)
    assert rd.summary().wald_table is not None


def test_weighted_net_effects_over_chunks_equal_in_memory(client):
    """A net's average-derivative effects on data in chunks are frequency-weighted, as in
    memory (they were plain row means over the chunks): params and ``get_margeff`` on both
    scales equal the in-memory delta-method results with the same weights."""
    rng = np.random.default_rng(5)
    n = 1200
    X = rng.normal(size=(n, 2))
    y = (np.tanh(2 * X[:, 0]) + X[:, 1] + rng.logistic(size=n) > 0).astype(int)
    w = rng.integers(1, 5, n).astype(float)
    est = NeuralClassifier((3,), activation="tanh", solver="lbfgs", alpha=1e-3,
                           max_iter=300, random_state=0).fit(X, y, sample_weight=w)
    Xd, yd, wd = (da.from_array(a, chunks=(400,) + a.shape[1:]) for a in (X, y, w))
    rd = est.inference(Xd, yd, sample_weight=wd)
    rm = est.inference(X, y, sample_weight=w, effects="delta")
    np.testing.assert_allclose(rd.params.values, rm.params.values, rtol=1e-9, atol=1e-12)
    assert np.max(np.abs(rd.bse.values / rm.bse.values - 1)) < 1e-7
    for scale in ("response", "link"):
        np.testing.assert_allclose(rd.get_margeff(scale).summary_frame().values,
                                   rm.get_margeff(scale).summary_frame().values,
                                   rtol=1e-7, atol=1e-12)
