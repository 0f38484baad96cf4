"""Each family's math: derivatives in eta, information, scores, residuals and simulation.

References: autograd of the family's own log-likelihood for the closed forms (1e-12), and
statsmodels' GLM families (``resid_deviance``, ``resid_pearson``, ``pearson_chi2``, ``llf``)
at the same means for the residuals and constants.
"""

import pickle
import re

import numpy as np
import pytest
import statsmodels.api as sm
import torch

from neurostat.engine.families import (
    AdditiveFamily,
    Bernoulli,
    Categorical,
    Gaussian,
    Poisson,
    classification_family,
)
from neurostat.survival.family import Cox

FAMILIES = ["bernoulli", "categorical", "poisson", "gaussian"]


def _setup(name, n=30, seed=0):
    rng = np.random.default_rng(seed)
    eta = torch.as_tensor(rng.normal(size=(n, 2 if name == "categorical" else 1)))
    fam = {"bernoulli": Bernoulli(), "categorical": Categorical(3), "poisson": Poisson(),
           "gaussian": Gaussian()}[name]
    y = {"bernoulli": rng.integers(0, 2, n).astype(float), "categorical": rng.integers(0, 3, n),
         "poisson": rng.poisson(2.0, n).astype(float), "gaussian": rng.normal(size=n)}[name]
    w = torch.as_tensor(rng.uniform(0.5, 1.5, n))
    return fam, eta, torch.as_tensor(y), w


@pytest.mark.parametrize("name", FAMILIES)
def test_closed_form_eta_derivatives_match_autograd(name):
    """u = y - mu and W = var(mu) / scale (weighted) equal autograd of the family's own
    log-likelihood (the AdditiveFamily defaults), 1e-12, at a dispersion of 1.7."""
    fam, eta, y, w = _setup(name)
    torch.testing.assert_close(fam.score_eta(eta, y, w, 1.7),
                               AdditiveFamily.score_eta(fam, eta, y, w, 1.7),
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fam.information_eta(eta, y, w, 1.7),
                               AdditiveFamily.information_eta(fam, eta, y, w, 1.7),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", FAMILIES)
def test_information_and_scores_of_a_glm_equal_autograd(name):
    """For eta = Z beta the information G'WG equals the autograd Hessian of -loglik in beta and
    the per-row scores sum to its gradient."""
    fam, _, y, w = _setup(name, n=40, seed=1)
    rng = np.random.default_rng(2)
    k = 2 if name == "categorical" else 1
    Z = torch.as_tensor(np.column_stack([rng.normal(size=(40, 2)), np.ones(40)]))
    beta = torch.as_tensor(rng.normal(scale=0.3, size=(3, k)))
    G = torch.zeros(40, k, 3 * k, dtype=torch.float64)
    for j in range(k):  # beta flattened row-major: column j of beta sits at j, j+k, ...
        G[:, j, j::k] = Z

    def ll(b):
        return fam.loglik(Z @ b.view(3, k), y, w, 1.3)

    eta = Z @ beta
    H = torch.func.hessian(lambda b: -ll(b))(beta.reshape(-1))
    torch.testing.assert_close(fam.information(G, eta, y, w, 1.3), H, rtol=1e-10, atol=1e-10)
    g = torch.func.grad(ll)(beta.reshape(-1))
    torch.testing.assert_close(fam.score_obs(G, eta, y, w, 1.3).sum(0), g, rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("name", FAMILIES)
def test_loss_is_the_weighted_mean_nll_and_nll_drops_only_constants(name):
    fam, eta, y, w = _setup(name)
    torch.testing.assert_close(fam.loss(eta, y, w), (w * fam.nll(eta, y)).sum() / w.sum())
    torch.testing.assert_close(fam.loss(eta, y), fam.nll(eta, y).mean())
    # loglik_obs + nll does not depend on eta (the constants dropped from the training loss)
    c1 = fam.loglik_obs(eta, y) + fam.nll(eta, y)
    c2 = fam.loglik_obs(eta + 0.37, y) + fam.nll(eta + 0.37, y)
    torch.testing.assert_close(c1, c2, rtol=1e-12, atol=1e-12)


def _statsmodels_family(name):
    return {"bernoulli": sm.families.Binomial(), "poisson": sm.families.Poisson(),
            "gaussian": sm.families.Gaussian()}[name]


@pytest.mark.parametrize("name", ["bernoulli", "poisson", "gaussian"])
def test_residuals_and_pearson_chi2_equal_statsmodels(name):
    """Deviance and Pearson residuals, the Pearson chi-square and (for poisson and bernoulli)
    the log-likelihood equal statsmodels' GLM results at its fitted means, with freq_weights."""
    rng = np.random.default_rng(3)
    n = 80
    X = rng.normal(size=(n, 2))
    eta0 = 0.3 + X @ [0.8, -0.5]
    y = {"bernoulli": rng.random(n) < 1 / (1 + np.exp(-eta0)),
         "poisson": rng.poisson(np.exp(eta0)), "gaussian": eta0 + rng.normal(size=n)}[name]
    y = y.astype(float)
    w = rng.integers(1, 4, n).astype(float)
    r = sm.GLM(y, sm.add_constant(X), family=_statsmodels_family(name), freq_weights=w).fit()
    fam = {"bernoulli": Bernoulli(), "poisson": Poisson(), "gaussian": Gaussian()}[name]
    eta = torch.as_tensor(r.predict(sm.add_constant(X), which="linear"))[:, None]
    dev, pear = fam.residuals(eta, torch.as_tensor(y), torch.as_tensor(w))
    np.testing.assert_allclose(dev, r.resid_deviance, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(pear, r.resid_pearson, rtol=1e-10, atol=1e-12)
    chi2 = fam.pearson_chi2(eta, torch.as_tensor(y), torch.as_tensor(w))
    assert chi2 == pytest.approx(r.pearson_chi2, rel=1e-10)
    if name != "gaussian":
        llf = float(fam.loglik(eta, torch.as_tensor(y), torch.as_tensor(w)))
        assert llf == pytest.approx(r.llf, rel=1e-10)


@pytest.mark.parametrize("name", FAMILIES)
def test_simulate_draws_from_the_model(name):
    """Draws have the family's mean and variance: 20,000 draws at each of 3 means, within 5
    Monte-Carlo standard errors; encoded as the family's target (0/1, class index, count)."""
    fam = {"bernoulli": Bernoulli(), "categorical": Categorical(3), "poisson": Poisson(),
           "gaussian": Gaussian()}[name]
    rng = np.random.default_rng(4)
    if name == "categorical":
        mu = np.tile([[0.2, 0.5, 0.3]], (20000, 1))
        draws = fam.simulate(mu, 1.0, rng)
        assert draws.dtype == np.int64 and set(np.unique(draws)) == {0, 1, 2}
        freq = np.bincount(draws, minlength=3) / draws.size
        se = np.sqrt(mu[0] * (1 - mu[0]) / draws.size)
        assert np.all(np.abs(freq - mu[0]) < 5 * se)
        return
    base = {"bernoulli": [0.1, 0.5, 0.8], "poisson": [0.5, 3.0, 12.0],
            "gaussian": [-1.0, 0.0, 2.5]}[name]
    scale = 2.0 if name == "gaussian" else 1.0
    mu = np.repeat(base, 20000)
    draws = fam.simulate(mu, scale, rng).reshape(3, 20000)
    var = np.asarray(fam.variance(np.asarray(base))) * scale
    assert np.all(np.abs(draws.mean(1) - base) < 5 * np.sqrt(var / 20000))
    # variance of the sample variance: about 2 var^2 / m for near-normal draws; allow 10%
    np.testing.assert_allclose(draws.var(1), var, rtol=0.1)
    if name != "gaussian":
        assert np.all(draws == np.round(draws)) and np.all(draws >= 0)


def test_families_compare_by_parameters_and_pickle_without_caches():
    assert Categorical(3) == Categorical(3) != Categorical(4)
    assert Bernoulli() == classification_family(2) and Categorical(5) == classification_family(5)
    assert Gaussian() != Poisson() and Cox("efron") != Cox("breslow")
    assert len({Cox("efron"), Cox("efron"), Gaussian()}) == 2
    cox = Cox("breslow")
    y = torch.as_tensor([[1.0, 1.0], [2.0, 0.0], [3.0, 1.0]])
    cox.loglik(torch.zeros(3, 1, dtype=torch.float64), y)  # fills its risk-set cache
    assert hasattr(cox, "_cache")
    back = pickle.loads(pickle.dumps(cox))
    assert back == cox and not hasattr(back, "_cache") and repr(back) == "Cox(ties='breslow')"


def test_cox_has_no_generative_model_to_simulate():
    with pytest.raises(ValueError, match="no generative model.*cov_type='bootstrap'"):
        Cox().simulate(np.ones(3), 1.0, np.random.default_rng(0))


def test_gaussian_llf_scale_is_the_ml_variance():
    """statsmodels' OLS llf uses RSS / n; per output for separate regressions."""
    fam = Gaussian()
    assert fam.llf_scale(12.0, 10, 1, None) == pytest.approx(1.2)
    assert fam.llf_scale(12.0, 10, 2, None) == pytest.approx(0.6)
    torch.testing.assert_close(fam.llf_scale(np.array([1.0, 3.0]), 10, 2, None),
                               torch.tensor([0.1, 0.3], dtype=torch.float64))
    assert Poisson().llf_scale(5.0, 10, 1, 2.0) == 1.0


def test_family_base_defaults():
    """The defaults every family inherits: weighted initial intercepts per output column, an
    offset added in float64 to every output and to no ancillary predictor, the null model's
    eta, and the error of a family without a generative model."""
    from neurostat.engine.glm_families import NegativeBinomial

    rng = np.random.default_rng(0)
    Y = rng.normal(size=(50, 2)) + [1.0, -3.0]
    w = rng.random(50)
    np.testing.assert_allclose(Gaussian().initial_intercept(Y, w),
                               (w[:, None] * Y).sum(0) / w.sum(), rtol=1e-14)
    off = torch.as_tensor(rng.normal(size=7) * 1e3 + 1 / 3)
    out = Gaussian().offset_eta(off, 1)
    assert out.dtype == torch.float64 and torch.equal(out[:, 0], off)
    out = NegativeBinomial().offset_eta(off, 2)  # [log mu, log alpha]: the offset on log mu
    assert out.dtype == torch.float64 and torch.equal(out[:, 0], off)
    assert torch.all(out[:, 1] == 0)
    eta = Gaussian().null_eta(Y, w, 2)
    assert eta.dtype == torch.float64 and eta.shape == (50, 2)
    np.testing.assert_allclose(eta.numpy(), np.tile((w[:, None] * Y).sum(0) / w.sum(), (50, 1)),
                               rtol=1e-14)
    message = ("The cox family has no generative model to simulate from, so the parametric "
               "bootstrap does not apply; use compare_lr_test(method='chi2') or "
               "cov_type='bootstrap' (case resampling).")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Cox().simulate(np.ones(3), 1.0, rng)
