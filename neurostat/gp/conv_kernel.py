r"""NNGP and NTK kernels of infinitely wide convolutional networks (Novak et al. 2019;
Garriga-Alonso et al. 2019; Arora et al. 2019).

Architecture and parametrization (neural-tangents' ``stax``): ``depth`` times
``Conv(channels -> inf, (k, k), padding="SAME", stride 1)`` + activation, then
``GlobalAvgPool()`` (``pooling="gap"``) or ``Flatten()`` (``pooling="flatten"``), then
``Dense(1)``. Conv weights are ``N(0, weight_variance / (channels_in k^2))`` (the fan-in
counts the zero padding), biases ``N(0, bias_variance)``, the readout's weights
``N(0, weight_variance / fan_in)``. For the NTK, the NTK parametrization (every weight
``N(0, 1)``, scaled in the forward pass), as :class:`~neurostat.gp.NTKKernel`.

Recursion, for two images ``x, x'`` with ``C`` channels and pixels ``p = (h, w)``:
``S0(p, p') = <x(p), x'(p')> / C``; a convolution maps a covariance ``S`` to
``b + w A(S)``, ``A(S)(p, p') = k^-2 sum_d S(p + d, p' + d)`` over the ``k x k`` offsets ``d``
(terms outside the image are 0); an activation maps ``K`` to ``E[phi(u) phi(v)]`` with
``(u, v) ~ N(0, [[K(p, p)[x, x], K(p, p')], [., K(p', p')[x', x']]])``. So ``K1 = b + w A(S0)``,
``K(l+1) = b + w A(E(Kl))``, and the output is ``b + w mean_{p, p'} E(K_depth)(p, p')`` (GAP) or
``b + w mean_p E(K_depth)(p, p)`` (flatten). With flatten only the same-pixel terms
``(p, p)`` enter, and ``A`` maps them to same-pixel terms: the kernel depends on the images only
through the per-pixel diagonals, ``O(HW)`` per pair; GAP needs the whole ``(HW)^2`` covariance
per pair and layer. NTK: ``T1 = K1``, ``T(l+1) = K(l+1) + w A(E'(Kl) o Tl)``, output
``K_out + w mean (E'(K_depth) o T_depth)`` over the same pixel pairs.
"""

import numbers

import torch
import torch.nn.functional as F

from ._base import _WideNetKernel
from ._recursions import gaussian_expectations

__all__ = ["ConvNNGPKernel", "ConvNTKKernel", "conv_kernel"]

_PAIR_ELEMENTS = 2**21  # elements of a (pairs, HW, HW) block: 16 MiB in float64


def _check_shape(image_shape):
    shape = tuple(image_shape) if image_shape is not None else ()
    if len(shape) == 2:
        shape = (1, *shape)
    ok = len(shape) == 3 and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in shape
    )
    if not ok:
        raise ValueError(
            f"image_shape must be (channels, height, width) or (height, width) of positive "
            f"integers, got {image_shape!r}"
        )
    return tuple(int(v) for v in shape)


def _images(x, shape):
    """Flat rows ``(n, C * H * W)`` in (c, h, w) order -> ``(n, H * W, C)``."""
    c, h, w = shape
    if x.shape[-1] != c * h * w:
        raise ValueError(
            f"inputs have {x.shape[-1]} features, but image_shape={shape} needs {c * h * w}"
        )
    return x.reshape(x.shape[0], c, h * w).transpose(1, 2)


def _box(v, shape, k):
    """``A`` on same-pixel terms: ``k^-2`` times the ``k x k`` zero-padded box sum of each
    ``(H, W)`` map in ``v`` of shape ``(m, H * W)``."""
    _, h, w = shape
    r = k // 2
    maps = v.reshape(-1, 1, h, w)
    ones = torch.ones(1, 1, k, k, dtype=v.dtype, device=v.device)
    return (F.conv2d(maps, ones, padding=r) / (k * k)).reshape(v.shape)


def _diagonal_shift(s, shape, k):
    """``A`` on full covariances ``s`` of shape ``(m, HW, HW)``: the sum of ``s`` shifted by
    the same offset along both pixels, zero padded, over the ``k x k`` offsets, over ``k^2``."""
    _, h, w = shape
    r = k // 2
    if r == 0:
        return s
    m = s.shape[0]
    pad = F.pad(s.reshape(m, h, w, h, w), (r, r, r, r, r, r, r, r))
    out = torch.zeros(m, h, w, h, w, dtype=s.dtype, device=s.device)
    for dh in range(k):
        for dw in range(k):
            out = out + pad[:, dh : dh + h, dw : dw + w, dh : dh + h, dw : dw + w]
    return (out / (k * k)).reshape(m, h * w, h * w)


def _variances(img, shape, depth, k, activation, w, b):
    """Per image and pixel ``K_l(p, p)[x, x]`` for ``l = 1..depth``, each ``(n, HW)``."""
    s0 = (img * img).sum(-1) / img.shape[-1]
    if depth == 0:
        return [], s0
    v = b + w * _box(s0, shape, k)
    out = [v]
    for _ in range(depth - 1):
        e = gaussian_expectations(activation, v, v, v)[0]
        v = b + w * _box(e, shape, k)
        out.append(v)
    return out, s0


def _pairs(a, bimg, va, vb, shape, depth, k, pooling, activation, w, b, ntk):
    """Kernel of ``m`` image pairs ``(a[i], bimg[i])`` (each ``(m, HW, C)``); ``va``, ``vb``
    the per-pixel variances of :func:`_variances`, rows aligned with the pairs."""
    c = a.shape[-1]
    if pooling == "flatten":
        s = (a * bimg).sum(-1) / c  # same-pixel terms only: (m, HW)
        shift = _box
    else:
        s = a @ bimg.transpose(1, 2) / c  # (m, HW, HW)
        shift = _diagonal_shift
    if depth == 0:
        out = s.mean(-1) if pooling == "flatten" else s.mean((-1, -2))
        return b + w * out, (b + w * out if ntk else None)

    def cols(v):  # variances of the second image against the pixel p'
        return v[:, None, :] if pooling != "flatten" else v

    def rows(v):
        return v[:, :, None] if pooling != "flatten" else v

    kk = b + w * shift(s, shape, k)
    t = kk
    for layer in range(depth):
        e, de = gaussian_expectations(
            activation, rows(va[layer]), cols(vb[layer]), kk, derivative=ntk
        )
        if layer + 1 < depth:
            knew = b + w * shift(e, shape, k)
            if ntk:
                t = knew + w * shift(de * t, shape, k)
            kk = knew
        else:
            red = (lambda m: m.mean(-1)) if pooling == "flatten" else (lambda m: m.mean((-1, -2)))
            out = b + w * red(e)
            tout = out + w * red(de * t) if ntk else None
            return out, tout


def conv_kernel(
    x1, x2, image_shape, depth, kernel_size, pooling, activation, weight_variance,
    bias_variance, ntk=False, diag=False,
):
    """The conv-net NNGP kernel (and with ``ntk=True`` the NTK) between flat image rows.

    Parameters
    ----------
    x1 : torch.Tensor of shape (n1, C * H * W)
    x2 : torch.Tensor of shape (n2, C * H * W)
    image_shape : tuple (C, H, W)
    depth, kernel_size : int
    pooling : {"gap", "flatten"}
    activation : str or callable
    weight_variance, bias_variance : float or 0-d tensors
    ntk : bool
    diag : bool
        Only the pairs ``(x1[i], x2[i])`` (``n1 == n2``).

    Returns
    -------
    torch.Tensor of shape (n1, n2), or (n1,) with ``diag``

    Notes
    -----
    Cost ``O(n1 n2 (HW)^2 k^2 depth)`` time for GAP (``O(n1 n2 HW k^2 depth)`` for flatten),
    computed in blocks of pairs of about 16 MiB per temporary, so memory is
    ``O(n1 n2 + block)``; with autograd on (learning the variances) every block's
    intermediates are kept for the backward pass.
    """
    shape = tuple(image_shape)
    w, b = weight_variance, bias_variance
    a, c = _images(x1, shape), _images(x2, shape)
    va, _ = _variances(a, shape, depth, kernel_size, activation, w, b)
    vc, _ = _variances(c, shape, depth, kernel_size, activation, w, b)
    pick = 1 if ntk else 0
    args = (shape, depth, kernel_size, pooling, activation, w, b, ntk)
    hw = shape[1] * shape[2]
    per_pair = hw if pooling == "flatten" else hw * hw
    step = max(1, _PAIR_ELEMENTS // per_pair)
    if diag:
        if a.shape[0] != c.shape[0]:
            raise ValueError("diag=True needs x1 and x2 with the same number of rows")
        outs = []
        for s in range(0, a.shape[0], step):
            e = s + step
            outs.append(_pairs(a[s:e], c[s:e], [v[s:e] for v in va], [v[s:e] for v in vc],
                               *args)[pick])
        return torch.cat(outs)
    n1, n2 = a.shape[0], c.shape[0]
    symmetric = x1 is x2 or (x1.shape == x2.shape and torch.equal(x1, x2))
    rows_per_block = max(1, step // max(n2, 1))
    out_rows = []
    for s in range(0, n1, rows_per_block):
        e = min(s + rows_per_block, n1)
        start = s if symmetric else 0  # x1 = x2: columns j >= s only, mirrored below
        ii = torch.arange(s, e, device=x1.device).repeat_interleave(n2 - start)
        jj = torch.arange(start, n2, device=x1.device).repeat(e - s)
        if symmetric:
            keep = jj >= ii
            ii, jj = ii[keep], jj[keep]
        vals = []
        for q in range(0, ii.numel(), step):
            i, j = ii[q : q + step], jj[q : q + step]
            vals.append(_pairs(a[i], c[j], [v[i] for v in va], [v[j] for v in vc], *args)[pick])
        vals = torch.cat(vals) if vals else a.new_zeros(0)
        out_rows.append((ii, jj, vals))
    ii = torch.cat([r[0] for r in out_rows])
    jj = torch.cat([r[1] for r in out_rows])
    vals = torch.cat([r[2] for r in out_rows])
    out = vals.new_zeros(n1, n2)
    out = out.index_put((ii, jj), vals)
    if symmetric:
        out = out.index_put((jj, ii), vals)
    return out


class _ConvKernel(_WideNetKernel):
    def __init__(
        self, image_shape, depth=1, kernel_size=3, pooling="gap", activation="relu",
        weight_variance=1.0, bias_variance=0.0, **kwargs,
    ):
        shape = _check_shape(image_shape)
        if (
            isinstance(kernel_size, bool)
            or not isinstance(kernel_size, numbers.Integral)
            or kernel_size < 1
            or kernel_size % 2 == 0
        ):
            raise ValueError(
                f"kernel_size must be a positive odd integer (SAME padding, stride 1), got "
                f"{kernel_size!r}"
            )
        if pooling not in ("gap", "flatten"):
            raise ValueError(f"pooling must be 'gap' or 'flatten', got {pooling!r}")
        if kwargs.get("batch_shape"):
            raise ValueError("batch_shape is not supported by the conv kernels")
        super().__init__(
            depth=depth, activation=activation, weight_variance=weight_variance,
            bias_variance=bias_variance, **kwargs,
        )
        self.image_shape, self.kernel_size, self.pooling = shape, int(kernel_size), pooling

    def forward(self, x1, x2, diag=False, **params):
        if params.get("last_dim_is_batch"):
            raise ValueError("last_dim_is_batch is not supported (deprecated in gpytorch).")
        if x1.dim() != 2 or x2.dim() != 2:
            raise ValueError("the conv kernels take 2-d inputs (n, C * H * W): no batch dims")
        w = self.weight_variance.reshape(())
        b = self.bias_variance.reshape(())
        return conv_kernel(
            x1, x2, self.image_shape, self.depth, self.kernel_size, self.pooling,
            self.activation, w, b, ntk=self._ntk, diag=diag,
        )

    def extra_repr(self):
        return (f"image_shape={self.image_shape}, depth={self.depth}, "
                f"kernel_size={self.kernel_size}, pooling={self.pooling!r}")


_DOC_PARAMS = r"""
    Parameters
    ----------
    image_shape : tuple (channels, height, width) or (height, width)
        Shape of one image; inputs are flat rows of ``channels * height * width`` values in
        (c, h, w) order, as :class:`~neurostat.ConvNetClassifier` takes them.
    depth : int, default=1
        Number of convolution + activation layers (``0``: the readout on the raw image).
    kernel_size : int, default=3
        Odd filter size ``k`` (SAME zero padding, stride 1).
    pooling : {"gap", "flatten"}, default="gap"
        Readout: global average pooling or flatten, then a dense layer.
    activation : str or callable, default="relu"
        As in :class:`~neurostat.gp.NNGPKernel` (closed forms for relu, erf, identity).
    weight_variance : float, default=1.0
        :math:`\sigma_w^2`, learnable (raw parameter + ``Positive`` constraint).
    bias_variance : float, default=0.0
        :math:`\sigma_b^2`, learnable; ``0`` allowed.
    **kwargs
        Passed to :class:`gpytorch.kernels.Kernel` (no ``batch_shape``).
"""


class ConvNNGPKernel(_ConvKernel):
    __doc__ = r"""NNGP kernel of an infinitely wide convolutional network (a gpytorch kernel).

    The prior covariance of ``stax.serial(*[Conv(inf, (k, k), padding="SAME"), act] * depth,
    GlobalAvgPool() or Flatten(), Dense(1))`` with conv weights
    ``N(0, weight_variance / (channels_in k^2))``, biases ``N(0, bias_variance)`` and readout
    weights ``N(0, weight_variance / fan_in)`` (the recursion is in the module docstring of
    ``neurostat.gp.conv_kernel``).
""" + _DOC_PARAMS + r"""
    See Also
    --------
    ConvNTKKernel : the tangent kernel of the same network.
    NNGPKernel : the fully connected limit (equal to this one on 1 x 1 images with k = 1).

    Notes
    -----
    With ``pooling="flatten"`` the kernel of two images depends only on the same-pixel terms
    (the per-pixel channel inner products and their k x k neighbourhoods): spatial
    covariance across locations does not survive; GAP keeps the whole ``(HW)^2`` covariance
    (Novak et al. 2019). Cost per pair of images: ``O((HW)^2 k^2 depth)`` (GAP) or
    ``O(HW k^2 depth)`` (flatten), in blocks of pairs of about 16 MiB; the training matrix of
    ``n`` images costs ``n (n + 1) / 2`` pairs. Only 2-d inputs (no batch dimensions).

    References
    ----------
    .. [1] R. Novak, L. Xiao, J. Lee, Y. Bahri, G. Yang, J. Hron, D. A. Abolafia, J.
       Pennington and J. Sohl-Dickstein (2019). Bayesian deep convolutional networks with many
       channels are Gaussian processes. ICLR.
    .. [2] A. Garriga-Alonso, C. E. Rasmussen and L. Aitchison (2019). Deep convolutional
       networks as shallow Gaussian processes. ICLR.

    Examples
    --------
    >>> import torch
    >>> from neurostat.gp import ConvNNGPKernel
    >>> x = torch.rand(3, 16, dtype=torch.float64)  # three 4 x 4 one-channel images
    >>> k = ConvNNGPKernel((4, 4), depth=2).double()
    >>> tuple(k(x).to_dense().shape)
    (3, 3)
    """
    _ntk = False


class ConvNTKKernel(_ConvKernel):
    __doc__ = r"""Neural tangent kernel of an infinitely wide convolutional network.

    The same architecture as :class:`ConvNNGPKernel` in the NTK parametrization (every weight
    and bias ``N(0, 1)``, scaled by ``sqrt(weight_variance / fan_in)`` and
    ``sqrt(bias_variance)`` in the forward pass), as neural-tangents' default.
""" + _DOC_PARAMS + r"""
    See Also
    --------
    ConvNNGPKernel, NTKKernel

    References
    ----------
    .. [1] S. Arora, S. S. Du, W. Hu, Z. Li, R. Salakhutdinov and R. Wang (2019). On exact
       computation with an infinitely wide neural net. NeurIPS 32.

    Examples
    --------
    >>> import torch
    >>> from neurostat.gp import ConvNTKKernel
    >>> x = torch.rand(2, 9, dtype=torch.float64)
    >>> tuple(ConvNTKKernel((3, 3)).double()(x).to_dense().shape)
    (2, 2)
    """
    _ntk = True
