"""The elastic-net penalty against its closed form, and the adaptive solvers' diagonal metric
against the optimizers' second moments recomputed here from the gradients.

Written to kill the mutants of ``neurostat/engine/penalties.py`` that survived
``make mutation`` (tests/MUTATION.md): the reported penalty ``value``, the ridge part with
scales and multipliers, the change of coordinates of a standardized gaussian target, and the
step divisor of Adam, AdamW, RMSprop and Adagrad.
"""

import numpy as np
import pytest
import torch

from neurostat.engine.penalties import ElasticNetPenalty, _diagonal_metric


def _weights(seed=0, shapes=((3, 4), (4, 2), (2, 1))):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g, dtype=torch.float64) for s in shapes]


def _closed_form(weights, alpha, l1_ratio, l1_mult=None, l2_mult=None):
    """alpha * (l1_ratio * sum c1 |W| + 0.5 (1 - l1_ratio) sum c2 W^2), in numpy."""
    n = len(weights)
    c1 = np.ones(n) if l1_mult is None else np.asarray(l1_mult, float)
    c2 = np.ones(n) if l2_mult is None else np.asarray(l2_mult, float)
    ws = [w.numpy() for w in weights]
    l1 = sum(c * np.abs(w).sum() for c, w in zip(c1, ws))
    l2 = sum(c * (w**2).sum() for c, w in zip(c2, ws))
    return alpha * (l1_ratio * l1 + 0.5 * (1 - l1_ratio) * l2)


@pytest.mark.parametrize("alpha, l1_ratio", [(0.3, 0.0), (0.3, 1.0), (0.7, 0.25), (2, 0)])
def test_value_is_the_elastic_net_closed_form(alpha, l1_ratio):
    w = _weights()
    pen = ElasticNetPenalty(alpha, l1_ratio)
    assert pen.l1 == pytest.approx(alpha * l1_ratio, rel=1e-15)
    assert pen.l2 == pytest.approx(alpha * (1 - l1_ratio), rel=1e-15)
    value = pen.value(w)
    assert isinstance(value, torch.Tensor) and not value.requires_grad
    assert float(value) == pytest.approx(_closed_form(w, alpha, l1_ratio), rel=1e-12)
    # the smooth part alone is the ridge term, differentiable
    smooth = pen.smooth([x.clone().requires_grad_(True) for x in w])
    if l1_ratio == 1.0:
        assert smooth == 0.0
    else:
        assert float(smooth.detach()) == pytest.approx(_closed_form(w, alpha * (1 - l1_ratio), 0.0),
                                              rel=1e-12)
        assert smooth.requires_grad


def test_value_and_smooth_apply_the_per_weight_multipliers():
    w = _weights(1)
    l1_mult, l2_mult = [2.0, 0.5, 3.0], [0.25, 4.0, 1.5]
    pen = ElasticNetPenalty(0.4, 0.6, l1_mult=l1_mult, l2_mult=l2_mult)
    assert pen.multipliers("l1", 3) == l1_mult and pen.multipliers("l2", 3) == l2_mult
    assert ElasticNetPenalty(0.4, 0.6).multipliers("l1", 3) == [1.0] * 3
    assert ElasticNetPenalty(0.4, 0.6, l2_mult=l2_mult).multipliers("l1", 2) == [1.0] * 2
    assert ElasticNetPenalty(0.4, 0.6, l1_mult=l1_mult).multipliers("l2", 2) == [1.0] * 2
    assert float(pen.value(w)) == pytest.approx(
        _closed_form(w, 0.4, 0.6, l1_mult, l2_mult), rel=1e-12)
    assert float(pen.smooth(w)) == pytest.approx(
        _closed_form(w, 0.4 * 0.4, 0.0, None, l2_mult), rel=1e-12)


def test_smooth_with_scales_penalizes_the_scaled_weights():
    w = _weights(2)
    g = torch.Generator().manual_seed(3)
    scales = [torch.rand(s.shape[0], 1, generator=g, dtype=torch.float64) + 0.5 for s in w]
    pen = ElasticNetPenalty(0.9, 0.2, l2_mult=[1.0, 2.0, 0.5])
    expected = 0.5 * 0.9 * 0.8 * sum(
        c * ((x.numpy() * s.numpy()) ** 2).sum() for x, s, c in zip(w, scales, [1, 2, 0.5]))
    assert float(pen.smooth(w, scales)) == pytest.approx(expected, rel=1e-12)
    assert float(pen.smooth(w, None)) == pytest.approx(
        _closed_form(w, 0.9 * 0.8, 0.0, None, [1, 2, 0.5]), rel=1e-12)
    assert ElasticNetPenalty(0.0, 0.0).smooth(w) == 0.0
    assert float(ElasticNetPenalty(0.0, 0.0).value(w)) == 0.0


def test_constructor_stores_floats():
    pen = ElasticNetPenalty(1, 0)
    assert type(pen.alpha) is float and type(pen.l1_ratio) is float
    assert pen.alpha == 1.0 and pen.l1_ratio == 0.0
    assert pen.l1_mult is None and pen.l2_mult is None
    default = ElasticNetPenalty()
    assert default.alpha == 0.0 and default.l1_ratio == 0.0 and default.l1 == 0.0


@pytest.mark.parametrize("n_weights", [1, 3])
@pytest.mark.parametrize("scale", [0.3, 2.5])
def test_standardized_target_penalty_is_the_same_objective(n_weights, scale):
    """With the output layer divided by ``scale``, ``scale^2`` times the transformed penalty
    at the transformed weights is the original penalty at the original weights."""
    w = _weights(4, shapes=((3, 4), (4, 2), (2, 1))[3 - n_weights:])
    pen = ElasticNetPenalty(0.8, 0.35)
    std = pen.for_standardized_target(scale, n_weights)
    assert isinstance(std, ElasticNetPenalty)
    assert std.alpha == pen.alpha and std.l1_ratio == pen.l1_ratio
    assert std.l1_mult == pytest.approx([1 / scale**2] * (n_weights - 1) + [1 / scale])
    assert std.l2_mult == pytest.approx([1 / scale**2] * (n_weights - 1) + [1.0])
    w_std = w[:-1] + [w[-1] / scale]
    assert scale**2 * float(std.value(w_std)) == pytest.approx(float(pen.value(w)), rel=1e-12)


def _optimizer_after_steps(cls, steps=3, **kw):
    g = torch.Generator().manual_seed(5)
    w = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    # two groups, the weight in the second: the metric must read that group's eps
    opt = cls([{"params": [b], "eps": 0.5}, {"params": [w]}], lr=1e-3, **kw)
    grads = [torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(steps)]
    for gr in grads:
        opt.zero_grad()
        w.grad = gr.clone()
        b.grad = torch.zeros_like(b)
        opt.step()
    return opt, w, [x.numpy() for x in grads]


@pytest.mark.parametrize("cls", [torch.optim.Adam, torch.optim.AdamW])
def test_adam_metric_is_the_bias_corrected_root_second_moment(cls):
    eps, beta2 = 1e-3, 0.99
    opt, w, grads = _optimizer_after_steps(cls, eps=eps, betas=(0.9, beta2))
    v = np.zeros((4, 3))
    for gr in grads:
        v = beta2 * v + (1 - beta2) * gr**2
    expected = np.sqrt(v / (1 - beta2 ** len(grads))) + eps
    np.testing.assert_allclose(_diagonal_metric(opt, w).numpy(), expected, rtol=1e-12)


def test_rmsprop_and_adagrad_metrics_are_their_root_accumulators():
    eps = 1e-3
    opt, w, grads = _optimizer_after_steps(torch.optim.RMSprop, eps=eps, alpha=0.9)
    sq = np.zeros((4, 3))
    for gr in grads:
        sq = 0.9 * sq + 0.1 * gr**2
    np.testing.assert_allclose(_diagonal_metric(opt, w).numpy(), np.sqrt(sq) + eps, rtol=1e-12)
    opt, w, grads = _optimizer_after_steps(torch.optim.Adagrad, eps=eps)
    total = sum(gr**2 for gr in grads)
    np.testing.assert_allclose(_diagonal_metric(opt, w).numpy(), np.sqrt(total) + eps,
                               rtol=1e-12)


def test_plain_steps_have_unit_metric():
    opt, w, _ = _optimizer_after_steps(torch.optim.SGD, momentum=0.9)
    assert _diagonal_metric(opt, w) == 1.0
    assert _diagonal_metric(None, w) == 1.0
    fresh = torch.zeros(2, requires_grad=True)
    adam = torch.optim.Adam([fresh], lr=0.1)
    assert _diagonal_metric(adam, fresh) == 1.0  # no step taken yet: no state
    # an optimizer state the metric does not know (Adamax keeps exp_inf): plain steps
    opt, w, _ = _optimizer_after_steps(torch.optim.Adamax, eps=1e-3)
    assert _diagonal_metric(opt, w) == 1.0
