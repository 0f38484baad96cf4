"""Matrix-free GP solves for training sets beyond the exact solver: kernel products by row
blocks, a pivoted-Cholesky preconditioner, and linear_operator's (gpytorch's) conjugate
gradients with a per-column relative-residual tolerance checked explicitly."""

import math
import warnings

import torch
from linear_operator.utils.linear_cg import linear_cg

from ._recursions import layer_kernels

__all__ = ["KernelOperator", "pivoted_cholesky", "solve"]

_BLOCK_BYTES = {"cpu": 2**24, "cuda": 2**28}  # per block of kernel rows: 16 MiB / 256 MiB


class KernelOperator:
    """``K + noise I`` of the inputs ``x`` against themselves, applied by row blocks.

    Parameters
    ----------
    x : torch.Tensor of shape (n, d)
    kernel : callable ``(x1, x2) -> tensor`` (the fitted NNGP / NTK kernel, no grad)
    noise : float
    store : bool
        Keep the kernel matrix after its first use (``8 n^2`` bytes in float64) instead of
        recomputing its blocks at every product.
    """

    def __init__(self, x, kernel, noise, store):
        self.x, self.kernel, self.noise, self.store = x, kernel, float(noise), bool(store)
        n = x.shape[0]
        budget = _BLOCK_BYTES.get(x.device.type, 2**24)
        rows = max(1, budget // (x.element_size() * max(n, 1)))
        self.blocks = [(s, min(s + rows, n)) for s in range(0, n, rows)]
        self.matrix = None
        self.n_products = 0

    def rows(self, s, e):
        return self.kernel(self.x[s:e], self.x)

    def diagonal(self):
        return self.kernel(self.x, self.x, diag=True)

    def column(self, j):
        return self.kernel(self.x, self.x[j : j + 1])[:, 0]

    def __call__(self, v):
        """``(K + noise I) v`` for ``v`` of shape (n, m)."""
        self.n_products += 1
        if self.store and self.matrix is None:
            n = self.x.shape[0]
            self.matrix = torch.empty(n, n, dtype=self.x.dtype, device=self.x.device)
            for s, e in self.blocks:
                self.matrix[s:e] = self.rows(s, e)
        if self.matrix is not None:
            return self.matrix @ v + self.noise * v
        out = torch.empty_like(v)
        for s, e in self.blocks:
            out[s:e] = self.rows(s, e) @ v
        return out.add_(v, alpha=self.noise)


def pivoted_cholesky(op, rank, tol=1e-10):
    """Greedy pivoted Cholesky ``K ~ F F'`` of rank at most ``rank`` (Harbrecht, Peters and
    Schneider 2012): ``rank`` kernel columns, O(n rank^2) work; stops early when the trace of
    the residual falls below ``tol`` times the trace of ``K``."""
    d = op.diagonal().clone()
    n = d.shape[0]
    rank = min(rank, n)
    F = torch.zeros(n, rank, dtype=d.dtype, device=d.device)
    total = float(d.sum())
    m = 0
    for m in range(rank):
        j = int(torch.argmax(d))
        if float(d[j]) <= 0 or float(d.clamp_min(0).sum()) <= tol * total:
            break
        col = op.column(j) - F[:, :m] @ F[j, :m]
        F[:, m] = col / math.sqrt(float(d[j]))
        d -= F[:, m] ** 2
        d[j] = 0.0
    else:
        m = rank
    return F[:, :m]


class _Woodbury:
    """``(F F' + s I)^-1 v`` by the Woodbury identity."""

    def __init__(self, F, s):
        self.F, self.s = F, float(s)
        small = F.T @ F
        small.diagonal().add_(self.s)
        self.L = torch.linalg.cholesky(small)

    def __call__(self, v):
        t = torch.cholesky_solve(self.F.T @ v, self.L)
        return (v - self.F @ t) / self.s


def solve(op, rhs, tol, max_iter, preconditioner=None, rounds=5):
    """``(K + noise I)^-1 rhs`` by preconditioned CG until every column's relative residual
    ``||r_j|| / ||b_j||`` is below ``tol`` (checked with an explicit product; CG restarts from
    its answer at most ``rounds`` times). Returns ``x, max relative residual, products``."""
    squeeze = rhs.dim() == 1
    b = rhs[:, None] if squeeze else rhs
    norms = b.norm(dim=0).clamp_min(torch.finfo(b.dtype).tiny)
    x = torch.zeros_like(b)
    worst = math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # linear_cg warns when it stops at max_iter
        for _ in range(rounds):
            r = b - op(x)
            worst = float((r.norm(dim=0) / norms).max())
            if worst <= tol:
                break
            x = x + linear_cg(
                op, r, tolerance=tol, stop_updating_after=0.5 * tol, max_iter=max_iter,
                preconditioner=preconditioner,
            )
        else:
            worst = float(((b - op(x)).norm(dim=0) / norms).max())
    return (x[:, 0] if squeeze else x), worst


def kernel_fn(kernel):
    """``(x1, x2, diag=False) -> tensor`` evaluating a fitted NNGP / NTK kernel without grad."""

    def fn(x1, x2, diag=False):
        w, b = kernel.weight_variance.detach(), kernel.bias_variance.detach()
        with torch.no_grad():
            if diag:
                nngp, ntk = layer_kernels(
                    x1, x2, kernel.depth, kernel.activation, w.squeeze(-1), b.squeeze(-1),
                    diag=True, ntk=kernel._ntk,
                )
            else:
                nngp, ntk = layer_kernels(
                    x1, x2, kernel.depth, kernel.activation, w, b, ntk=kernel._ntk
                )
        return ntk if kernel._ntk else nngp

    return fn
