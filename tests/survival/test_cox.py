"""NeuralCoxRegressor: equivalence with statsmodels' PHReg and R's coxph, predictions, concordance.

Reference numbers: statsmodels is run in the tests; R's ``survival::coxph`` numbers are frozen
in tests/results/cox_reference.json by tests/results/make_cox_reference.py (data included).
"""

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch
from scipy import stats as sps
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neurostat import NeuralCoxRegressor
from neurostat.inference import InferenceWarning
from neurostat.inference.likelihood import Likelihood
from neurostat.survival.family import Cox, as_survival_target, partial_loglik
from neurostat.survival.metrics import breslow_baseline, concordance_index

REF = json.loads((Path(__file__).parents[1] / "results" / "cox_reference.json").read_text())


def simulate(n=300, p=3, seed=0, ties=True, shift=0.0):
    """Exponential proportional hazards with random censoring; integer times give ties."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) + shift
    beta = np.linspace(0.6, -0.4, p)
    t = rng.exponential(np.exp(-(X - shift) @ beta))
    c = rng.exponential(1.5, n)
    time = np.minimum(t, c)
    if ties:
        time = np.ceil(time * 10)
    return X, np.column_stack([time, (t <= c).astype(float)])


def linear_cox(**kw):
    return NeuralCoxRegressor(hidden_layer_sizes=(), solver="lbfgs", **kw)


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


# ----------------------------------------------------------------------------- likelihood
@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_partial_loglik_equals_phreg_loglike(ties):
    X, y = simulate(seed=1)
    model = sm.PHReg(y[:, 0], X, status=y[:, 1], ties=ties)
    for beta in (np.zeros(3), np.array([0.3, -0.2, 0.1]), np.array([2.0, 1.0, -3.0])):
        ll = partial_loglik(torch.as_tensor(X @ beta), torch.as_tensor(y[:, 0]),
                            torch.as_tensor(y[:, 1]), ties=ties)
        assert float(ll) == pytest.approx(model.loglike(beta), rel=1e-12)


def test_breslow_weights_equal_repeated_rows():
    X, y = simulate(seed=2)
    w = np.random.default_rng(0).integers(0, 4, len(y)).astype(float)
    idx = np.repeat(np.arange(len(y)), w.astype(int))
    beta = torch.as_tensor(X @ np.array([0.4, 0.1, -0.3]))
    weighted = partial_loglik(beta, torch.as_tensor(y[:, 0]), torch.as_tensor(y[:, 1]),
                              torch.as_tensor(w), "breslow")
    repeated = partial_loglik(beta[idx], torch.as_tensor(y[idx, 0]),
                              torch.as_tensor(y[idx, 1]), None, "breslow")
    assert float(weighted) == pytest.approx(float(repeated), rel=1e-12)


# ----------------------------------------------------------------------------- vs PHReg
@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_linear_cox_equals_phreg(ties):
    """Coefficients, SEs, llf, llnull and AIC equal PHReg's (tolerances: rel 1e-6, llf 1e-9)."""
    X, y = simulate(n=400, p=4, seed=3, shift=1.0)
    est = linear_cox(ties=ties).fit(X, y)
    res = est.inference()
    model = sm.PHReg(y[:, 0], X, status=y[:, 1], ties=ties)
    ref = model.fit()
    assert rel(est.coef_, ref.params) < 1e-6
    assert rel(res.params, ref.params) < 1e-6
    assert rel(res.bse, ref.bse) < 1e-6
    assert res.llf == pytest.approx(ref.llf, rel=1e-9)
    assert res.llnull == pytest.approx(model.loglike(np.zeros(4)), rel=1e-12)
    assert res.aic == pytest.approx(-2 * ref.llf + 2 * 4, rel=1e-9)  # PHReg: df = p
    assert res.df_model == pytest.approx(4)
    assert rel(res.pvalues, ref.pvalues) < 1e-4
    assert rel(res.conf_int().to_numpy(), ref.conf_int()) < 1e-5
    # eta = X @ coef exactly: the bias L-BFGS borrows for standardizing is reset
    assert est.intercepts_[0][0] == 0.0
    np.testing.assert_allclose(est.predict(X), X @ est.coef_, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ties, tied_times", [("breslow", True), ("efron", False),
                                              ("breslow", False)])
def test_robust_se_equals_phreg_groups(ties, tied_times):
    """cov_type="robust" (= HC0 = HC1) equals PHReg.fit(groups=range(n)) to rel 1e-6.

    With Efron's ties *and* tied times statsmodels builds its score residuals from Breslow's
    increments; neurostat follows R (tested against coxph below), so that case is not here.
    """
    X, y = simulate(n=300, p=3, seed=4, ties=tied_times)
    est = linear_cox(ties=ties).fit(X, y)
    ref = sm.PHReg(y[:, 0], X, status=y[:, 1], ties=ties).fit(groups=np.arange(len(y)))
    for cov_type in ("robust", "HC0", "HC1"):
        assert rel(est.inference(cov_type=cov_type).bse, ref.bse) < 1e-6


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_heart_transplant_data_equals_phreg(ties):
    """statsmodels' Stanford heart transplant data (69 patients, tied times)."""
    data = sm.datasets.heart.load_pandas().data
    X, y = data[["age"]], data[["survival", "censors"]]
    est = linear_cox(ties=ties).fit(X, y)
    res = est.inference()
    ref = sm.PHReg(data.survival, data[["age"]], status=data.censors, ties=ties).fit()
    assert rel(res.params, ref.params) < 1e-6
    assert rel(res.bse, ref.bse) < 1e-6
    assert res.llf == pytest.approx(ref.llf, rel=1e-10)
    assert list(res.params.index) == ["age"]


@pytest.mark.parametrize("key", ["efron_none", "efron_w", "breslow_none", "breslow_w"])
def test_equals_r_coxph(key):
    """R's coxph (frozen): coef, naive and robust SE, loglik (rel 1e-6), concordance and the
    Breslow baseline (abs 1e-8), with tied times and (non-integer) case weights."""
    data, r = REF["data"], REF["R"][key]
    X = np.array(data["X"])
    y = np.column_stack([data["time"], data["event"]])
    ties, weighted = key.split("_")
    w = np.array(data["w"]) if weighted == "w" else None
    est = linear_cox(ties=ties).fit(X, y, sample_weight=w)
    res, rob = est.inference(), est.inference(cov_type="robust")
    assert rel(est.coef_, r["coef"]) < 1e-6
    assert rel(res.bse, r["se"]) < 1e-6
    assert rel(rob.bse, r["robust_se"]) < 1e-6
    assert res.llnull == pytest.approx(r["loglik"][0], rel=1e-10)
    assert res.llf == pytest.approx(r["loglik"][1], rel=1e-10)
    assert est.score(X, y, sample_weight=w) == pytest.approx(r["concordance"][0], abs=1e-10)
    if "basehaz" in r:
        h0 = est.predict_cumulative_hazard(np.zeros((1, 3)), r["basehaz_time"])[0]
        np.testing.assert_allclose(h0, r["basehaz"], rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(res.resid_martingale, r["resid_martingale"], atol=1e-9)
        np.testing.assert_allclose(res.resid_deviance, r["resid_deviance"], atol=1e-9)
        diag = res.diagnostics()
        assert diag.stationary and diag.gradient_norm < 1e-10
        np.testing.assert_array_equal(diag.resid_deviance, res.resid_deviance)


def test_frozen_statsmodels_reference():
    data = REF["data"]
    X, y = np.array(data["X"]), np.column_stack([data["time"], data["event"]])
    for ties, ref in REF["statsmodels"].items():
        res = linear_cox(ties=ties).fit(X, y).inference()
        assert rel(res.params, ref["coef"]) < 1e-6
        assert rel(res.bse, ref["se"]) < 1e-6
        assert res.llf == pytest.approx(ref["llf"], rel=1e-10)


def test_monotone_likelihood_warns():
    """A group without events: its coefficient diverges (PHReg does not converge); neurostat
    warns as R's coxph does, naming the covariate, and not for an ordinary fit."""
    X, y = simulate(n=100, p=2, seed=27, ties=False)
    group = (np.arange(100) % 2).astype(float)
    y[group == 0, 1] = 0.0
    Xg = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "group": group})
    with pytest.warns(ConvergenceWarning, match=r"\['group'\].*may be infinite"):
        linear_cox().fit(Xg, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        linear_cox().fit(Xg[["a", "b"]], y)


def test_integer_weights_are_repeated_rows():
    """Integer weights = repeated rows (Breslow): coefficients, standard errors (frequency
    weights, as R's coxph case weights) and the baseline hazard."""
    X, y = simulate(n=150, seed=5)
    w = np.random.default_rng(1).integers(1, 4, len(y)).astype(float)
    idx = np.repeat(np.arange(len(y)), w.astype(int))
    a = linear_cox(ties="breslow").fit(X, y, sample_weight=w)
    b = linear_cox(ties="breslow").fit(X[idx], y[idx])
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-8)
    np.testing.assert_allclose(a.inference().bse, b.inference().bse, rtol=1e-7)
    np.testing.assert_allclose(a.inference().llf, b.inference().llf, rtol=1e-9)
    np.testing.assert_allclose(a.baseline_cumulative_hazard_, b.baseline_cumulative_hazard_,
                               rtol=1e-7)


def test_objective_is_glmnet_scaled():
    """loss_ = -log PL / n + penalty; at a ridge fit, score / n = alpha * coef (KKT, 1e-7)."""
    X, y = simulate(n=200, seed=6)
    plain = linear_cox().fit(X, y)
    assert plain.loss_ == pytest.approx(-plain.inference().llf / len(y), rel=1e-9)
    alpha = 0.05
    est = linear_cox(alpha=alpha).fit(X, y)
    eta = torch.as_tensor(X @ est.coef_).requires_grad_(True)
    ll = partial_loglik(eta, torch.as_tensor(y[:, 0]), torch.as_tensor(y[:, 1]), ties="efron")
    (u,) = torch.autograd.grad(ll, eta)
    np.testing.assert_allclose(X.T @ u.numpy() / len(y), alpha * est.coef_, atol=1e-7)


def test_coxnet_alpha_matches_scikit_survival():
    """scikit-survival's CoxnetSurvivalAnalysis (lasso, Breslow ties); glmnet's own numbers
    are in test_survival_data.py::test_lasso_equals_glmnet_cox."""
    from sksurv import linear_model as sksurv_linear
    from sksurv.util import Surv
    X, y = simulate(n=200, seed=7)
    alpha = 0.02
    est = linear_cox(ties="breslow", alpha=alpha, l1_ratio=1.0, max_iter=2000).fit(X, y)
    ref = sksurv_linear.CoxnetSurvivalAnalysis(l1_ratio=1.0, alphas=[alpha], normalize=False,
                                               tol=1e-12, max_iter=100000)
    ref.fit(X, Surv.from_arrays(y[:, 1] > 0, y[:, 0]))
    np.testing.assert_allclose(est.coef_, ref.coef_[:, 0], atol=1e-4)


# ----------------------------------------------------------------------------- inference
def test_hazard_ratios_and_summary_at_another_level():
    """At alpha = 0.1: hazard ratios ``exp(coef)`` with ``exp(coef -+ z_0.95 se)`` in the
    coefficients' order and index, and a summary whose table carries them under "90%" names,
    whose header says the log link is the log hazard ratio (every other header line as the
    generic summary's), and whose first note says there is no intercept; the default level is
    the results' own (95%)."""
    from neurostat.inference.summary import Summary

    X, y = simulate(n=300, p=3, seed=8)
    res = linear_cox().fit(X, y).inference()
    z = sps.norm.isf(0.05)
    b, se = res.params, res.bse
    expected = pd.DataFrame({"exp(coef)": np.exp(b), "lower": np.exp(b - z * se),
                             "upper": np.exp(b + z * se)}, index=b.index)
    pd.testing.assert_frame_equal(res.hazard_ratios(alpha=0.1), expected, rtol=1e-12)
    s = res.summary(alpha=0.1)
    table = s.params_table
    np.testing.assert_allclose(table["exp(coef)"], expected["exp(coef)"], rtol=1e-12)
    np.testing.assert_allclose(table["exp(coef) lower 90%"], expected["lower"], rtol=1e-12)
    np.testing.assert_allclose(table["exp(coef) upper 90%"], expected["upper"], rtol=1e-12)
    np.testing.assert_allclose(table["[0.05"], b - z * se, rtol=1e-12)  # the coef's interval
    np.testing.assert_allclose(table["0.95]"], b + z * se, rtol=1e-12)
    generic = Summary(res, 0.1).header
    assert s.header.loc["Link:", "value"] == "log (HR = exp(coef))"
    pd.testing.assert_frame_equal(s.header.drop("Link:"), generic.drop("Link:"))
    assert s.tables[0] is s.header and s.tables[1] is s.params_table
    assert s.notes[0] == ("Log partial likelihood; no intercept (it cancels). coef is the log "
                          "hazard ratio per unit of the input.")
    assert "log (HR = exp(coef))" in str(s) and "exp(coef) lower 90%" in str(s)
    assert "exp(coef) upper 95%" in res.summary().params_table


def test_hazard_ratios_summary_wald_and_lr_test():
    X, y = simulate(n=300, p=3, seed=8)
    full = linear_cox().fit(X, y).inference()
    hr = full.hazard_ratios()
    ci = full.conf_int()
    np.testing.assert_allclose(hr["exp(coef)"], np.exp(full.params), rtol=1e-14)
    np.testing.assert_allclose(hr[["lower", "upper"]].to_numpy(), np.exp(ci.to_numpy()),
                               rtol=1e-14)
    table = full.summary().params_table
    assert {"coef", "std err", "z", "P>|z|", "exp(coef)", "exp(coef) lower 95%"} <= set(table)
    text = str(full.summary())
    assert "Ties:" in text and "efron" in text
    assert "intercept" not in table.index
    # per-input Wald test of a linear Cox model = z^2 (1e-10)
    wald = full.wald_test_terms()
    np.testing.assert_allclose(wald["chi2"], full.tvalues**2, rtol=1e-10)
    # LR test of dropping x2 equals PHReg's likelihoods (1e-8)
    restricted = linear_cox().fit(X[:, :2], y).inference()
    lr = full.compare_lr_test(restricted)
    ll_full = sm.PHReg(y[:, 0], X, status=y[:, 1], ties="efron").fit().llf
    ll_res = sm.PHReg(y[:, 0], X[:, :2], status=y[:, 1], ties="efron").fit().llf
    assert lr.statistic == pytest.approx(2 * (ll_full - ll_res), rel=1e-7)
    assert lr.df == pytest.approx(1.0)
    assert lr.pvalue == pytest.approx(sps.chi2.sf(lr.statistic, 1), rel=1e-12)


def test_marginal_effects():
    """Link scale: the coefficients with their SEs; response scale: mean_i exp(eta_i) beta."""
    X, y = simulate(n=200, seed=24)
    est = linear_cox().fit(X, y)
    res = est.inference()
    link = res.get_margeff(scale="link").summary_frame()
    np.testing.assert_allclose(link["dy/dx"], res.params, rtol=1e-10)
    np.testing.assert_allclose(link["Std. Err."], res.bse, rtol=1e-10)
    assert list(link.index) == ["x0", "x1", "x2"]
    resp = res.get_margeff().summary_frame()
    np.testing.assert_allclose(resp["dy/dx"], np.exp(X @ est.coef_).mean() * est.coef_,
                               rtol=1e-10)


def test_relative_hazard_prediction_intervals():
    """get_prediction: exp(eta) with the interval exp(eta +- z se(eta)), se(eta)^2 = x'Vx."""
    X, y = simulate(n=200, seed=9)
    est = linear_cox().fit(X, y)
    res = est.inference()
    frame = res.get_prediction(X[:5]).summary_frame()
    eta = X[:5] @ est.coef_
    se = np.sqrt(np.einsum("ij,jk,ik->i", X[:5], res.cov_params().to_numpy(), X[:5]))
    np.testing.assert_allclose(frame["mean"], np.exp(eta), rtol=1e-12)
    np.testing.assert_allclose(frame["mean_ci_lower"], np.exp(eta - 1.959963985 * se), rtol=1e-8)
    np.testing.assert_allclose(frame["mean_ci_upper"], np.exp(eta + 1.959963985 * se), rtol=1e-8)


def test_linear_hidden_layer_effects_equal_the_cox_model():
    """A net with one identity-activation hidden layer is the linear Cox model reparametrized:
    its average effects and their delta-method SEs equal PHReg's (rel 1e-4)."""
    X, y = simulate(n=250, p=3, seed=10)
    net = NeuralCoxRegressor((2,), activation="identity", solver="lbfgs", random_state=0,
                             max_iter=5000, tol=1e-8).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InferenceWarning)  # the weights are not identified
        res = net.inference()
    ref = sm.PHReg(y[:, 0], X, status=y[:, 1], ties="efron").fit()
    assert rel(res.params, ref.params) < 1e-4
    assert rel(res.bse, ref.bse) < 1e-3
    assert res.llf == pytest.approx(ref.llf, rel=1e-8)
    assert res.summary().wald_table is not None


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_closed_form_curvature_and_score_residuals_equal_autograd(ties):
    """For a tanh net with weights and tied times: the closed-form Hessian of -log PL equals
    torch.func.hessian (rel 1e-10) and the score residuals sum to the autograd score (1e-12)."""
    X, y = simulate(n=60, p=3, seed=26)
    w = np.random.default_rng(0).uniform(0.5, 2.0, 60)
    net = NeuralCoxRegressor((3,), activation="tanh", solver="lbfgs", alpha=0.05, ties=ties,
                             random_state=0, max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, y, sample_weight=w)
    lik = Likelihood(net.module_, net.family_, X, y, net._training_data[2])
    H, _ = lik.curvatures()
    auto = torch.func.hessian(lambda t: -lik.loglik(lik.eta(t)))(lik.theta)
    assert float((H - auto).abs().max() / auto.abs().max()) < 1e-10
    t = lik.theta.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(lik.loglik(lik.eta(t)), t)
    np.testing.assert_allclose(lik.score_obs().sum(0), g, atol=1e-12)


def test_nonlinear_net_inference_runs_and_is_consistent():
    X, y = simulate(n=200, p=2, seed=11)
    net = NeuralCoxRegressor((4,), activation="tanh", solver="lbfgs", alpha=1e-2,
                             random_state=0, max_iter=500).fit(X, y)
    res = net.inference()
    # effects are average derivatives of eta: finite differences of predict (1e-5)
    h = 1e-6
    fd = [(net.predict(X + h * np.eye(2)[j]) - net.predict(X - h * np.eye(2)[j])).mean() / (2 * h)
          for j in range(2)]
    np.testing.assert_allclose(res.params, fd, rtol=1e-5)
    assert np.all(np.isfinite(res.bse)) and np.all(res.bse > 0)
    assert res.llf > res.llnull


# ----------------------------------------------------------------------------- predictions
def test_breslow_baseline_equals_phreg():
    X, y = simulate(n=300, seed=12)
    est = linear_cox(ties="breslow").fit(X, y)
    times, h0 = est.baseline_times_, est.baseline_cumulative_hazard_
    ref_t, ref_h, _ = sm.PHReg(y[:, 0], X, status=y[:, 1]).baseline_cumulative_hazard(
        est.coef_)[0]
    np.testing.assert_array_equal(times, ref_t)
    # statsmodels reports H0 just before each event time (its cumsum minus the jump),
    # neurostat the right-continuous value at it (as R's basehaz, tested above)
    assert ref_h[0] == 0.0
    np.testing.assert_allclose(h0[:-1], ref_h[1:], rtol=1e-10)
    t, hh = breslow_baseline(y[:, 0], y[:, 1], est.predict(X))
    np.testing.assert_allclose(hh, h0, rtol=1e-14)


def test_survival_and_cumulative_hazard_predictions():
    X, y = simulate(n=200, seed=13)
    est = linear_cox().fit(X, y)
    times = np.array([-1.0, 0.0, 5.0, 12.5, 1e6])
    H = est.predict_cumulative_hazard(X[:4], times)
    S = est.predict_survival_function(X[:4], times)
    assert H.shape == S.shape == (4, 5)
    np.testing.assert_allclose(S, np.exp(-H), rtol=1e-14)
    np.testing.assert_array_equal(H[:, :2], 0.0)  # before the first event time
    h0_12 = est.baseline_cumulative_hazard_[est.baseline_times_ <= 12.5][-1]
    np.testing.assert_allclose(H[:, 3], h0_12 * np.exp(X[:4] @ est.coef_), rtol=1e-12)
    np.testing.assert_allclose(H[:, 4], est.baseline_cumulative_hazard_[-1]
                               * np.exp(X[:4] @ est.coef_), rtol=1e-12)
    assert est.predict_survival_function(X[:3]).shape == (3, est.baseline_times_.size)
    assert np.all(np.diff(S, axis=1) <= 0)


def test_survival_curve_monte_carlo():
    """Exponential PH data with H0(t) = t: the fitted S(t | x) is within 0.03 of
    exp(-t exp(x'beta)) at the quartiles of t (n = 3000, Monte Carlo)."""
    rng = np.random.default_rng(14)
    n, beta = 3000, np.array([0.7, -0.5])
    X = rng.normal(size=(n, 2))
    t = rng.exponential(np.exp(-X @ beta))
    c = rng.exponential(2.0, n)
    y = np.column_stack([np.minimum(t, c), t <= c])
    est = linear_cox(ties="breslow").fit(X, y)
    grid = np.quantile(y[:, 0], [0.25, 0.5, 0.75])
    profiles = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    truth = np.exp(-grid[None, :] * np.exp(profiles @ beta)[:, None])
    np.testing.assert_allclose(est.predict_survival_function(profiles, grid), truth, atol=0.03)


# ----------------------------------------------------------------------------- concordance
def _brute_concordance(time, event, risk, w):
    num = den = 0.0
    for i in range(len(time)):
        if not event[i]:
            continue
        for j in range(len(time)):
            if time[i] < time[j] or (time[i] == time[j] and not event[j]):
                den += w[i] * w[j]
                num += w[i] * w[j] * ((risk[i] > risk[j]) + 0.5 * (risk[i] == risk[j]))
    return num / den


def test_concordance_equals_brute_force_with_ties_and_weights():
    rng = np.random.default_rng(15)
    n = 120
    time = rng.integers(1, 15, n).astype(float)
    event = rng.random(n) < 0.6
    risk = np.round(rng.normal(size=n), 1)  # tied risks
    w = rng.uniform(0.1, 2.0, n)
    for weights in (np.ones(n), w):
        assert concordance_index(time, event, risk, weights) == pytest.approx(
            _brute_concordance(time, event, risk, weights), abs=1e-12)
    distinct = np.arange(1.0, 21.0)
    assert concordance_index(distinct, np.ones(20), -distinct) == 1.0
    assert concordance_index(distinct, np.ones(20), distinct) == 0.0
    with pytest.raises(ValueError, match="No comparable pairs"):
        concordance_index([1.0, 2.0], [0, 0], [0.1, 0.2])


def test_concordance_equals_scikit_survival():
    """scikit-survival's concordance_index_censored with tied times and risks (R's
    concordance() and its variance: test_survival_scores.py)."""
    from sksurv import metrics
    rng = np.random.default_rng(16)
    time = rng.integers(1, 40, 500).astype(float)
    event = rng.random(500) < 0.5
    risk = np.round(rng.normal(size=500), 2)
    ours = concordance_index(time, event, risk)
    assert ours == pytest.approx(metrics.concordance_index_censored(event, time, risk)[0],
                                 abs=1e-12)


def test_score_is_concordance_and_works_in_model_selection():
    X, y = simulate(n=240, p=3, seed=17)
    est = linear_cox()
    scores = cross_val_score(est, X, y, cv=KFold(3, shuffle=True, random_state=0))
    assert np.all((scores > 0.6) & (scores <= 1.0))
    search = GridSearchCV(make_pipeline(StandardScaler(), linear_cox()),
                          {"neuralcoxregressor__alpha": [0.0, 0.1, 10.0]}, cv=3).fit(X, y)
    assert 0.5 < search.best_score_ <= 1.0
    fitted = est.fit(X, y)
    assert fitted.score(X, y) == concordance_index(y[:, 0], y[:, 1], fitted.predict(X))


# ----------------------------------------------------------------------------- minibatches
def test_minibatch_estimator_close_to_full_batch():
    """Adam over minibatch risk sets (batch 256) lands within 0.5 SE of the full-batch fit;
    loss_ is the full-batch objective (1e-6), within 1e-3 of the optimum."""
    X, y = simulate(n=2000, p=4, seed=18, ties=False)
    full = linear_cox().fit(X, y)
    se = full.inference().bse.to_numpy()
    mb = NeuralCoxRegressor((), solver="adam", batch_size=256, learning_rate_init=1e-2,
                            max_iter=60, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mb.fit(X, y)
    assert np.all(np.abs(mb.coef_ - full.coef_) < 0.5 * se)
    ll = partial_loglik(torch.as_tensor(mb.predict(X)), torch.as_tensor(y[:, 0]),
                        torch.as_tensor(y[:, 1]), ties="efron")
    assert mb.loss_ == pytest.approx(-float(ll) / len(y), rel=1e-6)
    assert mb.loss_ == pytest.approx(full.loss_, rel=1e-3)
    assert mb.score(X, y) == pytest.approx(full.score(X, y), abs=0.01)


def test_minibatch_loss_uses_the_batch_risk_sets():
    fam = Cox("breslow")
    y = torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0]])
    eta = torch.tensor([[0.5], [0.0], [-1.0], [0.2]])
    r = torch.exp(eta[:, 0])
    expected = -((0.5 - torch.log(r.sum())) + (0.0 - torch.log(r[1:].sum()))
                 + (0.2 - torch.log(r[3:].sum()))) / 4
    assert float(fam.loss(eta, y)) == pytest.approx(float(expected), rel=1e-6)
    # the batch {row 2, row 4} only sees its own rows
    batch = fam.loss(eta[[1, 3]], y[[1, 3]])
    assert float(batch) == pytest.approx(
        float(-((0.0 - torch.log(r[[1, 3]].sum())) + 0.0) / 2), rel=1e-6)


def test_early_stopping_and_partial_fit_run():
    X, y = simulate(n=300, seed=19)
    est = NeuralCoxRegressor((8,), early_stopping=True, max_iter=30, random_state=0,
                             learning_rate_init=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_
    assert np.all(np.array(est.validation_scores_) < 0)  # mean log partial likelihood
    pf = NeuralCoxRegressor((), random_state=0, learning_rate_init=1e-2)
    for _ in range(3):
        pf.partial_fit(X, y)
    assert pf.n_iter_ == 3 and pf.baseline_times_.size > 0


# ----------------------------------------------------------------------------- targets
def test_target_formats_give_the_same_fit():
    X, y = simulate(n=150, seed=20)
    ref = linear_cox().fit(X, y).coef_
    structured = np.empty(len(y), dtype=[("event", bool), ("time", float)])
    structured["event"], structured["time"] = y[:, 1] > 0, y[:, 0]
    frame = pd.DataFrame({"died": y[:, 1] > 0, "days": y[:, 0]})  # bool column = event
    for target in (structured, frame, pd.DataFrame(y, columns=["t", "e"]), y.tolist()):
        np.testing.assert_allclose(linear_cox().fit(X, target).coef_, ref, rtol=1e-10)
    all_events = linear_cox().fit(X, y[:, 0]).coef_
    np.testing.assert_allclose(
        all_events, linear_cox().fit(X, np.column_stack([y[:, 0], np.ones(len(y))])).coef_,
        rtol=1e-10)


def test_scikit_survival_surv_target():
    from sksurv.util import Surv
    X, y = simulate(n=150, seed=21)
    surv = Surv.from_arrays(event=y[:, 1] > 0, time=y[:, 0])
    est = linear_cox().fit(X, surv)
    np.testing.assert_allclose(est.coef_, linear_cox().fit(X, y).coef_, rtol=1e-10)
    assert est.score(X, surv) == est.score(X, y)
    np.testing.assert_allclose(est.inference(X, surv).bse, est.inference().bse, rtol=1e-12)


@pytest.mark.parametrize("y, match", [
    (np.array([[1.0, 1], [-2.0, 0], [3.0, 1]]), "must be >= 0"),
    (np.array([[1.0, 1], [np.nan, 0], [3.0, 1]]), "NaN or infinity"),
    (np.array([[1.0, 1], [np.inf, 0], [3.0, 1]]), "NaN or infinity"),
    (np.array([[1.0, 1], [2.0, 2], [3.0, 1]]), "0 \\(censored\\) or 1 \\(event\\)"),
    (np.array([[1.0, 0], [2.0, 0], [3.0, 0]]), "no events"),
    (np.ones((3, 5)), "shape"),
    (np.ones((3, 3)), "stop <= start"),
    (np.zeros(3, dtype=[("a", float), ("b", float)]), "event indicator"),
    (None, "requires y"),
])
def test_bad_targets_raise_clear_errors(y, match):
    with pytest.raises(ValueError, match=match):
        linear_cox().fit(np.ones((3, 1)), y)


def test_as_survival_target_rejects_length_mismatch_and_complex():
    with pytest.raises(ValueError, match="inconsistent"):
        linear_cox().fit(np.ones((4, 1)), np.ones(3))
    with pytest.raises(ValueError, match="Complex"):
        as_survival_target(np.array([1.0 + 1j, 2.0]))


def test_pickle_and_feature_names():
    X, y = simulate(n=120, seed=22)
    frame = pd.DataFrame(X, columns=["age", "dose", "stage"])
    est = linear_cox().fit(frame, y)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict(frame), est.predict(frame))
    np.testing.assert_array_equal(clone.predict_survival_function(frame),
                                  est.predict_survival_function(frame))
    assert list(est.inference().params.index) == ["age", "dose", "stage"]


def test_bootstrap_covariance_runs():
    X, y = simulate(n=120, p=2, seed=23)
    est = linear_cox().fit(X, y)
    res = est.inference(cov_type="bootstrap", n_bootstrap=8, random_state=0)
    assert res.bse.shape == (2,) and np.all(res.bse > 0)
    np.testing.assert_allclose(res.params, est.coef_)
