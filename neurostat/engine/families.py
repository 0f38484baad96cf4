"""Families: the output layer and likelihood of a net, with all of their math.

A family turns the network's linear predictor ``eta`` (shape ``(n, k)``) into a mean (the
inverse link), scores it by a likelihood and owns everything that depends on which likelihood
it is: target validation, starting values, the training loss, the log-likelihood with its
constants and a dispersion argument, its first and second derivatives in ``eta``, the
information ``G' W G`` and the per-observation scores for a Jacobian ``G = d eta / d theta``,
deviance and Pearson residuals, the Pearson chi-square, and simulation from the fitted model
(for the parametric bootstrap). Nothing outside the family modules switches on a family's name:
solvers, inference and the views ask the family.

Two kinds of family share one interface, :class:`Family`:

* :class:`AdditiveFamily` - independent observations: the log-likelihood is a sum of
  per-observation terms ``sum_i w_i l_i(eta_i)``, so its Hessian in ``eta`` is block diagonal
  (one ``k x k`` block per row) and everything can be computed in row blocks. The built-in GLM
  families below (:class:`Gaussian`, :class:`Poisson`, :class:`Bernoulli`,
  :class:`Categorical`) are of this kind, with closed forms for canonical links;
* a family whose likelihood couples the rows (the Cox partial likelihood,
  :class:`neurostat.survival.family.Cox`) sets ``additive = False`` and implements the same
  interface over all rows at once.

Conventions. The training loss is the weighted mean of :meth:`AdditiveFamily.nll`, which drops
constants that do not depend on the parameters and takes the gaussian family at unit scale
(``0.5 (y - mu)^2``), so that the penalized objective is
``sum_i w_i nll_i / sum_i w_i + alpha * penalty`` - with no hidden layer exactly scikit-learn's
``ElasticNet`` / ``LogisticRegression`` objective. :meth:`Family.loglik` is the full
log-likelihood with its constants, the dispersion ``scale`` passed as an argument (statsmodels'
``loglike(params, scale)``), never stored on the family. Weights are frequency weights.
"""

import math

import numpy as np
import torch
from torch.nn import functional as F

from .calibration import calibration_table  # noqa: F401 (its home before)
from .family_base import (  # noqa: F401 (the helpers: imported from here by the other family modules)
    Family,
    _as_2d,
    _np,
    _squeeze,
    _syrk,
    _weighted,
    _wmean,
)


class AdditiveFamily(Family):
    """A family of independent observations: per-row log-likelihood terms.

    Subclasses implement :meth:`nll`, :meth:`loglik_obs`, :meth:`mean`, :meth:`variance`,
    :meth:`initial_intercept`, :meth:`simulate` and :meth:`_deviance_terms`, and (for speed
    and exactness) the closed forms :meth:`score_eta` and :meth:`information_eta`; the
    defaults differentiate :meth:`loglik_obs` by autograd.
    """

    def nll(self, eta, y):
        """Per-observation training loss (constants dropped, unit scale), shape (n,)."""
        raise NotImplementedError

    def loss(self, eta, y, sample_weight=None):
        """Weighted mean of :meth:`nll`: ``sum_i w_i nll_i / sum_i w_i``."""
        nll = self.nll(eta, y)
        if sample_weight is None:
            return nll.mean()
        return (sample_weight * nll).sum() / sample_weight.sum()

    def loglik_obs(self, eta, y, scale=1.0):
        """Per-observation log-likelihood with all constants, shape (n,)."""
        raise NotImplementedError

    def loglik(self, eta, y, sample_weight=None, scale=1.0):
        return _weighted(self.loglik_obs(eta, y, scale), sample_weight)

    def variance(self, mu):
        """Variance function ``V(mu)`` (elementwise; numpy or torch)."""
        raise NotImplementedError

    def information_eta(self, eta, y, sample_weight=None, scale=1.0):
        """Per-row ``-d^2 l_i / d eta_i^2``, shape (n, k, k) (weights included)."""
        n, k = eta.shape
        eta = eta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(self.loglik(eta, y, sample_weight, scale), eta,
                                   create_graph=True)
        out = torch.empty(n, k, k, dtype=eta.dtype)
        for j in range(k):
            (hj,) = torch.autograd.grad(g[:, j].sum(), eta, retain_graph=j < k - 1)
            out[:, j, :] = -hj
        return out

    def observed_information_eta(self, eta, y, sample_weight=None, scale=1.0):
        """Per-row observed information ``-d^2 l_i / d eta_i^2`` (n, k, k): the same as
        :meth:`information_eta` unless ``expected_information`` (then by autograd)."""
        if not self.expected_information:
            return self.information_eta(eta, y, sample_weight, scale)
        return AdditiveFamily.information_eta(self, eta, y, sample_weight, scale)

    def information(self, G, eta, y, sample_weight=None, scale=1.0, observed=False):
        """``G' W G`` with ``W`` the Fisher information in eta (``observed``: the observed)."""
        W = (self.observed_information_eta if observed else self.information_eta)(
            eta, y, sample_weight, scale)
        if G.shape[1] == 1 and bool((W >= 0).all()):
            # a symmetric rank-p update on the square roots: half the flops of g' (W g)
            gw = (G[:, 0, :] * W[:, 0, 0, None].sqrt()).numpy()
            return torch.from_numpy(_syrk(gw))
        if G.shape[1] == 1:
            g = G[:, 0, :]
            return g.T @ (W[:, 0, 0, None] * g)
        return torch.einsum("nkp,nkl,nlq->pq", G, W, G)

    def score_obs(self, G, eta, y, sample_weight=None, scale=1.0):
        return torch.einsum("nk,nkp->np", self.score_eta(eta, y, sample_weight, scale), G)

    def working_residual(self, eta, y):
        """``W^-1 u`` per row, shape (n, k): the residual on the link scale (IRLS's ``z - eta``).

        ``u = d l / d eta`` and ``W`` the information in eta, both at unit scale and weight;
        for one linear predictor ``(y - mu) / (d mu / d eta)``, for several the solution of
        ``(d mu / d eta) v = y - mu``. Its conditional covariance is ``scale * W^-1``.
        """
        eta = eta.detach()
        u = self.score_eta(eta, y)
        W = self.information_eta(eta, y)
        if W.shape[1] == 1:
            return u / W[:, 0, :]
        return torch.linalg.solve(W, u[:, :, None])[:, :, 0]

    def mean_jacobian(self, eta):
        """``d mu / d eta`` per row, shape (n, m, k): ``m`` mean components (classes), ``k``
        linear predictors."""
        def one(e):
            return self.mean(e[None]).reshape(-1)

        return torch.func.vmap(torch.func.jacrev(one))(eta.detach())

    # ----------------------------------------------------------------- residuals
    def _deviance_terms(self, y, mu):
        """Unit deviances ``d(y_i, mu_i) >= 0`` (numpy, shape (n,))."""
        raise NotImplementedError

    def _pearson_terms(self, y, mu):
        """``(y - mu)^2 / V(mu)`` per row and output (numpy, shape of mu)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return (y - mu) ** 2 / self.variance(mu)

    def residuals(self, eta, y, sample_weight=None):
        y = _np(y)
        mu = _np(self.mean(eta))
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = np.sign(y - mu) * np.sqrt(np.maximum(self._deviance_terms(y, mu), 0.0))
            pear = (y - mu) / np.sqrt(self.variance(mu))
        return dev, pear

    def pearson_chi2(self, eta, y, sample_weight=None, by_output=False):
        y = _np(y)
        mu = _np(self.mean(eta))
        terms = self._pearson_terms(y, mu)
        w = None if sample_weight is None else _np(sample_weight)
        if terms.ndim == 2 and by_output:
            return (terms if w is None else w[:, None] * terms).sum(0)
        if terms.ndim == 2:
            terms = terms.sum(1)
        return float(terms.sum() if w is None else (w * terms).sum())


class Gaussian(AdditiveFamily):
    """Normal responses, identity link; the dispersion (variance) is estimated after the fit.

    Several target columns are several outputs (one linear predictor each).
    """

    name, link = "gaussian", "identity"
    has_scale = newton = location_scale = True
    canonical = True

    def nll(self, eta, y):
        r = y - _squeeze(eta)
        return 0.5 * (r * r if r.ndim == 1 else (r * r).sum(1))

    def mean(self, eta):
        return _squeeze(eta)

    def variance(self, mu):
        return mu * 0 + 1.0

    def initial_intercept(self, y, sample_weight):
        return np.atleast_1d(_wmean(y, sample_weight))

    def loglik_obs(self, eta, y, scale=1.0):
        r = y - _squeeze(eta)
        if torch.is_tensor(scale) and scale.numel() > 1:  # one dispersion per output column
            s = scale.to(r.dtype)
            return (-0.5 * r * r / s - 0.5 * torch.log(2 * math.pi * s)).sum(1)
        scale = float(scale)
        r2 = r * r if r.ndim == 1 else (r * r).sum(1)
        k = 1 if r.ndim == 1 else r.shape[1]
        return -0.5 * r2 / scale - 0.5 * k * math.log(2 * math.pi * scale)

    def _inv_scale(self, scale, like):
        s = torch.as_tensor(scale, dtype=like.dtype)
        return 1.0 / s

    def score_eta(self, eta, y, sample_weight=None, scale=1.0):
        u = (_as_2d(y) - _as_2d(self.mean(eta.detach()))) * self._inv_scale(scale, eta)
        return u if sample_weight is None else u * sample_weight[:, None]

    def information_eta(self, eta, y, sample_weight=None, scale=1.0):
        n, k = eta.shape
        var = torch.ones(n, k, dtype=eta.dtype) * self._inv_scale(scale, eta)
        W = torch.diag_embed(var)
        return W if sample_weight is None else W * sample_weight[:, None, None]

    def _deviance_terms(self, y, mu):
        return (y - mu) ** 2

    def llf_scale(self, pearson_chi2, nobs, n_outputs, scale):
        # the maximum-likelihood variance RSS / n, as statsmodels' OLS and GLM(Gaussian) llf;
        # per output for separate regressions (an array of per-column RSS)
        chi2 = np.asarray(pearson_chi2, dtype=np.float64)
        if chi2.ndim == 1:
            return torch.as_tensor(chi2 / nobs)
        return float(chi2) / (nobs * n_outputs)

    def simulate(self, mu, scale, rng):
        return mu + np.sqrt(scale) * rng.standard_normal(mu.shape)

    def response_variance(self, eta, scale=1.0):
        """``Var(y | x)``, the dispersion at every row (numpy): prediction intervals."""
        return np.broadcast_to(np.asarray(scale, dtype=np.float64), eta.shape).copy()


class Poisson(AdditiveFamily):
    """Counts with a log link: ``y ~ Poisson(exp(eta))``."""

    name, link = "poisson", "log"
    newton = nonnegative_target = True
    canonical = True

    def validate(self, y):
        if np.any(y < 0):
            raise ValueError(
                "family='poisson' needs counts y >= 0; got negative values. Use "
                "family='gaussian' for signed targets."
            )

    def nll(self, eta, y):
        eta = _squeeze(eta)
        out = torch.exp(eta) - y * eta
        return out if out.ndim == 1 else out.sum(1)

    def mean(self, eta):
        return torch.exp(_squeeze(eta))

    def variance(self, mu):
        return mu

    def initial_intercept(self, y, sample_weight):
        return np.log(np.maximum(np.atleast_1d(_wmean(y, sample_weight)), 1e-10))

    def loglik_obs(self, eta, y, scale=1.0):
        eta = _squeeze(eta)
        out = y * eta - torch.exp(eta) - torch.lgamma(y + 1)
        return out if out.ndim == 1 else out.sum(1)

    def score_eta(self, eta, y, sample_weight=None, scale=1.0):
        u = _as_2d(y) - _as_2d(self.mean(eta.detach()))
        return u if sample_weight is None else u * sample_weight[:, None]

    def information_eta(self, eta, y, sample_weight=None, scale=1.0):
        W = torch.diag_embed(_as_2d(self.mean(eta.detach())))
        return W if sample_weight is None else W * sample_weight[:, None, None]

    def _deviance_terms(self, y, mu):
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu)
        return 2 * term

    def simulate(self, mu, scale, rng):
        return rng.poisson(mu).astype(np.float64)


class Bernoulli(AdditiveFamily):
    """Two classes coded 0/1; one logit (the second class against the first)."""

    name, link = "bernoulli", "logit"
    newton = classification = True
    canonical = True

    def n_outputs(self, y):
        return 1

    def nll(self, eta, y):
        return F.binary_cross_entropy_with_logits(eta[:, 0], y, reduction="none")

    def loss(self, eta, y, sample_weight=None):
        if sample_weight is None:  # one fused kernel on the hot path
            return F.binary_cross_entropy_with_logits(eta[:, 0], y)
        return super().loss(eta, y, sample_weight)

    def mean(self, eta):
        return torch.sigmoid(eta[:, 0])

    def variance(self, mu):
        return mu * (1 - mu)

    def initial_intercept(self, y, sample_weight):
        p = np.clip(_wmean(y, sample_weight), 1e-6, 1 - 1e-6)
        return np.array([math.log(p / (1 - p))])

    def loglik_obs(self, eta, y, scale=1.0):
        return -self.nll(eta, y)

    def score_eta(self, eta, y, sample_weight=None, scale=1.0):
        u = _as_2d(y) - _as_2d(self.mean(eta.detach()))
        return u if sample_weight is None else u * sample_weight[:, None]

    def information_eta(self, eta, y, sample_weight=None, scale=1.0):
        mu = _as_2d(self.mean(eta.detach()))
        W = torch.diag_embed(mu * (1 - mu))
        return W if sample_weight is None else W * sample_weight[:, None, None]

    def _deviance_terms(self, y, mu):
        with np.errstate(divide="ignore"):
            return -2 * np.where(y > 0, np.log(mu), np.log1p(-mu))

    def simulate(self, mu, scale, rng):
        return (rng.random(mu.shape[0]) < mu).astype(np.float64)


class Categorical(AdditiveFamily):
    """K classes coded 0..K-1; K-1 logits against the first class, as statsmodels' MNLogit.

    With no hidden layer the model is identifiable exactly like a multinomial logit with the first
    class as reference; the full logit vector is ``[0, eta_1, ..., eta_{K-1}]``.

    Parameters
    ----------
    n_classes : int
    """

    name, link = "categorical", "multinomial logit"
    newton = classification = True
    canonical = True

    def __init__(self, n_classes):
        self.n_classes = n_classes

    def n_outputs(self, y):
        return self.n_classes - 1

    @staticmethod
    def logits(eta):
        """The K logits ``[0, eta_1, ..., eta_{K-1}]``, shape (n, K)."""
        return torch.cat([torch.zeros_like(eta[:, :1]), eta], dim=1)

    def nll(self, eta, y):
        return F.cross_entropy(self.logits(eta), y, reduction="none")

    def loss(self, eta, y, sample_weight=None):
        if sample_weight is None:
            return F.cross_entropy(self.logits(eta), y)
        return super().loss(eta, y, sample_weight)

    def mean(self, eta):
        return torch.softmax(self.logits(eta), dim=1)

    def variance(self, mu):
        """Per-class Bernoulli variance ``mu (1 - mu)`` of the class indicators."""
        return mu * (1 - mu)

    def initial_intercept(self, y, sample_weight):
        counts = np.bincount(y, weights=sample_weight, minlength=self.n_classes)
        p = np.maximum(counts / counts.sum(), 1e-6)
        return np.log(p[1:] / p[0])

    def loglik_obs(self, eta, y, scale=1.0):
        return -self.nll(eta, y)

    def _onehot(self, y, like):
        return F.one_hot(y.long(), self.n_classes).to(like.dtype)

    def score_eta(self, eta, y, sample_weight=None, scale=1.0):
        eta = eta.detach()
        u = self._onehot(y, eta)[:, 1:] - self.mean(eta)[:, 1:]
        return u if sample_weight is None else u * sample_weight[:, None]

    def information_eta(self, eta, y, sample_weight=None, scale=1.0):
        p = self.mean(eta.detach())[:, 1:]
        W = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        return W if sample_weight is None else W * sample_weight[:, None, None]

    def residuals(self, eta, y, sample_weight=None):
        """Deviance ``sqrt(-2 log p_{y_i})`` and Pearson residuals summed in quadrature over
        the class indicators (both >= 0: several classes have no sign)."""
        mu = _np(self.mean(eta))
        onehot = np.eye(mu.shape[1])[_np(y).astype(int)]
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = np.sqrt(-2 * np.log(np.sum(onehot * mu, 1)))
            pear = np.sqrt(np.sum((onehot - mu) ** 2 / (mu * (1 - mu)), 1))
        return dev, pear

    def pearson_chi2(self, eta, y, sample_weight=None, by_output=False):
        pear = self.residuals(eta, y)[1]
        w = 1.0 if sample_weight is None else _np(sample_weight)
        return float(np.sum(w * pear**2))

    def simulate(self, mu, scale, rng):
        u = rng.random(mu.shape[0])[:, None]
        return (u > np.cumsum(mu, 1)).sum(1).clip(0, mu.shape[1] - 1).astype(np.int64)


#: the canonical-link GLM families with one linear predictor, by name (the registry of every
#: regression family, these and those of :mod:`neurostat.engine.glm_families`, is
#: ``neurostat.engine.glm_families.REGRESSION_FAMILIES``)
GLM_FAMILIES = {"bernoulli": Bernoulli, "gaussian": Gaussian, "poisson": Poisson}


def classification_family(n_classes):
    """:class:`Bernoulli` for two classes, :class:`Categorical` for more."""
    return Bernoulli() if n_classes == 2 else Categorical(n_classes)
