"""NNGPKernel and NTKKernel against an independent float64 numpy recursion and closed forms."""

import math
import pickle

import numpy as np
import pytest
import torch
from gpytorch.constraints import Positive
from scipy.special import erf

from neurostat.gp import NNGPKernel, NTKKernel, _recursions
from neurostat.gp._recursions import ACTIVATIONS, blocked_layer_kernel, layer_kernels

GH_Z, GH_W = np.polynomial.hermite_e.hermegauss(300)
GH_W = GH_W / GH_W.sum()

NUMPY_PHI = {
    "tanh": (np.tanh, lambda u: 1 - np.tanh(u) ** 2),
    "gelu": (
        lambda u: 0.5 * u * (1 + erf(u / math.sqrt(2))),
        lambda u: (
            0.5 * (1 + erf(u / math.sqrt(2))) + u * np.exp(-u * u / 2) / math.sqrt(2 * math.pi)
        ),
    ),
}


def _expect_numpy(name, k11, k22, k12):
    """E[phi phi], E[phi' phi'] by closed form (relu, erf) or a 300 x 300 Gauss-Hermite rule on
    the Cholesky factor (smooth activations only, where it converges fast)."""
    if name == "relu":
        c = np.clip(k12 / np.sqrt(k11 * k22), -1, 1)
        t = np.arccos(c)
        return np.sqrt(k11 * k22) * (np.sin(t) + (np.pi - t) * c) / (2 * np.pi), (np.pi - t) / (
            2 * np.pi
        )
    if name == "erf":
        a, b = 1 + 2 * k11, 1 + 2 * k22
        return 2 / np.pi * np.arcsin(2 * k12 / np.sqrt(a * b)), 4 / np.pi / np.sqrt(
            a * b - 4 * k12**2
        )
    phi, dphi = NUMPY_PHI[name]
    l11 = np.sqrt(k11)[..., None, None]
    l21 = (k12 / np.sqrt(k11))[..., None, None]
    l22 = np.sqrt(np.maximum(k22 - k12**2 / k11, 0))[..., None, None]
    u = l11 * GH_Z[:, None]
    v = l21 * GH_Z[:, None] + l22 * GH_Z[None, :]
    ww = GH_W[:, None] * GH_W[None, :]
    return (ww * phi(u) * phi(v)).sum((-1, -2)), (ww * dphi(u) * dphi(v)).sum((-1, -2))


def numpy_kernels(X1, X2, depth, name, w, b):
    """The NNGP and NTK (NTK parametrization) recursions of ``neurostat.gp._recursions``'s module
    docstring, written independently in float64 numpy."""
    d = X1.shape[1]
    same = X1 is X2  # then the diagonal's correlation is exactly 1 (see _recursions.layer_kernels)
    k12 = b + w * X1 @ X2.T / d
    k11 = (b + w * (X1 * X1).sum(1) / d)[:, None] * np.ones_like(k12)
    k22 = (b + w * (X2 * X2).sum(1) / d)[None, :] * np.ones_like(k12)
    if same:
        k11, k22 = (
            np.diag(k12)[:, None] * np.ones_like(k12),
            np.diag(k12)[None, :] * np.ones_like(k12),
        )
    theta = k12.copy()
    for _ in range(depth):
        e12, de12 = _expect_numpy(name, k11, k22, k12)
        e11, _ = _expect_numpy(name, k11, k11, k11)
        e22, _ = _expect_numpy(name, k22, k22, k22)
        theta = b + w * e12 + w * de12 * theta
        k12, k11, k22 = b + w * e12, b + w * e11, b + w * e22
        if same:
            k11, k22 = (
                np.diag(k12)[:, None] * np.ones_like(k12),
                np.diag(k12)[None, :] * np.ones_like(k12),
            )
    return k12, theta


def _data(n=7, m=5, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d))


def _kernel(cls, depth, activation, w, b, dtype=torch.float64):
    k = cls(depth=depth, activation=activation).to(dtype)
    # set after the cast: a float32 raw value cast to float64 is off by ~1e-8 relative
    k.weight_variance, k.bias_variance = w, b
    return k


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("w, b", [(1.0, 0.0), (2.0, 0.3)])
def test_closed_forms_match_numpy_recursion(activation, depth, w, b):
    X1, X2 = _data()
    ref_nngp, ref_ntk = numpy_kernels(X1, X2, depth, activation, w, b)
    x1, x2 = torch.from_numpy(X1), torch.from_numpy(X2)
    nngp = _kernel(NNGPKernel, depth, activation, w, b)(x1, x2).to_dense().detach().numpy()
    ntk = _kernel(NTKKernel, depth, activation, w, b)(x1, x2).to_dense().detach().numpy()
    # same formulas in float64: only rounding (and the 100-eps correlation clamp) differ
    np.testing.assert_allclose(nngp, ref_nngp, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ntk, ref_ntk, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_symmetric_call_matches_numpy_recursion_including_diagonal(activation):
    """k(X, X): correlation exactly 1 on the diagonal, where relu's NTK has infinite slope."""
    X1, _ = _data()
    ref_nngp, ref_ntk = numpy_kernels(X1, X1, 3, activation, 1.4, 0.1)
    x = torch.from_numpy(X1)
    for cls, ref in ((NNGPKernel, ref_nngp), (NTKKernel, ref_ntk)):
        got = _kernel(cls, 3, activation, 1.4, 0.1)(x).to_dense().detach().numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-12)
        np.testing.assert_array_equal(got, got.T)


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
@pytest.mark.parametrize("cls", [NNGPKernel, NTKKernel])
def test_quadrature_matches_numpy_gauss_hermite_for_smooth_activations(activation, cls):
    X1, X2 = _data()
    ref_nngp, ref_ntk = numpy_kernels(X1, X2, 2, activation, 1.5, 0.2)
    ref = ref_ntk if cls is NTKKernel else ref_nngp
    got = _kernel(cls, 2, activation, 1.5, 0.2)(
        torch.from_numpy(X1), torch.from_numpy(X2)
    ).to_dense()
    # polar rule vs a 300^2-node Gauss-Hermite rule: both converged far below 1e-7 for smooth phi
    np.testing.assert_allclose(got.detach().numpy(), ref, rtol=0, atol=1e-7)


@pytest.mark.parametrize("name, fn", [("relu", torch.relu), ("erf", torch.erf)])
@pytest.mark.parametrize("cls", [NNGPKernel, NTKKernel])
@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_quadrature_matches_closed_forms(name, fn, cls, scale):
    """A torch callable takes the quadrature path; relu and erf have closed forms to compare."""
    X1, X2 = _data(n=12, m=9)
    x1, x2 = torch.from_numpy(scale * X1), torch.from_numpy(scale * X2)
    exact = _kernel(cls, 2, name, 1.2, 0.1)(x1, x2).to_dense().detach()
    quad = _kernel(cls, 2, fn, 1.2, 0.1)(x1, x2).to_dense().detach()
    # the requirement is 1e-4; at unit-scale inputs the rule does far better
    tol = 1e-6 if scale == 1.0 else 1e-4
    assert (quad - exact).abs().max() / exact.abs().max() < tol


@pytest.mark.parametrize("variance", [11.0, 20.0, 45.0, 60.0, 100.0])
def test_quadrature_at_large_variances_matches_erf_closed_forms(variance):
    """E[erf erf] and E[erf' erf'] by the polar rule against Williams' closed forms, for input
    variances 11-100 (equal and 10:1), correlations -0.999..0.999. Measured: <= 1.5e-7 for the
    value, <= 2.3e-5 for the derivative (the old fixed 20 x 20 rule: 1.7e-5 and 9e-4 at 45)."""
    rho = torch.linspace(-0.999, 0.999, 41, dtype=torch.float64)
    derf = ACTIVATIONS["erf"][1]
    for ratio in (1.0, 0.1):
        k11 = torch.full_like(rho, variance)
        k22 = k11 * ratio
        k12 = rho * (k11 * k22).sqrt()
        value, slope = _recursions.gaussian_expectations("erf", k11, k22, k12, derivative=True)
        quad = _recursions._chunked(torch.erf, k11, k22, k12, 2**22)
        quad_slope = _recursions._chunked(derf, k11, k22, k12, 2**22)
        assert ((quad - value).abs().max() / value.abs().max()).item() < 3e-7
        assert ((quad_slope - slope).abs().max() / slope.abs().max()).item() < 4e-5
        # relu through the quadrature path: exact at any variance (the kinks are on the splits)
        relu = _recursions._chunked(torch.relu, k11, k22, k12, 2**22)
        exact = _recursions.gaussian_expectations("relu", k11, k22, k12)[0]
        torch.testing.assert_close(relu, exact, rtol=1e-12, atol=1e-12 * variance)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh", "identity"])
@pytest.mark.parametrize("cls", [NNGPKernel, NTKKernel])
def test_diag_branch_equals_diagonal_of_full_matrix(activation, cls):
    X1, _ = _data(n=6)
    x = torch.from_numpy(X1)
    k = _kernel(cls, 2, activation, 1.3, 0.2)
    full = k(x, x).to_dense().detach()
    diag = k(x, x, diag=True).detach()
    assert diag.shape == (6,)
    torch.testing.assert_close(diag, torch.diagonal(full), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cls", [NNGPKernel, NTKKernel])
def test_diag_of_two_different_inputs(cls):
    """k(x1, x2, diag=True) pairs row i of x1 with row i of x2, each with its own variance."""
    X1, X2 = _data(n=5, m=5)
    x1, x2 = torch.from_numpy(X1), torch.from_numpy(X2)
    for act in ("relu", "tanh"):
        k = _kernel(cls, 2, act, 1.3, 0.2)
        full = k(x1, x2).to_dense().detach()
        torch.testing.assert_close(
            k(x1, x2, diag=True).detach(), torch.diagonal(full), rtol=1e-9, atol=1e-12
        )


def test_known_values_relu_depth_one():
    """Orthogonal unit inputs, d=2: K0 = diag(1/2); arc-cosine kernel and NTK by hand."""
    x = torch.eye(2, dtype=torch.float64)
    nngp = _kernel(NNGPKernel, 1, "relu", 1.0, 0.0)(x).to_dense().detach()
    ntk = _kernel(NTKKernel, 1, "relu", 1.0, 0.0)(x).to_dense().detach()
    expected_nngp = torch.tensor(
        [[0.25, 1 / (4 * math.pi)], [1 / (4 * math.pi), 0.25]], dtype=torch.float64
    )
    torch.testing.assert_close(nngp, expected_nngp, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        ntk,
        expected_nngp + torch.diag(torch.tensor([0.25, 0.25], dtype=torch.float64)),
        rtol=1e-12,
        atol=1e-12,
    )


def test_identity_activation_is_linear_kernel():
    """phi(u) = u: K(L) = b (1 + w + ... + w^(L-1)) + w^L K0 ... computed directly."""
    X1, X2 = _data()
    w, b, depth = 1.7, 0.4, 3
    k = b + w * X1 @ X2.T / 3
    for _ in range(depth):
        k = b + w * k
    got = _kernel(NNGPKernel, depth, "identity", w, b)(
        torch.from_numpy(X1), torch.from_numpy(X2)
    ).to_dense()
    np.testing.assert_allclose(got.detach().numpy(), k, rtol=1e-12)


def test_batch_shape_matches_separate_kernels():
    X1, X2 = _data()
    x1 = torch.from_numpy(np.stack([X1, 2 * X1]))
    x2 = torch.from_numpy(np.stack([X2, X2 - 1]))
    for cls, act in ((NNGPKernel, "relu"), (NTKKernel, "tanh")):
        k = cls(depth=2, activation=act, batch_shape=torch.Size([2])).double()
        k.weight_variance = torch.tensor([[[1.0]], [[2.0]]], dtype=torch.float64)
        k.bias_variance = torch.tensor([[[0.1]], [[0.5]]], dtype=torch.float64)
        got = k(x1, x2).to_dense().detach()
        got_diag = k(x1, x1, diag=True).detach()
        assert got.shape == (2, 7, 5) and got_diag.shape == (2, 7)
        # quadrature (tanh) picks its rule by the largest variance of the call, which the batch
        # shares: there the two agree to the rules' accuracy (1e-8), not to rounding
        tol = 1e-10 if act == "relu" else 1e-8
        for i, (w, b) in enumerate(((1.0, 0.1), (2.0, 0.5))):
            single = _kernel(cls, 2, act, w, b)
            torch.testing.assert_close(
                got[i], single(x1[i], x2[i]).to_dense().detach(), rtol=tol, atol=1e-12
            )
            torch.testing.assert_close(
                got_diag[i], single(x1[i], x1[i], diag=True).detach(), rtol=tol, atol=1e-12
            )


@pytest.mark.parametrize("activation", ["relu", "erf", torch.tanh])
@pytest.mark.parametrize("cls", [NNGPKernel, NTKKernel])
def test_hyperparameter_gradients_match_finite_differences(activation, cls):
    X1, _ = _data(n=4)
    x = torch.from_numpy(X1)  # x1 = x2: the diagonal, where the correlation is 1, is included
    k = _kernel(cls, 2, activation, 1.1, 0.3)

    def kernel_of(raw_w, raw_b):
        w = k.raw_weight_variance_constraint.transform(raw_w)
        b = k.raw_bias_variance_constraint.transform(raw_b)
        nngp, ntk = layer_kernels(x, x, 2, activation, w, b, ntk=cls is NTKKernel)
        return ntk if cls is NTKKernel else nngp

    raw = (
        k.raw_weight_variance.detach().clone().requires_grad_(True),
        k.raw_bias_variance.detach().clone().requires_grad_(True),
    )
    assert torch.autograd.gradcheck(kernel_of, raw, eps=1e-6, atol=1e-6, rtol=1e-5)
    loss = k(x).to_dense().sum()
    loss.backward()
    assert (
        torch.isfinite(k.raw_weight_variance.grad).all()
        and torch.isfinite(k.raw_bias_variance.grad).all()
    )


def test_hyperparameters_are_raw_with_positive_constraints():
    k = NNGPKernel(weight_variance=2.0, bias_variance=0.5)
    names = dict(k.named_parameters())
    assert set(names) == {"raw_weight_variance", "raw_bias_variance"}
    assert isinstance(k.raw_weight_variance_constraint, Positive)
    assert isinstance(k.raw_bias_variance_constraint, Positive)
    assert k.weight_variance.item() == pytest.approx(
        2.0
    ) and k.bias_variance.item() == pytest.approx(0.5)
    k.weight_variance = 3.0
    assert k.weight_variance.item() == pytest.approx(3.0)
    assert NNGPKernel(bias_variance=0.0).bias_variance.item() == 0.0
    k2 = pickle.loads(pickle.dumps(k))
    x = torch.randn(4, 2)
    torch.testing.assert_close(k2(x).to_dense(), k(x).to_dense())


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"depth": -1}, ValueError),
        ({"depth": 1.5}, ValueError),
        ({"activation": "swish"}, ValueError),
        ({"activation": 3}, TypeError),
        ({"weight_variance": -1.0}, ValueError),
        ({"bias_variance": float("nan")}, ValueError),
    ],
)
def test_bad_arguments_raise(kwargs, error):
    with pytest.raises(error):
        NNGPKernel(**kwargs)


def test_float32_close_to_float64():
    X1, X2 = _data()
    for cls in (NNGPKernel, NTKKernel):
        k64 = _kernel(cls, 3, "relu", 1.5, 0.1)(
            torch.from_numpy(X1), torch.from_numpy(X2)
        ).to_dense()
        k32 = _kernel(cls, 3, "relu", 1.5, 0.1, torch.float32)(
            torch.from_numpy(X1).float(), torch.from_numpy(X2).float()
        ).to_dense()
        assert k32.dtype == torch.float32
        torch.testing.assert_close(k32.double(), k64, rtol=1e-4, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_cuda_matches_cpu(activation):
    X1, X2 = _data()
    for cls in (NNGPKernel, NTKKernel):
        cpu = _kernel(cls, 2, activation, 1.5, 0.1)
        gpu = _kernel(cls, 2, activation, 1.5, 0.1).cuda()
        x1, x2 = torch.from_numpy(X1), torch.from_numpy(X2)
        out = gpu(x1.cuda(), x2.cuda()).to_dense()
        assert out.device.type == "cuda"
        torch.testing.assert_close(out.cpu(), cpu(x1, x2).to_dense(), rtol=1e-8, atol=1e-10)


def _blocked_vs_unblocked(x, depth, activation, ntk, w0, b0, block_rows):
    """Kernel and its gradients in (w, b) against a random cotangent, by both paths."""
    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    nngp, tangent = layer_kernels(x, x, depth, activation, w, b, ntk=ntk)
    ref = tangent if ntk else nngp
    cotangent = torch.randn(ref.shape, dtype=ref.dtype, generator=torch.Generator().manual_seed(1))
    ref_grads = torch.autograd.grad(ref, (w, b), cotangent)
    w2, b2 = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    got = blocked_layer_kernel(x, depth, activation, w2, b2, ntk=ntk, block_rows=block_rows)
    assert got.shape == ref.shape and got.grad_fn is not None
    got_grads = torch.autograd.grad(got, (w2, b2), cotangent)
    return (got.detach(), ref.detach()), list(zip(got_grads, ref_grads))


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("ntk", [False, True])
def test_blocked_kernel_matches_unblocked_values_and_gradients(activation, depth, ntk):
    # 19 rows in blocks of 4: five blocks, the last one short; the diagonal (correlation 1,
    # where relu's NTK is most sensitive) falls at a different offset in each block
    x = torch.from_numpy(_data(n=19)[0])
    w0, b0 = torch.tensor([[1.3]], dtype=torch.float64), torch.tensor([[0.2]], dtype=torch.float64)
    (got, ref), grads = _blocked_vs_unblocked(x, depth, activation, ntk, w0, b0, block_rows=4)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)
    for g, r in grads:
        assert g.shape == r.shape == (1, 1)
        torch.testing.assert_close(g, r, rtol=1e-12, atol=0)


@pytest.mark.parametrize("activation, ntk", [("relu", True), ("tanh", False)])
def test_blocked_kernel_matches_unblocked_with_batch_shape(activation, ntk):
    X = _data(n=13)[0]
    x = torch.from_numpy(np.stack([X, 2 * X - 1]))
    w0 = torch.tensor([[[1.0]], [[2.0]]], dtype=torch.float64)
    b0 = torch.tensor([[[0.1]], [[0.5]]], dtype=torch.float64)
    (got, ref), grads = _blocked_vs_unblocked(x, 2, activation, ntk, w0, b0, block_rows=3)
    assert got.shape == (2, 13, 13)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)
    for g, r in grads:
        assert g.shape == r.shape == (2, 1, 1)
        torch.testing.assert_close(g, r, rtol=1e-12, atol=0)
    # unbatched inputs broadcast against batched variances
    (got, ref), grads = _blocked_vs_unblocked(x[0], 1, activation, ntk, w0, b0, block_rows=5)
    assert got.shape == (2, 13, 13)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)
    for g, r in grads:
        torch.testing.assert_close(g, r, rtol=1e-12, atol=0)


@pytest.mark.parametrize("cls", [NNGPKernel, NTKKernel])
def test_large_training_matrix_takes_the_blocked_path(cls, monkeypatch):
    X1, X2 = _data(n=30)
    x = torch.from_numpy(X1)
    monkeypatch.setattr(_recursions, "BLOCK_MIN_BYTES", 8 * 20 * 20)
    monkeypatch.setattr(_recursions, "BLOCK_BYTES", 8 * 30 * 7)  # 7 rows a block
    k = _kernel(cls, 2, "relu", 1.1, 0.3)
    got = k(x).to_dense()
    assert type(got.grad_fn).__name__ == "_BlockedKernelBackward"
    got.backward(torch.ones_like(got))
    grads = k.raw_weight_variance.grad.clone(), k.raw_bias_variance.grad.clone()
    k.zero_grad()
    # below the threshold, or x1 != x2: the plain recursion
    monkeypatch.setattr(_recursions, "BLOCK_MIN_BYTES", 2**62)
    ref = k(x).to_dense()
    assert type(ref.grad_fn).__name__ != "_BlockedKernelBackward"
    ref.backward(torch.ones_like(ref))
    torch.testing.assert_close(got.detach(), ref.detach(), rtol=1e-12, atol=0)
    torch.testing.assert_close(grads[0], k.raw_weight_variance.grad, rtol=1e-12, atol=0)
    torch.testing.assert_close(grads[1], k.raw_bias_variance.grad, rtol=1e-12, atol=0)
    monkeypatch.setattr(_recursions, "BLOCK_MIN_BYTES", 8 * 20 * 20)
    with torch.no_grad():
        torch.testing.assert_close(k(x).to_dense(), ref.detach(), rtol=1e-12, atol=0)
        assert k(x, torch.from_numpy(np.vstack([X1[:25], X2]))).to_dense().shape == (30, 30)
