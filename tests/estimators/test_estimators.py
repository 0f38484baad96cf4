"""NeuralClassifier / NeuralRegressor: the scikit-learn contract, GLM special cases, bad input."""

import pickle
import re
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import Lasso
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from neurostat import DivergenceError, NeuralClassifier, NeuralRegressor
from neurostat.engine.networks import ACTIVATIONS, INIT_SCHEMES, init_variance, initialize_


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def logistic_data():
    # a logistic model with moderate effects: no separation, a well-defined MLE
    rng = np.random.default_rng(42)
    X = rng.normal(size=(400, 5))
    eta = 0.3 + X @ np.array([1.0, -0.5, 0.25, 0.0, 0.8])
    return X, (rng.random(400) < 1 / (1 + np.exp(-eta))).astype(int)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


# ----------------------------------------------------------------------------- sklearn usage


def test_pipeline_gridsearch_cross_val(cancer):
    X, y = load_breast_cancer(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), NeuralClassifier((8,), max_iter=30,
                                                            learning_rate_init=1e-2,
                                                            random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3)
        grid = GridSearchCV(pipe, {"neuralclassifier__alpha": [0.0, 1e-2]}, cv=3).fit(X, y)
    assert scores.mean() > 0.93
    assert grid.best_score_ > 0.93
    assert set(grid.cv_results_["param_neuralclassifier__alpha"]) == {0.0, 1e-2}


def test_clone_keeps_params_drops_fit(cancer):
    X, y = cancer
    est = NeuralClassifier((4,), alpha=0.1, max_iter=5, random_state=1)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    c = clone(est)
    assert c.get_params() == est.get_params()
    assert not hasattr(c, "module_")


def test_pickle_round_trip_predicts_the_same(cancer):
    X, y = cancer
    est = NeuralClassifier((8,), max_iter=20, random_state=0, learning_rate_init=1e-2)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    blob = pickle.dumps(est)
    back = pickle.loads(blob)
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    # the training data is kept by reference for inference, never pickled
    assert hasattr(est, "_training_data") and not hasattr(back, "_training_data")
    assert len(blob) < 60_000


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_same_random_state_same_predictions(cancer, solver):
    X, y = cancer
    kw = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=15, dropout=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = NeuralClassifier(random_state=3, **kw).fit(X, y).predict_proba(X)
        b = NeuralClassifier(random_state=3, **kw).fit(X, y).predict_proba(X)
        c = NeuralClassifier(random_state=4, **kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-6


def test_random_state_does_not_touch_global_rng(cancer):
    X, y = cancer
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        NeuralClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_pandas_feature_names(cancer):
    data = load_breast_cancer(as_frame=True)
    X = data.data.iloc[:, :5]
    est = NeuralClassifier((), solver="lbfgs").fit(X, data.target)
    assert list(est.feature_names_in_) == list(X.columns)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(X.rename(columns={X.columns[0]: "other"}))


def _holdout(X, y, seed=0, stratify=True):
    return train_test_split(X, y, test_size=0.3, random_state=seed,
                            stratify=y if stratify else None)


@pytest.mark.parametrize("loader", [load_breast_cancer, load_wine, load_iris])
def test_accuracy_at_least_mlpclassifier(loader):
    # Same architecture, solver, step and epochs as scikit-learn's MLP; averaged over three
    # splits and seeds. Tolerance 0.01: one test point of ~50 is within split noise.
    X, y = loader(return_X_y=True)
    ours, theirs = [], []
    for seed in range(3):
        Xtr, Xte, ytr, yte = _holdout(StandardScaler().fit_transform(X), y, seed)
        kw = dict(hidden_layer_sizes=(32,), max_iter=60, learning_rate_init=1e-2,
                  random_state=seed, batch_size=32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours.append(NeuralClassifier(**kw).fit(Xtr, ytr).score(Xte, yte))
            theirs.append(MLPClassifier(alpha=0.0, **kw).fit(Xtr, ytr).score(Xte, yte))
    assert np.mean(ours) >= np.mean(theirs) - 0.01, (ours, theirs)


def test_r2_at_least_mlpregressor(diabetes):
    X, y = diabetes
    ours, theirs = [], []
    for seed in range(3):
        Xtr, Xte, ytr, yte = _holdout(X, y, seed, stratify=False)
        kw = dict(hidden_layer_sizes=(16,), max_iter=200, learning_rate_init=1e-3,
                  random_state=seed, batch_size=32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours.append(NeuralRegressor(**kw).fit(Xtr, ytr).score(Xte, yte))
            theirs.append(MLPRegressor(alpha=0.0, **kw).fit(Xtr, ytr).score(Xte, yte))
    assert np.mean(ours) >= np.mean(theirs) - 0.02, (ours, theirs)


def test_gaussian_target_scale_is_a_reparametrization(diabetes):
    # The stochastic solvers fit a standardized target (exact reparametrization): refitting on
    # 10 y + 5 takes the same path, so the predictions are 10 * old + 5 to float32 precision.
    X, y = diabetes
    kw = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=0, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = NeuralRegressor(**kw).fit(X, y)
        b = NeuralRegressor(**kw).fit(X, 10 * y + 5)
    np.testing.assert_allclose(b.predict(X), 10 * a.predict(X) + 5, rtol=1e-4)
    np.testing.assert_allclose(b.loss_curve_, 100 * np.asarray(a.loss_curve_), rtol=1e-4)


def test_penalized_stochastic_fit_reaches_the_ridge_solution(diabetes):
    # Ridge through Adam on the raw-scale target (values ~ 25-350): the reparametrized penalty
    # must leave the minimizer unchanged. Reference: the closed form (X'X/n + alpha I)^-1 X'y/n.
    X, y = diabetes
    alpha = 0.5
    n = len(y)
    Xc, yc = X - X.mean(0), y - y.mean()
    w = np.linalg.solve(Xc.T @ Xc / n + alpha * np.eye(X.shape[1]), Xc.T @ yc / n)
    est = NeuralRegressor((), alpha=alpha, learning_rate_init=1e-2, max_iter=400,
                          batch_size=n, random_state=0, tol=0.0, n_iter_no_change=10**6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    np.testing.assert_allclose(est.coef_, w, atol=0.01 * np.abs(w).max())


# ----------------------------------------------------------------------------- GLM special cases


def test_no_hidden_layer_logistic_is_statsmodels_logit(logistic_data):
    X, y = logistic_data
    est = NeuralClassifier((), solver="lbfgs").fit(X, y)
    ref = sm.Logit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12)
    # L-BFGS then Newton polish: the maximizer to near machine precision, like IRLS
    np.testing.assert_allclose(est.intercept_, ref.params[:1], rtol=1e-9)
    np.testing.assert_allclose(est.coef_[0], ref.params[1:], rtol=1e-9)
    assert est.coef_.shape == (1, 5) and est.intercept_.shape == (1,)


def test_no_hidden_layer_multinomial_is_mnlogit():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:, [0, 6, 9]]
    est = NeuralClassifier((), solver="lbfgs").fit(X, y)
    ref = sm.MNLogit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12)
    # statsmodels: (1 + p, K - 1) against the first class; ours: (K, p) with a zero first row
    np.testing.assert_allclose(est.coef_[1:], ref.params[1:].T, rtol=1e-8)
    np.testing.assert_allclose(est.intercept_[1:], ref.params[0], rtol=1e-8)
    np.testing.assert_array_equal(est.coef_[0], 0)
    np.testing.assert_allclose(est.predict_proba(X), ref.predict(sm.add_constant(X)), atol=1e-5)


def test_no_hidden_layer_poisson_and_ols(diabetes):
    X, y = diabetes
    rng = np.random.default_rng(0)
    counts = rng.poisson(np.exp(0.3 * X[:, 0] - 0.2 * X[:, 2] + 1))
    est = NeuralRegressor((), family="poisson", solver="lbfgs").fit(X, counts)
    ref = sm.GLM(counts, sm.add_constant(X), family=sm.families.Poisson()).fit(tol=1e-12)
    np.testing.assert_allclose(est.coef_, ref.params[1:], rtol=1e-8, atol=1e-10)
    ols = NeuralRegressor((), solver="lbfgs").fit(X, y)
    ref = sm.OLS(y, sm.add_constant(X)).fit()
    np.testing.assert_allclose(ols.coef_, ref.params[1:], rtol=1e-5)
    np.testing.assert_allclose(ols.intercept_, ref.params[0], rtol=1e-6)


@pytest.mark.parametrize("family", ["bernoulli", "poisson", "gaussian"])
def test_glm_on_badly_scaled_collinear_inputs_is_statsmodels(family):
    # columns on scales 0.01 to 80 and two nearly collinear ones (r = 0.999): the fresh init is
    # read on the standardized inputs (on the raw scale it started a Poisson fit at eta ~ 100
    # and L-BFGS ended orders of magnitude off) and Newton steps finish the job; statsmodels
    # IRLS to 1e-8
    rng = np.random.default_rng(7)
    n = 400
    Z = rng.normal(size=(n, 6))
    Z[:, 1] = Z[:, 0] + 0.05 * rng.normal(size=n)
    Z *= [40.0, 40.0, 0.01, 80.0, 45.0, 0.2]
    eta = 0.4 * Z[:, 0] / 40 - 0.3 * Z[:, 3] / 80 + 0.2
    y, sm_family, est = {
        "bernoulli": ((rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int),
                      sm.families.Binomial(), NeuralClassifier((), solver="lbfgs")),
        "poisson": (rng.poisson(np.exp(eta)), sm.families.Poisson(),
                    NeuralRegressor((), family="poisson", solver="lbfgs")),
        "gaussian": (eta + rng.normal(size=n), sm.families.Gaussian(),
                     NeuralRegressor((), solver="lbfgs")),
    }[family]
    ref = sm.GLM(y, sm.add_constant(Z), family=sm_family).fit(tol=1e-14)
    est.fit(Z, y)
    ours = np.r_[np.ravel(est.intercept_), np.ravel(est.coef_)]
    np.testing.assert_allclose(ours, ref.params, rtol=1e-8, atol=1e-10 * np.abs(ref.params).max())
    assert est.n_iter_ < 200


def test_multi_output_least_squares_and_ridge_poisson_to_high_precision(diabetes):
    # the Newton finish handles k > 1 outputs (block Hessian) and the ridge's curvature
    X, y = diabetes
    Y = np.column_stack([y, X[:, 0] * 50 - y / 3])
    ours = NeuralRegressor((), solver="lbfgs").fit(X, Y)
    Z = np.column_stack([np.ones(len(y)), X])
    beta = np.linalg.lstsq(Z, Y, rcond=None)[0]
    np.testing.assert_allclose(ours.coef_, beta[1:].T, rtol=1e-9, atol=1e-9 * np.abs(beta).max())
    np.testing.assert_allclose(ours.intercept_, beta[0], rtol=1e-10)
    from sklearn.linear_model import PoissonRegressor

    counts = np.random.default_rng(1).poisson(np.exp(1 + 0.5 * X[:, 2] / X[:, 2].std()))
    ours = NeuralRegressor((), family="poisson", solver="lbfgs", alpha=0.01).fit(X, counts)
    ref = PoissonRegressor(alpha=0.01, solver="newton-cholesky", tol=1e-12,
                           max_iter=1000).fit(X, counts)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-10)


def test_lbfgs_glm_does_not_depend_on_random_state(diabetes):
    # a convex problem started at the null model: same answer, bit for bit, whatever the seed
    X, y = diabetes
    fits = [NeuralRegressor((), solver="lbfgs", alpha=0.1, l1_ratio=0.7, random_state=s).fit(X, y)
            for s in (0, 1, None)]
    for f in fits[1:]:
        np.testing.assert_array_equal(f.coef_, fits[0].coef_)


def test_lbfgs_lasso_matches_sklearn_with_exact_zeros(diabetes):
    X, y = load_diabetes(return_X_y=True)
    ours = NeuralRegressor((), solver="lbfgs", alpha=0.3, l1_ratio=1.0).fit(X, y)
    ref = Lasso(alpha=0.3, tol=1e-12, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-4,
                               atol=1e-6 * np.abs(ref.coef_).max())
    np.testing.assert_array_equal(ours.coef_ == 0, ref.coef_ == 0)
    assert (ours.coef_ == 0).sum() >= 1


def test_stochastic_l1_gives_exact_zeros():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 8))
    y = 2 * X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=400)
    est = NeuralRegressor((), alpha=0.05, l1_ratio=1.0, learning_rate_init=1e-2, max_iter=100,
                          random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert np.all(est.coef_[2:] == 0.0), est.coef_
    assert np.all(np.abs(est.coef_[:2]) > 0.5)


def test_penalty_never_touches_biases(diabetes):
    X, y = diabetes
    est = NeuralRegressor((), solver="lbfgs", alpha=1e6).fit(X, y + 100)
    assert np.abs(est.coef_).max() < 1e-3
    np.testing.assert_allclose(est.intercept_, np.mean(y + 100), rtol=1e-6)


def test_lbfgs_sample_weight_equals_repetition(logistic_data):
    X, y = logistic_data
    X, y = X[:120], y[:120]
    w = check_random_state(0).randint(0, 4, size=len(y))
    a = NeuralClassifier((), solver="lbfgs").fit(X, y, sample_weight=w)
    b = NeuralClassifier((), solver="lbfgs").fit(np.repeat(X, w, 0), np.repeat(y, w))
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-10)
    # and for a net with a hidden layer (same start, same deterministic full-batch path)
    a = NeuralRegressor((3,), solver="lbfgs", random_state=0, max_iter=50)
    b = clone(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(X, y, sample_weight=w)
        b.fit(np.repeat(X, w, 0), np.repeat(y, w).astype(float))
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-4, atol=1e-6)


def test_coef_shapes():
    X, y = load_iris(return_X_y=True)
    est = NeuralClassifier((), solver="lbfgs", alpha=0.01).fit(X, y)
    assert est.coef_.shape == (3, 4) and est.intercept_.shape == (3,)
    np.testing.assert_array_equal(est.coef_[0], 0)
    reg = NeuralRegressor((), solver="lbfgs").fit(X, np.c_[X[:, 0] + 1, X[:, 1]])
    assert reg.coef_.shape == (2, 4) and reg.intercept_.shape == (2,)
    assert reg.predict(X).shape == (150, 2)
    net = NeuralRegressor((3,), solver="lbfgs", max_iter=5)
    with pytest.warns(ConvergenceWarning):
        net.fit(X, y.astype(float))
    with pytest.raises(AttributeError, match="no hidden layer"):
        _ = net.coef_
    assert [c.shape for c in net.coefs_] == [(4, 3), (3, 1)]
    assert [b.shape for b in net.intercepts_] == [(3,), (1,)]


def test_decision_function_consistent_with_proba(cancer):
    X, y = load_wine(return_X_y=True)
    est = NeuralClassifier((), solver="lbfgs", alpha=0.01).fit(StandardScaler().fit_transform(X), y)
    d = est.decision_function(StandardScaler().fit_transform(X))
    p = est.predict_proba(StandardScaler().fit_transform(X))
    np.testing.assert_allclose(np.exp(d) / np.exp(d).sum(1, keepdims=True), p, rtol=1e-10)
    np.testing.assert_allclose(p.sum(1), 1.0)


# ----------------------------------------------------------------------------- training engine


@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw", "rmsprop", "adagrad", "lbfgs"])
def test_every_solver_learns(cancer, solver):
    X, y = cancer
    lr = {"sgd": 0.05, "adagrad": 0.05}.get(solver, 1e-2)
    est = NeuralClassifier((8,), solver=solver, learning_rate_init=lr, max_iter=30,
                           alpha=1e-3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.score(X, y) > 0.95
    assert est.loss_curve_[-1] < est.loss_curve_[0]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_learns(diabetes, activation):
    X, y = diabetes
    est = NeuralRegressor((16,), activation=activation, solver="lbfgs", max_iter=100,
                          random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.score(X, y) > 0.45  # OLS gets 0.52 on these data


@pytest.mark.parametrize("scheme", [s for s in INIT_SCHEMES if s != "zeros"])
def test_init_scheme_variance(scheme):
    # A 500 x 800 layer: 400,000 draws. The sample variance of iid draws has relative standard
    # error sqrt((kurtosis - 1) / N) < 0.3%; 2% is > 6 standard errors. Orthogonal matrices are
    # exact: each row has unit norm.
    torch.manual_seed(0)
    w = initialize_(torch.empty(500, 800, dtype=torch.float64), scheme)
    expected = init_variance(scheme, fan_in=800, fan_out=500)
    assert abs(w.var(unbiased=False).item() / expected - 1) < 0.02
    assert abs(w.mean().item()) < 4 * np.sqrt(expected / w.numel())
    if scheme == "orthogonal":
        np.testing.assert_allclose((w @ w.T).numpy(), np.eye(500), atol=1e-10)
    if scheme in ("glorot_uniform", "he_uniform", "uniform"):
        bound = np.sqrt(3 * expected)
        assert w.abs().max().item() <= bound and w.abs().max().item() > 0.99 * bound


def test_init_zeros_starts_at_the_origin():
    # variance 0, every weight exactly 0; a GLM started there takes its first gradient step
    # from the null model: slopes eta * Xc'(y - ybar) / n after one full-batch SGD epoch
    w = initialize_(torch.full((3, 5), 7.0), "zeros")
    assert init_variance("zeros", 5, 3) == 0.0 and torch.count_nonzero(w) == 0
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    X = (X - X.mean(0)) / X.std(0)
    y = X @ [1.0, -2.0, 0.5] + rng.normal(size=50) + 4.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = NeuralRegressor((), solver="sgd", init="zeros", batch_size=50, momentum=0.0,
                              learning_rate_init=0.1, max_iter=1, shuffle=False).fit(X, y)
    np.testing.assert_allclose(est.coef_, 0.1 * X.T @ (y - y.mean()) / 50, rtol=1e-6)
    assert est.intercept_ == pytest.approx(y.mean(), rel=1e-6)


def test_partial_fit_incremental(cancer):
    X, y = cancer
    est = NeuralClassifier((8,), learning_rate_init=1e-2, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        est.partial_fit(X, y)
    for i in range(15):
        est.partial_fit(X[i % 5::5], y[i % 5::5], classes=[0, 1])
    assert est.n_iter_ == 15 and len(est.loss_curve_) == 15
    assert est.score(X, y) > 0.93  # three passes; a logistic regression reaches 0.98


def test_partial_fit_calls_draw_new_seeds(cancer, monkeypatch):
    # each call must get new shuffles and dropout masks, not replay the first call's; a fresh
    # estimator with the same random_state replays the same sequence
    X, y = cancer
    seeds = []
    real = torch.manual_seed
    monkeypatch.setattr(torch, "manual_seed", lambda s: (seeds.append(s), real(s))[1])
    a = NeuralClassifier((4,), random_state=0)
    a.partial_fit(X, y, classes=[0, 1]).partial_fit(X, y).partial_fit(X, y)
    NeuralClassifier((4,), random_state=0).partial_fit(X, y, classes=[0, 1])
    assert len(set(seeds[:3])) == 3 and seeds[3] == seeds[0]


def test_partial_fit_needs_a_stochastic_solver(cancer):
    X, y = cancer
    with pytest.raises(AttributeError, match="partial_fit"):
        NeuralClassifier(solver="lbfgs").partial_fit(X, y, classes=[0, 1])


def test_warm_start_continues_from_the_fit(diabetes):
    X, y = diabetes
    est = NeuralRegressor((), solver="lbfgs", warm_start=True).fit(X, y)
    coef, n1 = est.coef_.copy(), est.n_iter_
    est.fit(X, y)
    assert est.n_iter_ - n1 <= 3  # already at the optimum
    np.testing.assert_allclose(est.coef_, coef, rtol=1e-6)


def test_early_stopping_restores_best_weights(cancer):
    X, y = cancer
    est = NeuralClassifier((32,), early_stopping=True, learning_rate_init=1e-2, max_iter=200,
                           n_iter_no_change=5, random_state=7).fit(X, y)
    assert est.n_iter_ < 200 and len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    # reproduce the held-out split the estimator made and score the restored weights on it
    seed = check_random_state(7).randint(np.iinfo(np.int32).max)
    _, va = train_test_split(np.arange(len(y)), test_size=0.1, random_state=seed, stratify=y)
    assert est.score(X[va], y[va]) == pytest.approx(est.best_validation_score_)


def test_convergence_warning_when_max_iter_ends_the_fit(cancer):
    X, y = cancer
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\)"):
        NeuralClassifier((4,), max_iter=3, random_state=0).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        NeuralClassifier((4,), solver="lbfgs", max_iter=2, random_state=0).fit(X, y)


def test_learning_rate_schedules(cancer):
    X, y = cancer
    est = NeuralClassifier((4,), solver="sgd", learning_rate="invscaling", max_iter=3,
                           learning_rate_init=0.1, power_t=0.5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    expected = 0.1 / (est.t_ + 1) ** 0.5  # scikit-learn's invscaling rule, samples seen t
    assert est._solver.optimizer.param_groups[0]["lr"] == pytest.approx(expected)
    est = NeuralClassifier((4,), solver="sgd", learning_rate="adaptive", max_iter=60, tol=10.0,
                           n_iter_no_change=2, learning_rate_init=0.1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    # tol=10 makes every epoch "no improvement": the step is divided by 5 every 3 epochs
    assert est._solver.optimizer.param_groups[0]["lr"] < 0.1 / 5**5


def test_verbose_shows_progress_with_loss(cancer, capsys):
    X, y = cancer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        NeuralClassifier((4,), max_iter=3, verbose=1, random_state=0).fit(X, y)
    err = capsys.readouterr().err
    assert "NeuralClassifier" in err and "loss=" in err


def test_divergence_stops_with_a_clear_error():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * 1e3
    y = X @ [1.0, 2.0, 3.0]
    est = NeuralRegressor((16,), solver="sgd", learning_rate_init=10.0, max_iter=20,
                          random_state=0)
    with pytest.raises(DivergenceError, match=r"epoch \d+.*learning_rate_init"):
        est.fit(X, y)
    assert not hasattr(est, "loss_curve_")


def test_dropout_trains_and_predicts_deterministically(cancer):
    X, y = cancer
    est = NeuralClassifier((32,), dropout=0.5, input_dropout=0.2, learning_rate_init=1e-2,
                           max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X), est.predict_proba(X))
    assert est.score(X, y) > 0.95


def test_transfer_learning_copies_and_freezes():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = X / 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        src = NeuralClassifier((16, 8), max_iter=5, random_state=0).fit(X[y < 8], y[y < 8])
        dst = NeuralClassifier((16, 8), init=src, freeze=1, max_iter=5, random_state=0)
        dst.fit(X[y >= 8], y[y >= 8])
    np.testing.assert_array_equal(dst.coefs_[0], src.coefs_[0])  # frozen: not moved
    assert np.abs(dst.coefs_[1] - src.coefs_[1]).max() > 0  # fine-tuned
    assert clone(dst).init is src
    with pytest.raises(ValueError, match="shape"):
        NeuralClassifier((10, 8), init=src).fit(X, y)
    with pytest.raises(ValueError, match="freeze=3"):
        NeuralClassifier((16, 8), freeze=3).fit(X, y)


# ----------------------------------------------------------------------------- bad input


def _bad(est, X, y, exc, match):
    with pytest.raises(exc, match=match):
        est.fit(X, y)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_inputs(cancer, value):
    X, y = cancer
    Xb = X.copy()
    Xb[3, 2] = value
    _bad(NeuralClassifier(), Xb, y, ValueError, "Input X contains (NaN|infinity)")
    yb = y.astype(float)
    yb[5] = value
    _bad(NeuralRegressor(), X, yb, ValueError, "Input y contains (NaN|infinity)")


def test_one_class(cancer):
    X, y = cancer
    _bad(NeuralClassifier(), X, np.zeros(len(y)), ValueError, "only one class")


def test_negative_poisson_counts(diabetes):
    X, y = diabetes
    _bad(NeuralRegressor(family="poisson"), X, y - 200, ValueError, "counts y >= 0")


@pytest.mark.parametrize("param, value", [
    ("activation", "swish"), ("solver", "newton"), ("init", "xavier"), ("alpha", -1.0),
    ("l1_ratio", 1.5), ("dropout", 1.0), ("input_dropout", -0.1), ("learning_rate", "cosine"),
    ("batch_size", 0), ("hidden_layer_sizes", "ten"),
])
def test_invalid_parameters_name_the_problem(cancer, param, value):
    X, y = cancer
    _bad(NeuralClassifier(**{param: value}), X, y, ValueError,
         re.escape(f"'{param}' parameter of NeuralClassifier"))


def test_unknown_family(diabetes):
    _bad(NeuralRegressor(family="lognormal"), *diabetes, ValueError, "'family' parameter")


def test_bad_hidden_layer_entries(cancer):
    _bad(NeuralClassifier(hidden_layer_sizes=(10, 0)), *cancer, ValueError,
         "hidden_layer_sizes must be a tuple of positive integers")


def test_dropout_with_lbfgs_is_refused(cancer):
    _bad(NeuralClassifier(solver="lbfgs", dropout=0.2), *cancer, ValueError,
         "dropout needs a stochastic solver")


def test_negative_sample_weight(cancer):
    X, y = cancer
    with pytest.raises(ValueError, match="[Nn]egative"):
        NeuralClassifier().fit(X, y, sample_weight=-np.ones(len(y)))


def test_wrong_number_of_features_and_unfitted(cancer):
    X, y = cancer
    est = NeuralClassifier((), solver="lbfgs")
    with pytest.raises(NotFittedError):
        est.predict(X)
    est.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :5])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_requested_without_gpu(cancer):
    _bad(NeuralClassifier(device="cuda"), *cancer, ValueError, "no CUDA device")


# ----------------------------------------------------------------------------- GPU


@pytest.mark.cuda
def test_gpu_fit_pickles_to_cpu(tmp_path, cancer):
    import subprocess
    import sys
    X, y = cancer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = NeuralClassifier((8,), device="cuda", max_iter=5, random_state=0).fit(X, y)
    assert next(est.module_.parameters()).is_cuda
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(est))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "p.npy", est.predict_proba(X))
    code = (f"import pickle, numpy as np; m = pickle.load(open({str(path)!r}, 'rb')); "
            f"p = m.predict_proba(np.load({str(tmp_path / 'X.npy')!r})); "
            f"assert np.allclose(p, np.load({str(tmp_path / 'p.npy')!r}), atol=1e-6)")
    env = {**__import__("os").environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@pytest.mark.cuda
def test_gpu_glm_matches_cpu(cancer):
    X, y = cancer
    a = NeuralClassifier((), solver="lbfgs", device="cuda").fit(X, y)
    b = NeuralClassifier((), solver="lbfgs", device="cpu").fit(X, y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("labels", [
    np.array([0, 1]), np.array([-3, 2, 7]), np.array([5, 9], dtype=np.uint8),
    np.array([False, True]), np.array([0, 70_000]),  # the last: past bincount's range
])
def test_integer_labels_are_encoded_as_scikit_learn_encodes_them(labels):
    """The O(n) bincount path for integer labels gives scikit-learn's classes_ and codes
    (``unique_labels``, ``LabelEncoder``), with its dtype, and so the same fit."""
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils.multiclass import unique_labels

    from neurostat.estimators.neural import _integer_labels

    rng = np.random.default_rng(0)
    y = labels[rng.integers(0, len(labels), 200)]
    fast = _integer_labels(y)
    if np.ptp(labels.astype(np.int64)) >= 1 << 16:
        assert fast is None
    else:
        assert fast[0].dtype == unique_labels(y).dtype
        np.testing.assert_array_equal(fast[0], unique_labels(y))
        np.testing.assert_array_equal(fast[1], LabelEncoder().fit_transform(y))
    X = rng.normal(size=(200, 2))
    est = NeuralClassifier((), solver="lbfgs").fit(X, y)
    ref = NeuralClassifier((), solver="lbfgs").fit(X, y.astype(str))  # the sorting path
    np.testing.assert_array_equal(est.classes_, unique_labels(y))
    order = np.argsort(unique_labels(y).astype(str))  # string labels sort differently
    np.testing.assert_allclose(est.predict_proba(X)[:, order], ref.predict_proba(X),
                               atol=1e-8)


def test_partial_fit_maps_integer_labels_onto_the_declared_classes():
    """A batch holding some of the declared classes is coded by its position in classes_,
    and a label outside them is refused, on the integer path as on the general one."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    y = rng.choice([2, 8], 60)  # class 5 absent from this batch
    est = NeuralClassifier((), max_iter=5, random_state=0)
    codes = est.partial_fit(X, y, classes=[2, 5, 8])._encode_target(y)
    np.testing.assert_array_equal(codes, np.where(y == 2, 0, 2))
    with pytest.raises(ValueError, match=r"labels not seen in classes_ \[2, 5, 8\]"):
        est.partial_fit(X, np.where(y == 8, 9, y))
