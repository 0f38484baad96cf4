"""The one place that calls PyTorch's private fused-Adam kernels (they may change between
releases; everything else goes through ``torch.optim``)."""

import torch


class Stepper:
    """``optimizer.step()``, calling the fused Adam/AdamW kernel directly once the state exists.

    ``torch.optim.Adam(fused=True).step()`` spends about 50 us per call on a small network of
    which the kernel is 10: the rest is the Python wrapper (hooks, grouping tensors by device,
    scalar conversions), paid ~2,000 times in a 10-epoch fit. Once the first step has created
    the state, the same two calls the wrapper ends in (``_foreach_add_`` on the step counters,
    then ``_fused_adam_`` / ``_fused_adamw_``) are made directly on cached lists: bit-for-bit
    the same update (``tests/engine/test_training.py``), a third of the time. Any other
    optimizer, or a configuration this path does not cover (amsgrad, maximize, grad scaling, a
    missing gradient, mixed devices or dtypes), goes through ``optimizer.step()``.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.calls = None
        self.params = [p for g in optimizer.param_groups for p in g["params"]]

    def zero_grad(self):
        """Drop every parameter's gradient (``set_to_none``)."""
        for p in self.params:
            p.grad = None

    def __call__(self):
        calls = self.calls
        if calls is None:
            self.optimizer.step()
            self.calls = self._prepare()
            return
        if calls is False or any(p.grad is None for p in self.params):
            self.optimizer.step()
            return
        for fn, params, exp_avgs, exp_avg_sqs, steps, group, beta1, beta2 in calls:
            torch._foreach_add_(steps, 1)
            fn(params, [p.grad for p in params], exp_avgs, exp_avg_sqs, [], steps,
               amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2,
               weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
               grad_scale=None, found_inf=None)

    def _prepare(self):
        opt = self.optimizer
        if not isinstance(opt, (torch.optim.Adam, torch.optim.AdamW)):
            return False
        decoupled_default = isinstance(opt, torch.optim.AdamW)
        calls = []
        for group in opt.param_groups:
            params = group["params"]
            if not params:
                continue
            decoupled = group.get("decoupled_weight_decay", decoupled_default)
            fn = getattr(torch, "_fused_adamw_" if decoupled else "_fused_adam_", None)
            if (fn is None or not group.get("fused") or group.get("amsgrad")
                    or group.get("maximize") or group.get("differentiable")
                    or isinstance(group["lr"], torch.Tensor)
                    or len({(p.device, p.dtype) for p in params}) != 1):
                return False
            state = [opt.state.get(p, {}) for p in params]
            if not all("exp_avg" in st and torch.is_tensor(st.get("step")) for st in state):
                return False
            beta1, beta2 = (float(b) for b in group["betas"])
            calls.append((fn, list(params), [st["exp_avg"] for st in state],
                          [st["exp_avg_sq"] for st in state], [st["step"] for st in state],
                          group, beta1, beta2))
        return calls
