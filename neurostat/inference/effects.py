"""Covariate effects of a net and their delta-method covariances.

A net's weights are not identifiable (hidden units can be permuted, sign-flipped, rescaled
through the activation), so its ``params`` are *covariate effects*: the average partial
derivative of the linear predictor with respect to each input,
``beta_j = mean_i d eta(x_i) / d x_ij``, and an intercept ``mean_i eta(x_i) - beta' xbar``. For a
network without hidden layer, eta is linear and these are exactly the GLM coefficients.
Standard errors come from the delta method: ``cov(f) = D cov(theta) D'`` with
``D = d f / d theta``.
"""

import numpy as np
import torch
from torch.func import jacrev

from .closed_forms import mlp_effects


def _row_blocks(n, n_out, width):
    # jacrev over theta carries one cotangent per output through every hidden activation
    block = max(64, (1 << 22) // max(1, n_out * width))
    return [slice(s, min(n, s + block)) for s in range(0, n, block)]


def average_derivatives(lik, theta, X, transform=None, intercept=True, sample_weight=None):
    """Average over rows of ``d g(x_i) / d x_i`` and its Jacobian with respect to theta.

    ``g = transform(eta)`` (default: eta), shape (n, m). Returns ``(f, D)`` with ``f`` of shape
    (m, d + intercept) flattened output-major and ``D`` its (m * (d + 1), p) Jacobian. The
    intercept term is ``mean g - sum_j f_j xbar_j``. With frequency weights every average is
    weighted (a weight of 3 counts the row three times).
    """
    transform_is_identity = transform is None
    transform = (lambda e: e) if transform is None else transform
    X = torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float64)
    n, d = X.shape
    w = None if sample_weight is None else torch.as_tensor(
        np.asarray(sample_weight, dtype=np.float64))
    total = float(n) if w is None else float(w.sum())
    xbar = X.mean(0) if w is None else w @ X / total

    def sums(t, Xb, wb):
        def g_sum(x):
            g = transform(lik.eta(t, x))
            return (g if wb is None else wb[:, None] * g).sum(0)

        J = jacrev(g_sum)(Xb)  # (m, nb, d)
        return torch.cat([g_sum(Xb)[:, None], J.sum(1)], 1).reshape(-1)

    f = None
    D = None
    closed = mlp_effects(lik, theta, X) if transform_is_identity and w is None else None
    if closed is not None:
        f, D = closed
        f, D = f.reshape(-1) * n, D.reshape(f.numel(), -1) * n
    width = max([d] + [getattr(m, "out_features", 0) for m in lik.module.modules()])
    n_out = lik.module.output_layer.out_features * (d + 1)
    for r in _row_blocks(n, n_out, width) if closed is None else []:
        wb = None if w is None else w[r]
        fb = sums(theta, X[r], wb).detach()
        Db = jacrev(sums)(theta, X[r], wb).detach()
        f = fb if f is None else f + fb
        D = Db if D is None else D + Db
    m = f.numel() // (d + 1)
    f, D = f.view(m, d + 1) / total, D.view(m, d + 1, -1) / total
    # intercept = mean g - beta' xbar (linear in the sums above)
    f[:, 0] = f[:, 0] - f[:, 1:] @ xbar
    D[:, 0, :] = D[:, 0, :] - torch.einsum("mdp,d->mp", D[:, 1:, :], xbar)
    if not intercept:
        f, D = f[:, 1:], D[:, 1:, :]
    return f.reshape(-1).numpy(), D.reshape(f.numel(), -1).numpy()


def delta_cov(D, cov_theta):
    """``D cov D'``; entries of theta fixed at zero (NaN covariance rows) are skipped."""
    ok = ~np.isnan(np.diag(cov_theta))
    c = D[:, ok] @ cov_theta[np.ix_(ok, ok)] @ D[:, ok].T
    c = 0.5 * (c + c.T)
    # a param that is nothing but a fixed (L1-zeroed) weight has no standard error
    fixed = ~np.any(D[:, ok] != 0, axis=1) & np.any(D[:, ~ok] != 0, axis=1)
    c[fixed, :] = np.nan
    c[:, fixed] = np.nan
    return c


def effect_params(model, X=None):
    """``(params, D)`` of a :class:`~neurostat.inference.model.StatisticalModel`: the
    coefficients for a GLM (``D`` a selection of theta), else average-derivative effects at X
    (default: the data)."""
    lik, layout = model.likelihood, model.layout
    if layout.is_glm:
        idx = layout.linear_index
        D = np.zeros((idx.size, lik.n_params))
        D[np.arange(idx.size), idx] = 1.0
        return _with_ancillary(model, lik.theta.numpy()[idx].copy(), D)
    if X is None and getattr(lik, "chunked", False):  # data in chunks: reduced over them
        return lik.average_derivatives(intercept=layout.has_intercept)
    X = lik.X.numpy() if X is None else np.asarray(X)
    # the model's weights average its own rows
    w = None if lik.w is None or len(X) != lik.n_rows else lik.w.numpy()
    k = layout.n_outputs
    outputs = None if not layout.ancillary else (lambda e: e[:, :k])
    values, D = average_derivatives(lik, lik.theta, X, outputs, intercept=layout.has_intercept,
                                    sample_weight=w)
    return _with_ancillary(model, values, D)


def _with_ancillary(model, values, D):
    """``(values, D)`` followed by the family's ancillary parameters (their delta method)."""
    anc = model.layout.ancillary
    if not anc:
        return values, D
    idx = np.array([i for _, i in anc])
    v, dv = model.family.ancillary_values(model.likelihood.theta.numpy()[idx])
    Da = np.zeros((idx.size, D.shape[1]))
    Da[np.arange(idx.size), idx] = dv
    return np.concatenate([values, v]), np.vstack([D, Da])
