"""Hyperparameters of :class:`~neurostat.gp.NNGPRegressor` by BFGS on the exact marginal
likelihood, on nested random subsamples of growing size (:func:`fit_hyperparameters`); the
kernel fill and the factorization it evaluates are in :mod:`neurostat.gp._exact`."""

import math

import numpy as np
import torch

from ._exact import TrainKernel, _inverse, cholesky_solve, factorize


class _Objective:
    """Mean negative log marginal likelihood in ``theta``, the log variances of the free ones.

    ``value(theta)`` fills the kernel (with its derivatives, for the closed forms) and
    factorizes it; ``gradient()`` then differentiates at that point (one ``potri``).
    """

    def __init__(self, kernel, y, names, fixed):
        self.kernel, self.y, self.names, self.fixed = kernel, y, list(names), dict(fixed)
        like = dict(dtype=y.dtype, device=y.device)
        self.buf = torch.empty(kernel.n, kernel.n, **like)
        self.inv = self.dw = self.db = None
        self.forward_mode = kernel.closed is not None
        self.n_evals = 0
        self.last = None  # (theta, L, alpha, f) of the last evaluation, None if not PD

    def values(self, theta):
        v = dict(self.fixed)
        v.update(zip(self.names, np.exp(theta)))
        return v

    def value(self, theta):
        """``f / n`` at ``theta`` (``inf`` if the matrix is not positive definite)."""
        v = self.values(theta)
        w, b, noise = v["weight_variance"], v["bias_variance"], v["noise"]
        n = self.kernel.n
        fwd = self.forward_mode and any(k != "noise" for k in self.names)
        if fwd and self.dw is None:
            self.dw, self.db = torch.empty_like(self.buf), torch.empty_like(self.buf)
        self.kernel.fill(w, b, noise, self.buf, *((self.dw, self.db) if fwd else ()))
        self.n_evals += 1
        L = factorize(self.buf)
        if L is None:
            self.last = None
            return math.inf
        alpha = cholesky_solve(L, self.y)
        logdet = float(torch.log(L.diagonal()).sum())
        f = 0.5 * float(self.y @ alpha) + logdet + 0.5 * n * math.log(2 * math.pi)
        self.last = (np.array(theta, dtype=float), L, alpha, f)
        return f / n

    def gradient(self):
        """Gradient of ``f / n`` at the point of the last :meth:`value` call."""
        theta, L, alpha, _ = self.last
        v = self.values(theta)
        w, b, noise = v["weight_variance"], v["bias_variance"], v["noise"]
        if self.inv is None:
            self.inv = torch.empty_like(self.buf)
        inv = _inverse(L, self.inv)
        grads = {}
        if "noise" in self.names:
            grads["noise"] = 0.5 * noise * (float(inv.diagonal().sum()) - float(alpha @ alpha))
        if any(k != "noise" for k in self.names):
            if self.forward_mode:
                gw, gb = self._contract_forward(inv, alpha)
            else:
                gw, gb = self.kernel.contract_reverse(
                    w, b, lambda s, e: self._weights(inv, alpha, s, e)
                )
            grads["weight_variance"], grads["bias_variance"] = gw, gb
        return np.array([grads[name] for name in self.names]) / self.kernel.n

    def _weights(self, inv, alpha, s, e):
        """Block ``[s:e, s:n]`` of ``G = (inv - a a') / 2`` with the weights of the upper
        triangle storage: 2 right of the diagonal square, 2 / 1 / 0 above / on / below its
        diagonal (``inv`` is only valid in the upper triangle on the CPU)."""
        blk = inv[s:e, s:] - alpha[s:e, None] * alpha[None, s:]
        r = e - s
        tri = torch.triu(torch.full((r, r), 2.0, dtype=blk.dtype, device=blk.device), 1)
        tri.diagonal().fill_(1.0)
        blk[:, :r] *= tri
        blk[:, r:] *= 2.0
        return blk.mul_(0.5)

    def _contract_forward(self, inv, alpha):
        """``tr(G dK/dlog w)`` and ``tr(G dK/dlog b)`` from the stored derivative blocks."""
        gw = gb = 0.0
        for s, e in self.kernel.blocks:
            wts = self._weights(inv, alpha, s, e)
            gw += float((wts * self.dw[s:e, s:]).sum())
            gb += float((wts * self.db[s:e, s:]).sum())
        return gw, gb


def _bfgs(obj, theta, H, lower, upper, gtol, max_iter, rescale_first):
    """Minimize ``obj`` from ``theta`` by BFGS with inverse Hessian ``H`` and a backtracking
    Armijo line search, bounds by clipping (and a projected-gradient stopping test).

    With ``rescale_first`` the first update starts from ``(s'y / y'y) I`` (Nocedal and Wright
    2006, eq. 6.20) instead of ``H``. Returns ``theta, f, g, H, iterations``.
    """
    theta = np.clip(np.asarray(theta, dtype=float), lower, upper)
    f = obj.value(theta)
    if not np.isfinite(f):
        raise np.linalg.LinAlgError(
            "the starting hyperparameters give a kernel matrix that is not positive definite; "
            "start from a larger noise"
        )
    g = obj.gradient()
    it = 0
    while it < max_iter:
        free = ~(((theta <= lower) & (g > 0)) | ((theta >= upper) & (g < 0)))
        if np.max(np.abs(g * free), initial=0.0) <= gtol:
            break
        it += 1
        p = -H @ g
        if g @ p >= 0:  # not a descent direction: restart from steepest descent
            H = np.eye(len(theta)) / max(np.abs(g).max(), 1.0)
            p = -H @ g
        scale = np.abs(p).max()
        if scale > 2.0:  # at most a factor e^2 per step in any variance
            p *= 2.0 / scale
        t, accepted = 1.0, False
        for _ in range(30):
            new = np.clip(theta + t * p, lower, upper)
            f_new = obj.value(new)
            decrease = g @ (new - theta)
            if np.isfinite(f_new) and f_new <= f + 1e-4 * decrease:
                accepted = True
                break
            if np.isfinite(f_new) and decrease < 0:
                # the minimizer of the quadratic through f, g'p and f_new, in [0.1 t, 0.5 t]
                t_q = -decrease * t / (2 * (f_new - f - decrease))
                t = min(max(t_q, 0.1 * t), 0.5 * t)
            else:
                t *= 0.25
        if not accepted:  # no decrease along p: the optimum to rounding
            obj.value(theta)  # leave the factorization at the answer
            break
        g_new = obj.gradient()
        s, yv = new - theta, g_new - g
        theta, f, g = new, f_new, g_new
        sy = s @ yv
        if sy > 1e-12 * np.linalg.norm(s) * np.linalg.norm(yv):
            if it == 1 and rescale_first:
                H = np.eye(len(theta)) * (sy / (yv @ yv))
            r = 1.0 / sy
            V = np.eye(len(theta)) - r * np.outer(s, yv)
            H = V @ H @ V.T + r * np.outer(s, s)
    return theta, f, g, H, it


def stage_sizes(n, first=300, ratio=4.0):
    """Nested subsample sizes ``first, ..., n`` growing by about ``ratio``."""
    if n <= 2 * first:
        return [n]
    k = math.ceil(math.log(n / first) / math.log(ratio))
    return [int(round(first * (n / first) ** (i / k))) for i in range(k)] + [n]


def fit_hyperparameters(
    x, y, depth, activation, ntk, start, free, *, max_iter=100, gtol=1e-6, rng=None, first=300,
    ratio=4.0, bounds=None,
):
    """Maximize the exact marginal likelihood of ``y ~ N(0, K + noise I)``.

    Parameters
    ----------
    x : torch.Tensor (n, d), float64; y : torch.Tensor (n,), float64
    start : dict with ``weight_variance``, ``bias_variance``, ``noise``
    free : list of the names to fit (the others stay at ``start``)
    rng : numpy Generator for the nested subsamples

    Returns
    -------
    values : dict, info : dict (``n_iter``, ``n_evals``, ``stages``, ``objective`` (the last
    stage's ``_Objective``, whose ``last`` holds the factorization at the answer), ``theta``,
    ``grad``)
    """
    n = x.shape[0]
    order = rng.permutation(n) if rng is not None else np.arange(n)
    sizes = stage_sizes(n, first, ratio)
    names = [name for name in ("weight_variance", "bias_variance", "noise") if name in free]
    fixed = {k: v for k, v in start.items() if k not in names}
    theta = np.log([start[name] for name in names])
    lo, hi = bounds if bounds is not None else _default_bounds(names)
    H = np.eye(len(names))
    total_iter, total_evals, obj, g = 0, 0, None, None
    for i, m in enumerate(sizes):
        rows = torch.as_tensor(np.sort(order[:m]) if m < n else np.arange(n), device=x.device)
        xs, ys = (x, y) if m == n else (x[rows], y[rows])
        obj = _Objective(TrainKernel(xs, depth, activation, ntk), ys, names, fixed)
        tol = gtol if m == n else max(gtol, 1e-5)
        theta, f, g, H, it = _bfgs(obj, theta, H, lo, hi, tol, max_iter, rescale_first=i == 0)
        total_iter += it
        total_evals += obj.n_evals
    values = dict(fixed)
    values.update(zip(names, np.exp(theta)))
    info = {"n_iter": total_iter, "n_evals": total_evals, "n_evals_last_stage": obj.n_evals,
            "stages": sizes, "objective": obj, "theta": theta, "grad": g}
    return values, info


def _default_bounds(names):
    lows = {"weight_variance": 1e-6, "bias_variance": 1e-8, "noise": 1e-6}
    highs = {"weight_variance": 1e6, "bias_variance": 1e6, "noise": 1e3}
    return np.log([lows[k] for k in names]), np.log([highs[k] for k in names])
