"""More families of the statistician's menu: binomial proportions, gamma, negative binomial and
the heteroscedastic gaussian, each owning its math as the families of
:mod:`neurostat.engine.families` do, and the registry of every regression family.

* :class:`Binomial` - a proportion ``y`` in [0, 1] out of ``sample_weight`` trials (glum's and
  scikit-learn's convention); statsmodels' ``GLM(Binomial)`` on ``[successes, failures]``,
  binomial coefficient included in the log-likelihood;
* :class:`Gamma` - positive responses with a log link and a dispersion estimated after the fit
  (Pearson chi-square / residual df, as statsmodels' GLM);
* :class:`NegativeBinomial` - NB2 counts, ``Var = mu + alpha mu^2``, with ``alpha`` estimated by
  maximum likelihood jointly with the network as an *ancillary* linear predictor (an
  intercept-only output holding ``log alpha``), statsmodels' discrete ``NegativeBinomial``;
* :class:`GaussianLocationScale` - distributional regression (mgcv's ``gaulss``): the network
  outputs the mean and the log standard deviation of a gaussian response;
* :class:`Tweedie` - compound Poisson-gamma responses (power in (1, 2)): zeros and positive
  values, log link.
"""

import math

import numpy as np
import torch
from scipy import optimize, special

from .families import AdditiveFamily, Bernoulli, Gaussian, Poisson, _as_2d, _np, _wmean


def _log_binomial_coefficient(n, k):
    return torch.lgamma(n + 1) - torch.lgamma(k + 1) - torch.lgamma(n - k + 1)


def _weighted_rows(W, sample_weight):
    return W if sample_weight is None else W * sample_weight[:, None, None]


class Binomial(Bernoulli):
    """A proportion ``y`` in [0, 1] out of ``sample_weight`` trials, logit link.

    ``sample_weight`` is the number of trials (glum's and scikit-learn's convention), so
    weights are not frequency weights here (``frequency_weights = False``, statsmodels'
    ``var_weights``): ``nobs`` is the number of rows, the log-likelihood
    ``sum_i [n_i (y_i log mu_i + (1 - y_i) log(1 - mu_i)) + log C(n_i, n_i y_i)]`` keeps the
    binomial coefficient, the residuals are scaled by ``sqrt(n_i)`` and the robust meat is
    ``sum_i (n_i (y_i - mu_i))^2 x_i x_i'``: statsmodels' ``GLM(Binomial)`` on
    ``[successes, failures]``. Without weights every row is one trial (``y`` then 0/1 for a
    proper likelihood).
    """

    name = "binomial"
    classification = False
    frequency_weights = False

    def validate(self, y):
        if y.ndim != 1:
            raise ValueError(f"family='binomial' needs one proportion per row; got y of shape "
                             f"{y.shape}.")
        if np.any((y < 0) | (y > 1)):
            raise ValueError(
                "family='binomial' needs proportions y in [0, 1] (successes / trials, with the "
                "trials as sample_weight); got values outside [0, 1].")

    def check_sample_weight(self, sample_weight):
        if sample_weight is not None and np.any(np.asarray(sample_weight) <= 0):
            raise ValueError(
                "family='binomial' reads sample_weight as the number of trials; some rows have "
                "zero trials (no proportion is observed there): drop those rows.")

    def loglik(self, eta, y, sample_weight=None, scale=1.0):
        n = torch.ones_like(y) if sample_weight is None else sample_weight
        return (n * -self.nll(eta, y) + _log_binomial_coefficient(n, n * y)).sum()

    def _deviance_terms(self, y, mu):
        with np.errstate(divide="ignore", invalid="ignore"):
            a = np.where(y > 0, y * np.log(y / mu), 0.0)
            b = np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
        return 2 * (a + b)

    def residuals(self, eta, y, sample_weight=None):
        dev, pear = super().residuals(eta, y, sample_weight)
        if sample_weight is None:
            return dev, pear
        root = np.sqrt(_np(sample_weight))
        return dev * root, pear * root

    def sample(self, eta, scale, rng, sample_weight=None):
        mu = _np(self.mean(eta))
        if sample_weight is None:
            return self.simulate(mu, scale, rng)
        n = _np(sample_weight)
        if not np.all(n == np.round(n)):
            raise ValueError("Simulating binomial proportions needs whole numbers of trials "
                             "(sample_weight); these are not integers.")
        return rng.binomial(n.astype(np.int64), mu) / n


class Gamma(AdditiveFamily):
    """Positive responses, log link: ``y ~ Gamma(mean mu, shape 1 / phi)``, ``V(mu) = mu^2``.

    The dispersion ``phi`` is estimated after the fit as Pearson chi-square / residual df and
    the log-likelihood reported at it, as statsmodels' ``GLM(Gamma(Log()))``. The log link is
    not canonical: :meth:`information_eta` is the expected (Fisher) information ``1 / phi``
    per row (``expected_information``), so the nonrobust covariance is the inverse Fisher
    information, statsmodels' IRLS convention, and the robust sandwich uses the observed
    information ``y / (mu phi)`` (statsmodels' ``cov_type="HC0"``); the Newton finish of a
    fit without hidden layer takes Fisher-scoring steps. Wald tests use the normal reference
    (statsmodels' GLM default; R's ``summary.glm`` uses t).
    """

    name, link = "gamma", "log"
    has_scale = nonnegative_target = newton = True
    expected_information = True
    use_t = False

    def validate(self, y):
        if np.any(y <= 0):
            raise ValueError("family='gamma' needs a positive response y > 0; got values <= 0. "
                             "Shift the response or use family='gaussian'.")

    def nll(self, eta, y):
        eta = eta[:, 0]
        return y * torch.exp(-eta) + eta

    def mean(self, eta):
        return torch.exp(eta[:, 0])

    def variance(self, mu):
        return mu * mu

    def initial_intercept(self, y, sample_weight):
        return np.log(np.atleast_1d(_wmean(y, sample_weight)))

    def loglik_obs(self, eta, y, scale=1.0):
        mu = self.mean(eta)
        inv = 1.0 / torch.as_tensor(scale, dtype=mu.dtype)
        return inv * torch.log(inv * y / mu) - inv * y / mu - torch.lgamma(inv) - torch.log(y)

    def score_eta(self, eta, y, sample_weight=None, scale=1.0):
        u = (_as_2d(y) / _as_2d(self.mean(eta.detach())) - 1.0) / scale
        return u if sample_weight is None else u * sample_weight[:, None]

    def information_eta(self, eta, y, sample_weight=None, scale=1.0):
        W = torch.ones(eta.shape[0], 1, 1, dtype=eta.dtype) / scale
        return _weighted_rows(W, sample_weight)

    def observed_information_eta(self, eta, y, sample_weight=None, scale=1.0):
        W = (_as_2d(y) / _as_2d(self.mean(eta.detach())))[:, :, None] / scale
        return _weighted_rows(W, sample_weight)

    def _deviance_terms(self, y, mu):
        return 2 * ((y - mu) / mu - np.log(y / mu))

    def llf_scale(self, pearson_chi2, nobs, n_outputs, scale):
        return scale  # statsmodels evaluates the gamma llf at the Pearson dispersion

    def simulate(self, mu, scale, rng):
        return rng.gamma(1.0 / scale, mu * scale)


def _tweedie_log_a(y, scale, power):
    """``log a(y, phi)`` of the Tweedie density ``exp((y theta - kappa) / phi) a(y, phi)``,
    1 < p < 2, from its definition as a compound Poisson-gamma law: the density at the mean
    ``mu = y`` summed over the number j of gamma terms (a window of j around the mode, where
    the terms are not negligible) divided by its exponential-family part; 0 at y = 0."""
    y = np.asarray(y, dtype=np.float64)
    out = np.zeros_like(y)
    pos = y > 0
    yp = y[pos]
    if yp.size == 0:
        return out
    a = (2 - power) / (power - 1)  # gamma shape per term
    lam = yp ** (2 - power) / (scale * (2 - power))  # Poisson mean at mu = y
    gam = scale * (power - 1) * yp ** (power - 1)  # gamma scale at mu = y
    half = int(8 * np.sqrt(lam.max()) + 30)
    start = np.maximum(1, np.floor(lam) - half)
    j = start[:, None] + np.arange(2 * half + 1)[None, :]
    terms = (-lam[:, None] + j * np.log(lam)[:, None] - special.gammaln(j + 1)
             + (j * a - 1) * np.log(yp)[:, None] - (yp / gam)[:, None]
             - special.gammaln(j * a) - j * a * np.log(gam)[:, None])
    log_f = special.logsumexp(terms, axis=1)
    out[pos] = log_f - yp ** (2 - power) / ((1 - power) * (2 - power)) / scale
    return out


class Tweedie(AdditiveFamily):
    """Tweedie responses with power ``1 < p < 2``: compound Poisson-gamma, exact zeros and a
    continuous positive part (claims, rainfall, time spent), log link, ``V(mu) = mu^p``.

    The dispersion is estimated after the fit as Pearson chi-square / residual df, as
    statsmodels' ``GLM(Tweedie(var_power=p, link=Log()))``, whose estimates and (nonrobust:
    inverse Fisher, robust: observed information in the sandwich) standard errors it equals.
    The log-likelihood is the Tweedie density itself, summed as a compound Poisson-gamma law
    (statsmodels' Tweedie reports none, or the extended quasi-likelihood with ``eql=True``).

    Parameters
    ----------
    power : float in (1, 2), default=1.5
    """

    name, link = "tweedie", "log"
    has_scale = nonnegative_target = newton = True
    expected_information = True
    use_t = False

    def __init__(self, power=1.5):
        if not 1 < float(power) < 2:
            raise ValueError(f"Tweedie(power) needs 1 < power < 2; got {power!r}.")
        self.power = float(power)

    def validate(self, y):
        if np.any(y < 0):
            raise ValueError("family='tweedie' needs y >= 0 (zeros and positive values).")

    def _mu_powers(self, eta):
        e = eta[:, 0]
        return torch.exp((1 - self.power) * e), torch.exp((2 - self.power) * e)

    def nll(self, eta, y):
        m1, m2 = self._mu_powers(eta)
        return -y * m1 / (1 - self.power) + m2 / (2 - self.power)

    def mean(self, eta):
        return torch.exp(eta[:, 0])

    def variance(self, mu):
        return mu**self.power

    def initial_intercept(self, y, sample_weight):
        return np.log(np.maximum(np.atleast_1d(_wmean(y, sample_weight)), 1e-10))

    def loglik_obs(self, eta, y, scale=1.0):
        scale = float(scale)
        log_a = _tweedie_log_a(_np(y), scale, self.power)
        return -self.nll(eta, y) / scale + torch.as_tensor(log_a, dtype=eta.dtype)

    def score_eta(self, eta, y, sample_weight=None, scale=1.0):
        m1, m2 = self._mu_powers(eta.detach())
        u = ((y * m1 - m2) / scale)[:, None]
        return u if sample_weight is None else u * sample_weight[:, None]

    def information_eta(self, eta, y, sample_weight=None, scale=1.0):
        W = (self._mu_powers(eta.detach())[1] / scale)[:, None, None]
        return _weighted_rows(W, sample_weight)

    def observed_information_eta(self, eta, y, sample_weight=None, scale=1.0):
        m1, m2 = self._mu_powers(eta.detach())
        W = ((m2 - (1 - self.power) * (y * m1 - m2)) / scale)[:, None, None]
        return _weighted_rows(W, sample_weight)

    def _deviance_terms(self, y, mu):
        p = self.power
        return 2 * (np.maximum(y, 0) ** (2 - p) / ((1 - p) * (2 - p))
                    - y * mu ** (1 - p) / (1 - p) + mu ** (2 - p) / (2 - p))

    def llf_scale(self, pearson_chi2, nobs, n_outputs, scale):
        return scale

    def simulate(self, mu, scale, rng):
        p = self.power
        n = rng.poisson(mu ** (2 - p) / (scale * (2 - p)))
        return rng.gamma(n * (2 - p) / (p - 1), scale * (p - 1) * mu ** (p - 1))


def _nb_loglik_np(y, mu, log_alpha, w):
    r = np.exp(-log_alpha)
    ll = (special.gammaln(y + r) - special.gammaln(r) - special.gammaln(y + 1)
          + r * np.log(r / (r + mu)) + special.xlogy(y, mu / (r + mu)))
    return float(np.sum(ll if w is None else w * ll))


class NegativeBinomial(AdditiveFamily):
    """NB2 counts, log link: ``E y = mu``, ``Var y = mu + alpha mu^2``, ``alpha > 0`` estimated.

    The linear predictor has two columns: ``eta_0 = log mu`` from the network and
    ``eta_1 = log alpha``, an intercept-only ancillary predictor (``ancillary = ("alpha",)``)
    estimated jointly by maximum likelihood (an extra learnable parameter of the model, so
    the curvature, the scores and every test include it). Inference reports ``alpha`` (by the
    delta method from ``log alpha``, exact at the maximum) as a row of ``params``, and the
    covariance is the inverse observed information in (beta, alpha): statsmodels' discrete
    ``NegativeBinomial(loglike_method="nb2")``, whose ``llf`` and ``llnull`` (the constant-only
    model with its own alpha) it equals. A fit without hidden layer ends with Newton steps on
    (beta, log alpha), each kept only when it improves (the likelihood is concave near its
    maximum, not everywhere in log alpha).
    """

    name, link = "negative_binomial", "log"
    nonnegative_target = newton = True
    ancillary = ("alpha",)

    def n_outputs(self, y):
        return 1

    def validate(self, y):
        if y.ndim != 1:
            raise ValueError(f"family='negative_binomial' needs one count per row; got y of "
                             f"shape {y.shape}.")
        if np.any(y < 0):
            raise ValueError("family='negative_binomial' needs counts y >= 0; got negative "
                             "values.")

    @staticmethod
    def _split(eta):
        return torch.exp(eta[:, 0]), torch.exp(-eta[:, 1])  # mu, r = 1 / alpha

    def loglik_obs(self, eta, y, scale=1.0):
        mu, r = self._split(eta)
        return (torch.lgamma(y + r) - torch.lgamma(r) - torch.lgamma(y + 1)
                - r * torch.log1p(mu / r) + y * (eta[:, 0] - torch.log(r + mu)))

    def nll(self, eta, y):
        return -(self.loglik_obs(eta, y) + torch.lgamma(y + 1))

    def mean(self, eta):
        return torch.exp(eta[:, 0])

    def variance(self, mu, alpha=None):
        """``mu + alpha mu^2`` (``alpha`` is the fitted ancillary parameter)."""
        if alpha is None:
            raise ValueError("The negative binomial variance needs alpha: variance(mu, alpha).")
        return mu + alpha * mu * mu

    def ancillary_values(self, raw):
        a = np.exp(raw)
        return a, a

    def null_alpha(self, y, sample_weight):
        """Maximum-likelihood ``log alpha`` of the constant-mean model (mean = ybar)."""
        y = np.asarray(y, dtype=np.float64)
        mu = _wmean(y, sample_weight)
        res = optimize.minimize_scalar(lambda la: -_nb_loglik_np(y, mu, la, sample_weight),
                                       bounds=(-20.0, 8.0), method="bounded",
                                       options={"xatol": 1e-10})
        return float(res.x)

    def initial_intercept(self, y, sample_weight):
        mu = max(float(_wmean(y, sample_weight)), 1e-10)
        return np.array([math.log(mu), self.null_alpha(y, sample_weight)])

    def score_eta(self, eta, y, sample_weight=None, scale=1.0):
        eta = eta.detach()
        mu, r = self._split(eta)
        u0 = r * (y - mu) / (r + mu)
        g = (torch.digamma(y + r) - torch.digamma(r) + torch.log(r / (r + mu))
             + (mu - y) / (r + mu))
        u = torch.stack([u0, -r * g], 1)
        return u if sample_weight is None else u * sample_weight[:, None]

    def information_eta(self, eta, y, sample_weight=None, scale=1.0):
        """The observed information in ``(log mu, log alpha)`` per row (statsmodels' NB
        covariance is the inverse observed Hessian)."""
        eta = eta.detach()
        mu, r = self._split(eta)
        s = r + mu
        g = torch.digamma(y + r) - torch.digamma(r) + torch.log(r / s) + (mu - y) / s
        g1 = (torch.polygamma(1, y + r) - torch.polygamma(1, r) + 1 / r - 1 / s
              - (mu - y) / s**2)
        W = torch.empty(eta.shape[0], 2, 2, dtype=eta.dtype)
        W[:, 0, 0] = mu * r * (r + y) / s**2
        W[:, 0, 1] = W[:, 1, 0] = r * mu * (y - mu) / s**2
        W[:, 1, 1] = -r * (g + r * g1)
        return _weighted_rows(W, sample_weight)

    def _alpha(self, eta):
        return _np(torch.exp(eta[:, 1]))

    def residuals(self, eta, y, sample_weight=None):
        y, mu, alpha = _np(y), _np(self.mean(eta)), self._alpha(eta)
        r = 1 / alpha
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = 2 * (special.xlogy(y, y / mu) - (y + r) * np.log((y + r) / (mu + r)))
        pear = (y - mu) / np.sqrt(self.variance(mu, alpha))
        return np.sign(y - mu) * np.sqrt(np.maximum(dev, 0.0)), pear

    def pearson_chi2(self, eta, y, sample_weight=None, by_output=False):
        pear = self.residuals(eta, y)[1]
        w = 1.0 if sample_weight is None else _np(sample_weight)
        return float(np.sum(w * pear**2))

    def simulate(self, mu, scale, rng):
        raise ValueError("Simulating negative binomial counts needs alpha: use "
                         "sample(eta, scale, rng).")

    def sample(self, eta, scale, rng, sample_weight=None):
        mu, r = (_np(t) for t in self._split(eta))
        return rng.negative_binomial(r, r / (r + mu)).astype(np.float64)


class GaussianLocationScale(AdditiveFamily):
    """Heteroscedastic gaussian regression (mgcv's ``gaulss``, R deepregression's normal).

    The network has two outputs per response: the mean ``mu = eta_0`` and the log standard
    deviation ``log sigma = eta_1``, both functions of the inputs, so prediction intervals
    widen where the noise does. There is no dispersion to estimate (``sigma(x)`` is modelled)
    and the curvature is the observed information ``[[1 / s^2, 2 r / s^2], [2 r / s^2,
    2 r^2 / s^2]]`` per row (``r = y - mu``), as mgcv uses.
    """

    name, link = "gaulss", "identity, log"
    predictors = ("mean", "log_sd")

    def n_outputs(self, y):
        if y.ndim != 1:
            raise ValueError(f"family='gaulss' models one response; got y of shape {y.shape}.")
        return 2

    def nll(self, eta, y):
        z = (y - eta[:, 0]) * torch.exp(-eta[:, 1])
        return 0.5 * z * z + eta[:, 1]

    def loglik_obs(self, eta, y, scale=1.0):
        return -self.nll(eta, y) - 0.5 * math.log(2 * math.pi)

    def mean(self, eta):
        return eta[:, 0]

    def variance(self, mu):
        return mu * 0 + 1.0

    def response_variance(self, eta, scale=1.0):
        """``Var(y | x) = sigma(x)^2`` (numpy)."""
        return _np(torch.exp(2 * eta[:, 1]))

    def offset_eta(self, offset, n_eta):
        out = torch.zeros(offset.shape[0], n_eta, dtype=offset.dtype, device=offset.device)
        out[:, 0] = offset
        return out

    def initial_intercept(self, y, sample_weight):
        m = _wmean(y, sample_weight)
        v = _wmean((y - m) ** 2, sample_weight)
        return np.array([m, 0.5 * math.log(max(v, 1e-300))])

    def score_eta(self, eta, y, sample_weight=None, scale=1.0):
        eta = eta.detach()
        inv = torch.exp(-eta[:, 1])
        z = (y - eta[:, 0]) * inv
        u = torch.stack([z * inv, z * z - 1], 1)
        return u if sample_weight is None else u * sample_weight[:, None]

    def information_eta(self, eta, y, sample_weight=None, scale=1.0):
        eta = eta.detach()
        inv = torch.exp(-eta[:, 1])
        z = (y - eta[:, 0]) * inv
        W = torch.empty(eta.shape[0], 2, 2, dtype=eta.dtype)
        W[:, 0, 0] = inv * inv
        W[:, 0, 1] = W[:, 1, 0] = 2 * z * inv
        W[:, 1, 1] = 2 * z * z
        return _weighted_rows(W, sample_weight)

    def residuals(self, eta, y, sample_weight=None):
        y = _np(y)
        z = (y - _np(eta[:, 0])) / np.exp(_np(eta[:, 1]))
        return z, z

    def pearson_chi2(self, eta, y, sample_weight=None, by_output=False):
        z = self.residuals(eta, y)[1]
        w = 1.0 if sample_weight is None else _np(sample_weight)
        return float(np.sum(w * z**2))

    def _deviance_terms(self, y, mu):
        return (y - mu) ** 2

    def sample(self, eta, scale, rng, sample_weight=None):
        mu, sd = _np(eta[:, 0]), np.exp(_np(eta[:, 1]))
        return mu + sd * rng.standard_normal(mu.shape)

    def simulate(self, mu, scale, rng):
        raise ValueError("Simulating the heteroscedastic gaussian needs sigma(x): use "
                         "sample(eta, scale, rng).")


#: every regression family by its ``family=`` name
REGRESSION_FAMILIES = {
    "gaussian": Gaussian, "poisson": Poisson, "binomial": Binomial, "gamma": Gamma,
    "negative_binomial": NegativeBinomial, "gaulss": GaussianLocationScale, "tweedie": Tweedie,
}

__all__ = ["REGRESSION_FAMILIES", "Binomial", "Gamma", "GaussianLocationScale",
           "NegativeBinomial", "Tweedie"]
