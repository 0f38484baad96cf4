"""Curvature for nets too large for a dense Hessian: the last-layer Laplace approximation.

For a network of more than :data:`~neurostat.inference.covariance.MAX_HESSIAN_PARAMS`
parameters, a ``p x p`` Hessian does not fit (a million parameters would need 8 TB). The
output layer's parameters, given the hidden features ``phi(x)`` the network has learned, are a
GLM's: their information is the family's ``G' W G`` with the design ``G = [phi(x), 1]``
(exact: eta is linear in them), and the penalty adds ``N alpha`` on the weights. Their
covariance (nonrobust: the penalized sandwich; HC0/HC1: the robust one), the effective df of
the output layer ``trace(F A^-1)`` and the predictions' standard errors follow from it at a cost
of ``O(n q^2)`` for ``q`` output-layer parameters - memory ``q^2`` floats, never ``p^2``
(laplace-torch's "last-layer" approximation; Kristiadi et al. 2020).

What this leaves out: the uncertainty of the hidden layers. The effects and per-input tests of
a net do not use this covariance (they are cross-fitted, :mod:`neurostat.inference.debiased`);
it serves ``get_prediction``, ``partial_dependence`` and the effective df.
"""

import numpy as np
import torch

from .covariance import expand, sandwich, symmetric_pinv
from .statistics import FitStatistics, pearson_chi2


def output_layer_index(model):
    """Indices in theta of the output layer's estimated parameters: weights then biases."""
    lik, layout = model.likelihood, model.layout
    name_of = {id(p): k for k, p in lik.module.named_parameters()}
    layer = lik.module.output_layer
    idx = [np.arange(layout.slices[name_of[id(p)]].start, layout.slices[name_of[id(p)]].stop)
           for p in (layer.weight, layer.bias) if name_of[id(p)] in layout.slices]
    return np.concatenate(idx)


def features(lik, X=None):
    """The output layer's input (the last hidden features), float64 (n, h)."""
    X = lik.X if X is None else X
    captured = []
    hook = lik.module.output_layer.register_forward_pre_hook(
        lambda mod, args: captured.append(args[0].detach()))
    try:
        with torch.no_grad():
            lik.eta(lik.theta, X)
    finally:
        hook.remove()
    return captured[0]


def design(model, X=None):
    """``d eta / d theta`` restricted to the output layer: (n, k, q) from the features."""
    lik = model.likelihood
    Phi = features(lik, X)
    layer = lik.module.output_layer
    k, h = layer.weight.shape
    name_of = {id(p): n for n, p in lik.module.named_parameters()}
    has_w = name_of[id(layer.weight)] in model.layout.slices
    has_b = name_of[id(layer.bias)] in model.layout.slices
    q = k * h * has_w + k * has_b
    G = torch.zeros(Phi.shape[0], k, q, dtype=torch.float64)
    for a in range(k):
        if has_w:
            G[:, a, a * h:(a + 1) * h] = Phi
        if has_b:
            G[:, a, k * h * has_w + a] = 1.0
    return G


def last_layer_statistics(model, cov_type):
    """:class:`FitStatistics` with the output layer's covariance in ``cov_subspace``."""
    lik = model.likelihood
    idx = output_layer_index(model)
    G = design(model)
    with torch.no_grad():
        eta = lik.eta(lik.theta)
    F = lik.family.information(G, eta, lik.y, lik.w).numpy()
    pen = lik.nobs * model.penalty.l2 * lik.penalized_mask().numpy()[idx].astype(np.float64)
    A = F + np.diag(pen)
    Ainv, info = symmetric_pinv(A, "output layer's penalized information")
    penalized = bool(np.any(pen > 0))
    edf = float(np.sum(F * Ainv)) if penalized else float(info["rank"])
    scale = 1.0
    if lik.family.has_scale:
        k = lik.y.shape[1] if lik.y.ndim == 2 else 1
        scale = pearson_chi2(lik, lik.theta) / max(lik.nobs * k - edf, 1e-300)
    if cov_type == "nonrobust":
        cov = (sandwich(Ainv, F) if penalized else Ainv) * scale
        method = "last-layer Laplace: the output layer's inverse information given the features"
    else:
        S = lik.family.score_obs(G, eta, lik.y, lik.w).numpy() / scale
        if cov_type == "cluster":  # scores summed within clusters
            codes = np.unique(np.asarray(model.groups), return_inverse=True)[1].reshape(-1)
            Sg = np.zeros((codes.max() + 1, S.shape[1]))
            np.add.at(Sg, codes, S)
            meat = Sg.T @ Sg
        else:
            if lik.w is not None:
                S = S / np.sqrt(np.where(lik.w.numpy() > 0, lik.w.numpy(), 1.0))[:, None]
            meat = S.T @ S
        cov = sandwich(Ainv * scale, meat)
        method = f"last-layer Laplace: the output layer's robust sandwich ({cov_type})"
    return FitStatistics(cov_theta=None, edf=edf, scale=scale, method=method,
                         penalized=penalized, hess_info=info, cov_subspace=(idx, cov))


def subspace_covariance(stats, n_params):
    """The full (p, p) covariance of a subspace statistic, NaN outside it (small nets only)."""
    idx, cov = stats.cov_subspace
    active = np.zeros(n_params, dtype=bool)
    active[idx] = True
    return expand(cov, active)
