"""Closed-form curvature of a one-hidden-layer MLP (the second-order term of its Hessian).

For ``eta_j = sum_h V_jh s(A_h x + a_h) + c_j`` the only second derivatives of eta with respect
to the parameters are within a hidden unit's input weights (``V_jh s''(z_h) x x'``) and between
them and its output weight (``s'(z_h) x``). Summing them against ``u = dl/deta`` costs
``n * H * (d + 1)^2`` flops, against ``n * p^2`` for autograd's dense Hessian.
"""

import torch

from ..engine.networks import ACTIVATIONS, MLP
from ..engine.solvers.newton import weighted_gram


def _activation_derivatives(name, z):
    act = ACTIVATIONS[name]
    z = z.detach().requires_grad_(True)
    (d1,) = torch.autograd.grad(act(z).sum(), z, create_graph=True)
    if d1.requires_grad:
        (d2,) = torch.autograd.grad(d1.sum(), z)
    else:  # piecewise linear (relu, identity): no curvature
        d2 = torch.zeros_like(z)
    return d1.detach(), d2


def glm_information(lik, theta, observed=False):
    """``Z' W Z`` (``Z = [X, 1]``) of a one-output network without hidden layer of an additive
    family: the information :meth:`~neurostat.inference.likelihood.NetLikelihood.curvatures`
    sums over row blocks of Jacobians, here by :func:`weighted_gram` on the inputs themselves
    (no n x p Jacobian is formed; 3x faster at 1e6 x 20). ``observed``: the observed
    information. None for any other model (the caller then sums Jacobian blocks).
    """
    module = lik.module
    if (type(module) is not MLP or module.n_hidden_layers != 0 or lik.fixed
            or not lik.family.additive or lik.X.dim() != 2):
        return None
    d = lik.X.shape[1]
    sl = lik.slices()
    if sl != {"layers.0.weight": slice(0, d), "layers.0.bias": slice(d, d + 1)}:
        return None
    fam = lik.family
    with torch.no_grad():
        eta = lik.eta(theta)
    info = fam.observed_information_eta if observed else fam.information_eta
    W = info(eta, lik.y, lik.w)
    if W.shape[1:] != (1, 1):
        return None
    return weighted_gram(lik.X, W[:, 0, 0].contiguous())


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
    layer in closed form (None for other modules); the ancillary predictors of an MLP that has
    them (``eta = [f(x), a]``) get their unit columns."""
    module = lik.module
    if not isinstance(module, MLP) or module.n_hidden_layers > 1:
        return None
    params = lik.unflatten(theta)
    sl = lik.slices()  # estimated blocks only: frozen ones (freeze, Cox's bias) get no column
    n = X.shape[0]
    last = module.n_hidden_layers
    k = params[f"layers.{last}.bias"].shape[0]
    anc = sl.get("ancillary")
    G = torch.zeros(n, k + (0 if anc is None else anc.stop - anc.start), lik.n_params,
                    dtype=torch.float64)
    if anc is not None:
        for j in range(anc.stop - anc.start):
            G[:, k + j, anc.start + j] = 1.0
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
            if "layers.0.weight" in sl:
                G[:, j, sl["layers.0.weight"]] = (gz[:, :, None] * X[:, None, :]).reshape(n, H * d)
            if "layers.0.bias" in sl:
                G[:, j, sl["layers.0.bias"]] = gz
    w, b = sl.get(f"layers.{last}.weight"), sl.get(f"layers.{last}.bias")
    m = hidden.shape[1]
    for j in range(k):
        if w is not None:
            G[:, j, w.start + j * m:w.start + (j + 1) * m] = hidden
        if b is not None:
            G[:, j, b.start + j] = 1.0
    return G


def mlp_effects(lik, theta, X):
    """Average-derivative effects of a one-hidden-layer MLP and their Jacobian, closed form.

    ``beta_j = sum_h V_jh A_h mean_i s'(z_ih)``, ``mean eta_j = sum_h V_jh mean_i s(z_ih) + c_j``;
    returns ``(f, D)`` with ``f`` (k, d + 1) = [mean eta_j, beta_j] (before the intercept
    adjustment) and ``D`` (k, d + 1, p), or None for other modules.
    """
    module = lik.module
    if type(module) is not MLP or module.n_hidden_layers != 1 or lik.fixed:
        return None
    sl = lik.slices()
    params = lik.unflatten(theta)
    A, a = params["layers.0.weight"].detach(), params["layers.0.bias"].detach()
    V = params["layers.1.weight"].detach()
    n, d = X.shape
    H, k = A.shape[0], V.shape[0]
    z = X @ A.T + a
    s0 = ACTIVATIONS[module.activation](z).detach()
    s1, s2 = _activation_derivatives(module.activation, z)
    c0, c1, c2 = s0.mean(0), s1.mean(0), s2.mean(0)  # (H,)
    S1X = s1.T @ X / n  # (H, d): mean_i s'(z_ih) x_im
    S2X = s2.T @ X / n
    f = torch.empty(k, d + 1, dtype=torch.float64)
    f[:, 0] = V @ c0 + params["layers.1.bias"].detach()
    f[:, 1:] = V @ (A * c1[:, None])
    D = torch.zeros(k, d + 1, lik.n_params, dtype=torch.float64)
    wA, wa, wV, wc = (sl[key] for key in ("layers.0.weight", "layers.0.bias",
                                          "layers.1.weight", "layers.1.bias"))
    eye = torch.eye(d, dtype=torch.float64)
    for j in range(k):
        v = V[j]  # (H,)
        # mean eta_j
        D[j, 0, wV.start + j * H:wV.start + (j + 1) * H] = c0
        D[j, 0, wA] = (v[:, None] * S1X).reshape(-1)
        D[j, 0, wa] = v * c1
        D[j, 0, wc.start + j] = 1.0
        # beta_j[m]: d/dV_jh = A_hm c1_h; d/dA_hm' = V_jh (delta_mm' c1_h + A_hm S2X_hm');
        # d/da_h = V_jh A_hm c2_h
        D[j, 1:, wV.start + j * H:wV.start + (j + 1) * H] = (A * c1[:, None]).T
        dA = v[None, :, None] * (eye[:, None, :] * c1[None, :, None]
                                 + A.T[:, :, None] * S2X[None, :, :])  # (m, H, m')
        D[j, 1:, wA] = dA.reshape(d, H * d)
        D[j, 1:, wa] = (v * c2)[None, :] * A.T
    return f, D
