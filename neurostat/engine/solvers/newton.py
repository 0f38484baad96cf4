"""The Newton finish: safeguarded Newton steps that take a convex fit to its minimizer.

L-BFGS-B ends where its line search can no longer see the objective fall, which resolves a
GLM's minimizer to about sqrt(machine epsilon) relative: two fits of the same problem (say,
weights versus repeated rows) then differ in the 8th digit, and coefficients agree with
statsmodels' IRLS to 1e-5..1e-8 only. Newton steps are driven by the gradient, which is exact
to rounding, so one or two of them take the coefficients to the minimizer to near machine
precision. One Newton finish serves every family that offers one (``family.newton``): the GLMs
(IRLS Hessian ``Z' W Z``, ``W`` the family's per-row information in eta) and the Cox model
(the family's risk-set information), both with the ridge's curvature added.
"""

from dataclasses import dataclass

import numpy as np
import torch

from .base import unpack

# rows per block of the one-pass-per-block reductions below: their temporaries stay in cache
ROW_BLOCK = 16384
#: rows per block of :func:`weighted_gram`'s syrk (a 4096 x d buffer stays in L2)
SYRK_BLOCK = 4096


@dataclass
class NewtonResult:
    """What :meth:`NewtonFinish.run` returns: the final point, its objective and gradient, and
    the number of steps taken (0 when the first one was refused)."""

    theta: torch.Tensor
    value: float
    gradient: torch.Tensor
    n_steps: int


class NewtonFinish:
    """Safeguarded Newton steps on a flat parameter vector, with one Hessian.

    Parameters
    ----------
    value_and_grad : callable
        ``theta -> (float objective, gradient tensor)``.
    hessian : callable
        ``theta -> (p, p) tensor``, the objective's Hessian (positive definite at a strict
        minimizer).
    max_steps : int, default=8

    Notes
    -----
    The call order of :meth:`run`: the Hessian is formed once, at the starting point, and
    Cholesky-factored (a factorization that fails - separable data, an unidentified model -
    returns at once with ``n_steps=0``); then chord steps ``theta - H^-1 g`` follow, each kept
    only when it lowers the gradient's sup-norm without raising the objective beyond rounding
    (``1e-13`` relative), until the step is below ``1e-14`` relative or ``max_steps`` are
    taken. That close to the minimizer (an L-BFGS gradient of ~1e-7) the chord iteration
    contracts by ~1e-6 per step, and the Hessian is the costly part (``n p^2``).
    """

    def __init__(self, value_and_grad, hessian, max_steps=8):
        self.value_and_grad = value_and_grad
        self.hessian = hessian
        self.max_steps = max_steps

    def run(self, theta, start=None):
        """Newton steps from ``theta``; returns a :class:`NewtonResult`.

        ``start``: ``(objective, gradient)`` at ``theta`` where the caller has them (L-BFGS's
        last evaluation), saving a pass over the data.
        """
        fval, g = self.value_and_grad(theta) if start is None else start
        steps = 0
        L, info = torch.linalg.cholesky_ex(self.hessian(theta))
        if int(info) != 0:
            return NewtonResult(theta, fval, g, 0)
        for _ in range(self.max_steps):
            gnorm = float(g.abs().max())
            if gnorm == 0.0:
                break
            step = torch.cholesky_solve(-g[:, None], L)[:, 0]
            new = theta + step
            fnew, gnew = self.value_and_grad(new)
            if not (np.isfinite(fnew) and fnew <= fval + 1e-13 * (1.0 + abs(fval))
                    and float(gnew.abs().max()) < gnorm):
                break
            theta, fval, g, steps = new, fnew, gnew, steps + 1
            if float(step.abs().max()) <= 1e-14 * (1.0 + float(theta.abs().max())):
                break
        return NewtonResult(theta, fval, g, steps)


def weighted_gram(X, r):
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
    if (rn >= 0).all():
        # the scaled rows' self-product, a' a: BLAS syrk (half the flops), into one buffer
        # (25% faster at 1e6 x 20 than the general product of fresh temporaries)
        sq = np.sqrt(rn)
        a = np.empty((min(SYRK_BLOCK, Xn.shape[0]), d))
        for i in range(0, Xn.shape[0], SYRK_BLOCK):
            Xb = Xn[i:i + SYRK_BLOCK]
            ab = a[:Xb.shape[0]]
            np.multiply(Xb, sq[i:i + SYRK_BLOCK, None], out=ab)
            G[:d, :d] += ab.T @ ab
    else:  # an observed information can be negative somewhere
        for i in range(0, Xn.shape[0], ROW_BLOCK):
            Xb = Xn[i:i + ROW_BLOCK]
            G[:d, :d] += (Xb * rn[i:i + ROW_BLOCK, None]).T @ Xb
    v = Xn.T @ rn
    G[:d, d] = G[d, :d] = v
    G[d, d] = rn.sum()
    return torch.from_numpy(G)


class LinearNewton:
    """The objective, gradient and Hessian of a network without hidden layer, for Newton.

    ``eta = X W' + b`` (one linear layer), the objective ``family.loss(eta) + penalty`` (a
    weighted mean plus the ridge), as a function of the flat vector of the layer's trainable
    parameters (a frozen bias, as Cox's, is held fixed).

    Parameters
    ----------
    module : torch.nn.Module
        Its ``output_layer`` is the one linear layer.
    family : neurostat.engine.families.Family
    penalty : neurostat.engine.penalties.ElasticNetPenalty
    data : tuple (X, y, w) or (X, y, w, offset) of float64 tensors
    l2_scales : list of tensors
        Per-weight scales inside the ridge (the solver's standardization).
    """

    def __init__(self, module, family, penalty, data, l2_scales):
        self.module, self.family, self.penalty = module, family, penalty
        self.X, self.y, self.w, self.offset = unpack(data)
        self.l2_scales = l2_scales
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.names = {id(p): name for name, p in module.named_parameters()}
        self.sizes = [p.numel() for p in self.params]
        layer = module.output_layer
        d, k = self.X.shape[1], layer.weight.shape[0]
        self.k = k
        # where each entry of the (k, d + 1) block [W, b] sits in theta (-1: frozen)
        offsets = dict(zip([id(p) for p in self.params],
                           np.cumsum([0] + self.sizes[:-1]).tolist()))
        pos = -np.ones((k, d + 1), dtype=np.int64)
        if id(layer.weight) in offsets:
            pos[:, :d] = offsets[id(layer.weight)] + np.arange(k * d).reshape(k, d)
        if id(layer.bias) in offsets:
            pos[:, d] = offsets[id(layer.bias)] + np.arange(k)
        self.pos = pos
        # an ancillary predictor (an intercept-only output, e.g. NB's log alpha) of the module
        anc = getattr(module, "ancillary", None)
        self.anc_pos = (None if anc is None or id(anc) not in offsets
                        else offsets[id(anc)] + np.arange(anc.numel()))
        flat = pos.ravel()
        self.keep = torch.as_tensor(np.flatnonzero(flat >= 0), device=self.X.device)
        self.pos_kept = torch.as_tensor(flat[flat >= 0], device=self.X.device)

    def theta(self):
        """The current trainable parameters as one flat vector."""
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def load(self, theta):
        """Write ``theta`` back into the module's parameters."""
        with torch.no_grad():
            for p, t in zip(self.params, theta.split(self.sizes)):
                p.copy_(t.view_as(p))

    def _tensors(self, theta):
        return {self.names[id(p)]: t.view(p.shape)
                for p, t in zip(self.params, theta.split(self.sizes))}

    def _pen(self, theta):
        tt = self._tensors(theta)
        weights = self.module.penalized_parameters()
        return self.penalty.smooth([tt.get(self.names[id(p)], p) for p in weights],
                                   self.l2_scales)

    def _eta(self, theta):
        eta = torch.func.functional_call(self.module, self._tensors(theta), (self.X,))
        return eta if self.offset is None else eta + self.offset

    def value_and_grad(self, theta):
        """The objective and its gradient at ``theta``."""
        theta = theta.detach().requires_grad_(True)
        val = self.family.loss(self._eta(theta), self.y, self.w) + self._pen(theta)
        (g,) = torch.autograd.grad(val, theta)
        return float(val.detach()), g.detach()

    def hessian(self, theta):
        """The objective's Hessian: the family's information (IRLS form for an additive
        family, its own for a coupled one) over the total weight, plus the ridge's."""
        X = self.X
        with torch.no_grad():
            eta = self._eta(theta)
        wsum = float(X.shape[0] if self.w is None else self.w.sum())
        k, d = self.k, X.shape[1]
        P = theta.numel()
        if self.family.additive and self.anc_pos is None:
            W = self.family.information_eta(eta, self.y, self.w)  # (n, k, k), weights in
            block = torch.empty(k, d + 1, k, d + 1, dtype=X.dtype, device=X.device)
            for a in range(k):
                for b in range(a, k):
                    blk = weighted_gram(X, W[:, a, b])
                    block[a, :, b, :] = blk
                    block[b, :, a, :] = blk.T
            block = block.reshape(k * (d + 1), k * (d + 1))
            H = torch.zeros(P, P, dtype=X.dtype, device=X.device)
            H[self.pos_kept[:, None], self.pos_kept[None, :]] = \
                block[self.keep[:, None], self.keep[None, :]]
        else:  # a coupled family, or ancillary predictors: G' W G with G = d eta / d theta
            G = torch.zeros(X.shape[0], eta.shape[1], P, dtype=X.dtype, device=X.device)
            Z = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype, device=X.device)], 1)
            for a in range(k):
                cols = self.pos[a] >= 0
                G[:, a, torch.as_tensor(self.pos[a][cols])] = Z[:, torch.as_tensor(cols)]
            for j, q in enumerate([] if self.anc_pos is None else self.anc_pos):
                G[:, k + j, int(q)] = 1.0
            H = self.family.information(G, eta, self.y, self.w)
        H = H / wsum
        if self.penalty.l2 > 0:
            H = H + torch.autograd.functional.hessian(self._pen, theta.detach())
        return H
