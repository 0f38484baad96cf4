"""``diagnostics()`` of fits to data in chunks equals the in-memory one: the objective's
gradient (one pass), the Hessian's eigenvalues, the residuals (lazy dask arrays) and the
calibration table with its Hosmer-Lemeshow test - the same equal-count bins of the stable sort
as in memory, ties split by position, computed without a global sort
(:func:`neurostat.distributed.diagnostics.calibration_table`)."""

import warnings

import dask.array as da
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from neurostat import NeuralClassifier, NeuralRegressor
from neurostat.distributed.diagnostics import calibration_table
from neurostat.engine.calibration import calibration_table as in_memory_table
from neurostat.inference.covariance import InferenceWarning


def _chunks(n, rng, k=4):
    cuts = np.sort(rng.choice(np.arange(1, n), k, replace=False))
    return tuple(int(c) for c in np.diff(np.r_[0, cuts, n]))


@pytest.mark.parametrize("case", ["continuous", "three values", "empty chunks", "classes"])
@pytest.mark.parametrize("samples", [3, 4096])
def test_calibration_bins_over_chunks_equal_the_stable_sort(client, case, samples):
    """With 3 order statistics per chunk the bracketing pass matters (chunks of hundreds of
    rows); with 3 distinct probabilities every boundary falls inside a run of ties, which the
    stable sort splits by position: a different split changes the bins' observed frequency."""
    rng = np.random.default_rng(len(case) + samples)
    n = 997
    mu = rng.choice([0.1, 0.3, 0.7], n) if case == "three values" else rng.uniform(size=n)
    y = (rng.uniform(size=n) < mu).astype(float)
    chunks = _chunks(n, rng)
    if case == "empty chunks":
        chunks = (0,) + chunks[:2] + (0, sum(chunks[2:]))
    if case == "classes":
        mu, y = rng.dirichlet(np.ones(3), n), rng.integers(0, 3, n)
    md = da.from_array(mu, chunks=(chunks,) + mu.shape[1:])
    yd = da.from_array(y, chunks=(chunks,))
    table, hl = calibration_table(yd, md, 10, samples=samples)
    ref, ref_hl = in_memory_table(y, mu, 10)
    np.testing.assert_array_equal(table.n.values, ref.n.values)
    np.testing.assert_allclose(table.values, ref.values, rtol=0, atol=1e-14)
    np.testing.assert_allclose(hl, ref_hl, rtol=1e-12)
    if case == "three values":  # the ties are split: some bins hold rows of one value only
        assert np.sum(table.p_min.values == table.p_max.values) >= 8


def _compare(dd, dm, atol_grad):
    assert dd.gradient_norm == pytest.approx(dm.gradient_norm, abs=atol_grad)
    assert dd.stationary == dm.stationary
    np.testing.assert_allclose([dd.hessian_min_eigenvalue, dd.hessian_condition],
                               [dm.hessian_min_eigenvalue, dm.hessian_condition], rtol=1e-9)
    for a, b in ((dd.resid_deviance, dm.resid_deviance), (dd.resid_pearson, dm.resid_pearson)):
        assert isinstance(a, da.Array) and a.shape == b.shape
        np.testing.assert_allclose(a.compute(), b, rtol=1e-10, atol=1e-12)
    lines_d, lines_m = str(dd).splitlines(), str(dm).splitlines()
    assert [lines_d[i] for i in (1, 3)] == [lines_m[i] for i in (1, 3)]  # Hessian, deviance


def test_diagnostics_of_a_chunked_weighted_logistic_fit_equal_in_memory(client):
    rng = np.random.default_rng(4)
    n = 2100
    X = rng.normal(size=(n, 4))
    y = (X @ [1.0, -0.5, 0.3, 0.0] + rng.logistic(size=n) > 0).astype(int)
    w = rng.integers(1, 4, n).astype(float)
    Xd, yd, wd = (da.from_array(a, chunks=(700,) + a.shape[1:]) for a in (X, y, w))
    dd = NeuralClassifier((), solver="lbfgs").fit(Xd, yd, sample_weight=wd).inference() \
        .diagnostics()
    dm = NeuralClassifier((), solver="lbfgs").fit(X, y, sample_weight=w).inference() \
        .diagnostics()
    _compare(dd, dm, 1e-10)
    np.testing.assert_allclose(dd.calibration.values, dm.calibration.values, atol=1e-14)
    np.testing.assert_allclose(dd.hosmer_lemeshow, dm.hosmer_lemeshow, rtol=1e-12)


@pytest.mark.parametrize("kind", ["regressor", "three classes"])
def test_diagnostics_of_a_net_on_chunks_equal_in_memory(client, kind):
    """A hidden-layer net, stopped early (``max_iter``) so that its gradient is not
    negligible: the chunked gradient, Hessian and residuals are those in memory."""
    rng = np.random.default_rng(6)
    n = 1200
    X = rng.normal(size=(n, 3))
    w = rng.integers(1, 4, n).astype(float)
    if kind == "regressor":
        y = np.tanh(X[:, 0]) + X[:, 1] ** 2 + rng.normal(size=n)
        est = NeuralRegressor((3,), activation="tanh", solver="lbfgs", alpha=1e-2, max_iter=30,
                              random_state=0)
    else:
        y = np.argmax(X @ rng.normal(size=(3, 3)) + rng.gumbel(size=(n, 3)), 1)
        est = NeuralClassifier((3,), activation="tanh", solver="lbfgs", alpha=1e-2,
                               max_iter=8, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y, sample_weight=w)
    Xd, yd, wd = (da.from_array(a, chunks=(400,) + a.shape[1:]) for a in (X, y, w))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # inference() warns that the fit is not converged
        res_d = est.inference(Xd, yd, sample_weight=wd)
        res_m = est.inference(X, y, sample_weight=w, effects="delta")
    with pytest.warns(InferenceWarning, match="not a stationary point"):
        dd = res_d.diagnostics()
    with pytest.warns(InferenceWarning, match="not a stationary point"):
        dm = res_m.diagnostics()
    assert dm.gradient_norm > 1e-4
    _compare(dd, dm, 1e-9 * dm.gradient_norm)
    if kind == "three classes":
        np.testing.assert_allclose(dd.calibration.values, dm.calibration.values, atol=1e-14)
