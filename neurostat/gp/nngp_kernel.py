"""The NNGP kernel: the prior covariance of an infinitely wide Bayesian network."""

from ._base import _WideNetKernel


class NNGPKernel(_WideNetKernel):
    r"""Neural-network Gaussian-process kernel of a fully connected net (Neal 1996; Lee 2018).

    The covariance of the output of a network with ``depth`` hidden layers of infinite width,
    weights ``N(0, weight_variance / fan_in)`` and biases ``N(0, bias_variance)``.

    Parameters
    ----------
    depth : int, default=1
        Number of hidden layers (``0`` gives the linear kernel ``K0``).
    activation : str or callable, default="relu"
        ``"relu"``, ``"erf"`` and ``"identity"`` use closed forms; ``"tanh"``, ``"sigmoid"``,
        ``"gelu"``, ``"softplus"``, ``"elu"`` or any elementwise torch callable use quadrature.
    weight_variance : float, default=1.0
        :math:`\sigma_w^2`, learnable (stored as ``raw_weight_variance`` with a ``Positive``
        constraint).
    bias_variance : float, default=0.0
        :math:`\sigma_b^2`, learnable; ``0`` (no biases) is allowed and then stays at 0 under
        gradient-based fitting because the softplus is flat at ``-inf``.
    weight_variance_constraint, bias_variance_constraint : gpytorch.constraints.Interval, optional
        Default ``Positive()``.
    **kwargs
        Passed to :class:`gpytorch.kernels.Kernel` (``batch_shape``, ``active_dims``).

    See Also
    --------
    NTKKernel : the tangent kernel of the same network.
    sample_wide_networks : draws from finite networks whose covariance tends to this kernel.

    Notes
    -----
    With :math:`d` input features, :math:`\sigma_w^2` = ``weight_variance`` and
    :math:`\sigma_b^2` = ``bias_variance``,

    .. math::

        K^{(0)}(x, x') = \sigma_b^2 + \sigma_w^2 \langle x, x' \rangle / d, \qquad
        K^{(l)}(x, x') = \sigma_b^2 + \sigma_w^2\, \mathbb{E}[\phi(u)\phi(v)],\quad
        (u, v) \sim N\!\left(0, \begin{pmatrix} K^{(l-1)}(x, x) & K^{(l-1)}(x, x') \\
        K^{(l-1)}(x, x') & K^{(l-1)}(x', x') \end{pmatrix}\right),

    and the kernel is :math:`K^{(\text{depth})}`: :math:`K^{(0)}` is the covariance of the first
    hidden layer's pre-activations, each hidden layer applies the recursion once, the last
    application being the (linear) output layer. This is neural-tangents'
    ``stax.serial(*[Dense(1, W_std, b_std), Activation] * depth, Dense(1, W_std, b_std))``
    NNGP kernel with ``W_std**2 = weight_variance``, ``b_std**2 = bias_variance``.

    Closed forms, with :math:`\cos\theta = k_{12} / \sqrt{k_{11} k_{22}}`:
    relu (arc-cosine kernel of degree 1, Cho & Saul 2009)
    :math:`\mathbb{E}[\phi(u)\phi(v)] = \sqrt{k_{11} k_{22}}\,
    (\sin\theta + (\pi - \theta)\cos\theta) / (2\pi)`;
    erf (Williams 1997)
    :math:`\frac{2}{\pi}\arcsin\big(2 k_{12} / \sqrt{(1 + 2 k_{11})(1 + 2 k_{22})}\big)`.
    Other activations use Gauss quadrature over the bivariate normal in polar coordinates:
    Gauss-Legendre in the angle, split at the four rays where :math:`u = 0` or :math:`v = 0`,
    and the Gauss rule of the Rayleigh weight :math:`r e^{-r^2/2}` in the radius: 1,600 nodes
    while the layer's variances are at most 4, 4,096 up to 25, 6,400 above (the integrand
    narrows as the variance grows). Unlike a tensor Gauss-Hermite rule, whose error for relu is
    :math:`O(1/m)` (1e-3 at 100 x 100 nodes), this is exact for relu-type kinks at 0; against
    erf's closed forms its relative error is below 2e-7 for :math:`E[\phi\phi]` and 3e-5 for
    :math:`E[\phi'\phi']` up to variance 100 (7e-6 and 2e-3 at 1,000). The correlation
    is clamped to :math:`\pm(1 - 100\epsilon)` so that gradients stay finite on the diagonal.

    The raw hyperparameters are created in torch's default dtype; for float64 work set the
    variances after ``.double()`` (a float32 raw value cast to float64 is off by ~1e-8).

    References
    ----------
    .. [1] R. M. Neal (1996). Bayesian Learning for Neural Networks, ch. 2. Springer.
    .. [2] C. K. I. Williams (1997). Computing with infinite networks. NeurIPS 9.
    .. [3] Y. Cho and L. K. Saul (2009). Kernel methods for deep learning. NeurIPS 22.
    .. [4] J. Lee, Y. Bahri, R. Novak, S. S. Schoenholz, J. Pennington and J. Sohl-Dickstein (2018).
       Deep neural networks as Gaussian processes. ICLR.

    Examples
    --------
    >>> import torch
    >>> from neurostat.gp import NNGPKernel
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> k = NNGPKernel(depth=1, activation="relu").to(torch.float64)
    >>> k(x).to_dense()  # sqrt(.5 * .5) * (1 + (pi / 2) * 0) / (2 pi) off the diagonal
    tensor([[0.2500, 0.0796],
            [0.0796, 0.2500]], dtype=torch.float64, grad_fn=<AddBackward0>)
    """

    _ntk = False
