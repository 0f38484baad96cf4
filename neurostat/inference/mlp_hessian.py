"""Closed-form curvature of a one-hidden-layer MLP (the second-order term of its Hessian).

For ``eta_j = sum_h V_jh s(A_h x + a_h) + c_j`` the only second derivatives of eta with respect
to the parameters are within a hidden unit's input weights (``V_jh s''(z_h) x x'``) and between
them and its output weight (``s'(z_h) x``). Summing them against ``u = dl/deta`` costs
``n * H * (d + 1)^2`` flops, against ``n * p^2`` for autograd's dense Hessian.
"""

import torch

from ..networks import ACTIVATIONS, MLP


def _activation_derivatives(name, z):
    act = ACTIVATIONS[name]
    z = z.detach().requires_grad_(True)
    (d1,) = torch.autograd.grad(act(z).sum(), z, create_graph=True)
    if d1.requires_grad:
        (d2,) = torch.autograd.grad(d1.sum(), z)
    else:  # piecewise linear (relu, identity): no curvature
        d2 = torch.zeros_like(z)
    return d1.detach(), d2


def mlp_curvature(lik, theta, u, rows):
    """``sum_i u_i' d^2 eta_i / d theta^2`` for ``lik.module`` an MLP with one hidden layer.

    Returns None for any other module (the caller then falls back to autograd).
    """
    module = lik.module
    if type(module) is not MLP or module.n_hidden_layers != 1 or lik.fixed:
        return None
    sl = lik.slices()
    if set(sl) != {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"}:
        return None
    p = lik.n_params
    params = lik.unflatten(theta)
    A, a = params["layers.0.weight"], params["layers.0.bias"]
    V = params["layers.1.weight"]
    X = lik.X[rows]
    n, d = X.shape
    H = A.shape[0]
    k = V.shape[0]
    z = X @ A.T + a
    s1, s2 = _activation_derivatives(module.activation, z)
    Z = torch.cat([X, torch.ones(n, 1, dtype=X.dtype)], 1)  # (n, d+1)
    u = u.detach()
    c = (u @ V) * s2  # (n, H): sum_j u_ij V_jh s''(z_ih)
    R = torch.zeros(p, p, dtype=torch.float64)
    # input-weight blocks, (H, d+1, d+1)
    Q = torch.einsum("nh,na,nb->hab", c, Z, Z)
    # index of (unit h, input m) and of the unit's bias in theta
    wA, wa = sl["layers.0.weight"].start, sl["layers.0.bias"].start
    idx = torch.empty(H, d + 1, dtype=torch.long)
    idx[:, :d] = wA + torch.arange(H)[:, None] * d + torch.arange(d)[None, :]
    idx[:, d] = wa + torch.arange(H)
    rr = idx[:, :, None].expand(H, d + 1, d + 1)
    cc = idx[:, None, :].expand(H, d + 1, d + 1)
    R[rr.reshape(-1), cc.reshape(-1)] = Q.reshape(-1)
    # cross blocks between output weight V_jh and unit h's input weights: sum_i u_ij s'(z_ih) z_i
    M = torch.einsum("nj,nh,na->jha", u, s1, Z)  # (k, H, d+1)
    wV = sl["layers.1.weight"].start
    vidx = wV + torch.arange(k)[:, None] * H + torch.arange(H)[None, :]  # (k, H)
    ri = vidx[:, :, None].expand(k, H, d + 1).reshape(-1)
    ci = idx[None, :, :].expand(k, H, d + 1).reshape(-1)
    R[ri, ci] = M.reshape(-1)
    R[ci, ri] = M.reshape(-1)
    return R


def mlp_jacobian(lik, theta, X):
    """Per-row Jacobian ``d eta_i / d theta`` (n, k, p) of an MLP with at most one hidden
    layer in closed form (None for other modules)."""
    module = lik.module
    if type(module) is not MLP or module.n_hidden_layers > 1 or lik.fixed:
        return None
    params = lik.unflatten(theta)
    sl = lik.slices()
    n = X.shape[0]
    last = module.n_hidden_layers
    k = params[f"layers.{last}.bias"].shape[0]
    G = torch.zeros(n, k, lik.n_params, dtype=torch.float64)
    ones = torch.ones(n, dtype=torch.float64)
    if last == 0:
        hidden = X
    else:
        A, a = params["layers.0.weight"], params["layers.0.bias"]
        V = params["layers.1.weight"]
        z = X @ A.T + a
        act = ACTIVATIONS[module.activation]
        hidden = act(z).detach()
        s1, _ = _activation_derivatives(module.activation, z)
        d = X.shape[1]
        H = A.shape[0]
        for j in range(k):
            gz = V[j][None, :] * s1  # (n, H): d eta_j / d z_h
            wa = sl["layers.0.weight"]
            G[:, j, wa] = (gz[:, :, None] * X[:, None, :]).reshape(n, H * d)
            G[:, j, sl["layers.0.bias"]] = gz
    w, b = sl[f"layers.{last}.weight"], sl[f"layers.{last}.bias"]
    m = hidden.shape[1]
    for j in range(k):
        G[:, j, w.start + j * m:w.start + (j + 1) * m] = hidden
        G[:, j, b.start + j] = ones
    return G
