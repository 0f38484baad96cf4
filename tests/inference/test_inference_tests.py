"""Wald tests per input, likelihood-ratio tests (chi-square and parametric bootstrap) and the
bootstrap covariance."""

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as sps

from neurostat import NeuralClassifier, NeuralRegressor


def _logit_data(n=200, seed=0, beta=(1.0, -0.5, 0.0)):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(beta)))
    y = (X @ np.asarray(beta) + rng.logistic(size=n) > 0).astype(int)
    return X, y


def test_wald_test_terms_is_z_squared_for_glm():
    X, y = _logit_data()
    res = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
    w = res.wald_test_terms()
    assert list(w.columns) == ["chi2", "P>chi2", "df constraint"]
    np.testing.assert_allclose(w["chi2"].values, res.tvalues.values[1:] ** 2, rtol=1e-10)
    np.testing.assert_allclose(w["P>chi2"].values, res.pvalues.values[1:], rtol=1e-8)
    assert (w["df constraint"] == 1).all()


def test_wald_test_terms_joint_over_classes_equals_statsmodels():
    # multinomial: the joint test of an input's K-1 coefficients, statsmodels' wald_test
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = (rng.integers(0, 3, 300) + (X[:, 0] > 0.5)) % 3
    res = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
    sm_res = sm.MNLogit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12)
    for j in range(2):
        expected = sm_res.wald_test(_mn_constraint(j), scalar=True)
        np.testing.assert_allclose(res.wald_test_terms()["chi2"].iloc[j],
                                   expected.statistic, rtol=1e-3)
        assert res.wald_test_terms()["df constraint"].iloc[j] == 2


def _mn_constraint(j, n_terms=3, n_eq=2):
    # statsmodels flattens MNLogit params (terms x equations) in column order: equation-major
    R = np.zeros((n_eq, n_terms * n_eq))
    for c in range(n_eq):
        R[c, c * n_terms + j + 1] = 1
    return R


def test_wald_test_terms_net_counts_hidden_units():
    X, y = _logit_data(150)
    est = NeuralClassifier((3,), activation="tanh", solver="lbfgs", alpha=1e-2,
                           random_state=0).fit(X, y)
    w = est.inference(effects="delta").wald_test_terms()  # the joint first-layer Wald test
    assert list(w.index) == ["x0", "x1", "x2"]
    assert (w["df constraint"] <= 3).all()
    assert w["P>chi2"].iloc[0] < 0.01  # x0 has a real effect


def test_lr_chi2_equals_statsmodels_compare_lr_test():
    X, y = _logit_data(300, beta=(1.0, -0.5, 0.3))
    full = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
    restricted = NeuralClassifier((), solver="lbfgs").fit(X[:, :1], y).inference()
    lr = full.compare_lr_test(restricted)
    sm_full = sm.Logit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12)
    sm_restricted = sm.Logit(y, sm.add_constant(X[:, :1])).fit(disp=0, method="newton",
                                                               tol=1e-12)
    # statsmodels' OLSResults.compare_lr_test, written out for its likelihood models
    stat = 2 * (sm_full.llf - sm_restricted.llf)
    df = sm_full.df_model - sm_restricted.df_model
    np.testing.assert_allclose(tuple(lr), (stat, sps.chi2.sf(stat, df), df), rtol=1e-6)
    with pytest.raises(ValueError, match="nested"):
        restricted.compare_lr_test(full)
    with pytest.raises(ValueError, match="method"):
        full.compare_lr_test(restricted, method="wald")
    other = NeuralClassifier((), solver="lbfgs").fit(X[:100], y[:100]).inference()
    with pytest.raises(ValueError, match="same observations"):
        full.compare_lr_test(other)


def test_lr_bootstrap_net_against_glm_runs():
    # "does the hidden layer help?": plumbing of the parametric bootstrap on the real question
    X, y = _logit_data(120, beta=(1.0, -0.5))
    glm = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
    net = NeuralClassifier((2,), activation="tanh", solver="lbfgs", alpha=1e-2,
                           random_state=0).fit(X, y).inference()
    out = net.compare_lr_test(glm, method="bootstrap", n_bootstrap=5, random_state=0)
    assert out.null_distribution.shape == (5,)
    assert out.pvalue in {k / 6 for k in range(1, 7)}


@pytest.mark.slow
def test_lr_bootstrap_size():
    # Size of the parametric-bootstrap LR test under H0 (y from the restricted logistic model).
    # 20 replications x 19 bootstrap draws keep it cheap (~800 warm-started GLM refits). Under H0
    # the p-value (1 + #{LR* >= LR}) / 20 is uniform on {1/20, ..., 1}: P(p <= 0.1) = 0.1, so
    # the rejection count is Binomial(20, 0.1) and P(count >= 6) = 0.011; the mean of 20
    # uniform p-values has sd 0.065, so 0.3..0.7 is a +-3 sd band (which also catches a test
    # that never rejects).
    pvalues = []
    for rep in range(20):
        X, y = _logit_data(30, seed=100 + rep, beta=(1.0, 0.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
            restricted = NeuralClassifier((), solver="lbfgs").fit(X[:, :1], y).inference()
            out = full.compare_lr_test(restricted, method="bootstrap", n_bootstrap=19,
                                       random_state=rep)
        pvalues.append(out.pvalue)
    pvalues = np.array(pvalues)
    assert np.sum(pvalues <= 0.1) <= 5
    assert 0.3 <= pvalues.mean() <= 0.7


def test_bootstrap_covariance_close_to_sandwich():
    # case-resampling bootstrap SEs estimate the robust SEs; with B = 49 the relative sd of a
    # bootstrap SE is about 1 / sqrt(2 B) = 10%, so 35% is a 3.5 sd tolerance
    X, y = _logit_data(200)
    est = NeuralClassifier((), solver="lbfgs").fit(X, y)
    boot = est.inference(cov_type="bootstrap", n_bootstrap=49, random_state=0)
    hc0 = est.inference(cov_type="HC0")
    np.testing.assert_allclose(boot.bse.values, hc0.bse.values, rtol=0.35)
    np.testing.assert_allclose(boot.params.values, hc0.params.values)
    again = est.inference(cov_type="bootstrap", n_bootstrap=49, random_state=0)
    np.testing.assert_allclose(again.bse.values, boot.bse.values)
    assert boot.cov_type == "bootstrap" and "bootstrap" in str(boot.summary())
    with pytest.raises(ValueError, match="n_bootstrap"):
        est.inference(cov_type="bootstrap", n_bootstrap=1)


def test_bootstrap_in_parallel_matches_sequential():
    X, y = _logit_data(80)
    est = NeuralRegressor((), solver="lbfgs").fit(X, X[:, 0] + y)
    # the threading backend exercises joblib's parallel path without spawning processes
    from joblib import parallel_backend
    a = est.inference(cov_type="bootstrap", n_bootstrap=4, random_state=1, n_jobs=1)
    with parallel_backend("threading"):
        b = est.inference(cov_type="bootstrap", n_bootstrap=4, random_state=1, n_jobs=2)
    np.testing.assert_allclose(a.bse.values, b.bse.values, rtol=1e-8)


def test_chi2_reference():
    X, y = _logit_data(300, beta=(1.0, -0.5, 0.3))
    full = NeuralClassifier((), solver="lbfgs").fit(X, y).inference()
    restricted = NeuralClassifier((), solver="lbfgs").fit(X[:, :2], y).inference()
    lr = full.compare_lr_test(restricted)
    assert lr.df == 1
    np.testing.assert_allclose(lr.pvalue, sps.chi2.sf(lr.statistic, 1))
