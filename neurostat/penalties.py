"""Penalties on the weights (never the biases): ridge, lasso and the elastic net.

The penalized objective (DESIGN.md) is

    mean_i w_i nll_i + alpha * (l1_ratio * ||W||_1 + 0.5 * (1 - l1_ratio) * ||W||_2^2),

the elastic net of scikit-learn's ``ElasticNet`` when the network has no hidden layer. The smooth
(ridge) part enters the loss that is differentiated; the L1 part is applied by a proximal step
(soft thresholding) after each stochastic step, so coefficients reach exact zeros, or by the
split-variable bound-constrained L-BFGS of :mod:`neurostat.training`.
"""

import torch


class ElasticNetPenalty:
    """``alpha * (l1_ratio * ||W||_1 + 0.5 * (1 - l1_ratio) * ||W||^2)`` on a list of weights.

    ``scales`` (optional, one tensor per weight, broadcastable to it) multiply each weight inside
    the penalty; the L-BFGS solver uses them to penalize the original weights while optimizing a
    network fitted to standardized inputs.
    """

    def __init__(self, alpha=0.0, l1_ratio=0.0):
        self.alpha = float(alpha)
        self.l1_ratio = float(l1_ratio)

    @property
    def l2(self):
        return self.alpha * (1.0 - self.l1_ratio)

    @property
    def l1(self):
        return self.alpha * self.l1_ratio

    def smooth(self, weights, scales=None):
        """The ridge part ``0.5 * l2 * sum (s * W)^2`` as a differentiable tensor (0 if absent)."""
        if self.l2 == 0:
            return 0.0
        if scales is None:
            total = sum((w * w).sum() for w in weights)
        else:
            total = sum(((w * s) ** 2).sum() for w, s in zip(weights, scales))
        return 0.5 * self.l2 * total

    def value(self, weights):
        """The full penalty (a float tensor)."""
        with torch.no_grad():
            total = self.smooth(weights)
            if self.l1 > 0:
                total = total + self.l1 * sum(w.abs().sum() for w in weights)
            return torch.as_tensor(total)

    @torch.no_grad()
    def prox_(self, weights, step):
        """Soft-threshold each weight in place by ``step * l1``: the proximal map of the L1 part."""
        if self.l1 == 0:
            return
        thresh = step * self.l1
        for w in weights:
            w.copy_(torch.sign(w) * torch.clamp(w.abs() - thresh, min=0.0))
