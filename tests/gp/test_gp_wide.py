"""Random finite networks against the infinite-width kernels (Monte Carlo, tolerances from SEs)."""

import math

import numpy as np
import pytest
import torch
from sklearn.utils import check_random_state

from neurostat.gp import NNGPKernel, NTKKernel, empirical_kernel, sample_wide_networks, wide

X5 = np.array([[0.3, -1.0], [1.2, 0.4], [-0.7, 0.9], [0.0, 0.2], [2.0, -0.5]])


def _limit(cls, depth, activation, w, b, X=X5):
    k = cls(depth=depth, activation=activation).double()
    k.weight_variance, k.bias_variance = w, b
    x = torch.from_numpy(X)
    return k(x).to_dense().detach()


def _z_scores(X, width, depth, activation, w, b, n, kind, seed):
    est, sq = empirical_kernel(
        X, width, depth, activation, w, b, n_networks=n, kind=kind, random_state=seed
    )
    se = ((sq - est**2) / (n - 1)).sqrt()
    cls = NTKKernel if kind == "ntk" else NNGPKernel
    return (est - _limit(cls, depth, activation, w, b, X)) / se


@pytest.mark.parametrize("width", [1, 4, 64])
@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_depth_one_covariance_equals_nngp_kernel_at_every_width(width, activation):
    """E[f(x) f(x')] = K1(x, x') exactly for one hidden layer, whatever the width."""
    z = _z_scores(X5, width, 1, activation, 1.5, 0.2, 20000, "nngp", seed=1)
    # 15 distinct entries, each a mean of 20,000 draws: |z| < 4.5 fails with prob. < 1e-4
    assert z.abs().max() < 4.5


@pytest.mark.parametrize("width", [2, 32])
def test_depth_one_tangent_kernel_equals_ntk_in_expectation(width):
    """NTK parametrization: the expected empirical NTK of one hidden layer is T1 at any width."""
    z = _z_scores(X5, width, 1, "relu", 1.5, 0.2, 5000, "ntk", seed=2)
    assert z.abs().max() < 4.5


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_depth_two_kernels_converge_with_width(activation):
    """Two hidden layers: a finite-width bias in the covariance (and NTK), vanishing with width."""
    narrow = _z_scores(X5, 1, 2, activation, 1.5, 0.2, 100_000, "nngp", seed=3)
    wide = _z_scores(X5, 128, 2, activation, 1.5, 0.2, 2000, "nngp", seed=4)
    assert narrow.abs().max() > 8  # the width-1 bias is many standard errors away from zero
    assert wide.abs().max() < 4.5  # at width 128 it is below Monte-Carlo resolution
    wide_ntk = _z_scores(X5, 128, 2, activation, 1.5, 0.2, 500, "ntk", seed=5)
    assert wide_ntk.abs().max() < 4.5


@pytest.mark.parametrize("width", [4, 16])
def test_depth_one_excess_kurtosis_matches_closed_form(width):
    """f = sum of `width` iid terms: excess kurtosis 3 w^2 Var(relu(z)^2) / (width K^2).

    Here z ~ N(0, q) is a hidden unit's pre-activation.
    """
    w, b, x = 1.5, 0.2, X5[:1]
    q = b + w * (x**2).sum() / x.shape[1]
    k = b + w * q / 2
    expected = 3 * w**2 * (5 * q**2 / 4) / (width * k**2)  # Var(relu(z)^2) = 3q^2/2 - q^2/4
    f = sample_wide_networks(x, width, 1, "relu", w, b, n_networks=400_000, random_state=6)[
        :, 0
    ].numpy()
    batches = f.reshape(40, -1)
    m2 = (batches**2).mean(1)  # the prior mean is 0: raw moments
    kurt = (batches**4).mean(1) / m2**2 - 3
    se = kurt.std(ddof=1) / math.sqrt(len(kurt))
    assert (
        abs(kurt.mean() - expected) < 4 * se + 0.02 * expected
    )  # 2%: small-batch bias of the ratio
    assert se < 0.15 * expected  # the check has power


def test_empirical_ntk_matches_autograd_jacobian():
    """The back-propagation formula for one net's NTK equals <J(x), J(x')> from autograd."""
    X = torch.from_numpy(X5)
    width, depth, w, b, seed = 7, 2, 1.3, 0.4, 11
    ntk, _ = empirical_kernel(
        X, width, depth, "tanh", w, b, n_networks=1, kind="ntk", random_state=seed
    )
    # the same draws by the documented layout: network 0 is row 0 of randn(G, P) from a
    # generator seeded by SeedSequence([seed, 0]); W1, b1, W2, b2, v, b_out in turn, N(0, 1)
    base = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence([base, 0]).generate_state(1)[0]))
    fans = [2] + [width] * depth
    shapes = [s for fan in fans[:-1] for s in ((fan, width), (1, width))] + [(width, 1), (1, 1)]
    n_par = sum(math.prod(s) for s in shapes)
    row = torch.randn(wide._group_size(2, width, depth), n_par, dtype=torch.float64, generator=gen)
    params, offset = [], 0
    for shape in shapes:
        params.append(row[0, offset : offset + math.prod(shape)].reshape(shape))
        offset += math.prod(shape)
    assert offset == n_par

    def net(*ps):
        h = X
        for i, fan in enumerate(fans):
            z = math.sqrt(w / fan) * h @ ps[2 * i] + math.sqrt(b) * ps[2 * i + 1]
            h = torch.tanh(z) if i < depth else z
        return h[:, 0]

    jac = torch.autograd.functional.jacobian(net, tuple(params))
    J = torch.cat([j.reshape(X.shape[0], -1) for j in jac], dim=1)
    torch.testing.assert_close(ntk, J @ J.T, rtol=1e-10, atol=1e-12)


def test_sampler_shapes_seeds_and_global_rng():
    state = torch.random.get_rng_state()
    a = sample_wide_networks(X5, 10, depth=2, n_networks=7, random_state=0)
    b = sample_wide_networks(X5, 10, depth=2, n_networks=7, random_state=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a.shape == (7, 5) and a.dtype == torch.float64
    assert torch.equal(a, b)
    assert not torch.equal(a, sample_wide_networks(X5, 10, depth=2, n_networks=7, random_state=1))
    f32 = sample_wide_networks(
        torch.tensor(X5, dtype=torch.float32), 10, n_networks=3, random_state=0
    )
    assert f32.dtype == torch.float32


def test_sampler_networks_do_not_depend_on_n_networks_or_blocks():
    """Network i of a seed is the same in a run of 10 networks (one block) and of 2,000 (many
    blocks): the first networks, and those of a later block, are equal to the last bit."""
    blocks = wide._blocks(torch.from_numpy(X5), 3000, 1, 2000)
    assert len(blocks) > 2 and blocks[0] != (0, 2000)  # the large run is blocked
    many = sample_wide_networks(X5, 3000, depth=1, n_networks=2000, random_state=0)
    assert many.shape == (2000, 5) and torch.isfinite(many).all()
    few = sample_wide_networks(X5, 3000, depth=1, n_networks=10, random_state=0)
    assert torch.equal(many[:10], few)
    start = blocks[1][0] + 3  # inside the second block, not at a group boundary
    mid = sample_wide_networks(X5, 3000, depth=1, n_networks=start + 5, random_state=0)
    assert torch.equal(many[start : start + 5], mid[start:])
    # the Monte-Carlo kernels are averages over the same networks
    k10, _ = empirical_kernel(X5, 40, 2, "tanh", 1.3, 0.2, n_networks=10, random_state=3)
    f = sample_wide_networks(X5, 40, 2, "tanh", 1.3, 0.2, n_networks=10, random_state=3)
    torch.testing.assert_close(k10, f.T @ f / 10, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"width": 0}, ValueError),
        ({"depth": -1}, ValueError),
        ({"n_networks": 0}, ValueError),
        ({"weight_variance": -1.0}, ValueError),
        ({"X": [1.0, 2.0]}, ValueError),
        ({"X": [[np.nan, 1.0]]}, ValueError),
        ({"activation": "swish"}, ValueError),
    ],
)
def test_sampler_bad_arguments_raise(kwargs, error):
    args = {"X": X5, "width": 3, **kwargs}
    with pytest.raises(error):
        sample_wide_networks(**args)
    with pytest.raises(ValueError):
        empirical_kernel(X5, 3, kind="gp")
