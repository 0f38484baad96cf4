"""Penalties on the weights (never the biases): ridge, lasso and the elastic net.

The penalized objective is

    mean_i w_i nll_i + alpha * (l1_ratio * ||W||_1 + 0.5 * (1 - l1_ratio) * ||W||_2^2),

the elastic net of scikit-learn's ``ElasticNet`` when the network has no hidden layer. The smooth
(ridge) part enters the loss that is differentiated; the L1 part is applied by a proximal step
(soft thresholding) after each stochastic step, so coefficients reach exact zeros, or by the
split-variable bound-constrained L-BFGS of :mod:`neurostat.engine.solvers.lbfgs`.
"""

import torch


class ElasticNetPenalty:
    """``alpha * (l1_ratio * ||W||_1 + 0.5 * (1 - l1_ratio) * ||W||^2)`` on a list of weights.

    ``scales`` (optional, one tensor per weight, broadcastable to it) multiply each weight inside
    the penalty; the L-BFGS solver uses them to penalize the original weights while optimizing a
    network fitted to standardized inputs.
    """

    def __init__(self, alpha=0.0, l1_ratio=0.0, l1_mult=None, l2_mult=None):
        self.alpha = float(alpha)
        self.l1_ratio = float(l1_ratio)
        # optional per-weight multipliers of the L1 and L2 parts (one float per weight tensor)
        self.l1_mult = l1_mult
        self.l2_mult = l2_mult

    def for_standardized_target(self, scale, n_weights):
        """The penalty in the coordinates of a gaussian fit to ``(y - m) / scale``.

        With the output layer rescaled by ``1 / scale`` the objective is ``scale^2`` times the
        loss on the standardized target plus this penalty: hidden weights get ``1 / scale^2``
        on both parts, the output weights ``1 / scale`` on the L1 part and 1 on the L2 part.
        """
        s2 = 1.0 / scale**2
        return ElasticNetPenalty(
            self.alpha, self.l1_ratio,
            l1_mult=[s2] * (n_weights - 1) + [1.0 / scale],
            l2_mult=[s2] * (n_weights - 1) + [1.0],
        )

    def multipliers(self, which, n):
        """The per-weight multipliers of the ``"l1"`` or ``"l2"`` part (1 for each of ``n``)."""
        m = self.l1_mult if which == "l1" else self.l2_mult
        return [1.0] * n if m is None else m

    @property
    def l2(self):
        """Strength of the ridge part, ``alpha * (1 - l1_ratio)``.

        Returns
        -------
        float
            The ``lambda_2`` of ``0.5 * lambda_2 * ||W||^2`` (before any per-weight multiplier).
        """
        return self.alpha * (1.0 - self.l1_ratio)

    @property
    def l1(self):
        """Strength of the lasso part, ``alpha * l1_ratio``.

        Returns
        -------
        float
            The ``lambda_1`` of ``lambda_1 * ||W||_1`` (before any per-weight multiplier).
        """
        return self.alpha * self.l1_ratio

    def smooth(self, weights, scales=None):
        """The ridge part ``0.5 * l2 * sum (s * W)^2`` as a differentiable tensor (0 if absent)."""
        if self.l2 == 0:
            return 0.0
        mult = self.multipliers("l2", len(weights))
        if scales is None:
            total = sum(c * (w * w).sum() for w, c in zip(weights, mult))
        else:
            total = sum(c * ((w * s) ** 2).sum() for w, s, c in zip(weights, scales, mult))
        return 0.5 * self.l2 * total

    def value(self, weights):
        """The full penalty (a float tensor)."""
        with torch.no_grad():
            total = self.smooth(weights)
            if self.l1 > 0:
                mult = self.multipliers("l1", len(weights))
                total = total + self.l1 * sum(c * w.abs().sum() for w, c in zip(weights, mult))
            return torch.as_tensor(total)

    @torch.no_grad()
    def prox_(self, weights, step, optimizer=None):
        """Soft-threshold each weight in place: the proximal map of the L1 part.

        The threshold is ``step * l1`` for plain SGD. For adaptive solvers, whose step for
        coordinate j is ``step / d_j`` (``d_j`` = root of the running squared-gradient average
        plus epsilon, bias-corrected for Adam), it is ``step * l1 / d_j``: the proximal map in
        the solver's own diagonal metric, so that a zero weight stays at zero exactly when the
        running gradient average is inside the subdifferential ``[-l1, l1]``.
        """
        if self.l1 == 0:
            return
        for w, c in zip(weights, self.multipliers("l1", len(weights))):
            if not w.requires_grad:  # frozen by ``freeze``: kept exactly as copied
                continue
            thresh = step * self.l1 * c / _diagonal_metric(optimizer, w)
            w.copy_(torch.sign(w) * torch.clamp(w.abs() - thresh, min=0.0))


def _diagonal_metric(optimizer, w):
    """Per-coordinate step divisor of an adaptive optimizer for ``w`` (1 for SGD)."""
    if optimizer is None or isinstance(optimizer, torch.optim.SGD):
        return 1.0
    state = optimizer.state.get(w)
    if not state:
        return 1.0
    group = next(g for g in optimizer.param_groups if any(p is w for p in g["params"]))
    eps = group["eps"]
    if "exp_avg_sq" in state:  # Adam, AdamW
        t = float(state["step"])
        v = state["exp_avg_sq"] / (1 - group["betas"][1] ** t)
        return v.sqrt() + eps
    if "square_avg" in state:  # RMSprop
        return state["square_avg"].sqrt() + eps
    if "sum" in state:  # Adagrad
        return state["sum"].sqrt() + eps
    return 1.0
