"""Regularization paths: warm-started refits that equal scikit-learn's paths, and the display."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import Ridge, enet_path, lasso_path
from sklearn.preprocessing import StandardScaler

from neurostat import NeuralClassifier, NeuralRegressor, PathDisplay, regularization_path

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


def _wide(path, alphas, terms):
    return (path.pivot_table(index="alpha", columns="term", values="coef", sort=False)
            .loc[alphas, terms].to_numpy())


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_glm_path_is_sklearn_path_with_same_zeros(diabetes, l1_ratio):
    X, y = diabetes
    est = NeuralRegressor((), solver="lbfgs", l1_ratio=l1_ratio)
    path = regularization_path(est, X, y, alphas=12)
    alphas = path["alpha"].unique()
    assert np.all(np.diff(alphas) < 0)  # fitted from the largest penalty down
    Xc, yc = X - X.mean(0), y - y.mean()
    if l1_ratio == 1.0:
        _, ref, _ = lasso_path(Xc, yc, alphas=alphas, tol=1e-14, max_iter=1_000_000)
    else:
        _, ref, _ = enet_path(Xc, yc, l1_ratio=l1_ratio, alphas=alphas, tol=1e-14,
                              max_iter=1_000_000)
    ours = _wide(path, alphas, [f"x{j}" for j in range(X.shape[1])])
    assert np.abs(ours - ref.T).max() / np.abs(ref).max() < 1e-4
    np.testing.assert_array_equal(ours == 0, ref.T == 0)
    # glmnet's grid: the top penalty zeroes every coefficient of the lasso, nothing else does
    if l1_ratio == 1.0:
        assert np.all(ours[0] == 0) and np.all(ours[1:].any(1))
        # lasso df = number of nonzero coefficients (Zou, Hastie & Tibshirani 2007)
        df = path.groupby("alpha", sort=False)["df"].first().to_numpy()
        np.testing.assert_allclose(df, (ours != 0).sum(1), atol=1e-9)
    assert set(path.columns) == {"alpha", "term", "coef", "weight_norm", "df", "train_score",
                                 "validation_score", "n_iter"}


def test_ridge_path_df_is_hat_trace_and_weighted(diabetes):
    X, y = diabetes
    n = len(y)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, n)
    alphas = [1.0, 0.1, 0.01]
    path = regularization_path(NeuralRegressor((), solver="lbfgs"), X, y, alphas,
                               sample_weight=sw)
    w = sw * n / sw.sum()
    Xc = X - np.average(X, axis=0, weights=w)
    G = Xc.T @ (w[:, None] * Xc)
    for a in alphas:
        ref = Ridge(alpha=a * sw.sum(), solver="cholesky").fit(X, y, sample_weight=sw)
        rows = path[path["alpha"] == a]
        np.testing.assert_allclose(rows["coef"], ref.coef_, rtol=1e-4,
                                   atol=1e-4 * np.abs(ref.coef_).max())
        np.testing.assert_allclose(rows["weight_norm"], np.abs(ref.coef_), rtol=1e-4,
                                   atol=1e-4 * np.abs(ref.coef_).max())
        df = np.trace(G @ np.linalg.inv(G + n * a * np.eye(X.shape[1])))
        np.testing.assert_allclose(rows["df"], df, rtol=1e-6)
        np.testing.assert_allclose(rows["train_score"], ref.score(X, y, sample_weight=sw),
                                   rtol=1e-6)


def test_warm_start_reuses_the_previous_solution(diabetes):
    # from the previous alpha a nearby solution needs far fewer iterations than from scratch
    X, y = diabetes
    alphas = np.geomspace(1.0, 0.9, 5)
    path = regularization_path(NeuralRegressor((), solver="lbfgs", l1_ratio=1.0), X, y,
                               alphas, compute_df=False)
    iters = path.groupby("alpha", sort=False)["n_iter"].first().to_numpy()
    cold = NeuralRegressor((), solver="lbfgs", l1_ratio=1.0, alpha=alphas[-1]).fit(X, y)
    assert iters[1:].max() < cold.n_iter_
    assert path["df"].isna().all()


def test_path_for_a_net_with_hidden_layers(diabetes):
    X, y = diabetes
    Xs = StandardScaler().fit_transform(X)
    ys = (y - y.mean()) / y.std()
    est = NeuralRegressor((4,), activation="tanh", solver="lbfgs", max_iter=200,
                          random_state=0)
    path = regularization_path(est, Xs[:300], ys[:300], alphas=[3.0, 0.3, 0.01],
                               validation_data=(Xs[300:], ys[300:]))
    by = path.groupby("alpha", sort=False)
    norm = by["weight_norm"].apply(lambda s: np.sqrt((s**2).sum())).to_numpy()
    effect = by["coef"].apply(lambda s: np.abs(s).sum()).to_numpy()
    df = by["df"].first().to_numpy()
    assert np.all(np.diff(norm) > 0) and np.all(np.diff(effect) > 0)
    assert np.all(np.diff(df) > 0) and df[0] < 1.0
    assert by["validation_score"].first().notna().all()
    # the effect of an input is the average derivative of the fitted function
    last = NeuralRegressor((4,), activation="tanh", solver="lbfgs", max_iter=200,
                           random_state=0, alpha=0.01)
    h = 1e-6
    est2 = regularization_path(last, Xs[:300], ys[:300], alphas=[0.01], compute_df=False)
    fitted = last.fit(Xs[:300], ys[:300])
    fd = np.array([(fitted.predict(Xs[:300] + h * np.eye(10)[j]) -
                    fitted.predict(Xs[:300] - h * np.eye(10)[j])).mean() / (2 * h)
                   for j in range(10)])
    np.testing.assert_allclose(est2["coef"], fd, rtol=1e-5, atol=1e-7)


def test_multiclass_path_has_output_column():
    X, y = load_iris(return_X_y=True)
    path = regularization_path(NeuralClassifier((), solver="lbfgs"),
                               StandardScaler().fit_transform(X), y, alphas=[1.0, 0.1])
    assert list(path.columns[:3]) == ["alpha", "output", "term"]
    assert set(path["output"]) == {"1", "2"} and len(path) == 2 * 2 * 4


def test_bad_input(diabetes):
    X, y = diabetes
    est = NeuralRegressor((), solver="lbfgs")
    with pytest.raises(TypeError, match="neurostat estimator"):
        regularization_path(Ridge(), X, y, [1.0])
    for bad in ([], [-1.0], [[1.0]], [np.nan], 0):
        with pytest.raises(ValueError, match="alphas"):
            regularization_path(est, X, y, bad)
    with pytest.raises(ValueError, match="validation_data"):
        regularization_path(est, X, y, [1.0], validation_data=X)
    with pytest.raises(ValueError, match="DataFrame"):
        PathDisplay.from_path(X)


def test_path_display(diabetes):
    import matplotlib.pyplot as plt

    X, y = diabetes
    path = regularization_path(NeuralRegressor((), solver="lbfgs", l1_ratio=1.0), X, y, 8)
    disp = PathDisplay.from_path(path)
    assert isinstance(disp.ax_, plt.Axes) and disp.figure_ is disp.ax_.figure
    assert len(disp.lines_) == X.shape[1]
    x, yv = disp.lines_[2].get_data()
    assert np.all(np.diff(x) > 0)  # log(alpha) increasing
    np.testing.assert_allclose(yv[::-1], path[path["term"] == "x2"]["coef"], rtol=1e-12)
    assert disp.ax_.get_xlabel() == "log(alpha)"
    fig, ax = plt.subplots()
    d2 = PathDisplay(disp.alphas, disp.coefs, disp.terms).plot(ax=ax, xvar="norm", lw=3)
    assert d2.ax_ is ax and d2.lines_[0].get_linewidth() == 3
    with pytest.raises(ValueError, match="xvar"):
        d2.plot(xvar="lambda")
    d3 = PathDisplay.from_estimator(NeuralRegressor((), solver="lbfgs"), X, y, [1.0, 0.1],
                                    compute_df=False)
    assert isinstance(d3.path_, pd.DataFrame) and len(d3.lines_) == X.shape[1]
    plt.close("all")
