"""The menu's families' math: binomial, gamma, negative binomial, Tweedie, heteroscedastic
gaussian, the joint family of several responses, and the ancillary-predictor network.

References: scipy's distributions for every log-likelihood (constants included), autograd of
the family's own log-likelihood for the closed-form scores and observed information (1e-12),
the expectation of the observed information for the gamma's and Tweedie's expected
information (closed form: the observed one at y = mu), statsmodels' GLM residuals with
var_weights for the binomial, the Tweedie density against its definition (a Poisson sum of
gamma densities, and quadrature: total mass 1, mean mu, variance phi mu^p), and Monte-Carlo
moments for the draws.
"""

import pickle

import numpy as np
import pytest
import statsmodels.api as sm
import torch
from scipy import integrate, special, stats

from neurostat.engine.composite import JointFamily
from neurostat.engine.families import AdditiveFamily, Bernoulli, Gaussian, Poisson
from neurostat.engine.glm_families import (
    REGRESSION_FAMILIES,
    Binomial,
    Gamma,
    GaussianLocationScale,
    NegativeBinomial,
    Tweedie,
)
from neurostat.engine.heads import AncillaryMLP, with_ancillary
from neurostat.engine.networks import MLP

T = torch.float64


def _case(name, n=40, seed=0):
    rng = np.random.default_rng(seed)
    if name == "negative_binomial":
        eta = np.column_stack([rng.normal(1.0, 0.5, n), rng.normal(-0.5, 0.4, n)])
        y = rng.poisson(3.0, n).astype(float)
        fam = NegativeBinomial()
    elif name == "gaulss":
        eta, y, fam = rng.normal(size=(n, 2)), rng.normal(size=n), GaussianLocationScale()
    elif name == "gamma":
        eta, y, fam = rng.normal(size=(n, 1)), rng.gamma(2.0, 1.0, n), Gamma()
    elif name == "tweedie":
        fam = Tweedie(1.4)
        eta = rng.normal(size=(n, 1))
        y = fam.simulate(np.exp(eta[:, 0]), 1.2, rng)
    else:
        eta, y, fam = rng.normal(size=(n, 1)), rng.uniform(size=n), Binomial()
    w = torch.as_tensor(rng.uniform(0.5, 2.0, n))
    return fam, torch.as_tensor(eta), torch.as_tensor(y), w


NAMES = ["binomial", "gamma", "negative_binomial", "gaulss", "tweedie"]


@pytest.mark.parametrize("name", NAMES)
def test_scores_and_observed_information_equal_autograd(name):
    fam, eta, y, w = _case(name)
    torch.testing.assert_close(fam.score_eta(eta, y, w, 1.7),
                               AdditiveFamily.score_eta(fam, eta, y, w, 1.7),
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fam.observed_information_eta(eta, y, w, 1.7),
                               AdditiveFamily.information_eta(fam, eta, y, w, 1.7),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["gamma", "tweedie"])
def test_log_link_information_is_the_expected_one(name):
    """The observed information (gamma ``y / (mu phi)``) is linear in y, so its expectation is
    its value at y = mu: what ``information_eta`` returns (and only these families mark their
    information as expected)."""
    fam, eta, _, w = _case(name)
    mu = fam.mean(eta)
    torch.testing.assert_close(fam.information_eta(eta, mu, w, 0.6),
                               fam.observed_information_eta(eta, mu, w, 0.6), rtol=1e-13,
                               atol=0)
    assert fam.expected_information and not fam.canonical
    assert not any(f.expected_information for f in (Binomial(), NegativeBinomial(),
                                                    GaussianLocationScale(), Poisson()))


def test_log_likelihoods_equal_scipy():
    rng = np.random.default_rng(1)
    n = 30
    # negative binomial: eta = (log mu, log alpha)
    eta = np.column_stack([rng.normal(1, 0.5, n), rng.normal(-0.3, 0.5, n)])
    y = rng.poisson(4.0, n).astype(float)
    mu, r = np.exp(eta[:, 0]), np.exp(-eta[:, 1])
    ll = NegativeBinomial().loglik_obs(torch.as_tensor(eta), torch.as_tensor(y)).numpy()
    np.testing.assert_allclose(ll, stats.nbinom.logpmf(y, r, r / (r + mu)), rtol=1e-12)
    # gamma with dispersion phi: shape 1 / phi, scale mu phi
    e1, yg, phi = rng.normal(size=(n, 1)), rng.gamma(2.0, 1.0, n), 0.7
    ll = Gamma().loglik_obs(torch.as_tensor(e1), torch.as_tensor(yg), phi).numpy()
    np.testing.assert_allclose(ll, stats.gamma.logpdf(yg, 1 / phi, scale=np.exp(e1[:, 0]) * phi),
                               rtol=1e-12)
    # heteroscedastic gaussian: eta = (mu, log sd)
    e2, yn = rng.normal(size=(n, 2)), rng.normal(size=n)
    ll = GaussianLocationScale().loglik_obs(torch.as_tensor(e2), torch.as_tensor(yn)).numpy()
    np.testing.assert_allclose(ll, stats.norm.logpdf(yn, e2[:, 0], np.exp(e2[:, 1])),
                               rtol=1e-12)
    # binomial: proportions of n trials, the binomial coefficient included
    trials = rng.integers(1, 30, n).astype(float)
    p = 1 / (1 + np.exp(-e1[:, 0]))
    k = rng.binomial(trials.astype(int), p)
    ll = float(Binomial().loglik(torch.as_tensor(e1), torch.as_tensor(k / trials),
                                 torch.as_tensor(trials)))
    assert ll == pytest.approx(stats.binom.logpmf(k, trials, p).sum(), rel=1e-12)


def test_tweedie_density_is_the_compound_poisson_gamma():
    """log f(y; mu, phi) equals the sum over j of Poisson(j; lambda) Gamma(y; j a, g), with
    lambda = mu^(2-p) / (phi (2-p)), a = (2-p) / (p-1), g = phi (p-1) mu^(p-1), at means
    other than y (the exponential-family split is exact), and the density has total mass 1
    (the atom at 0 included), mean mu and variance phi mu^p (quadrature)."""
    fam, p = Tweedie(1.4), 1.4

    def ll(y, mu, phi):
        return float(fam.loglik_obs(torch.tensor([[np.log(mu)]], dtype=T),
                                    torch.tensor([y], dtype=T), phi)[0])

    for y, mu, phi in [(0.3, 2.0, 1.1), (5.0, 1.0, 0.7), (12.0, 7.0, 2.5)]:
        lam, a = mu ** (2 - p) / (phi * (2 - p)), (2 - p) / (p - 1)
        g = phi * (p - 1) * mu ** (p - 1)
        j = np.arange(1, 400)
        direct = special.logsumexp(stats.poisson.logpmf(j, lam)
                                   + stats.gamma.logpdf(y, j * a, scale=g))
        assert ll(y, mu, phi) == pytest.approx(direct, rel=1e-12)
    assert ll(0.0, 2.0, 1.1) == pytest.approx(-(2.0 ** 0.6) / (1.1 * 0.6), rel=1e-12)
    for mu, phi in [(0.7, 1.3), (3.0, 0.5)]:
        def f(y, mu=mu, phi=phi):
            return np.exp(ll(y, mu, phi))
        mass = np.exp(ll(0.0, mu, phi)) + integrate.quad(f, 0, np.inf, limit=200)[0]
        m1 = integrate.quad(lambda y, f=f: y * f(y), 0, np.inf, limit=200)[0]
        m2 = integrate.quad(lambda y, f=f: y * y * f(y), 0, np.inf, limit=200)[0]
        assert mass == pytest.approx(1.0, abs=1e-10)
        assert m1 == pytest.approx(mu, rel=1e-9)
        assert m2 - m1**2 == pytest.approx(phi * mu**p, rel=1e-8)
    with pytest.raises(ValueError, match="1 < power < 2"):
        Tweedie(2.0)


def test_training_losses_drop_only_constants():
    for name in NAMES:
        fam, eta, y, w = _case(name)
        torch.testing.assert_close(fam.loss(eta, y, w), (w * fam.nll(eta, y)).sum() / w.sum())
        c1 = fam.loglik_obs(eta, y) + fam.nll(eta, y)
        c2 = fam.loglik_obs(eta + 0.37, y) + fam.nll(eta + 0.37, y)
        torch.testing.assert_close(c1, c2, rtol=1e-12, atol=1e-12)


def test_binomial_residuals_and_chi2_equal_statsmodels_with_trials():
    rng = np.random.default_rng(2)
    n = 60
    X = sm.add_constant(rng.normal(size=(n, 2)))
    trials = rng.integers(1, 25, n)
    k = rng.binomial(trials, 1 / (1 + np.exp(-(X @ [0.2, 0.7, -0.4]))))
    r = sm.GLM(np.column_stack([k, trials - k]), X, family=sm.families.Binomial()).fit()
    fam = Binomial()
    eta = torch.as_tensor(X @ r.params)[:, None]
    y, w = torch.as_tensor(k / trials), torch.as_tensor(trials.astype(float))
    dev, pear = fam.residuals(eta, y, w)
    np.testing.assert_allclose(dev, r.resid_deviance, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(pear, r.resid_pearson, rtol=1e-10, atol=1e-12)
    assert fam.pearson_chi2(eta, y, w) == pytest.approx(r.pearson_chi2, rel=1e-10)
    assert float(fam.loglik(eta, y, w)) == pytest.approx(r.llf, rel=1e-12)
    assert float((w * torch.as_tensor(fam._deviance_terms(y.numpy(), fam.mean(eta).numpy())))
                 .sum()) == pytest.approx(r.deviance, rel=1e-10)


def test_draws_have_the_families_moments():
    """20,000 draws per setting, means within 5 Monte-Carlo SEs and variances within 10%:
    NB ``mu + alpha mu^2``, gamma ``phi mu^2``, binomial proportions ``p (1 - p) / n``,
    gaulss ``sigma^2``."""
    rng = np.random.default_rng(5)
    m = 20000

    def check(draws, mean, var):
        assert abs(draws.mean() - mean) < 5 * np.sqrt(var / m)
        assert draws.var() == pytest.approx(var, rel=0.1)

    eta = torch.as_tensor(np.tile([[np.log(4.0), np.log(0.5)]], (m, 1)))
    check(NegativeBinomial().sample(eta, 1.0, rng), 4.0, 4.0 + 0.5 * 16)
    check(Gamma().simulate(np.full(m, 3.0), 0.4, rng), 3.0, 0.4 * 9)
    e = torch.full((m, 1), 0.4, dtype=T)
    p = 1 / (1 + np.exp(-0.4))
    draws = Binomial().sample(e, 1.0, rng, torch.full((m,), 12.0, dtype=T))
    assert np.allclose(draws * 12, np.round(draws * 12))
    check(draws, p, p * (1 - p) / 12)
    eta = torch.as_tensor(np.tile([[1.5, np.log(2.0)]], (m, 1)))
    check(GaussianLocationScale().sample(eta, 1.0, rng), 1.5, 4.0)
    check(Tweedie(1.6).simulate(np.full(m, 5.0), 0.8, rng), 5.0, 0.8 * 5.0**1.6)
    # the atom at zero: P(y = 0) = exp(-lambda), lambda = mu^(2-p) / (phi (2-p)); 0.093 here
    draws = Tweedie(1.6).simulate(np.full(m, 0.5), 0.8, rng)
    assert np.mean(draws == 0) == pytest.approx(np.exp(-(0.5 ** 0.4) / (0.8 * 0.4)), abs=0.01)


def test_binomial_needs_whole_trials_to_simulate():
    e = torch.zeros(3, 1, dtype=T)
    with pytest.raises(ValueError, match="whole numbers of trials"):
        Binomial().sample(e, 1.0, np.random.default_rng(0), torch.tensor([1.5, 2.0, 3.0]))


@pytest.mark.parametrize("fam, y, match", [
    (Binomial(), [0.2, 1.3], r"proportions y in \[0, 1\]"),
    (Binomial(), [-0.1, 0.5], r"proportions y in \[0, 1\]"),
    (Gamma(), [1.0, 0.0], "positive response y > 0"),
    (Gamma(), [1.0, -2.0], "positive response y > 0"),
    (NegativeBinomial(), [1.0, -1.0], "counts y >= 0"),
    (Tweedie(), [0.0, -0.5], "y >= 0"),
])
def test_validation_names_the_problem(fam, y, match):
    with pytest.raises(ValueError, match=match):
        fam.validate(np.asarray(y))


def test_binomial_refuses_zero_trials():
    with pytest.raises(ValueError, match="zero trials"):
        Binomial().check_sample_weight(np.array([3.0, 0.0, 2.0]))
    Binomial().check_sample_weight(None)


def test_null_models():
    """The NB null model: mean = ybar exactly and alpha maximizing the constant-mean
    likelihood (its score in log alpha is zero); gaulss: ybar and the ML log sd."""
    rng = np.random.default_rng(6)
    y = rng.negative_binomial(2, 0.3, 500).astype(float)
    b = NegativeBinomial().initial_intercept(y, None)
    assert np.exp(b[0]) == pytest.approx(y.mean(), rel=1e-12)
    eta = torch.as_tensor(np.tile(b, (500, 1)))
    u = NegativeBinomial().score_eta(eta, torch.as_tensor(y)).sum(0)
    assert abs(float(u[1])) < 1e-5 * 500
    yn = rng.normal(3, 2, 400)
    b = GaussianLocationScale().initial_intercept(yn, None)
    np.testing.assert_allclose(b, [yn.mean(), np.log(yn.std())], rtol=1e-12)


def test_registry_and_pickling():
    assert set(REGRESSION_FAMILIES) == {"gaussian", "poisson", "binomial", "gamma",
                                        "negative_binomial", "gaulss", "tweedie"}
    assert Tweedie(1.3) == Tweedie(1.3) != Tweedie(1.5)
    for cls in REGRESSION_FAMILIES.values():
        fam = cls()
        assert pickle.loads(pickle.dumps(fam)) == fam
    assert NegativeBinomial().ancillary == ("alpha",)
    assert not Binomial().frequency_weights and Binomial() != Bernoulli()


def test_offsets_enter_the_mean_predictors_only():
    o = torch.tensor([1.0, 2.0], dtype=T)
    np.testing.assert_array_equal(Poisson().offset_eta(o, 1), [[1.0], [2.0]])
    np.testing.assert_array_equal(NegativeBinomial().offset_eta(o, 2), [[1.0, 0.0], [2.0, 0.0]])
    np.testing.assert_array_equal(GaussianLocationScale().offset_eta(o, 2),
                                  [[1.0, 0.0], [2.0, 0.0]])


def test_ancillary_network_appends_constant_predictors():
    torch.manual_seed(0)
    mlp = MLP(3, (4,), 1, "tanh")
    net = with_ancillary(mlp, 1)
    assert isinstance(net, AncillaryMLP) and net.n_linear_predictors == 2
    with torch.no_grad():
        net.ancillary.fill_(-0.7)
    x = torch.randn(5, 3)
    out = net(x)
    torch.testing.assert_close(out[:, 0], mlp(x)[:, 0])
    torch.testing.assert_close(out[:, 1], torch.full((5,), -0.7))
    assert "ancillary" not in net.body_state_dict()
    assert with_ancillary(mlp, 0) is mlp
    with pytest.raises(ValueError, match="fully connected network"):
        with_ancillary(torch.nn.Linear(2, 1), 1)


# ------------------------------------------------------------------------ the joint family
def _joint_case(seed=7, n=50):
    rng = np.random.default_rng(seed)
    fam = JointFamily([Gaussian(), Bernoulli(), NegativeBinomial(), GaussianLocationScale()],
                      ["g", "b", "nb", "h"], dispersions=[2.5, 1.0, 1.0, 1.0])
    # eta: g, b, nb (log mu), h (mean), h (log sd), nb (log alpha)
    eta = torch.as_tensor(rng.normal(scale=0.5, size=(n, 6)))
    y = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n), rng.poisson(2.0, n),
                         rng.normal(size=n)]).astype(float)
    return fam, eta, torch.as_tensor(y), torch.as_tensor(rng.uniform(0.5, 2.0, n))


def test_joint_family_is_the_sum_of_its_members():
    fam, eta, y, w = _joint_case()
    assert fam.n_outputs(y) == 5 and fam.ancillary == ("nb.alpha",)
    assert [fam.columns(j) for j in range(4)] == [[0], [1], [2, 5], [3, 4]]
    members = [(Gaussian(), [0], 2.5), (Bernoulli(), [1], 1.0), (NegativeBinomial(), [2, 5], 1.0),
               (GaussianLocationScale(), [3, 4], 1.0)]
    ll = sum(m.loglik_obs(eta[:, c], y[:, j], s) for j, (m, c, s) in enumerate(members))
    torch.testing.assert_close(fam.loglik_obs(eta, y), ll)
    # closed-form scores and information (block diagonal) equal autograd of loglik_obs
    torch.testing.assert_close(fam.score_eta(eta, y, w),
                               AdditiveFamily.score_eta(
                                   _AsSum(fam), eta, y, w), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fam.information_eta(eta, y, w),
                               AdditiveFamily.information_eta(_AsSum(fam), eta, y, w),
                               rtol=1e-12, atol=1e-12)
    assert fam.mean(eta).shape == (50, 4)
    assert pickle.loads(pickle.dumps(fam)) == fam


class _AsSum(AdditiveFamily):
    """A family whose loglik is the plain weighted sum of the joint family's loglik_obs."""

    def __init__(self, joint):
        self._joint = joint

    def loglik_obs(self, eta, y, scale=1.0):
        return self._joint.loglik_obs(eta, y)


def test_joint_training_loss_profiles_each_gaussian_variance():
    """The loss of a gaussian member is ``0.5 log(RSS / n)``: its gradient equals the
    fixed-variance gradient at the maximum-likelihood variance ``RSS / n``."""
    fam, eta, y, w = _joint_case()
    two = JointFamily(fam.families[:2], fam.names[:2])
    e = eta[:, :2].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(two.loss(e, y[:, :2], w), e)
    r = y[:, 0] - e[:, 0].detach()
    s = float((w * r * r).sum() / w.sum())
    fixed = Gaussian().loss(e[:, :1], y[:, 0], w) / s + Bernoulli().loss(e[:, 1:], y[:, 1], w)
    (g2,) = torch.autograd.grad(fixed, e)
    torch.testing.assert_close(g, g2, rtol=1e-12, atol=1e-14)


def test_joint_family_validates_each_response():
    fam, _, y, _ = _joint_case()
    bad = y.clone()
    bad[0, 2] = -1.0
    with pytest.raises(ValueError, match="response 'nb'.*counts y >= 0"):
        fam.validate(bad.numpy())
    with pytest.raises(ValueError, match="takes no offset"):
        fam.offset_eta(torch.zeros(3, dtype=T), 6)
