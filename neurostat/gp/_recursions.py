"""Layer recursions of the NNGP and NTK kernels, shared by the kernels and the wide-net sampler.

Everything here works on torch tensors of any dtype, device and batch shape and is
differentiable in the variances, so the kernels' hyperparameters can be learned.

Conventions (Lee et al. 2018; neural-tangents' ``stax.Dense`` + activation layers):

* input layer:  ``K0(x, x') = b + w * <x, x'> / d``;
* hidden layer: ``K(l) = b + w * E[phi(u) phi(v)]``, ``(u, v) ~ N(0, K(l-1))``;
* NTK (NTK parametrization): ``T0 = K0``,
  ``T(l) = K(l) + w * E[phi'(u) phi'(v)] * T(l-1)``.

With ``depth`` hidden layers the network output has covariance ``K(depth)`` and
tangent kernel ``T(depth)``.
"""

import math
from functools import lru_cache

import numpy as np
import torch

__all__ = [
    "ACTIVATIONS",
    "resolve_activation",
    "gaussian_expectations",
    "input_kernel",
    "layer_kernels",
    "blocked_layer_kernel",
]

_SQRT_PI = math.sqrt(math.pi)
# Quadrature nodes per element: 4 sectors x n_angular angles x n_radial radii, the rule chosen
# per call by the largest input variance (the integrands narrow as sqrt(variance) grows).
# Relative errors against erf's closed forms (value E[phi phi] / derivative E[phi' phi'], over
# correlations in [-0.999, 0.999], variance ratios 1 and 0.1), measured:
#   20 x 20 (variance <= 4):    value 5e-9,  derivative 4e-7  (at variance 4)
#   32 x 32 (variance <= 25):   value 1e-8,  derivative 9e-7  (at 20)
#   40 x 40 (variance > 25):    value 1.5e-7, derivative 2.3e-5 (at 100); 7e-6 / 2e-3 at 1000
# (tests/gp/test_gp_kernels.py::test_quadrature_at_large_variances_matches_erf_closed_forms).
N_RADIAL, N_ANGULAR = 20, 20
_RULES = ((4.0, (20, 20)), (25.0, (32, 32)), (math.inf, (40, 40)))


def _rule_for(*variances):
    """``(n_radial, n_angular)`` for the largest of the given variances (see _RULES)."""
    top = max(float(v.detach().max()) if v.numel() else 0.0 for v in variances)
    return next(rule for bound, rule in _RULES if top <= bound)


def _erf_prime(u):
    return (2.0 / _SQRT_PI) * torch.exp(-u * u)


def _gelu_prime(u):
    cdf = 0.5 * (1.0 + torch.erf(u / math.sqrt(2.0)))
    return cdf + u * torch.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)


# name -> (phi, phi'); "relu", "erf" and "identity" also have closed forms below.
ACTIVATIONS = {
    "relu": (torch.relu, lambda u: (u > 0).to(u.dtype)),
    "erf": (torch.erf, _erf_prime),
    "identity": (lambda u: u, torch.ones_like),
    "tanh": (torch.tanh, lambda u: 1.0 - torch.tanh(u) ** 2),
    "sigmoid": (torch.sigmoid, lambda u: torch.sigmoid(u) * (1.0 - torch.sigmoid(u))),
    "gelu": (torch.nn.functional.gelu, _gelu_prime),
    "softplus": (torch.nn.functional.softplus, torch.sigmoid),
    "elu": (
        torch.nn.functional.elu,
        lambda u: torch.where(u > 0, torch.ones_like(u), torch.exp(u)),
    ),
}
_CLOSED_FORMS = ("relu", "erf", "identity")


def _autograd_derivative(phi):
    """phi' of an elementwise callable by autograd, differentiable again if the input is."""

    def derivative(u):
        with torch.enable_grad():
            v = u if u.requires_grad else u.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(phi(v).sum(), v, create_graph=u.requires_grad)
        return g

    return derivative


def resolve_activation(activation):
    """Return ``(key, phi, phi')``; ``key`` is the name of a closed form or ``None``."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation={activation!r} is not one of {sorted(ACTIVATIONS)}; pass a torch "
                "callable "
                "for any other elementwise activation."
            )
        phi, dphi = ACTIVATIONS[activation]
        return (activation if activation in _CLOSED_FORMS else None), phi, dphi
    if callable(activation):
        return None, activation, _autograd_derivative(activation)
    raise TypeError(f"activation must be a name or a callable, got {type(activation).__name__}")


@lru_cache(maxsize=8)
def _radial_rule(n_nodes):
    """Gauss rule for the weight ``r exp(-r^2 / 2)`` on ``[0, inf)`` (the Rayleigh density).

    Recurrence coefficients by the discretized Stieltjes procedure on a fine Gauss-Legendre
    grid of ``[0, 16]`` (64 Gauss-Legendre nodes per unit; the tail beyond 16 has mass
    ``exp(-128)``), nodes and weights by
    Golub-Welsch. Polynomials in ``r`` of degree ``< 2 n_nodes`` are integrated exactly.
    """
    x, w = np.polynomial.legendre.leggauss(64)
    r = (np.arange(16)[:, None] + 0.5 * (x + 1.0)).ravel()  # 64 nodes on each [k, k + 1]
    wr = np.tile(0.5 * w, 16) * r * np.exp(-0.5 * r * r)
    alpha, beta = np.zeros(n_nodes), np.zeros(n_nodes)
    p_prev, p = np.zeros_like(r), np.ones_like(r) / math.sqrt(wr.sum())
    for k in range(n_nodes):
        alpha[k] = np.sum(wr * r * p * p)
        q = (r - alpha[k]) * p - (beta[k] * p_prev if k else 0.0)
        if k + 1 < n_nodes:
            beta[k + 1] = math.sqrt(np.sum(wr * q * q))
            p_prev, p = p, q / beta[k + 1]
    jacobi = np.diag(alpha) + np.diag(beta[1:], 1) + np.diag(beta[1:], -1)
    nodes, vecs = np.linalg.eigh(jacobi)
    return nodes, wr.sum() * vecs[0] ** 2


@lru_cache(maxsize=8)
def _polar_rule(n_radial, n_angular):
    nodes, weights = _radial_rule(n_radial)
    t, wt = np.polynomial.legendre.leggauss(n_angular)
    return nodes, weights, (t + 1.0) / 2.0, wt / 2.0  # angles on [0, 1]


def _quadrature(phi, k11, k22, k12, n_radial=N_RADIAL, n_angular=N_ANGULAR):
    """``E[phi(u) phi(v)]``, ``(u, v) ~ N(0, [[k11, k12], [k12, k22]])``, elementwise.

    Write ``u = a r cos(t)``, ``v = b r cos(t - theta)`` with ``a = sqrt(k11)``,
    ``b = sqrt(k22)``, ``cos(theta) = k12 / (a b)`` and ``(r, t)`` the polar coordinates of a
    standard bivariate normal (``r`` Rayleigh, ``t`` uniform). The angle is split at the four
    rays where ``u = 0`` or ``v = 0`` (where relu-type activations have their kink), each
    sector gets Gauss-Legendre nodes, the radius the Gauss rule of :func:`_radial_rule`.
    """
    nodes, weights, t01, wt = _polar_rule(n_radial, n_angular)
    like = dict(dtype=k12.dtype, device=k12.device)
    r, wr = torch.as_tensor(nodes, **like), torch.as_tensor(weights, **like)
    t01, wt = torch.as_tensor(t01, **like), torch.as_tensor(wt, **like)
    a, b = k11.sqrt(), k22.sqrt()
    theta = _angle(k11, k22, k12)[0].unsqueeze(-1)
    # sectors [start, start + width): widths theta, pi - theta, theta, pi - theta
    half = math.pi / 2
    starts = torch.cat([-half + 0 * theta, theta - half, half + 0 * theta, theta + half], -1)
    widths = torch.cat([theta, math.pi - theta, theta, math.pi - theta], -1)
    t = (starts.unsqueeze(-1) + widths.unsqueeze(-1) * t01).flatten(-2)  # (..., 4 n_angular)
    w_t = (widths.unsqueeze(-1) * wt).flatten(-2) / (2 * math.pi)
    u = (a.unsqueeze(-1) * torch.cos(t)).unsqueeze(-1) * r
    v = (b.unsqueeze(-1) * torch.cos(t - theta)).unsqueeze(-1) * r
    return ((phi(u) * phi(v)) @ wr * w_t).sum(-1)


class _Arccos(torch.autograd.Function):
    """arccos whose derivative ``-1 / sqrt(1 - rho^2)`` is capped at ``|rho| = 1 - 100 eps``.

    The derivative is 0 at ``|rho| = 1``.

    The value is exact (clamping the value would move the NTK's ``(pi - theta) / (2 pi)`` by
    ``sqrt(eps)``); the derivative, infinite at +-1 (the diagonal, x = x'), stays finite.
    """

    @staticmethod
    def forward(ctx, rho):
        ctx.save_for_backward(rho)
        return torch.arccos(rho)

    @staticmethod
    def backward(ctx, grad):
        (rho,) = ctx.saved_tensors
        eps = 100 * torch.finfo(rho.dtype).eps
        # at |rho| = 1 exactly (the diagonal, duplicate points) the correlation is 1 whatever the
        # variances, so its total derivative is 0: the capped factor would only amplify the
        # rounding residue of drho/dk11 + drho/dk22 + drho/dk12 (1e-9 relative in relu's NTK)
        return torch.where(rho.abs() < 1, -grad / (1 - rho * rho).clamp_min(2 * eps).sqrt(), 0.0)


class _ReluArcCosine(torch.autograd.Function):
    r"""``E[relu(u) relu(v)] = (s + (pi - theta) k12) / (2 pi)``, ``s = sqrt(k11 k22) sin(theta)``.

    Fused, with the closed-form gradient ``dE/dk12 = (pi - theta) / (2 pi)``,
    ``dE/dk11 = s / (4 pi k11)``, ``dE/dk22 = s / (4 pi k22)`` (finite everywhere, also at
    ``theta = 0``): a third of autograd's element-wise passes over the ``n x n`` kernel.
    """

    @staticmethod
    def forward(ctx, k11, k22, k12):
        theta, rho = _angle(k11, k22, k12)
        s = (k11 * k22).sqrt() * torch.sin(theta)
        ctx.save_for_backward(k11, k22, theta, s)
        return (s + (math.pi - theta) * k12) / (2 * math.pi)

    @staticmethod
    def backward(ctx, grad):
        k11, k22, theta, s = ctx.saved_tensors
        tiny = torch.finfo(s.dtype).tiny
        gs = grad * s / (4 * math.pi)
        return (
            gs / k11.clamp_min(tiny),
            gs / k22.clamp_min(tiny),
            grad * (math.pi - theta) / (2 * math.pi),
        )


def _angle(k11, k22, k12):
    """``(theta, rho)`` with ``rho = k12 / sqrt(k11 k22)`` and ``theta = arccos(rho)``."""
    rho = (k12 / (k11 * k22).sqrt().clamp_min(torch.finfo(k12.dtype).tiny)).clamp(-1, 1)
    return _Arccos.apply(rho), rho


def gaussian_expectations(activation, k11, k22, k12, derivative=False, chunk_elements=2**22):
    """``E[phi(u) phi(v)]`` and, with ``derivative=True``, ``E[phi'(u) phi'(v)]``.

    ``(u, v) ~ N(0, [[k11, k12], [k12, k22]])`` elementwise over broadcast tensors.
    Closed forms: relu (arc-cosine kernel of degree 1, Cho & Saul 2009), erf (Williams 1997),
    identity; anything else by polar Gauss quadrature (see :func:`_quadrature`).
    """
    key, phi, dphi = resolve_activation(activation)
    k11, k22, k12 = torch.broadcast_tensors(k11, k22, k12)
    if key == "relu":
        value = _ReluArcCosine.apply(k11, k22, k12)
        return value, ((math.pi - _angle(k11, k22, k12)[0]) / (2 * math.pi) if derivative else None)
    if key == "erf":
        s11, s22 = 1 + 2 * k11, 1 + 2 * k22
        value = (2 / math.pi) * torch.asin(2 * k12 / (s11 * s22).sqrt())
        return value, ((4 / math.pi) / (s11 * s22 - 4 * k12 * k12).sqrt() if derivative else None)
    if key == "identity":
        return k12, (torch.ones_like(k12) if derivative else None)
    value = _chunked(phi, k11, k22, k12, chunk_elements)
    return value, (_chunked(dphi, k11, k22, k12, chunk_elements) if derivative else None)


def _chunked(fn, k11, k22, k12, chunk_elements):
    """Quadrature in row blocks; with autograd on, recompute blocks in backward (checkpoint)."""
    shape = k12.shape
    flat = [k.reshape(-1) for k in (k11, k22, k12)]
    rule = _rule_for(flat[0], flat[1])
    step = max(1, chunk_elements // (4 * rule[0] * rule[1]))
    # checkpoint only when there are several blocks: its first call costs seconds of set-up
    grad = torch.is_grad_enabled() and any(k.requires_grad for k in flat) and flat[0].numel() > step
    out = []
    for start in range(0, flat[0].numel(), step):
        block = [k[start : start + step] for k in flat]
        if grad:
            out.append(
                torch.utils.checkpoint.checkpoint(
                    _quadrature, fn, *block, *rule, use_reentrant=False
                )
            )
        else:
            out.append(_quadrature(fn, *block, *rule))
    return torch.cat(out).reshape(shape)


def input_kernel(x1, x2, weight_variance, bias_variance, diag=False):
    """``K0 = b + w <x1, x2> / d``: the full matrix, or with ``diag=True`` its diagonal."""
    d = x1.shape[-1]
    if diag:
        return bias_variance + weight_variance * (x1 * x2).sum(-1) / d
    return bias_variance + weight_variance * (x1 @ x2.transpose(-2, -1)) / d


def layer_kernels(x1, x2, depth, activation, weight_variance, bias_variance, diag=False, ntk=False):
    """Output NNGP kernel ``K(depth)`` and, with ``ntk=True``, NTK ``T(depth)`` (else ``None``).

    ``weight_variance`` and ``bias_variance`` broadcast against the kernel matrix (shape
    ``(*batch, 1, 1)``) or, with ``diag=True``, against its diagonal (``(*batch, 1)``).
    """
    w, b = weight_variance, bias_variance
    k12 = input_kernel(x1, x2, w, b, diag=diag)
    # x1 == x2 (gpytorch's training call): read the variances off the diagonal of the same
    # matrix so that the correlation there is exactly 1; an independently rounded diagonal
    # would put theta at ~1e-8 and move relu's NTK by as much
    same = x1 is x2 or (x1.shape == x2.shape and torch.equal(x1, x2))
    wd, bd = (w, b) if diag else (w.squeeze(-1), b.squeeze(-1))
    if same:
        k11, k22 = (k12, k12) if diag else _diagonals(k12)
    else:
        k11 = input_kernel(x1, x1, wd, bd, diag=True)
        k22 = input_kernel(x2, x2, wd, bd, diag=True)
        if not diag:
            k11, k22 = k11.unsqueeze(-1), k22.unsqueeze(-2)
    tangent = k12 if ntk else None
    for _ in range(depth):
        e12, de12 = gaussian_expectations(activation, k11, k22, k12, derivative=ntk)
        if ntk:
            tangent = b + w * e12 + w * de12 * tangent
        k12 = b + w * e12
        if same:
            k11, k22 = (k12, k12) if diag else _diagonals(k12)
        else:
            k11 = b + w * gaussian_expectations(activation, k11, k11, k11)[0]
            k22 = b + w * gaussian_expectations(activation, k22, k22, k22)[0]
    return k12, tangent


def _diagonals(k):
    d = torch.diagonal(k, dim1=-2, dim2=-1)
    return d.unsqueeze(-1), d.unsqueeze(-2)


# The training matrix in row blocks (on the CPU). Every n x n temporary of the element-wise
# recursion above 32 MiB (glibc's largest mmap threshold) is a fresh mmap that the kernel must
# page-fault and zero: at n = 3000, float64, that is more than half the time of the kernel.
# Rows are done ~1 MiB at a time instead (temporaries reused from the heap, in cache), and
# backward recomputes each block instead of keeping the recursion's n x n intermediates.
# Smaller matrices come from the heap, where the plain recursion is as fast (its backward
# needs no recomputation): the blocks start at n x n x itemsize x batch = BLOCK_MIN_BYTES.
BLOCK_MIN_BYTES = 2**25
BLOCK_BYTES = 2**20  # per block temporary (rows x n x itemsize x batch)


def use_blocked_kernel(x1, x2, weight_variance, bias_variance):
    """Whether :func:`blocked_layer_kernel` applies: the symmetric full matrix of a large input."""
    if not (torch.is_tensor(weight_variance) and torch.is_tensor(bias_variance)):
        return False
    n = x1.shape[-2]
    batch = torch.broadcast_shapes(
        x1.shape[:-2], weight_variance.shape[:-2], bias_variance.shape[:-2]
    ).numel()
    item = torch.empty((), dtype=torch.result_type(x1, weight_variance)).element_size()
    return (
        n * n * item * batch >= BLOCK_MIN_BYTES
        and x1.device.type == "cpu"  # CUDA's caching allocator reuses its blocks
        and not x1.requires_grad
        and not x2.requires_grad
        and weight_variance.dim() >= 2
        and bias_variance.dim() >= 2
        and (x1 is x2 or (x1.shape == x2.shape and torch.equal(x1, x2)))
    )


def _diagonal_kernels(x, depth, activation, w, b):
    """The diagonals ``K(l)(x_i, x_i)``, ``l = 0 .. depth``, as ``(*batch, n)`` vectors."""
    wd, bd = w.squeeze(-1), b.squeeze(-1)
    diags = [input_kernel(x, x, wd, bd, diag=True)]
    for _ in range(depth):
        k = diags[-1]
        diags.append(bd + wd * gaussian_expectations(activation, k, k, k)[0])
    return diags


def _kernel_rows(x, start, stop, depth, activation, w, b, diags, ntk):
    """Rows ``start:stop`` of ``K(depth)`` (or ``T(depth)``) of ``x`` against itself.

    The variances are the precomputed diagonals ``diags``, and the block's diagonal entries
    ``(r, start + r)`` are overwritten with them, so that (as in :func:`layer_kernels` with
    ``x1 is x2``) the correlation there is exactly 1.
    """
    k12 = input_kernel(x[..., start:stop, :], x, w, b)
    tangent = None
    for layer in range(depth + 1):
        k12.diagonal(offset=start, dim1=-2, dim2=-1).copy_(diags[layer][..., start:stop])
        if ntk and layer == 0:
            tangent = k12
        if layer == depth:
            break
        k11, k22 = diags[layer][..., start:stop].unsqueeze(-1), diags[layer].unsqueeze(-2)
        e12, de12 = gaussian_expectations(activation, k11, k22, k12, derivative=ntk)
        if ntk:
            tangent = b + w * e12 + w * de12 * tangent
        k12 = b + w * e12
    return tangent if ntk else k12


class _BlockedKernel(torch.autograd.Function):
    """``K(depth)`` or ``T(depth)`` of ``x`` against itself, computed and differentiated by rows.

    Forward writes the blocks into one preallocated matrix and saves only ``x`` and the two
    variances; backward recomputes each block with autograd on and accumulates its gradients
    (and those of the diagonals, backpropagated once at the end) into the two variances.
    """

    @staticmethod
    def forward(ctx, x, w, b, depth, activation, ntk, block_rows):
        ctx.save_for_backward(x, w, b)
        ctx.config = depth, activation, ntk, block_rows
        n = x.shape[-2]
        shape = torch.broadcast_shapes(x.shape[:-2] + (n, n), w.shape, b.shape)
        out = torch.empty(shape, dtype=torch.result_type(x, w), device=x.device)
        diags = _diagonal_kernels(x, depth, activation, w, b)
        for start in range(0, n, block_rows):
            stop = min(start + block_rows, n)
            out[..., start:stop, :] = _kernel_rows(
                x, start, stop, depth, activation, w, b, diags, ntk
            )
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, w, b = ctx.saved_tensors
        depth, activation, ntk, block_rows = ctx.config
        n = x.shape[-2]
        need = ctx.needs_input_grad[1:3]
        with torch.enable_grad():
            w_, b_ = w.detach().requires_grad_(need[0]), b.detach().requires_grad_(need[1])
            diags = _diagonal_kernels(x, depth, activation, w_, b_)
            leaves = [d.detach().requires_grad_(True) for d in diags]
            inputs = [t for t, req in ((w_, need[0]), (b_, need[1])) if req] + leaves
            totals = [torch.zeros_like(t) for t in inputs]
            for start in range(0, n, block_rows):
                stop = min(start + block_rows, n)
                rows = _kernel_rows(x, start, stop, depth, activation, w_, b_, leaves, ntk)
                parts = torch.autograd.grad(
                    rows, inputs, grad[..., start:stop, :], allow_unused=True
                )
                for total, part in zip(totals, parts):
                    if part is not None:
                        total += part
            k = int(need[0]) + int(need[1])
            if k == 0:
                return (None,) * 7
            ends = torch.autograd.grad(diags, inputs[:k], totals[k:], allow_unused=True)
        grads = iter(
            total + part if part is not None else total for total, part in zip(totals[:k], ends)
        )
        gw = next(grads) if need[0] else None
        gb = next(grads) if need[1] else None
        return None, gw, gb, None, None, None, None


def blocked_layer_kernel(
    x, depth, activation, weight_variance, bias_variance, ntk=False, block_rows=None
):
    """The full ``K(depth)`` (or ``T(depth)`` with ``ntk=True``) of ``x`` against itself, by rows.

    Equals ``layer_kernels(x, x, ...)`` (to rounding) with no ``n x n`` temporaries; ``block_rows``
    defaults to rows of about :data:`BLOCK_BYTES` per temporary.
    """
    w, b = weight_variance, bias_variance
    n = x.shape[-2]
    if block_rows is None:
        batch = torch.broadcast_shapes(x.shape[:-2], w.shape[:-2], b.shape[:-2]).numel()
        item = torch.empty((), dtype=torch.result_type(x, w)).element_size()
        block_rows = max(1, BLOCK_BYTES // (n * item * max(batch, 1)))
    return _BlockedKernel.apply(x, w, b, depth, activation, ntk, int(block_rows))
