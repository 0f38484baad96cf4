"""The training engine's direct fused-Adam step is the same update as torch.optim's step."""

import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

import neurostat.engine.solvers._fused as fused
from neurostat import NeuralClassifier, NeuralRegressor
from neurostat.engine.networks import MLP

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _grads(module, seed):
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["adam", "adam_l2", "adamw_groups"])
def test_direct_fused_step_is_bitwise_torch_step(kind, dtype):
    torch.manual_seed(0)
    a = MLP(5, (7, 3), 2).to(dtype)
    b = copy.deepcopy(a)

    def make(module):
        w = [layer.weight for layer in module.layers]
        rest = [layer.bias for layer in module.layers]
        if kind == "adamw_groups":
            groups = [{"params": [x], "weight_decay": 0.1 * (i + 1)} for i, x in enumerate(w)]
            return torch.optim.AdamW(groups + [{"params": rest, "weight_decay": 0.0}],
                                     lr=1e-2, betas=(0.8, 0.99), eps=1e-7, fused=True)
        wd = 0.05 if kind == "adam_l2" else 0.0
        return torch.optim.Adam(module.parameters(), lr=1e-2, weight_decay=wd, fused=True)

    opt_a, opt_b = make(a), make(b)
    stepper = fused.Stepper(opt_b)
    for t in range(12):
        _grads(a, t)
        _grads(b, t)
        if t == 6:  # a schedule changing the learning rate between steps is honoured
            for o in (opt_a, opt_b):
                for g in o.param_groups:
                    g["lr"] = 3e-3
        opt_a.step()
        stepper()
    assert stepper.calls  # the direct path was taken after the first step
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    for p, q in zip(a.parameters(), b.parameters()):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(opt_a.state[p][key], opt_b.state[q][key])


def test_other_optimizers_go_through_step():
    module = MLP(3, (), 1)
    opt = torch.optim.RMSprop(module.parameters(), lr=1e-2)
    stepper = fused.Stepper(opt)
    _grads(module, 0)
    stepper()
    assert stepper.calls is False
    before = [p.detach().clone() for p in module.parameters()]
    _grads(module, 1)
    stepper()
    assert all(not torch.equal(p, q) for p, q in zip(before, module.parameters()))


@pytest.mark.parametrize("solver", ["adam", "adamw"])
def test_fit_with_direct_step_equals_fit_through_torch(solver, monkeypatch):
    X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    kw = dict(hidden_layer_sizes=(8,), solver=solver, alpha=1e-3, max_iter=5, random_state=0)
    fast = NeuralClassifier(**kw).fit(X, y)
    monkeypatch.setattr(fused.Stepper, "_prepare", lambda self: False)
    slow = NeuralClassifier(**kw).fit(X, y)
    np.testing.assert_array_equal(fast.predict_proba(X), slow.predict_proba(X))
    np.testing.assert_array_equal(fast.loss_curve_, slow.loss_curve_)


def test_partial_fit_keeps_using_the_optimizer_state():
    X, y = make_classification(n_samples=200, n_features=4, random_state=1)
    y = y.astype(float)
    a = NeuralRegressor((5,), random_state=0)
    b = NeuralRegressor((5,), random_state=0, max_iter=3, tol=0.0)
    for _ in range(3):
        a.partial_fit(X, y)
    b.fit(X, y)
    # three partial_fit epochs continue one optimizer: same number of Adam steps as 3 epochs
    assert a._solver.optimizer.state[next(iter(a.module_.parameters()))]["step"] == \
        b._solver.optimizer.state[next(iter(b.module_.parameters()))]["step"]
