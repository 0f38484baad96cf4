"""Net inference checked against computations written here, not against the package itself.

Each test rebuilds a reported number from its definition with statsmodels or with torch.func
applied to the fitted network in the test (never the package's curvature, covariance or effect
code), so that a wrong covariance, a wrong delta method or a wrong bootstrap fails it. These
cover ``effects="delta"`` (the parameter covariance of a net, used by ``get_prediction``), the
bootstrap, and the weighted effects.
"""

import re
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
import torch
from scipy import stats as sps
from sklearn.utils import check_random_state
from torch.func import functional_call, jacrev

from neurostat import NeuralClassifier, NeuralRegressor


def _logit_data(n, seed=0, beta=(1.0, -0.5, 0.0)):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(beta)))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + X @ np.asarray(beta))))).astype(int)
    return X, y


def _flat(module):
    named = [(k, p) for k, p in module.named_parameters() if p.requires_grad]
    return [k for k, _ in named], [p.shape for _, p in named], \
        torch.cat([p.detach().double().reshape(-1) for _, p in named])


def _unflat(names, shapes, theta):
    out, i = {}, 0
    for k, s in zip(names, shapes, strict=True):
        m = int(np.prod(s))
        out[k] = theta[i:i + m].view(s)
        i += m
    return out


@pytest.mark.parametrize("kind", ["ols", "logit"])
def test_identity_activation_net_is_the_glm(kind):
    """A (2,) net with identity activation on 2 inputs is a linear model in a redundant
    parametrization: with effects="delta" its effects and delta-method SEs (pseudo-inverse of a
    singular Hessian) equal statsmodels' OLS / Logit coefficients and SEs. A covariance of
    theta off by any factor fails this."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    if kind == "ols":
        y = 0.5 + X @ [1.0, -0.7] + rng.normal(size=300)
        est = NeuralRegressor((2,), activation="identity", solver="lbfgs", tol=1e-10,
                              max_iter=5000, random_state=0).fit(X, y)
        ref = sm.OLS(y, sm.add_constant(X)).fit()
    else:
        y = (rng.random(300) < 1 / (1 + np.exp(-(0.5 + X @ [1.0, -0.7])))).astype(int)
        est = NeuralClassifier((2,), activation="identity", solver="lbfgs", tol=1e-10,
                               max_iter=5000, random_state=0).fit(X, y)
        ref = sm.Logit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = est.inference(effects="delta")
    np.testing.assert_allclose(res.params.values, ref.params, rtol=1e-6)
    np.testing.assert_allclose(res.bse.values, ref.bse, rtol=1e-5)


def test_penalized_net_covariance_is_the_gauss_newton_sandwich():
    """For a ridge-penalized tanh net: cov(theta) = A^-1 F A^-1 and edf = tr(F A^-1), with
    F = sum_i J_i' W_i J_i from torch.func.jacrev, A = -Hessian of the log-likelihood (by
    torch.func.hessian) + N alpha on the weights, all built here from the fitted module."""
    X, y = _logit_data(200, seed=1)
    alpha = 0.02
    est = NeuralClassifier((3,), activation="tanh", solver="lbfgs", alpha=alpha, tol=1e-9,
                           max_iter=3000, random_state=0).fit(X, y)
    res = est.inference(effects="delta")
    module = est.module_.double()
    names, shapes, theta = _flat(module)
    Xt = torch.as_tensor(X)
    yt = torch.as_tensor(y, dtype=torch.float64)

    def eta(t):
        return functional_call(module, _unflat(names, shapes, t), (Xt,))[:, 0]

    def loglik(t):
        e = eta(t)
        return (yt * e - torch.nn.functional.softplus(e)).sum()

    J = jacrev(eta)(theta)  # (n, p)
    p_hat = torch.sigmoid(eta(theta))
    F = (J * (p_hat * (1 - p_hat))[:, None]).T @ J
    H = -torch.func.hessian(loglik)(theta)
    weights = np.concatenate([np.full(int(np.prod(s)), k.endswith("weight"))
                              for k, s in zip(names, shapes, strict=True)])
    A = H.numpy() + len(y) * alpha * np.diag(weights.astype(float))
    Ainv = np.linalg.inv(A)
    np.testing.assert_allclose(res.cov_theta, Ainv @ F.numpy() @ Ainv, rtol=1e-6,
                               atol=1e-9 * np.abs(Ainv).max())
    assert res.edf == pytest.approx(np.trace(F.numpy() @ Ainv), rel=1e-8)
    est.module_.float()


def test_net_prediction_se_is_the_delta_method_with_finite_differences():
    """mean_se of a net's predicted probability = |d mu / d eta| sqrt(g' C g), g the central
    finite-difference gradient of the decision function in theta (computed here by perturbing
    the module's parameters), C the reported cov(theta). SEs scaled by 0.1 or 10 fail."""
    X, y = _logit_data(200, seed=2)
    est = NeuralClassifier((3,), activation="tanh", solver="lbfgs", alpha=1e-2, max_iter=2000,
                           random_state=0).fit(X, y)
    res = est.inference(effects="delta")
    frame = res.get_prediction(X[:4]).summary_frame()
    module = est.module_.double()
    names, shapes, theta = _flat(module)
    Xt = torch.as_tensor(X[:4])
    h = 1e-6
    G = np.zeros((4, theta.numel()))
    with torch.no_grad():
        for k in range(theta.numel()):
            e = torch.zeros_like(theta)
            e[k] = h
            up = functional_call(module, _unflat(names, shapes, theta + e), (Xt,))[:, 0]
            dn = functional_call(module, _unflat(names, shapes, theta - e), (Xt,))[:, 0]
            G[:, k] = ((up - dn) / (2 * h)).numpy()
    p = est.predict_proba(X[:4])[:, 1]
    se = p * (1 - p) * np.sqrt(np.einsum("np,pq,nq->n", G, res.cov_theta, G))
    np.testing.assert_allclose(frame["mean_se"], se, rtol=1e-5)
    est.module_.float()


def test_wald_test_terms_is_the_pseudo_inverse_quadratic_form():
    """effects="delta": per input, chi2 = w' C^+ w over the first-layer weights leaving it
    (C their covariance block, pseudo-inverse computed here), df = rank of C, and a fit with
    three distinct hidden units has df 3 for every input."""
    X, y = _logit_data(300, seed=3, beta=(1.0, -0.8, 0.5))
    est = NeuralClassifier((3,), activation="tanh", solver="lbfgs", alpha=1e-2, max_iter=2000,
                           random_state=0).fit(X, y)
    res = est.inference(effects="delta")
    W = res.wald_test_terms()
    first = est.module_.layers[0].weight.detach().double().numpy()  # (3 units, 3 inputs)
    assert np.linalg.matrix_rank(first) == 3
    for j in range(3):
        idx = np.arange(3) * 3 + j  # layers.0.weight is the first block of theta, row-major
        w = res.theta[idx]
        np.testing.assert_allclose(w, first[:, j], rtol=1e-12)
        C = res.cov_theta[np.ix_(idx, idx)]
        assert W.iloc[j]["df constraint"] == np.linalg.matrix_rank(C) == 3
        stat = w @ np.linalg.pinv(C) @ w
        assert W.iloc[j]["chi2"] == pytest.approx(stat, rel=1e-8)
        assert W.iloc[j]["P>chi2"] == pytest.approx(sps.chi2.sf(stat, 3), rel=1e-8)


def test_integer_weights_equal_repeated_rows_for_net_effects():
    """The weighted-effects bug: a (2,) tanh net with integer weights and the same net on the
    repeated rows give the same delta-method effects and SEs (the average derivatives are
    weighted averages), and the same effects on the mean."""
    rng = np.random.default_rng(4)
    X, y = _logit_data(120, seed=4)
    w = rng.integers(1, 4, 120)
    est = NeuralClassifier((2,), activation="tanh", solver="lbfgs", alpha=1e-2, max_iter=3000,
                           tol=1e-9, random_state=0).fit(X, y, sample_weight=w)
    Xr, yr = np.repeat(X, w, axis=0), np.repeat(y, w)
    a = est.inference(effects="delta")
    b = est.inference(Xr, yr, effects="delta")  # the same network on the repeated rows
    np.testing.assert_allclose(a.params.values, b.params.values, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.bse.values, b.bse.values, rtol=1e-8)
    ma, mb = a.get_margeff().summary_frame(), b.get_margeff().summary_frame()
    np.testing.assert_allclose(ma.values, mb.values, rtol=1e-8, atol=1e-12)


def test_glm_bootstrap_reproduces_statsmodels_refits_on_the_same_resamples():
    """cov_type="bootstrap" for a GLM: the resamples are determined by the seeds; statsmodels'
    Logit refitted on the same resamples gives the same bootstrap SEs (1e-8)."""
    X, y = _logit_data(150, seed=5)
    est = NeuralClassifier((), solver="lbfgs").fit(X, y)
    res = est.inference(cov_type="bootstrap", n_bootstrap=30, random_state=7)
    seeds = check_random_state(7).randint(0, 2**31 - 1, size=30)
    reps = []
    for s in seeds:
        idx = np.random.default_rng(s).integers(0, 150, 150)
        reps.append(sm.Logit(y[idx], sm.add_constant(X[idx])).fit(
            disp=0, method="newton", tol=1e-12).params)
    np.testing.assert_allclose(res.bse.values, np.std(reps, axis=0, ddof=1), rtol=1e-8)


def test_lr_bootstrap_draws_reproduce_statsmodels_refits():
    """The parametric bootstrap's null distribution: y* drawn from the restricted fit with the
    documented seeds, both models refitted by statsmodels, LR* = 2 (llf_full - llf_restricted)
    equals the reported draws to 1e-8; and with a real effect the p-value is the smallest
    possible (power)."""
    X, y = _logit_data(200, seed=6, beta=(1.0, 0.0))
    full = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
    restricted = NeuralClassifier((), solver="lbfgs").fit(X[:, :1], y).inference()
    out = full.compare_lr_test(restricted, method="bootstrap", n_bootstrap=19, random_state=11)
    seeds = np.random.default_rng(11).integers(0, 2**31 - 1, size=19)
    mu = restricted.fittedvalues
    lr = []
    for s in seeds:
        ys = (np.random.default_rng(s).random(200) < mu).astype(int)
        f = sm.Logit(ys, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12)
        r = sm.Logit(ys, sm.add_constant(X[:, :1])).fit(disp=0, method="newton", tol=1e-12)
        lr.append(2 * (f.llf - r.llf))
    np.testing.assert_allclose(out.null_distribution, lr, rtol=1e-8, atol=1e-9)
    assert out.pvalue == pytest.approx((1 + np.sum(np.array(lr) >= out.statistic)) / 20)
    Xp, yp = _logit_data(200, seed=7, beta=(1.0, 0.8))
    fp = NeuralClassifier((), solver="lbfgs").fit(Xp, yp).inference()
    rp = NeuralClassifier((), solver="lbfgs").fit(Xp[:, :1], yp).inference()
    assert fp.compare_lr_test(rp, method="bootstrap", n_bootstrap=19,
                              random_state=0).pvalue == pytest.approx(1 / 20)


def test_lr_bootstrap_net_against_glm_detects_a_nonlinearity():
    """Does a hidden layer help? Under a strongly nonlinear truth the bootstrap LR test of a
    (3,) net against the GLM rejects; its null draws are refits of both models on responses
    simulated from the GLM."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 2))
    y = (rng.random(300) < 1 / (1 + np.exp(-(3 * np.tanh(3 * X[:, 0]) - 1.5 * X[:, 0])))) * 1
    glm = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
    net = NeuralClassifier((3,), activation="tanh", solver="lbfgs", alpha=1e-3, max_iter=1000,
                           random_state=0).fit(X, y).inference(effects="delta")
    out = net.compare_lr_test(glm, method="bootstrap", n_bootstrap=9, random_state=0)
    assert out.statistic > np.max(out.null_distribution) and out.pvalue == pytest.approx(0.1)


def test_likelihood_ratio_statistics_equal_statsmodels():
    """llr, llr_pvalue and prsquared of a GLM equal statsmodels' Logit."""
    X, y = _logit_data(250, seed=9)
    res = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
    ref = sm.Logit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12)
    assert res.llr == pytest.approx(ref.llr, rel=1e-8)
    assert res.llr_pvalue == pytest.approx(ref.llr_pvalue, rel=1e-6)
    assert res.prsquared == pytest.approx(ref.prsquared, rel=1e-8)


def test_collinear_glm_predictions_equal_statsmodels():
    """Exactly collinear inputs: the coefficients are not identified (neurostat's solution is
    not statsmodels' minimum-norm one), but the fitted values and the identified combination
    equal statsmodels' pinv fit, and the pseudo-inverse is flagged."""
    rng = np.random.default_rng(10)
    x = rng.normal(size=(200, 2))
    X = np.column_stack([x, x[:, 0] + x[:, 1]])
    y = 1 + x @ [0.5, -0.3] + rng.normal(size=200)
    est = NeuralRegressor((), solver="lbfgs").fit(X, y)
    ref = sm.OLS(y, sm.add_constant(X)).fit()
    np.testing.assert_allclose(est.predict(X), ref.fittedvalues, rtol=1e-7, atol=1e-8)
    c = est.coef_
    np.testing.assert_allclose([c[0] + c[2], c[1] + c[2]],
                               [ref.params[1] + ref.params[3], ref.params[2] + ref.params[3]],
                               rtol=1e-6)
    with pytest.warns(Warning, match="pseudo-inverse"):
        est.inference()


def test_categorical_prediction_standard_errors_equal_the_closed_form_delta_method():
    """A 3-class multinomial GLM: ``get_prediction`` gives each class probability and its SE
    ``sqrt(g' V g)`` with ``V`` statsmodels' MNLogit covariance and ``g`` the softmax's
    gradient ``p_c (1[c = k] - p_k) z`` over the non-reference classes k, at new rows."""
    rng = np.random.default_rng(0)
    n = 400
    X = rng.normal(size=(n, 2))
    E = np.column_stack([np.zeros(n), 0.3 + X[:, 0], -0.2 + 0.8 * X[:, 1] - 0.5 * X[:, 0]])
    P = np.exp(E) / np.exp(E).sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(P, 1)).sum(1)
    res = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
    Xn = rng.normal(size=(5, 2))
    frame = res.get_prediction(Xn).summary_frame()
    ref = sm.MNLogit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12,
                                                maxiter=100)
    B, V = np.asarray(ref.params), np.asarray(ref.cov_params())  # V: equation by equation
    Z = sm.add_constant(Xn, has_constant="add")
    eta = np.column_stack([np.zeros(len(Z)), Z @ B])
    p = np.exp(eta) / np.exp(eta).sum(1, keepdims=True)
    se = np.array([[np.sqrt(g @ V @ g) for g in (
        np.concatenate([p[i, c] * ((c == k) - p[i, k]) * Z[i] for k in (1, 2)])
        for c in range(3))] for i in range(len(Z))])
    np.testing.assert_allclose(frame["mean"].to_numpy().reshape(5, 3), p, rtol=1e-9)
    np.testing.assert_allclose(frame["mean_se"].to_numpy().reshape(5, 3), se, rtol=1e-7)
    assert np.all(frame["mean_ci_lower"] < frame["mean"]) and np.all(
        frame["mean"] < frame["mean_ci_upper"])


def test_net_case_bootstrap_reproduces_warm_started_refits():
    """cov_type="bootstrap" on a (4,) tanh net: the resamples follow the documented seeds; refits
    of a warm-started copy (scikit-learn's ``warm_start``) on them, their average derivatives of
    the decision function taken by central differences at the original rows, give the reported
    bootstrap SEs (intercept: mean eta minus the effects at the mean of X). The effects are
    functionals of the fitted function, so they do not depend on how the refits label their
    hidden units."""
    import copy

    X, y = _logit_data(200, seed=8)
    est = NeuralClassifier((4,), activation="tanh", solver="lbfgs", alpha=1e-2, max_iter=500,
                           random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = est.inference(cov_type="bootstrap", n_bootstrap=15, random_state=3)
    h = 1e-5
    effects = []
    for s in check_random_state(3).randint(0, 2**31 - 1, size=15):
        idx = np.random.default_rng(s).integers(0, 200, 200)
        b = copy.deepcopy(est).set_params(warm_start=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b.fit(X[idx], y[idx])
        slopes = [np.mean((b.decision_function(X + h * e) - b.decision_function(X - h * e))
                          / (2 * h)) for e in np.eye(X.shape[1])]
        effects.append([b.decision_function(X).mean() - np.dot(slopes, X.mean(0)), *slopes])
    np.testing.assert_allclose(res.bse.values, np.std(effects, axis=0, ddof=1), rtol=1e-5)
    assert "case bootstrap (15 warm-started refits" in res.statistics.method


def test_summary_of_a_net_with_a_frozen_first_layer_equals_ols_on_its_features():
    """freeze=1 on a (4,) tanh net leaves a linear model in the frozen features
    ``h = tanh(X W1' + b1)``: the output layer is OLS of y on [1, h] (statsmodels), and the
    delta-method effects are linear in it, ``E[sum_u V_u s'(z_u) W1_uj]`` (intercept: mean eta
    minus the effects at the mean of X), with SEs ``sqrt(g' V_ols g)``. The summary prints
    without a per-input Wald table (no weights leave an input) and says why; before, it
    raised."""
    rng = np.random.default_rng(12)
    X = rng.normal(size=(150, 3))
    y = np.sin(X[:, 0]) + X[:, 1] + 0.3 * rng.normal(size=150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = NeuralRegressor((4,), activation="tanh", solver="lbfgs", max_iter=50,
                              random_state=0).fit(X, y)
        est = NeuralRegressor((4,), activation="tanh", solver="lbfgs", init=src, freeze=1,
                              max_iter=2000, tol=1e-10).fit(X, y)
        res = est.inference(effects="delta")
    A, a = est.coefs_[0].T, est.intercepts_[0]  # (4, 3), (4,)
    H = np.tanh(X @ A.T + a)
    ols = sm.OLS(y, sm.add_constant(H)).fit()
    np.testing.assert_allclose(np.r_[est.intercepts_[1], est.coefs_[1].ravel()], ols.params,
                               rtol=1e-6)
    S = (1 - H**2).mean(0)[:, None] * A  # (4, 3): mean_i s'(z_iu) W1_uj
    G = np.column_stack([np.zeros(3), S.T])  # d effect_j / d (c, V)
    g0 = np.r_[1.0, H.mean(0) - S @ X.mean(0)]
    G = np.vstack([g0, G])
    np.testing.assert_allclose(res.params.values, G @ ols.params, rtol=1e-6)
    np.testing.assert_allclose(res.bse.values,
                               np.sqrt(np.diag(G @ ols.cov_params() @ G.T)), rtol=1e-5)
    text = str(res.summary())
    assert "Tests per input: none (the first layer is frozen" in text
    assert "compare_lr_test" in text and "chi2" not in text
    message = ("wald_test_terms needs a first fully connected layer with estimated weights; "
               "this network's first layer is frozen or of another kind (e.g. a convolution). "
               "Test an input with compare_lr_test against the model without it.")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        res.wald_test_terms()
