"""Families: the output layer and negative log-likelihood of a net.

A family turns the network's linear predictor ``eta`` into a mean (inverse link), scores it by a
negative log-likelihood, validates and encodes the target, and gives a good starting intercept
(the link of the weighted mean, so a fit starts from the intercept-only model).

Training uses the per-observation loss ``nll`` *without* constants that do not depend on the
parameters (and, for the gaussian family, at unit scale: ``0.5 * (y - mu)^2``, as in DESIGN.md);
``loglik`` gives the full log-likelihood with its constants for inference.
"""

import math

import numpy as np
import torch
from torch.nn import functional as F


class Family:
    """Base class. Subclasses set ``name``, ``link`` and implement the methods below."""

    name = None
    link = None
    has_scale = False  # True when a dispersion is estimated after the fit (gaussian)

    def n_outputs(self, y):
        """Number of linear predictors the network must output for encoded target ``y``."""
        return 1 if y.ndim == 1 else y.shape[1]

    def validate(self, y):
        """Raise ValueError when ``y`` (already numeric, finite) is outside the family's support."""

    def nll(self, eta, y):
        """Per-observation negative log-likelihood (up to constants), shape (n,)."""
        raise NotImplementedError

    def loss(self, eta, y, sample_weight=None):
        """Weighted mean of :meth:`nll`: ``sum_i w_i nll_i / sum_i w_i``."""
        nll = self.nll(eta, y)
        if sample_weight is None:
            return nll.mean()
        return (sample_weight * nll).sum() / sample_weight.sum()

    def mean(self, eta):
        """Inverse link: the mean of y (probabilities for classification)."""
        raise NotImplementedError

    def initial_intercept(self, y, sample_weight):
        """Intercept of the intercept-only model (numpy, one value per output)."""
        raise NotImplementedError

    def loglik(self, eta, y, scale=1.0):
        """Per-observation log-likelihood with all constants (float64 inference)."""
        raise NotImplementedError


def _wmean(y, w):
    return np.average(y, axis=0, weights=w)


def _squeeze(eta):
    return eta[:, 0] if eta.ndim == 2 and eta.shape[1] == 1 else eta


class Gaussian(Family):
    name, link, has_scale = "gaussian", "identity", True

    def nll(self, eta, y):
        r = y - _squeeze(eta)
        return 0.5 * (r * r if r.ndim == 1 else (r * r).sum(1))

    def mean(self, eta):
        return _squeeze(eta)

    def initial_intercept(self, y, sample_weight):
        return np.atleast_1d(_wmean(y, sample_weight))

    def loglik(self, eta, y, scale=1.0):
        r = y - _squeeze(eta)
        if torch.is_tensor(scale) and scale.numel() > 1:  # one dispersion per output column
            s = scale.to(r.dtype)
            return (-0.5 * r * r / s - 0.5 * torch.log(2 * math.pi * s)).sum(1)
        scale = float(scale)
        r2 = r * r if r.ndim == 1 else (r * r).sum(1)
        k = 1 if r.ndim == 1 else r.shape[1]
        return -0.5 * r2 / scale - 0.5 * k * math.log(2 * math.pi * scale)


class Poisson(Family):
    name, link = "poisson", "log"

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

    def initial_intercept(self, y, sample_weight):
        return np.log(np.maximum(np.atleast_1d(_wmean(y, sample_weight)), 1e-10))

    def loglik(self, eta, y, scale=1.0):
        eta = _squeeze(eta)
        out = y * eta - torch.exp(eta) - torch.lgamma(y + 1)
        return out if out.ndim == 1 else out.sum(1)


class Bernoulli(Family):
    """Two classes coded 0/1; one logit (the second class against the first)."""

    name, link = "bernoulli", "logit"

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

    def initial_intercept(self, y, sample_weight):
        p = np.clip(_wmean(y, sample_weight), 1e-6, 1 - 1e-6)
        return np.array([math.log(p / (1 - p))])

    def loglik(self, eta, y, scale=1.0):
        return -self.nll(eta, y)


class Categorical(Family):
    """K classes coded 0..K-1; K-1 logits against the first class, as statsmodels' MNLogit.

    With no hidden layer the model is identifiable exactly like a multinomial logit with the first
    class as reference; the full logit vector is ``[0, eta_1, ..., eta_{K-1}]``.
    """

    name, link = "categorical", "multinomial logit"

    def __init__(self, n_classes):
        self.n_classes = n_classes

    def n_outputs(self, y):
        return self.n_classes - 1

    @staticmethod
    def logits(eta):
        return torch.cat([torch.zeros_like(eta[:, :1]), eta], dim=1)

    def nll(self, eta, y):
        return F.cross_entropy(self.logits(eta), y, reduction="none")

    def loss(self, eta, y, sample_weight=None):
        if sample_weight is None:
            return F.cross_entropy(self.logits(eta), y)
        return super().loss(eta, y, sample_weight)

    def mean(self, eta):
        return torch.softmax(self.logits(eta), dim=1)

    def initial_intercept(self, y, sample_weight):
        counts = np.bincount(y, weights=sample_weight, minlength=self.n_classes)
        p = np.maximum(counts / counts.sum(), 1e-6)
        return np.log(p[1:] / p[0])

    def loglik(self, eta, y, scale=1.0):
        return -self.nll(eta, y)


REGRESSION_FAMILIES = {"gaussian": Gaussian, "poisson": Poisson}


def classification_family(n_classes):
    return Bernoulli() if n_classes == 2 else Categorical(n_classes)
