"""The solver: one explicit training loop for every estimator.

Two paths share this module:

* :func:`train_minibatch` - stochastic solvers (sgd, adam, adamw, rmsprop, adagrad). The data
  live on the device already; each epoch draws one permutation, gathers X and y once, and the
  minibatches are views (slices) of the gathered tensors. The epoch loss is accumulated on the
  device and read once per epoch, so there is one host synchronisation per epoch, not per step.
  With dropout (any rate > 0) the objective is an expectation over the masks: the epoch loss
  is noisy and constant-step iterates hover around the minimizer instead of converging to it.
  A full fit (not ``partial_fit``, not ``early_stopping``) then keeps the polynomial-decay
  average of its per-epoch iterates (Shamir & Zhang 2013, eta = 3: epoch t gets weight
  ``(eta + 1) / (t + eta)``, which forgets the transient and averages roughly the last
  quarter of the epochs), stops when that average moves by less than ``tol`` (largest
  absolute change of a parameter, in the solver's coordinates) over ``n_iter_no_change``
  epochs rather than on the noisy loss, and returns the averaged parameters (weights that the
  L1 prox left at exactly zero stay zero). Without dropout nothing changes. This makes a
  linear model with input dropout converge to the adaptive-ridge solution of Wager, Wang &
  Liang (2013) with the default Adam settings (``tests/test_dropout.py``).
* :func:`train_lbfgs` - full-batch L-BFGS-B (scipy) on float64, with the inputs standardized
  inside the solver (a reparametrization that leaves the penalized objective unchanged and makes
  the problem well conditioned) and, when ``l1_ratio > 0``, the weights split into positive and
  negative parts with bounds so that exact zeros are reached.
"""

import contextlib
import copy
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController

from .networks import MLP

STOCHASTIC_SOLVERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SOLVERS = STOCHASTIC_SOLVERS + ("lbfgs",)


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss."""


@dataclass
class History:
    """What a fit leaves behind: loss curve, validation scores and the stopping state."""

    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    best_loss: float = np.inf
    best_validation_score: float = -np.inf
    best_state: dict = None
    no_improvement: int = 0
    n_iter: int = 0
    t: int = 0  # samples seen, for the invscaling schedule
    converged: bool = False
    averaging: bool = False  # iterates are averaged (dropout); see train_minibatch
    averaged_change: float = None  # change of the average over the last block of epochs
    # lbfgs: the first layer holds a fresh initialization, which the solver reads as weights on
    # the standardized inputs (see train_lbfgs); cleared after the first run
    init_standardized: bool = False


@contextlib.contextmanager
def num_threads(n):
    """Temporarily set torch's intra-op threads (restored afterwards)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


_CONTROLLER = []


def blas_threads(n):
    """Limit the BLAS libraries' threads (numpy/scipy) to ``n``; None leaves them alone.

    One ``ThreadpoolController`` is kept: building one (what ``threadpool_limits`` does on every
    call) scans the loaded libraries, 3 ms, a sixth of a 10,000-row GLM fit.
    """
    if n is None:
        return contextlib.nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=n)


def _fused_kw(device):
    # fused kernels exist on CUDA and, since torch 2.4, on CPU for Adam/AdamW/SGD
    return {"fused": True}


def make_optimizer(est, module, penalty):
    """Build the torch optimizer named by ``est.solver`` with scikit-learn's parameter names."""
    weights = module.penalized_parameters()
    ids = {id(w) for w in weights}
    others = [p for p in module.parameters() if id(p) not in ids and p.requires_grad]
    weights = [w for w in weights if w.requires_grad]
    lr = est.learning_rate_init
    solver = est.solver
    device = next(module.parameters()).device
    if solver == "adamw":
        mult = penalty._mults("l2", len(module.penalized_parameters()))
        groups = [{"params": [w], "weight_decay": penalty.l2 * c}
                  for w, c in zip(module.penalized_parameters(), mult) if w.requires_grad]
        groups.append({"params": others, "weight_decay": 0.0})
    else:
        groups = [{"params": weights + others}]
    kw = _fused_kw(device)
    if solver == "sgd":
        nesterov = bool(est.nesterovs_momentum and est.momentum > 0)
        make = lambda **k: torch.optim.SGD(groups, lr=lr, momentum=est.momentum,  # noqa: E731
                                           nesterov=nesterov, **k)
    elif solver in ("adam", "adamw"):
        cls = torch.optim.Adam if solver == "adam" else torch.optim.AdamW
        make = lambda **k: cls(groups, lr=lr, betas=(est.beta_1, est.beta_2),  # noqa: E731
                               eps=est.epsilon, **k)
    elif solver == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, eps=est.epsilon)
    else:
        return torch.optim.Adagrad(groups, lr=lr, eps=est.epsilon)
    try:
        return make(**kw)
    except (RuntimeError, TypeError, ValueError):
        return make()


class _Stepper:
    """``optimizer.step()``, calling the fused Adam/AdamW kernel directly once the state exists.

    ``torch.optim.Adam(fused=True).step()`` spends about 50 us per call on a small network of
    which the kernel is 10: the rest is the Python wrapper (hooks, grouping tensors by device,
    scalar conversions), paid ~2,000 times in a 10-epoch fit. Once the first step has created
    the state, the same two calls the wrapper ends in (``_foreach_add_`` on the step counters,
    then ``_fused_adam_`` / ``_fused_adamw_``) are made directly on cached lists: bit-for-bit
    the same update (``tests/test_training.py``), a third of the time. Any other optimizer, or
    a configuration this path does not cover (amsgrad, maximize, grad scaling, a missing
    gradient, mixed devices or dtypes), goes through ``optimizer.step()``.
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.calls = None
        self.params = [p for g in optimizer.param_groups for p in g["params"]]

    def zero_grad(self):
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


def _diverged(epoch, solver, lr):
    return DivergenceError(
        f"Training diverged: the loss became non-finite at epoch {epoch}. Lower "
        f"learning_rate_init (now {lr:g}) for solver={solver!r}, standardize the inputs, or add "
        "a penalty (alpha > 0)."
    )


def train_minibatch(est, module, family, penalty, data, optimizer, history, n_epochs,
                    validation=None, score_fn=None, check_stop=True, loss_scale=1.0):
    """Run ``n_epochs`` epochs of minibatch training; return the history.

    ``data`` is ``(X, y, w)`` on the device (``w`` may be None); ``validation`` the same for the
    held-out part used by ``early_stopping``, scored by ``score_fn(module, X, y, w)``.
    ``loss_scale`` converts the objective optimized here to the one reported in the loss curve
    (``scale^2`` for a gaussian target standardized inside the solver).
    """
    X, y, w = data
    n = X.shape[0]
    bs = min(200, n) if est.batch_size == "auto" else min(int(est.batch_size), n)
    weights = module.penalized_parameters()
    add_l2 = penalty.l2 > 0 and est.solver != "adamw"
    wsum = float(n) if w is None else float(w.sum())
    # estimators may transform each training minibatch (e.g. image augmentation, on the device)
    augment = getattr(est, "_augment_batch", None)
    progress = None
    if est.verbose:
        from tqdm.auto import tqdm
        progress = tqdm(total=n_epochs, desc=type(est).__name__, leave=False)
    # dropout: average the iterates of a whole fit (not of partial_fit's single epochs, not
    # with early stopping, which restores its own best state); see the module docstring
    averaged = None
    if _has_dropout(module) and check_stop and validation is None:
        averaged = [p.detach().clone() for p in module.parameters()]
        snapshot = [a.clone() for a in averaged]
    history.averaged_change = None
    history.averaging = averaged is not None
    stepper = _Stepper(optimizer)
    epoch = 0
    try:
        for _ in range(n_epochs):
            module.train()
            if est.shuffle:
                perm = torch.randperm(n, device=X.device)
                Xe, ye = X[perm], y[perm]
                we = None if w is None else w[perm]
            else:
                Xe, ye, we = X, y, w
            total = torch.zeros((), device=X.device, dtype=X.dtype)
            for start in range(0, n, bs):
                xb, yb = Xe[start:start + bs], ye[start:start + bs]
                wb = None if we is None else we[start:start + bs]
                if augment is not None:
                    xb = augment(xb)
                loss = family.loss(module(xb), yb, wb)
                obj = loss + penalty.smooth(weights) if add_l2 else loss
                stepper.zero_grad()
                obj.backward()
                stepper()
                if penalty.l1 > 0:
                    penalty.prox_(weights, optimizer.param_groups[0]["lr"], optimizer)
                total += loss.detach() * (xb.shape[0] if wb is None else wb.sum())
            history.n_iter += 1
            history.t += n
            epoch_loss = total.item() / wsum
            if not np.isfinite(epoch_loss):
                raise _diverged(history.n_iter, est.solver, optimizer.param_groups[0]["lr"])
            epoch_loss = (epoch_loss + float(penalty.value(weights))) * loss_scale
            history.loss_curve.append(epoch_loss)
            if averaged is not None:
                epoch += 1
                rate = (_AVERAGING_ETA + 1) / (epoch + _AVERAGING_ETA)
                with torch.no_grad():
                    for a, p in zip(averaged, module.parameters(), strict=True):
                        a.lerp_(p, rate)
                if epoch % est.n_iter_no_change == 0:
                    # parameters, not the noisy loss, tell when the average has settled
                    history.averaged_change = max(
                        float((a - s).abs().max()) for a, s in zip(averaged, snapshot,
                                                                     strict=True))
                    snapshot = [a.clone() for a in averaged]
            if validation is not None:
                module.eval()
                with torch.no_grad():
                    history.validation_scores.append(float(score_fn(module, *validation)))
            if progress is not None:
                progress.update(1)
                post = {"loss": f"{epoch_loss:.5g}"}
                if history.validation_scores:
                    post["val"] = f"{history.validation_scores[-1]:.4g}"
                progress.set_postfix(post)
            if est.solver == "sgd" and est.learning_rate == "invscaling":
                for g in optimizer.param_groups:
                    g["lr"] = est.learning_rate_init / (history.t + 1) ** est.power_t
            if check_stop and _should_stop(est, module, optimizer, history, validation):
                history.converged = True
                break
    finally:
        if progress is not None:
            progress.close()
        module.eval()
    if averaged is not None:
        pen = {id(w) for w in weights}
        with torch.no_grad():
            for a, p in zip(averaged, module.parameters(), strict=True):
                if penalty.l1 > 0 and id(p) in pen:
                    a = torch.where(p == 0, torch.zeros_like(a), a)  # keep the L1 zeros exact
                p.copy_(a)
    return history


#: polynomial-decay averaging (Shamir & Zhang 2013): weight (eta + 1) / (t + eta) on epoch t
_AVERAGING_ETA = 3


def _has_dropout(module):
    return any(float(getattr(module, name, 0.0) or 0.0) > 0
               for name in ("dropout", "input_dropout"))


def _should_stop(est, module, optimizer, history, validation):
    """scikit-learn's rule: ``n_iter_no_change`` epochs without an improvement of ``tol``.

    The loss, or the validation score with early stopping; for iterate-averaged fits (dropout)
    a change of the averaged parameters below ``tol`` over that many epochs.
    """
    if validation is not None:
        score = history.validation_scores[-1]
        if score < history.best_validation_score + est.tol:
            history.no_improvement += 1
        else:
            history.no_improvement = 0
        if score > history.best_validation_score:
            history.best_validation_score = score
            history.best_state = copy.deepcopy(module.state_dict())
    elif history.averaging:
        change, history.averaged_change = history.averaged_change, None
        if change is None or change >= est.tol:
            return False
        history.no_improvement = est.n_iter_no_change + 1  # "adaptive" reads it below
    else:
        loss = history.loss_curve[-1]
        if loss > history.best_loss - est.tol:
            history.no_improvement += 1
        else:
            history.no_improvement = 0
        history.best_loss = min(history.best_loss, loss)
    if history.no_improvement <= est.n_iter_no_change:
        return False
    if est.learning_rate == "adaptive":
        lr = optimizer.param_groups[0]["lr"]
        if lr > 1e-6:
            for g in optimizer.param_groups:
                g["lr"] = lr / 5.0
            history.no_improvement = 0
            return False
    return True


# ----------------------------------------------------------------------------- L-BFGS


# rows per block of the one-pass-per-block reductions below: their temporaries stay in cache
_ROW_BLOCK = 16384


def _standardizer(X, w):
    """Weighted column means and standard deviations (1 where a column is constant).

    Two passes (mean, then centered squares), the second in row blocks: 2x faster than
    ``X.std(0)`` at a million rows and as accurate (no ``E[x^2] - m^2`` cancellation).
    """
    n = X.shape[0]
    p = None if w is None else w / w.sum()
    m = X.mean(0) if p is None else p @ X
    acc = torch.zeros_like(m)
    for i in range(0, n, _ROW_BLOCK):
        D = X[i:i + _ROW_BLOCK] - m
        D.mul_(D)
        acc += D.sum(0) if p is None else p[i:i + _ROW_BLOCK] @ D
    s = torch.sqrt(acc / n if p is None else acc)
    s = torch.where(s > 1e-12 * (1 + m.abs()), s, torch.ones_like(s))
    return m, s


def train_lbfgs(est, module, family, penalty, data, history):
    """Full-batch L-BFGS-B on the penalized objective; the module is float64 on entry."""
    X, y, w = data
    # networks whose first layer is a Linear map expose it as ``input_linear``; the solver then
    # works in standardized coordinates (others, e.g. conv nets, are optimized as they are)
    first = getattr(module, "input_linear", None)
    m, s = _standardizer(X, w) if first is not None else (None, None)
    if first is None or not first.weight.requires_grad:
        # a frozen first layer stays bit-for-bit as it is
        first = None
        m = torch.zeros(X.shape[1:], dtype=X.dtype, device=X.device)
        s = torch.ones_like(m)
    Xt = torch.sub(X, m).div_(s) if first is not None else X
    # standardized coordinates: eta = W x + b = (W s) x~ + (b + W m)
    if first is not None and not history.init_standardized:
        with torch.no_grad():
            first.bias += first.weight @ m
            first.weight *= s
    # A fresh initialization is read in standardized coordinates: the scheme's variances speak of
    # unit-variance inputs, and inputs on the scale of hundreds would otherwise start eta (and a
    # Poisson or logistic objective) far out of range (statsmodels' IRLS starts at the null
    # model for the same reason).
    history.init_standardized = False
    inv_s = (1.0 / s)[None, :] if first is not None else torch.ones((), dtype=X.dtype,
                                                                      device=X.device)
    weights = module.penalized_parameters()
    scales = [inv_s] + [None] * (len(weights) - 1)
    l2_scales = [inv_s] + [torch.ones((), dtype=X.dtype, device=X.device)] * (len(weights) - 1)
    params = [p for p in module.parameters() if p.requires_grad]
    pen_ids = {id(p) for p in weights}
    scale_of = {id(p): sc for p, sc in zip(weights, scales)}
    split = penalty.l1 > 0
    # the optimization vector: one block per parameter, two (plus, minus) per split weight
    blocks = []
    for p in params:
        is_split = split and id(p) in pen_ids
        sc = scale_of.get(id(p))
        l1w = None
        if is_split:
            l1w = (penalty.l1 * (sc.expand_as(p) if sc is not None else torch.ones_like(p)))
            l1w = l1w.detach().cpu().numpy().ravel()
        blocks.append((p, is_split, l1w))

    def pack():
        parts, bounds = [], []
        for p, is_split, _ in blocks:
            v = p.detach().cpu().numpy().ravel().astype(np.float64)
            if is_split:
                parts += [np.maximum(v, 0), np.maximum(-v, 0)]
                bounds += [(0, None)] * (2 * v.size)
            else:
                parts.append(v)
                bounds += [(None, None)] * v.size
        return np.concatenate(parts), bounds

    def unpack(x):
        i = 0
        with torch.no_grad():
            for p, is_split, _ in blocks:
                k = p.numel()
                v = x[i:i + k]
                if is_split:
                    v = v - x[i + k:i + 2 * k]
                    i += k
                i += k
                p.copy_(torch.from_numpy(np.ascontiguousarray(v)).view_as(p))

    def fun(x):
        unpack(x)
        for p in params:
            p.grad = None
        loss = family.loss(module(Xt), y, w) + penalty.smooth(weights, l2_scales)
        loss.backward()
        f = float(loss.detach())
        grads = []
        for p, is_split, l1w in blocks:
            g = p.grad.detach().cpu().numpy().ravel().astype(np.float64)
            if is_split:
                grads += [g + l1w, -g + l1w]
            else:
                grads.append(g)
        if split:
            k, acc = 0, 0.0
            for p, is_split, l1w in blocks:
                n = p.numel()
                if is_split:
                    acc += float(l1w @ (x[k:k + n] + x[k + n:k + 2 * n]))
                    k += n
                k += n
            f += acc
        if not np.isfinite(f):
            return 1e300, np.zeros_like(x)
        return f, np.concatenate(grads)

    x0, bounds = pack()
    f0, _ = fun(x0)
    if f0 >= 1e300:
        raise _diverged(0, "lbfgs", float("nan"))
    curve = history.loss_curve

    def record(intermediate_result):
        curve.append(float(intermediate_result.fun))

    module.train()
    # Small problems: waking 2 threads for each tiny L-BFGS-B evaluation costs more than the
    # work (GLM fits 4-6x faster on one thread at n <= 1e5, p = 20, measured on a busy machine).
    one_thread = X.numel() < 5_000_000 and X.device.type == "cpu"
    with num_threads(1 if one_thread else None), blas_threads(1 if one_thread else None):
        polish = _can_polish(module, family, params, split)
        # a GLM stops L-BFGS-B 100x earlier and lets Newton steps finish (they need a gradient
        # of ~1e-7, not ~1e-9); anything else, or a refused polish, runs to the tight tolerance
        res = _run_lbfgs(fun, x0, bounds, record, est, loose=polish)
        if polish and res.status in (0, 2) and np.max(np.abs(res.jac)) < 100 * est.tol:
            unpack(res.x)
            if _newton_polish(module, family, penalty, (Xt, y, w), weights, l2_scales, params):
                res.x, _ = pack()
                res.fun, res.jac = fun(res.x)
                curve.append(float(res.fun))
        if polish and res.status != 1 and np.max(np.abs(res.jac)) > est.tol * 1e-5:
            nit = res.nit
            res = _run_lbfgs(fun, res.x, bounds, record, est)
            res.nit += nit
    module.eval()
    return _finish_lbfgs(est, module, res, unpack, first, m, s, history, curve)


# Newton polish: GLMs of families with closed-form curvature, at most this many parameters
_POLISH_MAX_PARAMS = 2000


def _can_polish(module, family, params, split):
    """A GLM of a family that offers Newton steps: no hidden layer, no dropout, no L1."""
    if (split or not isinstance(module, MLP) or module.n_hidden_layers != 0
            or _has_dropout(module) or not family.newton or not family.additive):
        return False
    k = sum(p.numel() for p in params)
    return 0 < k <= _POLISH_MAX_PARAMS


def _newton_polish(module, family, penalty, data, weights, l2_scales, params, max_steps=8):
    """Safeguarded Newton steps on a GLM's convex objective, in place; True when one was taken.

    L-BFGS-B ends where its line search can no longer see the objective fall, which resolves a
    GLM's minimizer to about sqrt(machine epsilon) relative: two fits of the same problem (say,
    weights versus repeated rows) then differ in the 8th digit, and coefficients agree with
    statsmodels' IRLS to 1e-5..1e-8 only. Newton steps are driven by the gradient, which is
    exact to rounding, so one or two of them take the coefficients to the minimizer to near
    machine precision. The Hessian is formed as IRLS forms it, ``Z' W Z`` with ``Z = [x, 1]``
    and ``W`` the per-row curvature of the loss in eta (autograd, k passes for k outputs),
    plus the ridge's. A step is kept only when it lowers the gradient without raising the
    objective beyond rounding; a Hessian that is not positive definite (separable data, an
    unidentified model) stops the polish and leaves the L-BFGS answer.
    """
    X, y, w = data
    layer = module.output_layer
    d = X.shape[1]
    k = layer.weight.shape[0]
    names = {id(p): name for name, p in module.named_parameters()}
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    # where each entry of the (k, d + 1) block [W, b] sits in theta (-1: frozen)
    offsets = dict(zip([id(p) for p in params], np.cumsum([0] + sizes[:-1]).tolist()))
    pos = -np.ones((k, d + 1), dtype=np.int64)
    if id(layer.weight) in offsets:
        pos[:, :d] = offsets[id(layer.weight)] + np.arange(k * d).reshape(k, d)
    if id(layer.bias) in offsets:
        pos[:, d] = offsets[id(layer.bias)] + np.arange(k)
    pos = pos.ravel()
    keep = torch.as_tensor(np.flatnonzero(pos >= 0), device=X.device)
    pos_kept = torch.as_tensor(pos[pos >= 0], device=X.device)

    def tensors(theta):
        return {names[id(p)]: t.view(sh) for p, t, sh in zip(params, theta.split(sizes), shapes)}

    def pen(theta):
        tt = tensors(theta)
        return penalty.smooth([tt.get(names[id(p)], p) for p in weights], l2_scales)

    def value_and_grad(theta):
        theta = theta.detach().requires_grad_(True)
        val = family.loss(torch.func.functional_call(module, tensors(theta), (X,)), y, w)
        val = val + pen(theta)
        (g,) = torch.autograd.grad(val, theta)
        return float(val.detach()), g.detach()

    def hessian(theta):
        with torch.no_grad():
            eta = torch.func.functional_call(module, tensors(theta), (X,))
        eta = eta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(family.loss(eta, y, w), eta, create_graph=True)
        rows = [torch.autograd.grad(g[:, a].sum(), eta, retain_graph=a < k - 1)[0]
                for a in range(k)]  # rows[a][:, b] = d2 loss / d eta_a d eta_b, per row
        H_block = torch.empty(k, d + 1, k, d + 1, dtype=X.dtype, device=X.device)
        for a in range(k):
            for b in range(a, k):
                blk = _weighted_gram(X, rows[a][:, b])
                H_block[a, :, b, :] = blk
                H_block[b, :, a, :] = blk.T
        H_block = H_block.reshape(k * (d + 1), k * (d + 1))
        P = theta.numel()
        H = torch.zeros(P, P, dtype=X.dtype, device=X.device)
        H[pos_kept[:, None], pos_kept[None, :]] = H_block[keep[:, None], keep[None, :]]
        if penalty.l2 > 0:
            H += torch.autograd.functional.hessian(pen, theta.detach())
        return H

    theta = torch.cat([p.detach().reshape(-1) for p in params])
    fval, g = value_and_grad(theta)
    moved = False
    # one Hessian, at the L-BFGS answer: that close to the minimizer (gradient ~1e-9) the
    # chord iteration contracts by ~1e-6 per step, and the n x p^2 product is the costly part
    L, info = torch.linalg.cholesky_ex(hessian(theta))
    if int(info) != 0:
        return False
    for _ in range(max_steps):
        gnorm = float(g.abs().max())
        if gnorm == 0.0:
            break
        step = torch.cholesky_solve(-g[:, None], L)[:, 0]
        new = theta + step
        fnew, gnew = value_and_grad(new)
        if not (np.isfinite(fnew) and fnew <= fval + 1e-13 * (1.0 + abs(fval))
                and float(gnew.abs().max()) < gnorm):
            break
        theta, fval, g, moved = new, fnew, gnew, True
        if float(step.abs().max()) <= 1e-14 * (1.0 + float(theta.abs().max())):
            break
    if moved:
        with torch.no_grad():
            for p, t in zip(params, theta.split(sizes)):
                p.copy_(t.view_as(p))
    return moved


def _weighted_gram(X, r):
    """``Z' diag(r) Z`` for ``Z = [X, 1]``, without forming Z.

    On the CPU through numpy's BLAS in row blocks: torch's matmul is 3x slower for this shape
    (a sum over a million rows of a 21 x 21 product: 270 ms against 80 ms for numpy on the
    whole, 50 ms in blocks that stay in cache).
    """
    d = X.shape[1]
    if X.device.type != "cpu":
        Z = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype, device=X.device)], dim=1)
        return (Z * r[:, None]).T @ Z
    Xn, rn = X.detach().numpy(), r.detach().numpy()
    G = np.zeros((d + 1, d + 1))
    for i in range(0, Xn.shape[0], _ROW_BLOCK):
        Xb = Xn[i:i + _ROW_BLOCK]
        G[:d, :d] += (Xb * rn[i:i + _ROW_BLOCK, None]).T @ Xb
    v = Xn.T @ rn
    G[:d, d] = G[d, :d] = v
    G[d, d] = rn.sum()
    return torch.from_numpy(G)


def _run_lbfgs(fun, x0, bounds, record, est, loose=False):
    return minimize(
        fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, callback=record,
        options={"maxiter": est.max_iter, "maxfun": est.max_fun,
                 "gtol": est.tol * (1e-3 if loose else 1e-5),
                 "ftol": 0.0, "maxcor": 20},
    )


def _finish_lbfgs(est, module, res, unpack, first, m, s, history, curve):
    """Load the solution, fold the standardization back, record convergence."""
    unpack(res.x)
    if first is not None:
        with torch.no_grad():
            first.weight /= s
            first.bias -= first.weight @ m
    history.n_iter += int(res.nit)
    if not curve:
        curve.append(float(res.fun))
    if not np.isfinite(res.fun) or res.fun >= 1e300:
        raise _diverged(history.n_iter, "lbfgs", float("nan"))
    history.converged = bool(res.status == 0 or (res.status == 2 and
                                                 np.max(np.abs(res.jac)) < 100 * est.tol))
    if res.status == 1:
        warnings.warn(
            f"lbfgs stopped after max_iter={est.max_iter} iterations (or max_fun={est.max_fun} "
            "evaluations) before converging; increase max_iter or standardize the inputs.",
            ConvergenceWarning, stacklevel=6,
        )
    history.lbfgs_result = res
    return history
