"""Conv-net NNGP / NTK kernels: neural-tangents' frozen values, the fully connected limit, the
flatten readout's same-pixel property, and Monte-Carlo estimates from wide random conv nets."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_gp_kernels import _expect_numpy

from neurostat.gp import ConvNNGPKernel, ConvNTKKernel, NNGPKernel, NTKKernel

REF = json.loads(
    (Path(__file__).parents[1] / "results" / "neural_tangents_conv_reference.json").read_text()
)


def _flat(nhwc):
    """neural-tangents' NHWC images -> flat rows in (c, h, w) order."""
    x = np.asarray(nhwc)
    return torch.from_numpy(x.transpose(0, 3, 1, 2).reshape(len(x), -1).copy())


def _kernel(cls, shape, depth, k, pooling, act, w, b):
    kern = cls(shape, depth=depth, kernel_size=k, pooling=pooling, activation=act).double()
    kern.weight_variance, kern.bias_variance = w, b
    return kern


@pytest.mark.parametrize("kind", ["nngp", "ntk"])
@pytest.mark.parametrize(
    "case", REF["cases"],
    ids=lambda c: f"{c['pooling']}-{c['act']}-d{c['depth']}-k{c['kernel_size']}"
    f"-w{c['weight_variance']}",
)
def test_conv_kernels_equal_neural_tangents(case, kind):
    """tests/results/neural_tangents_conv_reference.json: neural-tangents 0.6.5's analytic
    kernels of stax Conv(SAME) + act, GlobalAvgPool / Flatten, Dense (made by
    tests/results/make_neural_tangents_reference.py --conv)."""
    x1, x2 = _flat(REF["x1"]), _flat(REF["x2"])
    shape = (np.shape(REF["x1"])[3], *np.shape(REF["x1"])[1:3])
    cls = ConvNTKKernel if kind == "ntk" else ConvNNGPKernel
    kern = _kernel(cls, shape, case["depth"], case["kernel_size"], case["pooling"], case["act"],
                   case["weight_variance"], case["bias_variance"])
    with torch.no_grad():
        got, same = kern(x1, x2).to_dense().numpy(), kern(x1).to_dense().numpy()
        diag = kern(x1, x1, diag=True).numpy()
    ref, ref11 = np.array(case[kind]), np.array(case[kind + "_11"])
    # both sides are closed forms; relu's NTK has slope 1 / sin(theta) at theta = 0, where
    # each side rounds the same-pixel correlation of an image with itself (~1e-8 in theta)
    tol = 1e-8 if (kind == "ntk" and case["act"] == "relu") else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())
    np.testing.assert_allclose(same, ref11, rtol=tol, atol=tol * np.abs(ref11).max())
    np.testing.assert_allclose(diag, np.diag(ref11), rtol=tol)
    np.testing.assert_array_equal(same, same.T)


@pytest.mark.parametrize("pooling", ["gap", "flatten"])
@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
@pytest.mark.parametrize("depth", [0, 1, 3])
def test_one_pixel_images_with_1x1_filters_equal_the_fully_connected_kernels(
    pooling, activation, depth
):
    """On 1 x 1 images a 1 x 1 convolution is a dense layer over the channels, and both
    readouts are the identity: the conv kernels must equal NNGPKernel / NTKKernel."""
    rng = np.random.default_rng(0)
    x1, x2 = torch.from_numpy(rng.normal(size=(6, 3))), torch.from_numpy(rng.normal(size=(4, 3)))
    for conv_cls, fc_cls in ((ConvNNGPKernel, NNGPKernel), (ConvNTKKernel, NTKKernel)):
        conv = _kernel(conv_cls, (3, 1, 1), depth, 1, pooling, activation, 1.6, 0.3)
        fc = fc_cls(depth=depth, activation=activation).double()
        fc.weight_variance, fc.bias_variance = 1.6, 0.3
        with torch.no_grad():
            for a, b in ((x1, x2), (x1, x1)):
                torch.testing.assert_close(conv(a, b).to_dense(), fc(a, b).to_dense(),
                                           rtol=1e-12, atol=1e-13)


def test_one_pixel_images_with_3x3_filters_closed_form():
    """1 x 1 images, 3 x 3 SAME filters: only the centre tap sees the pixel, the fan-in still
    counts 9 taps, so every conv layer has weight variance w / 9 and the readout w:
    K1 = b + (w / 9) <x, x'> / C, K(l+1) = b + (w / 9) E[relu relu](Kl), out = b + w E(K_L)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5, 2))
    w, b, depth = 1.8, 0.2, 3
    k12 = b + (w / 9) * X @ X.T / 2
    for layer in range(depth):
        d = np.diag(k12)
        e = _expect_numpy("relu", d[:, None] * np.ones_like(k12), d[None, :] * np.ones_like(k12),
                          k12)[0]
        k12 = b + (w if layer == depth - 1 else w / 9) * e
    kern = _kernel(ConvNNGPKernel, (2, 1, 1), depth, 3, "gap", "relu", w, b)
    with torch.no_grad():
        got = kern(torch.from_numpy(X)).to_dense().numpy()
    np.testing.assert_allclose(got, k12, rtol=1e-12, atol=1e-14)


def test_flatten_keeps_only_same_pixel_terms_and_gap_keeps_the_cross_pixel_ones():
    """Rotate the channel vectors of both images by a different rotation at every pixel: the
    same-pixel inner products (and norms) are unchanged, those across pixels are not. The
    flatten kernel must not move (to rounding); the GAP kernel must."""
    rng = np.random.default_rng(2)
    c, h, w = 3, 4, 4
    imgs = rng.normal(size=(2, h * w, c))
    rot = np.linalg.qr(rng.normal(size=(h * w, c, c)))[0]  # one orthogonal matrix per pixel
    turned = np.einsum("pij,npj->npi", rot, imgs)

    def flat(a):
        return torch.from_numpy(a.transpose(0, 2, 1).reshape(2, -1).copy())

    for cls in (ConvNNGPKernel, ConvNTKKernel):
        for depth in (1, 2):
            fl = _kernel(cls, (c, h, w), depth, 3, "flatten", "relu", 1.5, 0.1)
            gap = _kernel(cls, (c, h, w), depth, 3, "gap", "relu", 1.5, 0.1)
            with torch.no_grad():
                a, bb = flat(imgs), flat(turned)
                torch.testing.assert_close(fl(a).to_dense(), fl(bb).to_dense(), rtol=1e-12,
                                           atol=1e-14)
                moved = (gap(a).to_dense() - gap(bb).to_dense()).abs().max()
                assert moved > 1e-3 * gap(a).to_dense().abs().max()


def _random_conv_nets(x, shape, depth, k, pooling, channels, w, b, n_nets, seed, group=250):
    """Outputs (n_nets, n_images) of random SAME-padded conv nets, standard parametrization:
    conv weights N(0, w / (C_in k^2)), biases N(0, b), readout N(0, w / fan_in). Written here
    with torch's unfold (im2col) and batched matrix products over a group of networks, in
    float32 (the Monte-Carlo error is far larger), independently of neurostat's kernels."""
    gen = torch.Generator().manual_seed(seed)
    c0, hh, ww = shape
    n = x.shape[0]
    imgs = x.reshape(n, c0, hh, ww).float()
    outs = []
    for start in range(0, n_nets, group):
        g = min(group, n_nets - start)
        h = imgs.expand(g, n, c0, hh, ww)
        c_in = c0
        for _ in range(depth):
            cols = F.unfold(h.reshape(g * n, c_in, hh, ww), k, padding=k // 2)
            cols = cols.reshape(g, n, c_in * k * k, hh * ww)
            W = torch.randn(g, 1, channels, c_in * k * k, generator=gen)
            W *= math.sqrt(w / (c_in * k * k))
            bias = torch.randn(g, 1, channels, 1, generator=gen) * math.sqrt(b)
            h = torch.relu(W @ cols + bias).reshape(g, n, channels, hh, ww)
            c_in = channels
        both = []
        for readout in ("gap", "flatten"):  # two readouts of the same hidden layers
            feats = h.reshape(g, n, c_in, hh * ww)
            feats = feats.mean(-1) if readout == "gap" else feats.reshape(g, n, -1)
            fan = feats.shape[-1]
            v = torch.randn(g, fan, 1, generator=gen) * math.sqrt(w / fan)
            bo = torch.randn(g, 1, generator=gen) * math.sqrt(b)
            both.append((feats @ v)[..., 0] + bo)
        outs.append(both)
    gap, flat = (torch.cat([o[i] for o in outs]).double() for i in (0, 1))
    return gap if pooling == "gap" else flat if pooling == "flatten" else (gap, flat)


def _z_scores(f, limit):
    prods = f[:, :, None] * f[:, None, :]
    est = prods.mean(0)
    se = prods.std(0) / math.sqrt(f.shape[0])
    return (est - limit) / se, est, se


@pytest.mark.slow
@pytest.mark.parametrize("pooling", ["gap", "flatten"])
def test_depth_one_conv_covariance_equals_the_kernel_at_every_width(pooling):
    """One conv layer + readout: E[f(x) f(x')] is exactly the NNGP kernel at any number of
    channels (a sum of independent channel terms); 16 channels, 20,000 nets."""
    rng = np.random.default_rng(3)
    shape = (2, 4, 4)
    x = torch.from_numpy(rng.normal(size=(4, 32)))
    f = _random_conv_nets(x, shape, 1, 3, pooling, 16, 1.5, 0.2, 20000, seed=4)
    limit = _kernel(ConvNNGPKernel, shape, 1, 3, pooling, "relu", 1.5, 0.2)(x).to_dense()
    z, est, se = _z_scores(f, limit.detach())
    # 10 distinct entries, each a mean of 20,000 draws: |z| < 4.5 fails with prob. < 1e-4
    assert z.abs().max() < 4.5
    assert (se / limit.detach().abs()).max() < 0.05  # and the check has power
    other = "flatten" if pooling == "gap" else "gap"
    wrong = _kernel(ConvNNGPKernel, shape, 1, 3, other, "relu", 1.5, 0.2)(x).to_dense().detach()
    assert ((est - wrong) / se).abs().max() > 8  # the other readout is rejected


@pytest.mark.slow
def test_depth_two_wide_conv_nets_converge_to_the_kernel():
    """Two conv layers: the covariance carries an O(1/channels) bias; at 96 channels it is
    below the Monte-Carlo resolution of 1,500 nets (|z| < 4.5; SE ~4% of the kernel)."""
    rng = np.random.default_rng(5)
    shape = (1, 3, 3)
    x = torch.from_numpy(rng.normal(size=(3, 9)))
    outputs = _random_conv_nets(x, shape, 2, 3, "both", 96, 1.6, 0.1, 1500, seed=6, group=100)
    for pooling, f in zip(("gap", "flatten"), outputs):
        limit = _kernel(ConvNNGPKernel, shape, 2, 3, pooling, "relu", 1.6, 0.1)(x)
        z, est, se = _z_scores(f, limit.to_dense().detach())
        assert z.abs().max() < 4.5
        assert (se / est.abs()).max() < 0.06


def test_hyperparameter_gradients_match_finite_differences():
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.normal(size=(3, 18)))
    from neurostat.gp.conv_kernel import conv_kernel

    for pooling in ("gap", "flatten"):
        for ntk in (False, True):
            def fn(w, b, pooling=pooling, ntk=ntk):
                return conv_kernel(x, x, (2, 3, 3), 2, 3, pooling, "erf", w, b, ntk=ntk)

            args = (torch.tensor(1.3, dtype=torch.float64, requires_grad=True),
                    torch.tensor(0.4, dtype=torch.float64, requires_grad=True))
            assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-7, rtol=1e-6)


def test_blocks_of_pairs_and_the_symmetric_path_agree(monkeypatch):
    from neurostat.gp import conv_kernel as module

    rng = np.random.default_rng(8)
    x = torch.from_numpy(rng.normal(size=(7, 16)))
    kern = _kernel(ConvNNGPKernel, (1, 4, 4), 2, 3, "gap", "relu", 1.2, 0.1)
    with torch.no_grad():
        whole = kern(x).to_dense()
        cross = kern(x, x + 0.0 * x[:1]).to_dense()  # equal values: the symmetric path too
        x2 = torch.cat([x, x[:2]])
        cross2 = kern(x, x2).to_dense()[:, :7]  # not symmetric: every pair computed
        monkeypatch.setattr(module, "_PAIR_ELEMENTS", 3 * 256)  # 3 pairs a block
        blocked = kern(x).to_dense()
    torch.testing.assert_close(whole, cross2, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(whole, cross, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(whole, blocked, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_shape": (4,)}, "image_shape"),
        ({"image_shape": (1, 0, 4)}, "image_shape"),
        ({"kernel_size": 2}, "odd"),
        ({"pooling": "max"}, "pooling"),
        ({"depth": -1}, "depth"),
        ({"activation": "swish"}, "activation"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    args = {"image_shape": (1, 4, 4), **kwargs}
    with pytest.raises(ValueError, match=match):
        ConvNNGPKernel(**args)


def test_wrong_number_of_features_raises():
    kern = ConvNNGPKernel((1, 4, 4)).double()
    with pytest.raises(ValueError, match="image_shape"):
        kern(torch.zeros(2, 15, dtype=torch.float64)).to_dense()
