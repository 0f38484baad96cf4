"""compare_lr_test and wald_test_terms: tests written against the survivors of a mutation run
(tests/MUTATION.md). Each checks a documented behaviour that no other test pinned down: the
bootstrap with an offset and frequency weights against statsmodels refits, the defaults, and
the errors' messages."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from neurostat import NeuralClassifier, NeuralRegressor
from neurostat.inference.hypotheses import compare_lr_test


def _poisson_data(n=200, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    offset = np.log(rng.uniform(0.5, 2.0, size=n))
    y = rng.poisson(np.exp(0.2 + 0.4 * X[:, 0] + offset)).astype(float)
    w = rng.integers(1, 4, size=n).astype(float)
    return X, y, offset, w


def _glm(X, y, offset, w):
    return NeuralRegressor((), family="poisson", solver="lbfgs").fit(
        X, y, sample_weight=w, offset=offset).inference()


def test_lr_bootstrap_with_offset_and_weights_reproduces_statsmodels_refits():
    """y* ~ Poisson(restricted fit's mean, offset included), drawn per row with the documented
    seeds; both models refitted by statsmodels' GLM with the same offset and freq_weights:
    the null draws equal 2 (llf_full - llf_restricted) to 1e-7. Dropping the weights or the
    offset from the refits or from their log-likelihoods changes every draw."""
    X, y, offset, w = _poisson_data()
    full, restricted = _glm(X, y, offset, w), _glm(X[:, :1], y, offset, w)
    out = compare_lr_test(full, restricted, method="bootstrap", n_bootstrap=4, random_state=5)
    assert out.method == "bootstrap" and out.df == pytest.approx(1.0)
    mu = sm.GLM(y, sm.add_constant(X[:, :1]), family=sm.families.Poisson(), offset=offset,
                freq_weights=w).fit(tol=1e-12).fittedvalues
    lr = []
    for s in np.random.default_rng(5).integers(0, 2**31 - 1, size=4):
        ys = np.random.default_rng(s).poisson(mu).astype(float)
        fits = [sm.GLM(ys, sm.add_constant(Z), family=sm.families.Poisson(), offset=offset,
                       freq_weights=w).fit(tol=1e-12) for Z in (X, X[:, :1])]
        lr.append(2 * (fits[0].llf - fits[1].llf))
    np.testing.assert_allclose(out.null_distribution, lr, rtol=1e-7, atol=1e-8)
    stat = 2 * (full.llf - restricted.llf)
    assert out.statistic == pytest.approx(stat, rel=1e-12)
    assert out.pvalue == pytest.approx((1 + np.sum(np.array(lr) >= stat)) / 5)


def test_lr_defaults_are_chi2_and_99_bootstrap_draws():
    X, y, offset, w = _poisson_data(n=120, seed=4)
    full, restricted = _glm(X, y, None, None), _glm(X[:, :1], y, None, None)
    chi2 = compare_lr_test(full, restricted)
    assert chi2.method == "chi2" and chi2.df == pytest.approx(1.0)
    f, r = (sm.GLM(y, sm.add_constant(Z), family=sm.families.Poisson()).fit(tol=1e-12)
            for Z in (X, X[:, :1]))
    lr = 2 * (f.llf - r.llf)
    from scipy.stats import chi2 as chi2_dist

    np.testing.assert_allclose(tuple(chi2), (lr, chi2_dist.sf(lr, 1), 1.0), rtol=1e-6)
    boot = compare_lr_test(full, restricted, method="bootstrap", random_state=0)
    assert boot.null_distribution.shape == (99,)
    assert 0 < boot.pvalue <= 1 and boot.pvalue * 100 == pytest.approx(
        round(boot.pvalue * 100))


def test_lr_penalized_full_model_without_extra_df_warns_and_gives_no_pvalue():
    """A heavily penalized full model can have fewer effective df than the restricted one:
    the chi-square reference does not apply, the p-value is NaN and the warning names the fix."""
    X, y, _, _ = _poisson_data(n=150, seed=5)
    full = NeuralRegressor((), family="poisson", solver="lbfgs", alpha=50.0).fit(X, y).inference()
    restricted = _glm(X[:, :1], y, None, None)
    with pytest.warns(UserWarning, match=r"\(penalized full model\); the chi-square reference "
                                         r"does not apply. Use method='bootstrap'.$"):
        out = full.compare_lr_test(restricted)
    assert out.df < 0 and np.isnan(out.pvalue) and out.method == "chi2"
    assert out.statistic == pytest.approx(2 * (full.llf - restricted.llf))


def test_lr_errors_name_the_problem():
    X, y, _, _ = _poisson_data(n=100, seed=6)
    full, restricted = _glm(X, y, None, None), _glm(X[:, :1], y, None, None)
    with pytest.raises(ValueError, match="method must be 'chi2' or 'bootstrap'"):
        compare_lr_test(full, restricted, method="wald")
    with pytest.raises(TypeError, match=r"restricted must be the InferenceResults of the nested "
                                        r"model \(restricted_est.inference\(\)\)"):
        compare_lr_test(full, restricted.estimator)

    class _HalfResults:  # has a likelihood but no llf: still not InferenceResults
        likelihood = restricted.likelihood

    with pytest.raises(TypeError, match="restricted must be"):
        compare_lr_test(full, _HalfResults())
    other = _glm(X[:, :1], y[::-1].copy(), None, None)  # same n, another response
    with pytest.raises(ValueError, match="^The two models must be fitted to the same "
                                         "observations and response.$"):
        compare_lr_test(full, other)
    logit = NeuralClassifier((), solver="lbfgs").fit(X[:, :1], (y > 1).astype(int)).inference()
    with pytest.raises(ValueError, match="The two models must be fitted to the same"):
        compare_lr_test(full, logit)
    same_y = NeuralRegressor((), solver="lbfgs").fit(X[:, :1], y).inference()  # gaussian
    with pytest.raises(ValueError, match="^The two models must have the same family.$"):
        compare_lr_test(full, same_y)
    twin = _glm(X[:, ::-1].copy(), y, None, None)  # as many parameters as the full model
    with pytest.raises(ValueError, match=r"restricted has at least as many parameters \(3\) "
                                         r"as the full model \(3\)"):
        compare_lr_test(full, twin)


def test_wald_test_terms_frame_and_rank():
    """The frame's index is named "term" with one row per input; for a GLM each input is one
    coefficient, tested on rank 1 with chi2 = z^2 and a finite p-value."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 3))
    y = rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)
    res = NeuralRegressor((), family="poisson", solver="lbfgs").fit(
        pd.DataFrame(X, columns=["a", "b", "c"]), y).inference()
    tab = res.wald_test_terms()
    assert tab.index.name == "term" and list(tab.index)[-3:] == ["a", "b", "c"]
    z2 = (res.params / res.bse) ** 2
    np.testing.assert_allclose(tab.loc[["a", "b", "c"], "chi2"], z2[["a", "b", "c"]],
                               rtol=1e-10)
    assert (tab["df constraint"] == 1).all()
    assert np.isfinite(tab["P>chi2"]).all()


def test_wald_test_terms_skips_lasso_zeros_and_keeps_tiny_variances():
    """An input whose coefficient the lasso fixed at zero (no variance) gets NaN and df 0, and
    the inputs after it are still tested; inputs on a scale of 1e5 (variances near 1e-12) are
    tested on their full rank, equal to statsmodels' z^2."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(400, 3))
    y = 1.5 * X[:, 0] + 0.8 * X[:, 2] + rng.normal(size=400)
    res = NeuralRegressor((), solver="lbfgs", alpha=0.3, l1_ratio=1.0).fit(
        pd.DataFrame(X, columns=["a", "b", "c"]), y).inference()
    assert res.params["b"] == 0.0
    tab = res.wald_test_terms()
    assert np.isnan(tab.loc["b", "chi2"]) and np.isnan(tab.loc["b", "P>chi2"])
    assert tab.loc["b", "df constraint"] == 0
    assert tab.loc["c", "df constraint"] == 1 and tab.loc["c", "chi2"] > 50
    big = X * 1e5
    r = NeuralRegressor((), family="poisson", solver="lbfgs").fit(
        big, rng.poisson(np.exp(0.3 * X[:, 0])).astype(float)).inference()
    ref = sm.GLM(r.likelihood.y.numpy().ravel(), sm.add_constant(big),
                 family=sm.families.Poisson()).fit(tol=1e-12)
    assert (ref.bse[1:] ** 2).max() < 1e-10
    tab = r.wald_test_terms()
    assert (tab["df constraint"].values[-3:] == 1).all()
    np.testing.assert_allclose(tab["chi2"].values[-3:], ref.tvalues[1:] ** 2, rtol=1e-6)


@pytest.mark.parametrize("n", [60, 4])
def test_bootstrap_loglik_of_a_gamma_fit_is_statsmodels_llf(n):
    """The bootstrap's refits are scored at the dispersion the reported llf uses (Pearson
    chi2 / residual df, as statsmodels' GLM Gamma); with one residual df (n=4, 3 parameters)
    too."""
    from neurostat.inference.hypotheses import _loglik_of

    rng = np.random.default_rng(9)
    X = rng.normal(size=(n, 2))
    y = np.exp(0.3 * X[:, 0]) * rng.gamma(2.0, 0.5, size=n)
    est = NeuralRegressor((), family="gamma", solver="lbfgs").fit(X, y)
    ref = sm.GLM(y, sm.add_constant(X), family=sm.families.Gamma(sm.families.links.Log())).fit(
        tol=1e-12)
    assert _loglik_of(est, X, y, None) == pytest.approx(ref.llf, rel=1e-7)
