"""Random finite networks: draws of their outputs and Monte-Carlo NNGP / NTK kernels."""

import math
import numbers

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._recursions import resolve_activation

__all__ = ["sample_wide_networks", "empirical_kernel"]

_BLOCK_ELEMENTS = 2**23  # floats per block of networks: bounds memory at ~64 MB (float64)


def sample_wide_networks(
    X,
    width,
    depth=1,
    activation="relu",
    weight_variance=1.0,
    bias_variance=0.0,
    n_networks=100,
    random_state=None,
):
    r"""Outputs of random fully connected networks of finite width at the points ``X``.

    Each network has ``depth`` hidden layers of ``width`` units and one linear output, weights
    ``N(0, weight_variance / fan_in)`` and biases ``N(0, bias_variance)``: the prior whose
    infinite-width limit is :class:`~neurostat.gp.NNGPKernel` with the same arguments.

    Parameters
    ----------
    X : array-like or torch.Tensor of shape (n_points, n_features)
        Inputs; a floating tensor keeps its dtype and device, anything else becomes float64.
    width : int
        Units per hidden layer.
    depth : int, default=1
        Number of hidden layers.
    activation : str or callable, default="relu"
        As in :class:`~neurostat.gp.NNGPKernel`.
    weight_variance, bias_variance : float, default=1.0, 0.0
        :math:`\sigma_w^2` and :math:`\sigma_b^2`.
    n_networks : int, default=100
        Number of independent networks.
    random_state : int, RandomState instance or None, default=None
        Seeds private ``torch.Generator`` s; the global torch RNG is not touched. Network ``i``
        of a seed is the same whatever ``n_networks``: the first networks of a large run are
        those of a small one.

    Returns
    -------
    outputs : torch.Tensor of shape (n_networks, n_points)

    See Also
    --------
    empirical_kernel : the Monte-Carlo covariance (or tangent kernel) of these networks.

    Notes
    -----
    With one hidden layer the output :math:`f(x) = \sigma_b b + \sqrt{\sigma_w^2/n}\sum_j v_j
    \phi(z_j(x))` is a sum of :math:`n` independent terms whose covariance is exactly the NNGP
    kernel at every width; only its distribution approaches the Gaussian, with excess kurtosis
    :math:`3\sigma_w^4 \operatorname{Var}(\phi(z)^2) / (n K(x,x)^2)`. From two hidden layers on the
    covariance itself carries an :math:`O(1/n)` finite-width correction.

    Examples
    --------
    >>> from neurostat.gp import sample_wide_networks
    >>> f = sample_wide_networks([[0.0], [1.0]], width=50, n_networks=1000, random_state=0)
    >>> tuple(f.shape)
    (1000, 2)
    """
    X, seed, phi, _ = _setup(
        X, width, depth, activation, weight_variance, bias_variance, n_networks, random_state
    )
    blocks = [
        _forward(
            X,
            width,
            depth,
            phi,
            None,
            weight_variance,
            bias_variance,
            _draw(X, width, depth, seed, start, stop),
        )[0]
        for start, stop in _blocks(X, width, depth, n_networks)
    ]
    return torch.cat(blocks)


def empirical_kernel(
    X,
    width,
    depth=1,
    activation="relu",
    weight_variance=1.0,
    bias_variance=0.0,
    n_networks=100,
    kind="nngp",
    random_state=None,
):
    r"""Monte-Carlo NNGP or NTK kernel of random finite networks.

    Parameters
    ----------
    X, width, depth, activation, weight_variance, bias_variance, n_networks, random_state
        As in :func:`sample_wide_networks` (the same seed gives the same networks).
    kind : {"nngp", "ntk"}, default="nngp"
        ``"nngp"``: the average of :math:`f(x) f(x')` over networks (their covariance, since
        the prior mean is 0). ``"ntk"``: the average of the empirical tangent kernel
        :math:`\langle\nabla_\theta f(x), \nabla_\theta f(x')\rangle` of each network in the NTK
        parametrization of :class:`~neurostat.gp.NTKKernel`.

    Returns
    -------
    kernel : torch.Tensor of shape (n_points, n_points)
    per_network_sq : torch.Tensor of shape (n_points, n_points)
        Average of the squared per-network values, for Monte-Carlo standard errors
        ``sqrt((per_network_sq - kernel**2) / (n_networks - 1))``.

    Notes
    -----
    The tangent kernel of one network is computed in closed form by back-propagation:
    :math:`\sum_l \langle\delta_l(x), \delta_l(x')\rangle\,(\sigma_w^2 \langle h_{l-1}(x),
    h_{l-1}(x')\rangle / n_{l-1} + \sigma_b^2)` with :math:`\delta_l = \partial f / \partial z_l`.
    At depth 1 its expectation equals :class:`~neurostat.gp.NTKKernel` at every width.
    """
    if kind not in ("nngp", "ntk"):
        raise ValueError(f"kind must be 'nngp' or 'ntk', got {kind!r}")
    X, seed, phi, dphi = _setup(
        X, width, depth, activation, weight_variance, bias_variance, n_networks, random_state
    )
    total = torch.zeros(X.shape[0], X.shape[0], dtype=X.dtype, device=X.device)
    total_sq = torch.zeros_like(total)
    for start, stop in _blocks(X, width, depth, n_networks):
        f, ntk = _forward(
            X,
            width,
            depth,
            phi,
            dphi if kind == "ntk" else None,
            weight_variance,
            bias_variance,
            _draw(X, width, depth, seed, start, stop),
        )
        values = ntk if kind == "ntk" else f.unsqueeze(-1) * f.unsqueeze(-2)
        total += values.sum(0)
        total_sq += (values * values).sum(0)
    return total / n_networks, total_sq / n_networks


def _setup(X, width, depth, activation, weight_variance, bias_variance, n_networks, random_state):
    for name, value, low in (
        ("width", width, 1),
        ("depth", depth, 0),
        ("n_networks", n_networks, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    for name, value in (("weight_variance", weight_variance), ("bias_variance", bias_variance)):
        if not isinstance(value, numbers.Real) or not (0 <= value < math.inf):
            raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    if not (torch.is_tensor(X) and X.is_floating_point()):
        X = torch.as_tensor(np.asarray(X, dtype=np.float64))
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"X must be a non-empty 2-d array (n_points, n_features), got shape {tuple(X.shape)}"
        )
    if not torch.isfinite(X).all():
        raise ValueError("X contains NaN or infinity.")
    _, phi, dphi = resolve_activation(activation)
    seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    return X, seed, phi, dphi


def _blocks(X, width, depth, n_networks):
    """``(start, stop)`` of blocks of about ``_BLOCK_ELEMENTS`` floats (parameters and
    activations), each a whole number of seed groups (see :func:`_draw`)."""
    n, d = X.shape
    per_network = n * (width + n) + _n_parameters(d, width, depth) + n * width * depth
    group = _group_size(d, width, depth)
    step = max(1, _BLOCK_ELEMENTS // per_network // group) * group
    return [(start, min(start + step, n_networks)) for start in range(0, n_networks, step)]


def _n_parameters(n_features, width, depth):
    """Weights and biases of one network: ``depth`` hidden layers and the scalar output."""
    fans = [n_features] + [width] * depth
    return sum(fan * width + width for fan in fans[:-1]) + fans[-1] + 1


def _draw(X, width, depth, seed, start, stop):
    """Standard normal parameters of networks ``start .. stop - 1``, one row each.

    Networks come in groups of :func:`_group_size` (fixed by the architecture); group ``g`` is
    ``randn(G, P)`` from a generator seeded by ``SeedSequence([seed, g])``. Network ``i`` is
    row ``i mod G`` of group ``i // G``: the same numbers whatever ``n_networks`` and the
    blocking, so the first networks of a large run are those of a small one.
    """
    d = X.shape[1]
    size, n_par = _group_size(d, width, depth), _n_parameters(d, width, depth)
    gen = torch.Generator(device=X.device)
    rows = []
    for g in range(start // size, -(-stop // size)):
        gen.manual_seed(int(np.random.SeedSequence([seed, g]).generate_state(1)[0]))
        rows.append(torch.randn(size, n_par, generator=gen, dtype=X.dtype, device=X.device))
    first = start // size * size
    return torch.cat(rows)[start - first : stop - first]


def _group_size(n_features, width, depth):
    return max(1, min(64, _BLOCK_ELEMENTS // (4 * _n_parameters(n_features, width, depth))))


def _forward(X, width, depth, phi, dphi, w, b, flat):
    """Outputs (n_nets, n) of the networks whose parameters are the rows of ``flat`` and, if
    ``dphi`` is given, their tangent kernels.

    A row holds ``W1, b1, ..., W_depth, b_depth, v, b_out`` (each row-major, ``W_l`` of shape
    ``(fan_in, width)``), all standard normal and scaled here.
    """
    n_nets = flat.shape[0]
    sw, sb = math.sqrt(w), math.sqrt(b)
    fans = [X.shape[1]] + [width] * depth
    offset = 0

    def take(*shape):
        nonlocal offset
        size = math.prod(shape)
        out = flat[:, offset : offset + size].reshape(n_nets, *shape)
        offset += size
        return out

    h, pre, weights = X.expand(n_nets, *X.shape), [], []
    for fan in fans[:-1] if depth else []:
        W = take(fan, width)
        z = (sw / math.sqrt(fan)) * (h @ W) + sb * take(1, width)
        weights.append(W)
        pre.append(z)
        h = phi(z)
    v = take(fans[-1], 1)
    f = ((sw / math.sqrt(fans[-1])) * (h @ v) + sb * take(1, 1)).squeeze(-1)
    if dphi is None:
        return f, None
    # layer by layer from the output: <df/dW_l, df/dW_l'> + <df/db_l, df/db_l'>
    ntk = w * (h @ h.transpose(-1, -2)) / fans[-1] + b
    delta, W_next = None, v
    for layer in range(depth - 1, -1, -1):
        back = (sw / math.sqrt(fans[layer + 1])) * W_next.transpose(-1, -2)
        delta = dphi(pre[layer]) * (back if delta is None else delta @ back)
        h_in = X.expand(n_nets, *X.shape) if layer == 0 else phi(pre[layer - 1])
        ntk = ntk + (delta @ delta.transpose(-1, -2)) * (
            w * (h_in @ h_in.transpose(-1, -2)) / fans[layer] + b
        )
        W_next = weights[layer]
    return f, ntk
