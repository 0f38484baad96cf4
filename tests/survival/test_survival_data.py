"""Survival data as they come: (start, stop] intervals, strata, clusters, competing risks.

Reference numbers are R's survival package, frozen in tests/results/survival_reference.json
by tests/results/make_survival_reference.py (data included; R and package versions inside).
Tolerances: coefficients 1e-6, standard errors 1e-5 relative, log partial likelihood 1e-8
relative (measured agreement is about 1e-14).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from neurostat import NeuralCoxRegressor
from neurostat.inference.likelihood import Likelihood
from neurostat.survival import aalen_johansen
from neurostat.survival.competing import fine_gray_data
from neurostat.survival.family import Cox
from neurostat.survival.target import time_ranks

REF = json.loads((Path(__file__).parents[1] / "results" / "survival_reference.json").read_text())
R = REF["R"]


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def linear_cox(**kw):
    return NeuralCoxRegressor(hidden_layer_sizes=(), solver="lbfgs", **kw)


def counting():
    c = REF["data"]["counting"]
    y = np.column_stack([c["start"], c["stop"], c["event"]])
    return np.array(c["X"]), y, np.array(c["id"]), np.array(c["w"]), np.array(c["g"])


def brute_loglik(eta, y, w=None, ties="efron", strata=None, cause=1):
    """The partial likelihood by definition: for each stratum and event time t, the risk set
    is every row of the stratum with start < t <= stop (O(n^2), numpy)."""
    start, stop, event = (y[:, 0], y[:, 1], y[:, 2]) if y.shape[1] == 3 else (
        np.full(len(y), -np.inf), y[:, 0], y[:, 1])
    w = np.ones(len(y)) if w is None else w
    s = np.zeros(len(y)) if strata is None else strata
    r = w * np.exp(eta)
    ll = 0.0
    for g in np.unique(s):
        for t in np.unique(stop[(event == cause) & (s == g) & (w > 0)]):
            at_risk = (s == g) & (start < t) & (stop >= t)
            D = (s == g) & (stop == t) & (event == cause) & (w > 0)
            S, SD, WD, d = r[at_risk].sum(), r[D].sum(), w[D].sum(), D.sum()
            ll += (w[D] * eta[D]).sum()
            if ties == "breslow":
                ll -= WD * np.log(S)
            else:
                ll -= WD / d * sum(np.log(S - k / d * SD) for k in range(d))
    return ll


# ----------------------------------------------------------------------------- likelihood
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_counting_process_strata_loglik_equals_definition(ties):
    """The vectorized risk sets ((start, stop], strata, weights, zero weights, tied entry and
    exit times) equal the partial likelihood by its definition (1e-12)."""
    X, y, _, w, g = counting()
    rng = np.random.default_rng(0)
    w = w * (rng.random(len(w)) > 0.1)  # some rows out of every risk set
    eta = X @ np.array([0.4, 0.6, -0.3]) + 0.1 * rng.normal(size=len(w))
    for strata in (None, g):
        y4 = np.column_stack([y, np.zeros(len(y)) if strata is None else strata])
        ll = Cox(ties).loglik(torch.as_tensor(eta), torch.as_tensor(y4), torch.as_tensor(w))
        assert float(ll) == pytest.approx(brute_loglik(eta, y, w, ties, strata), rel=1e-12)


def test_minibatch_losses_use_their_own_interval_and_stratum_risk_sets():
    """The loss of each minibatch (ranks as the estimator trains on them, float32 as Adam
    sees them) is the partial likelihood of the batch's rows alone, by definition (1e-5 in
    float32, 1e-12 in float64); the full batch is the full loss."""
    X, y, _, w, g = counting()
    y4 = time_ranks(np.column_stack([y, g]))
    eta = X @ np.array([0.4, 0.6, -0.3])
    fam = Cox("efron")
    rng = np.random.default_rng(1)
    for _ in range(5):
        b = rng.choice(len(y), 64, replace=False)
        ref = -brute_loglik(eta[b], y4[b, :3], w[b], "efron", y4[b, 3]) / w[b].sum()
        for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
            loss = fam.loss(torch.as_tensor(eta[b], dtype=dtype)[:, None],
                            torch.as_tensor(y4[b], dtype=dtype), torch.as_tensor(w[b], dtype=dtype))
            assert float(loss) == pytest.approx(ref, rel=tol)
    full = fam.loss(torch.as_tensor(eta)[:, None], torch.as_tensor(y4), torch.as_tensor(w))
    assert float(full) == pytest.approx(-brute_loglik(eta, y, w, "efron", g) / w.sum(), rel=1e-12)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_counting_strata_curvature_and_scores_equal_autograd(ties):
    """A tanh net on (start, stop] data with strata and weights: the closed-form Hessian of
    -log PL equals torch.func.hessian (1e-10) and the score residuals sum to the score
    (1e-12); the net's llf is the partial likelihood by definition (1e-10)."""
    X, y, ids, w, g = counting()
    net = NeuralCoxRegressor((3,), activation="tanh", solver="lbfgs", alpha=0.05, ties=ties,
                             random_state=0, max_iter=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, y, sample_weight=w, strata=g)
    Xd, yd, wd = net._training_data
    lik = Likelihood(net.module_, net.family_, Xd, np.asarray(yd), wd)
    H, _ = lik.curvatures()
    auto = torch.func.hessian(lambda t: -lik.loglik(lik.eta(t)))(lik.theta)
    assert float((H - auto).abs().max() / auto.abs().max()) < 1e-10
    t = lik.theta.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(lik.loglik(lik.eta(t)), t)
    np.testing.assert_allclose(lik.score_obs().sum(0), grad, atol=1e-12)
    res = net.inference()
    assert res.llf == pytest.approx(brute_loglik(net.predict(X), y, w, ties, g), rel=1e-10)


# ----------------------------------------------------------------------------- vs R
@pytest.mark.parametrize("key", ["efron_none", "efron_w", "breslow_none", "breslow_w"])
@pytest.mark.parametrize("kind", ["counting", "strata"])
def test_counting_process_equals_r_coxph(kind, key):
    """coxph(Surv(start, stop, event) ~ x0 + x1 + x2 [+ strata(g)] + cluster(id)) with a
    time-varying covariate, delayed entry, tied times, case weights: coef (1e-6), naive,
    cluster and per-row robust SE (1e-5), loglik at 0 and at the fit (1e-8)."""
    X, y, ids, w, g = counting()
    r = R[f"{kind}_{key}"]
    ties, weighted = key.split("_")
    est = linear_cox(ties=ties).fit(X, y, sample_weight=w if weighted == "w" else None,
                                    groups=ids, strata=g if kind == "strata" else None)
    res = est.inference()
    assert rel(est.coef_, r["coef"]) < 1e-6
    assert rel(res.bse, r["se"]) < 1e-5
    assert rel(est.inference(cov_type="cluster").bse, r["cluster_se"]) < 1e-5
    assert res.llnull == pytest.approx(r["loglik"][0], rel=1e-8)
    assert res.llf == pytest.approx(r["loglik"][1], rel=1e-8)
    if "robust_se" in r:
        assert rel(est.inference(cov_type="robust").bse, r["robust_se"]) < 1e-5
    if "basehaz" in r:  # Breslow fits: the baseline hazard and martingale residuals
        h0 = est.predict_cumulative_hazard(np.zeros((1, 3)), r["basehaz_time"])[0]
        np.testing.assert_allclose(h0, r["basehaz"], rtol=1e-7)
        np.testing.assert_allclose(res.resid_martingale, r["resid_martingale"], atol=1e-9)
    if kind == "strata" and ties == "breslow" and weighted == "none":
        new = np.array([[0.5, -0.5, 1.0]])
        for s in range(3):  # basehaz and survfit per stratum
            h0 = est.predict_cumulative_hazard(np.zeros((1, 3)), r[f"basehaz_time_{s}"],
                                               strata=[s])[0]
            np.testing.assert_allclose(h0, r[f"basehaz_{s}"], rtol=1e-7)
            surv = est.predict_survival_function(new, r[f"surv_time_{s}"], strata=[s])[0]
            np.testing.assert_allclose(surv, r[f"surv_{s}"], rtol=1e-7)


def test_right_censored_strata_equal_r():
    """coxph(Surv(time, event) ~ x0 + x1 + x2 + strata(g)): coef, SE, loglik and R's
    concordance of the stratified fit (pairs within strata)."""
    rc, r = REF["data"]["rc"], R["rc"]
    X, y, g = np.array(rc["X"]), np.column_stack([rc["time"], rc["event"]]), np.array(rc["g"])
    labels = np.array(["a", "b", "c"])[g]  # any labels
    est = linear_cox().fit(X, y, strata=labels)
    res = est.inference()
    assert rel(est.coef_, r["strata_coef"]) < 1e-6
    assert rel(res.bse, r["strata_se"]) < 1e-5
    assert res.llf == pytest.approx(r["strata_loglik"][1], rel=1e-8)
    assert est.score(X, y, strata=labels) == pytest.approx(r["strata_concordance"][0],
                                                           abs=1e-12)
    assert "Strata:" in str(res.summary())


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_competing_risks_equal_r_cause_specific_coxph(ties):
    """Two causes, tied times (also across causes): the per-cause coefficients, SEs and the
    summed loglik equal R's cause-specific fits coxph(Surv(time, status == k) ~ x0 + x1);
    with Breslow's ties also R's multi-state coxph(Surv(time, factor(status)) ~ x0 + x1)."""
    cr, r = REF["data"]["competing"], R[f"competing_{ties}"]
    X, y = np.array(cr["X"]), np.column_stack([cr["time"], cr["status"]])
    est = linear_cox(ties=ties, n_causes=2).fit(X, y)
    res = est.inference()
    assert est.coef_.shape == (2, 2)
    assert rel(est.coef_.ravel(), r["cause1_coef"] + r["cause2_coef"]) < 1e-6
    assert rel(res.bse, r["cause1_se"] + r["cause2_se"]) < 1e-5
    ll = r["cause1_loglik"][1] + r["cause2_loglik"][1]
    assert res.llf == pytest.approx(ll, rel=1e-8)
    if ties == "breslow":
        assert rel(est.coef_.ravel(), r["coef"]) < 1e-6
        assert rel(res.bse, r["se"]) < 1e-5
        assert res.llf == pytest.approx(r["loglik"][1], rel=1e-8)
    assert list(res.params.index.get_level_values(0).unique()) == ["cause 1", "cause 2"]
    assert res.params.index.names == ["cause", "term"]
    hr = res.hazard_ratios()
    np.testing.assert_allclose(hr.loc["cause 2", "exp(coef)"], np.exp(est.coef_[1]),
                               rtol=1e-12)
    assert "cause 2" in str(res.summary())


def test_cumulative_incidence_equals_r_survfit():
    """The nonparametric Aalen-Johansen estimate equals survfit(Surv(time, factor(status))
    ~ 1) and the model's cumulative incidence for two profiles equals survfit of the
    multi-state coxph (1e-9); S + F1 + F2 = 1."""
    cr, r = REF["data"]["competing"], R["competing"]
    X, y = np.array(cr["X"]), np.column_stack([cr["time"], cr["status"]])
    times, F, S = aalen_johansen(y, 2)
    idx = np.searchsorted(times, r["aj_time"], side="right")  # R also lists censoring times
    Fr = np.concatenate([np.zeros((2, 1)), F[0]], axis=1)[:, idx]
    np.testing.assert_allclose(Fr[0], r["aj_1"], atol=1e-12)
    np.testing.assert_allclose(Fr[1], r["aj_2"], atol=1e-12)
    np.testing.assert_allclose(S + F.sum(1), 1.0, atol=1e-12)
    rb = R["competing_breslow"]
    est = linear_cox(ties="breslow", n_causes=2).fit(X, y)
    profiles = np.array([[0.0, 0.0], [1.0, -1.0]])
    cif = est.predict_cumulative_incidence(profiles, rb["cif_time"])
    np.testing.assert_allclose(cif[:, 0], np.reshape(rb["cif_1"], (2, -1)), atol=1e-9)
    np.testing.assert_allclose(cif[:, 1], np.reshape(rb["cif_2"], (2, -1)), atol=1e-9)
    surv = est.predict_survival_function(profiles, rb["cif_time"])
    np.testing.assert_allclose(surv + cif.sum(1), 1.0, atol=1e-12)


def test_fine_gray_equals_r_finegray_coxph():
    """fine_gray_data + NeuralCoxRegressor = coxph(Surv(fgstart, fgstop, fgstatus) ~ x0 + x1
    + cluster(id), weight = fgwt, data = finegray(...)): coef (1e-6), naive and cluster SE
    (1e-5), loglik (1e-8); the rows of other causes stay at risk with decreasing weights."""
    cr, r = REF["data"]["competing"], R["competing"]
    X, y = np.array(cr["X"]), np.column_stack([cr["time"], cr["status"]])
    rows, y_fg, w = fine_gray_data(y, cause=1)
    est = linear_cox().fit(X[rows], y_fg, sample_weight=w, groups=rows)
    res = est.inference()
    assert rel(est.coef_, r["finegray_coef"]) < 1e-6
    assert rel(res.bse, r["finegray_se"]) < 1e-5
    assert rel(est.inference(cov_type="cluster").bse, r["finegray_cluster_se"]) < 1e-5
    assert res.llnull == pytest.approx(r["finegray_loglik"][0], rel=1e-8)
    assert res.llf == pytest.approx(r["finegray_loglik"][1], rel=1e-8)
    other = rows[(y_fg[:, 0] > 0)]
    assert np.all(y[other, 1] == 2) and np.all(np.diff(w[rows == other[0]]) <= 0)


def test_survival_curves_equal_r_survfit():
    """survfit(coxph(Surv(time, event) ~ x0 + x1 + x2), newdata, ctype = 1) for five
    profiles at three times (Efron fit, Breslow increments), 1e-9."""
    rc, r = REF["data"]["rc"], R["rc"]
    X, y = np.array(rc["X"]), np.column_stack([rc["time"], rc["event"]])
    est = linear_cox().fit(X, y)
    assert rel(est.coef_, r["coef"]) < 1e-6
    np.testing.assert_allclose(est.predict_survival_function(X[:5], r["grid"]),
                               np.reshape(r["surv"], (5, 3)), atol=1e-9)


def test_lasso_equals_glmnet_cox():
    """glmnet(family="cox", alpha=1, lambda=0.02, standardize=FALSE): neurostat's alpha is
    glmnet's lambda, l1_ratio its alpha (Breslow ties, as glmnet), 1e-6."""
    rc = REF["data"]["rc"]
    X, y = np.array(rc["X"]), np.column_stack([rc["time"], rc["event"]])
    est = linear_cox(ties="breslow", alpha=0.02, l1_ratio=1.0, max_iter=3000, tol=1e-10)
    est.fit(X, y)
    np.testing.assert_allclose(est.coef_, R["rc"]["glmnet_lasso_0.02"], atol=1e-6)


# ----------------------------------------------------------------------------- clusters
def test_cluster_of_single_rows_is_robust_and_groups_default_to_fit():
    X, y, ids, w, _ = counting()
    est = linear_cox().fit(X, y, groups=ids)
    by_row = est.inference(cov_type="cluster", groups=np.arange(len(y))).bse
    np.testing.assert_allclose(by_row, est.inference(cov_type="robust").bse, rtol=1e-12)
    np.testing.assert_allclose(est.inference(cov_type="cluster").bse,
                               est.inference(cov_type="cluster", groups=ids).bse, rtol=1e-14)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("y, kwargs, match", [
    (np.array([[0.0, 1.0, 1], [2.0, 2.0, 0], [1.0, 3.0, 1]]), {}, r"rows \[1\] have stop <= start"),
    (np.array([[0.0, 1.0, 1], [2.0, 3.0, 3], [1.0, 3.0, 1]]), {"n_causes": 2},
     r"rows \[1\] have codes \[3.0\]"),
    (np.array([[1.0, 1], [2.0, 2], [3.0, 1]]), {}, "n_causes"),
    (np.array([[1.0, 1], [2.0, 1], [3.0, 1]]), {"n_causes": 2}, r"cause\(s\) \[2\]"),
    (np.array([[0.0, 2.0, 0], [1.0, 3.0, 1], [0.0, 3.0, 1]]), {"groups": [7, 7, 8]},
     r"rows \[\(0, 1\)\] \(groups \[7\]\)"),
    (np.array([[1.0, 1], [2.0, 0], [3.0, 1]]), {"strata": [0, 1]}, "strata must be 1-D"),
    (np.array([[1.0, 1], [2.0, 0], [3.0, 1]]), {"groups": [0, 1]}, "groups must be 1-D"),
])
def test_bad_survival_data_name_the_rows(y, kwargs, match):
    n_causes = kwargs.pop("n_causes", 1)
    with pytest.raises(ValueError, match=match):
        linear_cox(n_causes=n_causes).fit(np.ones((3, 1)), y, **kwargs)


def test_stratified_predictions_need_known_strata():
    X, y, _, _, g = counting()
    est = linear_cox().fit(X, y, strata=g)
    assert 0.5 < est.score(X, y) != est.score(X, y, strata=g)  # all pairs / within strata
    with pytest.raises(ValueError, match="pass strata="):
        est.predict_survival_function(X[:2])
    with pytest.raises(ValueError, match=r"Unknown strata \[5\]"):
        est.predict_survival_function(X[:2], strata=[0, 5])
    with pytest.raises(ValueError, match="without strata"):
        linear_cox().fit(X, y).predict_survival_function(X[:2], strata=[0, 1])


def test_bootstrap_refits_counting_process_strata_and_causes():
    """cov_type="bootstrap" refits on the parsed (start, stop, event, stratum) target; its
    SEs are of the size of the analytic ones (within a factor 2 with 12 resamples)."""
    X, y, ids, _, g = counting()
    est = linear_cox().fit(X, y, strata=g, groups=ids)
    boot = est.inference(cov_type="bootstrap", n_bootstrap=12, random_state=0).bse
    ratio = boot / est.inference().bse
    assert np.all((ratio > 0.5) & (ratio < 2.0))
    cr = REF["data"]["competing"]
    Xc, yc = np.array(cr["X"]), np.column_stack([cr["time"], cr["status"]])
    two = linear_cox(n_causes=2).fit(Xc, yc)
    assert two.inference(cov_type="bootstrap", n_bootstrap=4, random_state=0).bse.shape == (4,)


def test_two_cause_net_likelihood_curvature_and_scores():
    """A shared tanh net with one head per cause: llf is the sum of the cause-specific
    partial likelihoods by definition (1e-10), the closed-form Hessian equals autograd's
    (1e-10) and the score residuals sum to the score (1e-12)."""
    cr = REF["data"]["competing"]
    X, y = np.array(cr["X"])[:150], np.column_stack([cr["time"], cr["status"]])[:150]
    net = NeuralCoxRegressor((3,), activation="tanh", solver="lbfgs", alpha=0.05, n_causes=2,
                             random_state=0, max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, y)
    eta = net.predict(X)
    assert eta.shape == (150, 2)
    truth = sum(brute_loglik(eta[:, k], y, cause=k + 1) for k in range(2))
    assert net.inference().llf == pytest.approx(truth, rel=1e-10)
    lik = Likelihood(net.module_, net.family_, X, np.asarray(net._training_data[1]), None)
    H, _ = lik.curvatures()
    auto = torch.func.hessian(lambda t: -lik.loglik(lik.eta(t)))(lik.theta)
    assert float((H - auto).abs().max() / auto.abs().max()) < 1e-10
    t = lik.theta.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(lik.loglik(lik.eta(t)), t)
    np.testing.assert_allclose(lik.score_obs().sum(0), grad, atol=1e-12)
