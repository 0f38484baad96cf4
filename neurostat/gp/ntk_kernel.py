"""The neural tangent kernel of an infinitely wide fully connected network."""

from ._base import _WideNetKernel


class NTKKernel(_WideNetKernel):
    r"""Neural tangent kernel (Jacot et al. 2018) in the NTK parametrization.

    The limit, as the widths grow, of :math:`\langle \nabla_\theta f(x), \nabla_\theta f(x')\rangle`
    at initialization; gradient descent on the squared loss then trains the net like kernel
    regression with this kernel. Same parameters and conventions as :class:`NNGPKernel`.

    Parameters
    ----------
    depth : int, default=1
        Number of hidden layers.
    activation : str or callable, default="relu"
        As in :class:`NNGPKernel`; quadrature activations also need :math:`\phi'`, which is
        known for the named ones and taken by autograd for a callable.
    weight_variance : float, default=1.0
        :math:`\sigma_w^2`, learnable (raw + ``Positive`` constraint).
    bias_variance : float, default=0.0
        :math:`\sigma_b^2`, learnable; ``0`` allowed.
    weight_variance_constraint, bias_variance_constraint : gpytorch.constraints.Interval, optional
    **kwargs
        Passed to :class:`gpytorch.kernels.Kernel`.

    See Also
    --------
    NNGPKernel : the prior covariance of the same network.
    empirical_kernel : its finite-width Monte-Carlo counterpart (``kind="ntk"``).

    Notes
    -----
    NTK parametrization (neural-tangents' default ``parameterization="ntk"``): layer ``l``
    computes :math:`z^{(l)} = \sigma_w W^{(l)} h^{(l-1)} / \sqrt{n_{l-1}} + \sigma_b b^{(l)}` with
    all :math:`W, b \sim N(0, 1)` trainable. With :math:`K^{(l)}` the NNGP recursion of
    :class:`NNGPKernel`,

    .. math::

        \Theta^{(0)} = K^{(0)}, \qquad
        \Theta^{(l)} = K^{(l)} + \sigma_w^2\, \dot K^{(l)}\, \Theta^{(l-1)}, \qquad
        \dot K^{(l)}(x, x') = \mathbb{E}[\phi'(u)\phi'(v)],\ (u, v) \sim N(0, K^{(l-1)}),

    and the kernel is :math:`\Theta^{(\text{depth})}`. Closed forms of :math:`\dot K`: relu
    :math:`(\pi - \theta) / (2\pi)`; erf :math:`\frac{4}{\pi}\big((1 + 2k_{11})(1 + 2k_{22}) -
    4k_{12}^2\big)^{-1/2}`. In the standard parametrization the NTK differs by width-dependent
    factors per layer; its NNGP is the same.

    References
    ----------
    .. [1] A. Jacot, F. Gabriel and C. Hongler (2018). Neural tangent kernel: convergence and
       generalization in neural networks. NeurIPS 31.
    .. [2] S. Arora, S. S. Du, W. Hu, Z. Li, R. Salakhutdinov and R. Wang (2019). On exact
       computation with an infinitely wide neural net. NeurIPS 32.
    .. [3] R. Novak et al. (2020). Neural Tangents: fast and easy infinite neural networks in
       Python. ICLR.

    Examples
    --------
    >>> import torch
    >>> from neurostat.gp import NTKKernel
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> k = NTKKernel(depth=1).to(torch.float64)
    >>> k(x).to_dense()  # diagonal: 1/4 + (1/2) (1/2); off: 1/(4 pi) + (1/4) 0
    tensor([[0.5000, 0.0796],
            [0.0796, 0.5000]], dtype=torch.float64, grad_fn=<AddBackward0>)
    """

    _ntk = True
