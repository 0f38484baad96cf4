"""GLMs on dask collections over a LocalCluster equal the in-memory fits: parameters to 1e-8,
standard errors to 1e-7 (relative), log-likelihoods, predictions and scores; the client never
receives anything of size n."""

import tracemalloc
import warnings

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import ElasticNet

from neurostat import NeuralClassifier, NeuralRegressor

CHUNK = 700


def _logistic(n=3000, p=4, seed=0, k=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    if k == 2:
        y = (X @ rng.normal(size=p) * 0.7 + 0.3 + rng.logistic(size=n) > 0).astype(int)
    else:
        logits = X @ rng.normal(size=(p, k)) * 0.6
        g = rng.gumbel(size=(n, k))
        y = np.array(list("abc"))[np.argmax(logits + g, 1)]
    return X, y


def _dask(*arrays):
    return [da.from_array(a, chunks=(CHUNK,) + a.shape[1:]) for a in arrays]


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) / np.asarray(b) - 1)))


def _compare(est_d, est_m, cov_types=("nonrobust", "HC0", "HC1")):
    for cov in cov_types:
        rd, rm = est_d.inference(cov_type=cov), est_m.inference(cov_type=cov)
        np.testing.assert_allclose(rd.params.values, rm.params.values, rtol=0, atol=1e-8)
        assert _rel(rd.bse.values, rm.bse.values) < 1e-7, cov
    np.testing.assert_allclose([rd.llf, rd.llnull, rd.aic, rd.bic, rd.nobs, rd.df_resid],
                               [rm.llf, rm.llnull, rm.aic, rm.bic, rm.nobs, rm.df_resid],
                               rtol=1e-10)
    return rd, rm


def test_chunked_logistic_equals_the_in_memory_fit(client):
    X, y = _logistic()
    Xd, yd = _dask(X, y)
    est = NeuralClassifier((), solver="lbfgs").fit(Xd, yd)
    ref = NeuralClassifier((), solver="lbfgs").fit(X, y)
    assert est.converged_ and est.n_iter_ <= 8 and est.n_passes_ == est.n_iter_ + 1
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-8, rtol=0)
    rd, rm = _compare(est, ref)
    assert rd.summary().params_table.shape == rm.summary().params_table.shape
    # prediction, probabilities and the score map over the chunks and equal in memory
    for name in ("predict", "predict_proba", "decision_function"):
        out = getattr(est, name)(Xd)
        assert isinstance(out, da.Array)
        np.testing.assert_allclose(out.compute(), getattr(ref, name)(X), atol=1e-10) \
            if name != "predict" else np.testing.assert_array_equal(out.compute(), ref.predict(X))
    assert est.score(Xd, yd) == pytest.approx(ref.score(X, y), abs=1e-12)


def test_inference_after_a_chunked_fit_reads_no_data(client):
    # the fit's last pass computed the curvature, the meat and the log-likelihoods at the
    # final parameters: inference on the training data runs no task on the cluster
    X, y = _logistic(seed=1)
    Xd, yd = _dask(X, y)
    est = NeuralClassifier((), solver="lbfgs").fit(Xd, yd)
    from distributed import get_task_stream

    with get_task_stream(client) as ts:
        res = est.inference(cov_type="HC0")
        _ = res.bse, res.llf, res.llnull, res.summary()
    assert len(ts.data) == 0


@pytest.mark.parametrize("case", ["gaussian_weights", "poisson", "categorical_dataframe"])
def test_chunked_glm_families_equal_in_memory(client, case):
    rng = np.random.default_rng(2)
    n, p = 2500, 3
    X = rng.normal(size=(n, p))
    w = None
    if case == "gaussian_weights":
        y = X @ [1.0, -0.5, 0.2] + 2 + rng.normal(size=n)
        w = rng.integers(1, 4, size=n).astype(float)
        make = lambda: NeuralRegressor((), solver="lbfgs")  # noqa: E731
    elif case == "poisson":
        y = rng.poisson(np.exp(0.3 * X[:, 0] - 0.2 * X[:, 1] + 0.5)).astype(float)
        make = lambda: NeuralRegressor((), family="poisson", solver="lbfgs")  # noqa: E731
    else:
        X, y = _logistic(n, p, seed=3, k=3)
        make = lambda: NeuralClassifier((), solver="lbfgs")  # noqa: E731
    ref = make().fit(X, y, sample_weight=w)
    if case == "categorical_dataframe":
        frame = pd.DataFrame(X, columns=["age", "dose", "bmi"])
        ref = make().fit(frame, y)
        Xd = dd.from_pandas(frame, npartitions=4)
        yd = dd.from_pandas(pd.Series(y), npartitions=4)
        est = make().fit(Xd, yd)
        assert list(est.feature_names_in_) == ["age", "dose", "bmi"]
        assert list(est.inference().params.index.get_level_values("term")[:4]) == \
            ["intercept", "age", "dose", "bmi"]
    else:
        Xd, yd = _dask(X, y)
        wd = None if w is None else _dask(w)[0]
        est = make().fit(Xd, yd, sample_weight=wd)
    np.testing.assert_allclose(np.ravel(est.coef_), np.ravel(ref.coef_), atol=1e-8, rtol=0)
    rd, rm = _compare(est, ref)
    np.testing.assert_allclose(rd.scale, rm.scale, rtol=1e-10)


def test_chunked_ridge_equals_in_memory(client):
    X, y = _logistic(n=1500, seed=4)
    Xd, yd = _dask(X, y)
    est = NeuralClassifier((), solver="lbfgs", alpha=0.05).fit(Xd, yd)
    ref = NeuralClassifier((), solver="lbfgs", alpha=0.05).fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-8, rtol=0)
    rd, rm = _compare(est, ref, ("nonrobust", "HC0"))
    assert rd.penalized and rd.edf == pytest.approx(rm.edf, rel=1e-10)


def test_chunked_lasso_equals_scikit_learn_elastic_net(client):
    # the lasso's proximal Newton steps on the reduced Gram: scikit-learn's coordinate descent
    # (to 1e-14) minimizes the same objective, 1/(2n)|y - Xb|^2 + alpha l1 |b|_1 + ridge
    rng = np.random.default_rng(5)
    n, p = 1400, 6
    X = rng.normal(size=(n, p))
    y = X @ [1.5, 0, 0, -1.0, 0, 0.05] + rng.normal(size=n)
    Xd, yd = _dask(X, y)
    est = NeuralRegressor((), solver="lbfgs", alpha=0.1, l1_ratio=0.7).fit(Xd, yd)
    sk = ElasticNet(alpha=0.1, l1_ratio=0.7, tol=1e-14, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(est.coef_, sk.coef_, atol=1e-9, rtol=0)
    assert est.intercept_ == pytest.approx(sk.intercept_, abs=1e-9)
    assert np.array_equal(est.coef_ == 0, sk.coef_ == 0) and (est.coef_ == 0).sum() >= 2
    res = est.inference()
    assert np.isnan(res.bse.values[1:][est.coef_ == 0]).all()
    assert np.isfinite(res.bse.values[1:][est.coef_ != 0]).all()


def test_chunked_logistic_lasso_meets_its_optimality_conditions(client):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(3000, 6))
    y = (X @ [1.0, 0, -0.7, 0, 0.02, 0] + rng.logistic(size=3000) > 0).astype(float)
    Xd, yd = _dask(X, y)
    alpha = 0.02
    est = NeuralClassifier((), solver="lbfgs", alpha=alpha, l1_ratio=1.0).fit(Xd, yd)
    ref = NeuralClassifier((), solver="lbfgs", alpha=alpha, l1_ratio=1.0).fit(X, y)
    b, b0 = est.coef_[0], est.intercept_[0]
    mu = 1 / (1 + np.exp(-(X @ b + b0)))
    grad = X.T @ (mu - y) / len(y)  # of the mean loss; KKT: |grad_j| <= alpha at zeros,
    zero = b == 0  # grad_j = -alpha sign(b_j) elsewhere, and the intercept's is 0
    assert zero.any() and abs(np.mean(mu - y)) < 1e-12
    assert np.all(np.abs(grad[zero]) <= alpha + 1e-12)
    np.testing.assert_allclose(grad[~zero], -alpha * np.sign(b[~zero]), atol=1e-12)
    np.testing.assert_array_equal(zero, ref.coef_[0] == 0)
    np.testing.assert_allclose(b, ref.coef_[0], atol=1e-6)  # L-BFGS-B's own tolerance


def test_get_prediction_on_dask_inputs_is_dask_and_equals_in_memory(client):
    X, y = _logistic(n=1400, seed=7)
    Xd, yd = _dask(X, y)
    est = NeuralClassifier((), solver="lbfgs").fit(Xd, yd)
    ref = NeuralClassifier((), solver="lbfgs").fit(X, y)
    pd_, pm = est.inference().get_prediction(Xd), ref.inference().get_prediction(X)
    assert isinstance(pd_.predicted_mean, da.Array)
    np.testing.assert_allclose(pd_.se_mean.compute(), pm.se_mean, rtol=1e-7)
    np.testing.assert_allclose(pd_.conf_int(0.1).compute(), pm.conf_int(0.1), rtol=1e-7)
    frame = pd_.summary_frame(0.1)
    assert isinstance(frame, dd.DataFrame)
    np.testing.assert_allclose(frame.compute().values, pm.summary_frame(0.1).values, rtol=1e-7)
    # an in-memory fit predicts on a dask collection lazily too
    lazy = ref.inference().get_prediction(Xd)
    np.testing.assert_allclose(lazy.predicted_mean.compute(), pm.predicted_mean, rtol=1e-12)


def test_the_client_receives_nothing_of_size_n(client):
    # 8e5 x 6 float64 (38 MB) generated chunk by chunk on the workers: fit, inference and
    # predictions allocate a few MB in the client, far below one copy of X (tracemalloc
    # counts numpy's buffers)
    n, p = 800_000, 6
    Xd = da.random.RandomState(0).normal(size=(n, p), chunks=(200_000, p))
    beta = np.linspace(-0.5, 0.5, p)

    def draw(xb, block_info=None):
        rng = np.random.default_rng(block_info[0]["chunk-location"][0])
        return (xb @ beta + rng.logistic(size=xb.shape[0]) > 0).astype(float)

    yd = Xd.map_blocks(draw, drop_axis=1, dtype=float)
    tracemalloc.start()
    try:
        est = NeuralClassifier((), solver="lbfgs").fit(Xd, yd)
        res = est.inference(cov_type="HC1")
        _ = res.bse, res.summary()
        p_hat = est.predict_proba(Xd)[:, 1].mean().compute()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.15 * n * p * 8, peak
    assert est.converged_ and 0.3 < p_hat < 0.7


def test_bad_inputs_raise_clear_errors(client):
    X, y = _logistic(n=1000)
    Xd, yd = _dask(X, y)
    Xnan = X.copy()
    Xnan[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        NeuralClassifier((), solver="lbfgs").fit(_dask(Xnan)[0], yd)
    with pytest.raises(ValueError, match="hidden layer"):
        NeuralClassifier((3,), solver="lbfgs").fit(Xd, yd)
    with pytest.raises(ValueError, match="rows"):
        NeuralClassifier((), solver="lbfgs").fit(Xd, yd[:-10])
    with pytest.raises(ValueError, match="negative"):
        NeuralClassifier((), solver="lbfgs").fit(Xd, yd, sample_weight=-np.ones(1000))
    with pytest.raises(ValueError, match="counts"):
        NeuralRegressor((), family="poisson", solver="lbfgs").fit(Xd, -yd.astype(float))
    est = NeuralClassifier((), solver="lbfgs").fit(Xd, yd)
    with pytest.raises(ValueError, match="features"):
        est.predict(Xd[:, :2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert est.predict(Xd).shape == (1000,)


def test_margeff_fitted_values_and_lr_test_over_chunks_equal_in_memory(client):
    """On a frequency-weighted chunked logistic fit: ``get_margeff`` (both scales, reduced over
    the chunks), the fitted values (lazy) and the chi-square LR test against a nested chunked
    fit equal the in-memory results; what refits in memory (the case bootstrap, the
    parametric-bootstrap LR test) is refused with a clear error (``diagnostics()``:
    test_distributed_diagnostics.py)."""
    X, y = _logistic(n=2100, seed=4)
    w = np.random.default_rng(4).integers(1, 4, len(y)).astype(float)
    Xd, yd, wd = _dask(X, y, w)
    est = NeuralClassifier((), solver="lbfgs").fit(Xd, yd, sample_weight=wd)
    ref = NeuralClassifier((), solver="lbfgs").fit(X, y, sample_weight=w)
    rd, rm = est.inference(), ref.inference()
    for scale in ("response", "link"):
        md, mm = rd.get_margeff(scale).summary_frame(), rm.get_margeff(scale).summary_frame()
        np.testing.assert_allclose(md.values, mm.values, rtol=1e-7, atol=1e-12)
    assert isinstance(rd.fittedvalues, da.Array)
    np.testing.assert_allclose(rd.fittedvalues.compute(), rm.fittedvalues, rtol=1e-9)
    small_d = NeuralClassifier((), solver="lbfgs").fit(Xd[:, :2], yd, sample_weight=wd)
    small_m = NeuralClassifier((), solver="lbfgs").fit(X[:, :2], y, sample_weight=w)
    lr_d = rd.compare_lr_test(small_d.inference())
    lr_m = rm.compare_lr_test(small_m.inference())
    np.testing.assert_allclose([lr_d.statistic, lr_d.df, lr_d.pvalue],
                               [lr_m.statistic, lr_m.df, lr_m.pvalue], rtol=1e-7)
    other = NeuralClassifier((), solver="lbfgs").fit(Xd[:, :2], 1 - yd, sample_weight=wd)
    with pytest.raises(ValueError, match="same observations and response"):
        rd.compare_lr_test(other.inference())
    with pytest.raises(ValueError, match=r"method='bootstrap' refits .* held in chunks"):
        rd.compare_lr_test(small_d.inference(), method="bootstrap")
    with pytest.raises(ValueError, match=r"cov_type='bootstrap' refits .* held in chunks"):
        est.inference(cov_type="bootstrap")
