"""The categorical family (K classes, multinomial logit against the first class) and the
choice of a classifier's family by its number of classes."""

import numpy as np
import torch
from torch.nn import functional as F

from .families import AdditiveFamily, Bernoulli, _np


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




def classification_family(n_classes):
    """:class:`Bernoulli` for two classes, :class:`Categorical` for more."""
    return Bernoulli() if n_classes == 2 else Categorical(n_classes)
