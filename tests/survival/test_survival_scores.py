"""Concordance, time-dependent AUC and Brier scores with their intervals.

Point estimates equal scikit-survival's (run here) and R's ``concordance()`` (frozen in
tests/results/survival_reference.json by tests/results/make_survival_reference.py); Harrell's
C, its infinitesimal-jackknife variance and the covariance of two models' C equal R's; the
intervals of Uno's C and of the AUC are calibrated by Monte Carlo.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from sksurv import metrics as skm
from sksurv.util import Surv

from neurostat import NeuralCoxRegressor
from neurostat.survival.metrics import _pair_sums, concordance_index
from neurostat.survival.scores import (
    brier_score,
    censoring_survival,
    compare_concordance,
    cumulative_dynamic_auc,
    harrell_c,
    integrated_brier_score,
    uno_c,
)

REF = json.loads((Path(__file__).parents[1] / "results" / "survival_reference.json").read_text())


def rc():
    d, r = REF["data"]["rc"], REF["R"]["rc"]
    y = np.column_stack([d["time"], d["event"]])
    return np.array(d["X"]), y, np.array(r["lp1"]), np.array(r["lp2"]), r


def surv(y):
    return Surv.from_arrays(y[:, 1] > 0, y[:, 0])


def test_pair_sums_equal_brute_force():
    """Per row, as the event and as the partner of a pair: concordant (ties one half) and
    comparable weights, with tied times, tied risks and weights (1e-12)."""
    rng = np.random.default_rng(0)
    n = 60
    t = rng.integers(1, 8, n).astype(float)
    e = rng.random(n) < 0.6
    r = np.round(rng.normal(size=n), 1)
    u, v = rng.uniform(0.2, 2, n), rng.uniform(0.2, 2, n)
    ref = np.zeros((4, n))
    for i in np.flatnonzero(e):
        for j in range(n):
            if t[i] < t[j] or (t[i] == t[j] and not e[j]):
                c = (r[i] > r[j]) + 0.5 * (r[i] == r[j])
                ref[:, i] += [v[j] * c, v[j], 0, 0]
                ref[:, j] += [0, 0, u[i] * c, u[i]]
    np.testing.assert_allclose(_pair_sums(t, e, r, u, v, 1e-8), ref, atol=1e-12)


def test_harrell_c_and_its_variance_equal_r():
    """Harrell's C equals R's concordance() and scikit-survival's (1e-12); its standard error
    is R's infinitesimal jackknife (variance 1e-10 relative)."""
    _, y, lp1, _, r = rc()
    res = harrell_c(y, lp1)
    assert res.estimate == pytest.approx(r["harrell"][0], abs=1e-12)
    assert res.estimate == pytest.approx(
        skm.concordance_index_censored(y[:, 1] > 0, y[:, 0], lp1)[0], abs=1e-12)
    assert res.se**2 == pytest.approx(r["harrell"][1], rel=1e-10)
    z = sps.norm.isf(0.025)
    np.testing.assert_allclose(res.conf_int, [res.estimate - z * res.se,
                                              res.estimate + z * res.se], rtol=1e-14)
    assert float(res) == concordance_index(y[:, 0], y[:, 1], lp1)


def test_compare_concordance_equals_r():
    """concordance(fit1, fit2): both indices and their 2 x 2 jackknife covariance (1e-10);
    the z-test of the difference."""
    _, y, lp1, lp2, r = rc()
    out = compare_concordance(y, lp1, lp2)
    np.testing.assert_allclose([out["c_a"], out["c_b"]], r["compare_c"], atol=1e-12)
    np.testing.assert_allclose(out["cov"].ravel(), r["compare_var"], rtol=1e-10)
    V = np.reshape(r["compare_var"], (2, 2))
    se = np.sqrt(V[0, 0] + V[1, 1] - 2 * V[0, 1])
    assert out["se"] == pytest.approx(se, rel=1e-10)
    assert out["pvalue"] == pytest.approx(2 * sps.norm.sf(abs(out["difference"]) / se),
                                          rel=1e-9)
    assert out["pvalue"] < 0.05  # x1 and x2 add discrimination to x0


def test_uno_c_auc_and_brier_equal_scikit_survival():
    """Uno's C (with tau, and with a separate training set for G), the cumulative/dynamic AUC
    per time and its mean, the Brier score per time and the integrated Brier score equal
    scikit-survival's (1e-12)."""
    X, y, lp1, _, _ = rc()
    s = surv(y)
    train, test = np.arange(0, 300, 2), np.arange(1, 300, 2)
    for tau in (None, np.quantile(y[:, 0], 0.8)):
        assert uno_c(y, lp1, tau=tau).estimate == pytest.approx(
            skm.concordance_index_ipcw(s, s, lp1, tau=tau)[0], abs=1e-12)
    got = uno_c(y[test], lp1[test], train=y[train]).estimate
    assert got == pytest.approx(skm.concordance_index_ipcw(s[train], s[test], lp1[test])[0],
                                abs=1e-12)
    times = np.quantile(y[:, 0], [0.2, 0.4, 0.6, 0.8])
    auc, mean = cumulative_dynamic_auc(None, y, lp1, times, n_bootstrap=20, random_state=0)
    ref_auc, ref_mean = skm.cumulative_dynamic_auc(s, s, lp1, times)
    np.testing.assert_allclose(auc.estimate, ref_auc, atol=1e-12)
    assert mean.estimate == pytest.approx(ref_mean, abs=1e-12)
    est = NeuralCoxRegressor((), solver="lbfgs").fit(X[train], y[train])
    S = est.predict_survival_function(X[test], times)
    np.testing.assert_allclose(brier_score(y[train], y[test], S, times),
                               skm.brier_score(s[train], s[test], S, times)[1], atol=1e-12)
    ibs = integrated_brier_score(y[train], y[test], S, times, n_bootstrap=20, random_state=0)
    assert ibs.estimate == pytest.approx(
        skm.integrated_brier_score(s[train], s[test], S, times), abs=1e-12)
    assert ibs.conf_int[0] < ibs.estimate < ibs.conf_int[1]
    times_G, G = censoring_survival(y)
    assert np.all(np.diff(G) <= 0) and times_G.size == np.unique(y[:, 0]).size


@pytest.mark.slow
def test_uno_se_and_auc_bootstrap_are_calibrated():
    """Monte Carlo (120 data sets of n = 200, exponential PH, 30-40% censored; measured: SE
    ratios 1.01 and 1.13, coverage 115 and 111 of 120): the mean
    jackknife SE of Uno's C and the mean bootstrap SE of AUC(t) are within 15% of the
    Monte-Carlo SD of the estimates, and the 95% intervals cover the large-sample value
    88-99% of the time."""
    rng = np.random.default_rng(2026)

    def draw(n):
        x = rng.normal(size=n)
        t = rng.exponential(np.exp(-0.8 * x))
        c = rng.exponential(2.0, n)
        return np.column_stack([np.minimum(t, c), t <= c]), x

    yb, xb = draw(200_000)
    tau, t_auc = 1.5, 0.5
    true_uno = uno_c(yb[:40_000], xb[:40_000], tau=tau).estimate
    _, true_auc = (None, cumulative_dynamic_auc(None, yb, xb, [t_auc], n_bootstrap=2)[1])
    true_auc = true_auc.estimate
    uno, uno_se, uno_cov, auc, auc_se, auc_cov = [], [], 0, [], [], 0
    for _ in range(120):
        y, x = draw(200)
        u = uno_c(y, x, tau=tau)
        uno.append(u.estimate), uno_se.append(u.se)
        uno_cov += u.conf_int[0] <= true_uno <= u.conf_int[1]
        a, _ = cumulative_dynamic_auc(None, y, x, [t_auc], n_bootstrap=30,
                                      random_state=int(rng.integers(1 << 30)))
        auc.append(a.estimate[0]), auc_se.append(a.se[0])
        auc_cov += a.conf_int[0][0] <= true_auc <= a.conf_int[1][0]
    assert np.mean(uno_se) == pytest.approx(np.std(uno, ddof=1), rel=0.15)
    assert np.mean(auc_se) == pytest.approx(np.std(auc, ddof=1), rel=0.15)
    assert 106 <= uno_cov <= 119 and 106 <= auc_cov <= 119
