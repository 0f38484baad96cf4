"""Full-batch L-BFGS-B (scipy) in float64, with the inputs standardized inside the solver.

Standardizing the inputs is a reparametrization that leaves the penalized objective unchanged
(the ridge is applied to the original weights through per-column scales) and makes the problem
well conditioned. With ``l1_ratio > 0`` the weights are split into positive and negative parts
with bounds so that exact zeros are reached. A network without hidden layer of a family that
offers Newton steps stops L-BFGS 100x earlier and finishes with the
:class:`~neurostat.engine.solvers.newton.NewtonFinish`.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning

from ..._utils import blas_threads, num_threads
from ..networks import MLP
from .base import diverged, has_dropout, shifted, unpack
from .newton import ROW_BLOCK, LinearNewton, NewtonFinish

#: the Newton finish is used for networks with at most this many trainable parameters
NEWTON_MAX_PARAMS = 2000


@dataclass(frozen=True)
class LBFGSConfig:
    """The numeric settings of the L-BFGS solver (scikit-learn's names).

    ``tol`` sets the projected-gradient stop ``1e-5 tol`` (``1e-3 tol`` before a Newton
    finish); ``max_iter`` and ``max_fun`` bound iterations and objective evaluations.
    """

    max_iter: int = 200
    max_fun: int = 15000
    tol: float = 1e-4


def standardizer(X, w):
    """Weighted column means and standard deviations (1 where a column is constant).

    Two passes (mean, then centered squares), the second in row blocks: 2x faster than
    ``X.std(0)`` at a million rows and as accurate (no ``E[x^2] - m^2`` cancellation).
    """
    n = X.shape[0]
    p = None if w is None else w / w.sum()
    m = X.mean(0) if p is None else p @ X
    acc = torch.zeros_like(m)
    for i in range(0, n, ROW_BLOCK):
        D = X[i:i + ROW_BLOCK] - m
        D.mul_(D)
        acc += D.sum(0) if p is None else p[i:i + ROW_BLOCK] @ D
    s = torch.sqrt(acc / n if p is None else acc)
    s = torch.where(s > 1e-12 * (1 + m.abs()), s, torch.ones_like(s))
    return m, s


class _SplitVector:
    """The optimization vector: one block per trainable parameter, two (plus, minus, both
    bounded below by 0) per weight under an L1 penalty, with the L1 weights of each entry."""

    def __init__(self, module, penalty, first_scale):
        weights = module.penalized_parameters()
        self.params = [p for p in module.parameters() if p.requires_grad]
        pen_ids = {id(p) for p in weights}
        scale_of = {id(weights[0]): first_scale} if first_scale is not None else {}
        self.split = penalty.l1 > 0
        self.blocks = []
        for p in self.params:
            is_split = self.split and id(p) in pen_ids
            l1w = None
            if is_split:
                sc = scale_of.get(id(p))
                l1w = penalty.l1 * (sc.expand_as(p) if sc is not None else torch.ones_like(p))
                l1w = l1w.detach().cpu().numpy().ravel()
            self.blocks.append((p, is_split, l1w))

    def pack(self):
        """The current parameters as ``(x, bounds)``."""
        parts, bounds = [], []
        for p, is_split, _ in self.blocks:
            v = p.detach().cpu().numpy().ravel().astype(np.float64)
            if is_split:
                parts += [np.maximum(v, 0), np.maximum(-v, 0)]
                bounds += [(0, None)] * (2 * v.size)
            else:
                parts.append(v)
                bounds += [(None, None)] * v.size
        return np.concatenate(parts), bounds

    def unpack(self, x):
        """Write ``x`` into the parameters."""
        i = 0
        with torch.no_grad():
            for p, is_split, _ in self.blocks:
                k = p.numel()
                v = x[i:i + k]
                if is_split:
                    v = v - x[i + k:i + 2 * k]
                    i += k
                i += k
                p.copy_(torch.from_numpy(np.ascontiguousarray(v)).view_as(p))

    def gradient(self):
        """The gradient in ``x`` from the parameters' ``.grad`` (L1 weights added)."""
        grads = []
        for p, is_split, l1w in self.blocks:
            g = p.grad.detach().cpu().numpy().ravel().astype(np.float64)
            grads += [g + l1w, -g + l1w] if is_split else [g]
        return np.concatenate(grads)

    def l1_value(self, x):
        """The L1 part of the objective at ``x``."""
        if not self.split:
            return 0.0
        k, acc = 0, 0.0
        for p, is_split, l1w in self.blocks:
            n = p.numel()
            if is_split:
                acc += float(l1w @ (x[k:k + n] + x[k + n:k + 2 * n]))
                k += n
            k += n
        return acc


class LBFGSSolver:
    """Full-batch L-BFGS-B on the penalized objective; the module is float64 on entry.

    Parameters
    ----------
    module : torch.nn.Module
        Networks whose first layer is a Linear map expose it as ``input_linear``; the solver
        then works in standardized coordinates (others, e.g. conv nets, are optimized as they
        are; a frozen first layer stays bit-for-bit as it is).
    family : neurostat.engine.families.Family
    penalty : neurostat.engine.penalties.ElasticNetPenalty
    config : LBFGSConfig
    """

    def __init__(self, module, family, penalty, config):
        self.module, self.family, self.penalty, self.config = module, family, penalty, config
        self._first = None  # (x0, objective, gradient) of the check before scipy's first call

    def solve(self, data, history):
        """Minimize from the module's current parameters; returns ``history``.

        ``data`` is ``(X, y, w)`` or ``(X, y, w, offset)`` (float64 tensors; the offset is
        added to the module's output). Sets ``history.loss_curve`` (objective
        per iteration), ``n_iter``, ``converged`` and ``lbfgs_result`` (scipy's result). A
        fresh initialization (``history.init_standardized``) is read in standardized
        coordinates: the scheme's variances speak of unit-variance inputs, and inputs on the
        scale of hundreds would otherwise start eta (and a Poisson or logistic objective) far
        out of range (statsmodels' IRLS starts at the null model for the same reason).
        """
        X, y, w, offset = unpack(data)
        module = self.module
        first, m, s = self._standardize(X, w, history)
        history.init_standardized = False
        Xt = torch.sub(X, m).div_(s) if first is not None else X
        one = torch.ones((), dtype=X.dtype, device=X.device)
        inv_s = (1.0 / s)[None, :] if first is not None else one
        weights = module.penalized_parameters()
        self._l2_scales = [inv_s] + [one] * (len(weights) - 1)
        self._vec = _SplitVector(module, self.penalty, inv_s)
        self._data = (Xt, y, w, offset)
        x0, self._bounds = self._vec.pack()
        f0, g0 = self._fun(x0)
        if f0 >= 1e300:
            raise diverged(0, "lbfgs", float("nan"))
        self._first = (x0.copy(), f0, g0)  # scipy's first evaluation is at x0: reuse it
        curve = history.loss_curve
        module.train()
        # Small problems: waking 2 threads for each tiny L-BFGS-B evaluation costs more than
        # the work (GLM fits 4-6x faster on one thread at n <= 1e5, p = 20, measured on a busy
        # machine). numpy's OpenBLAS keeps one thread at any size: its idle threads spin
        # after each call and take the cores from torch's (the 1e6 x 20 logistic fit and
        # inference: 1.30 s with both BLAS threads, 1.06 s with one; interleaved medians).
        one_thread = X.numel() < 5_000_000 and X.device.type == "cpu"
        with num_threads(1 if one_thread else None), blas_threads(1):
            res = self._minimize(x0, curve)
        module.eval()
        self._vec.unpack(res.x)
        if first is not None:
            with torch.no_grad():
                first.weight /= s
                first.bias -= first.weight @ m
        return self._record(res, history, curve)

    def _standardize(self, X, w, history):
        """``(first layer, mean, sd)``; folds the standardization into the first layer."""
        first = getattr(self.module, "input_linear", None)
        if first is None or not first.weight.requires_grad:
            m = torch.zeros(X.shape[1:], dtype=X.dtype, device=X.device)
            return None, m, torch.ones_like(m)
        m, s = standardizer(X, w)
        if not history.init_standardized:
            # standardized coordinates: eta = W x + b = (W s) x~ + (b + W m)
            with torch.no_grad():
                first.bias += first.weight @ m
                first.weight *= s
        return first, m, s

    def _fun(self, x):
        """Objective and gradient at ``x`` (scipy's ``jac=True`` convention)."""
        vec, module = self._vec, self.module
        vec.unpack(x)
        first, self._first = self._first, None
        if first is not None and np.array_equal(x, first[0]):
            return first[1], first[2].copy()
        for p in vec.params:
            p.grad = None
        Xt, y, w, offset = self._data
        loss = self.family.loss(shifted(module(Xt), offset), y, w) + self.penalty.smooth(
            module.penalized_parameters(), self._l2_scales)
        loss.backward()
        f = float(loss.detach()) + vec.l1_value(x)
        if not np.isfinite(f):
            return 1e300, np.zeros_like(x)
        return f, vec.gradient()

    def _value_and_grad(self, theta):
        """:meth:`_fun` on a torch vector (the Newton finish's objective: the same as
        :meth:`LinearNewton.value_and_grad`, by the module's own forward and backward)."""
        f, g = self._fun(theta.detach().cpu().numpy().astype(np.float64))
        return f, torch.from_numpy(g).to(theta.device)

    def _run(self, x0, curve, loose=False):
        c = self.config

        def record(intermediate_result):  # scipy passes the result object by this name
            curve.append(float(intermediate_result.fun))

        return minimize(
            self._fun, x0, jac=True, method="L-BFGS-B", bounds=self._bounds, callback=record,
            options={"maxiter": c.max_iter, "maxfun": c.max_fun,
                     "gtol": c.tol * (1e-3 if loose else 1e-5), "ftol": 0.0, "maxcor": 20},
        )

    def _minimize(self, x0, curve):
        """L-BFGS-B, with the Newton finish where it applies (a loose L-BFGS stop first; a
        refused finish runs L-BFGS on to the tight tolerance)."""
        newton = self._newton_applies()
        res = self._run(x0, curve, loose=newton)
        tol = self.config.tol
        if newton and res.status in (0, 2) and np.max(np.abs(res.jac)) < 100 * tol:
            self._vec.unpack(res.x)
            lin = LinearNewton(self.module, self.family, self.penalty, self._data,
                               self._l2_scales)
            # without an L1 split x is theta (the trainable parameters, in the same order):
            # L-BFGS's last objective and gradient start the finish, whose last ones end it
            start = (float(res.fun), torch.from_numpy(np.array(res.jac, dtype=np.float64)))
            out = NewtonFinish(self._value_and_grad, lin.hessian).run(lin.theta(), start)
            if out.n_steps:
                lin.load(out.theta)
                res.x, _ = self._vec.pack()
                res.fun, res.jac = out.value, out.gradient.numpy().copy()
                curve.append(float(res.fun))
        if newton and res.status != 1 and np.max(np.abs(res.jac)) > tol * 1e-5:
            nit = res.nit
            res = self._run(res.x, curve)
            res.nit += nit
        return res

    def _newton_applies(self):
        """A network without hidden layer of a family with Newton steps; no dropout, no L1."""
        module = self.module
        if (self._vec.split or not isinstance(module, MLP) or module.n_hidden_layers != 0
                or has_dropout(module) or not self.family.newton):
            return False
        return 0 < sum(p.numel() for p in self._vec.params) <= NEWTON_MAX_PARAMS

    def _record(self, res, history, curve):
        history.n_iter += int(res.nit)
        if not curve:
            curve.append(float(res.fun))
        if not np.isfinite(res.fun) or res.fun >= 1e300:
            raise diverged(history.n_iter, "lbfgs", float("nan"))
        tol = self.config.tol
        history.converged = bool(res.status == 0 or (res.status == 2 and
                                                     np.max(np.abs(res.jac)) < 100 * tol))
        if res.status == 1:
            warnings.warn(
                f"lbfgs stopped after max_iter={self.config.max_iter} iterations (or "
                f"max_fun={self.config.max_fun} evaluations) before converging; increase "
                "max_iter or standardize the inputs.", ConvergenceWarning, stacklevel=6,
            )
        history.lbfgs_result = res
        return history
