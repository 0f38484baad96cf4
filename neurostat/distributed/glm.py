"""Chunked Newton (IRLS) for networks without hidden layer: one pass over the chunks per step.

The objective is the in-memory one, ``sum_i w_i nll_i / sum_i w_i + penalty`` (the family's
training loss and :class:`~neurostat.engine.penalties.ElasticNetPenalty` on the weights). Each
pass (:func:`~neurostat.distributed.likelihood.chunk_statistics`) reduces over the chunks the
objective, its gradient and the information ``X' W X`` (``W`` the family's information in
eta) - and, while it reads the chunks anyway, the robust meat and the log-likelihoods that
inference needs, so inference after the fit costs no pass.

* No L1 part: Newton steps ``-A^-1 g`` with ``A`` the information over the total weight plus
  the ridge's curvature, halved while they raise the objective (IRLS with step control).
* An L1 part (lasso, elastic net): proximal Newton - each step minimizes the quadratic model
  plus the L1 term by coordinate descent on the reduced ``p x p`` Gram on the client (exact
  zeros), then a backtracking line search on the full objective (Lee, Sun & Saunders 2014).

Convergence: the (proximal) Newton step is below ``1e-10 (1 + max |theta|)``; the parameters
are then those of the last pass, where every statistic was computed.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from sklearn.exceptions import ConvergenceWarning

from .likelihood import chunk_statistics

#: relative size of the Newton step at which the fit stops
STEP_TOL = 1e-10


@dataclass
class NewtonOutcome:
    """The chunked fit's end: parameters, the last pass's statistics, passes and iterations."""

    theta: np.ndarray
    statistics: dict
    n_iter: int
    n_passes: int
    converged: bool
    objective: list


def _l1_direction(A, g, theta, lam, max_sweeps=10_000):
    """``argmin_d g'd + d'Ad/2 + sum_j lam_j |theta_j + d_j|`` by cyclic coordinate descent on
    ``z = theta + d`` (exact zeros where ``|.| <= lam_j``)."""
    z = theta.copy()
    c = g - A @ theta  # the model is c'z + z'Az/2 + lam|z| up to a constant
    Az = A @ z
    diag = np.diag(A)
    scale = 1.0 + np.max(np.abs(theta))
    for _ in range(max_sweeps):
        biggest = 0.0
        for j in range(z.size):
            r = c[j] + Az[j] - diag[j] * z[j]
            new = -np.sign(r) * max(abs(r) - lam[j], 0.0) / diag[j]
            delta = new - z[j]
            if delta != 0.0:
                Az += A[:, j] * delta
                z[j] = new
                biggest = max(biggest, abs(delta))
        if biggest <= 1e-15 * scale:
            break
    return z - theta


def _ridge(penalty, theta, mask):
    """Gradient and Hessian in theta of the penalty's smooth part (the weights' ridge)."""
    p = theta.size
    if penalty.l2 == 0:
        return np.zeros(p), np.zeros((p, p))
    w = torch.as_tensor(theta[mask])

    def smooth(v):
        return penalty.smooth([v])

    g = torch.func.grad(smooth)(w).numpy()
    h = torch.func.hessian(smooth)(w).numpy()
    G, H = np.zeros(p), np.zeros((p, p))
    G[mask] = g
    H[np.ix_(mask, mask)] = h
    return G, H


def _newton_direction(A, g):
    try:
        return scipy.linalg.solve(A, -g, assume_a="pos")
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        warnings.warn(
            "The information matrix of the chunked Newton fit is singular (collinear inputs or "
            "separated classes); taking a pseudo-inverse step. Use alpha > 0.",
            ConvergenceWarning, stacklevel=4)
        return -np.linalg.lstsq(A, g, rcond=None)[0]


def newton_fit(data, module, family, penalty, b0, max_iter=100,
               items=("grad", "curv", "meat", "llf")):
    """Minimize the penalized objective of a network without hidden layer over chunked data.

    Parameters
    ----------
    data : neurostat.distributed.chunks.ChunkedData
        ``y`` encoded as the family expects.
    module : torch.nn.Module
        One linear layer (its weight first, then its bias, in ``theta``); its parameters are
        the starting point (the null model).
    family : neurostat.engine.families.AdditiveFamily
    penalty : neurostat.engine.penalties.ElasticNetPenalty
    b0 : ndarray
        The null model's intercept (for the log-likelihood of the null model in each pass).
    max_iter : int
        Newton iterations at most.
    items : tuple
        The large statistics each pass computes (the last pass's are the fit's).

    Returns
    -------
    NewtonOutcome
    """
    layer = module.output_layer
    theta = np.concatenate([layer.weight.detach().double().numpy().ravel(),
                            layer.bias.detach().double().numpy().ravel()])
    mask = np.zeros(theta.size, dtype=bool)
    mask[:layer.weight.numel()] = True
    l1 = penalty.l1 * penalty.multipliers("l1", 1)[0]

    def evaluate(th, last=False):
        # the meat and the log-likelihoods (for inference) only where the fit is about to
        # stop: the pass
        # after a step below 1e-4 relative is the last one or close to it (quadratic
        # convergence); a fit that stops elsewhere leaves it to inference (one more pass)
        want = items if last else tuple(i for i in items if i in ("grad", "curv"))
        st = chunk_statistics(data.X, data.y, data.w, module, family, th, b0, want)
        f = st["value"] / st["wsum"] + float(penalty.value([torch.as_tensor(th[mask])]))
        return st, f

    st, f = evaluate(theta)
    passes, curve, converged, n_iter = 1, [f], False, 0
    for it in range(1, max_iter + 1):
        n_iter = it
        W = st["wsum"]
        rg, rh = _ridge(penalty, theta, mask)
        g, A = st["grad"] / W + rg, st["H"] / W + rh
        if l1 > 0:
            d = _l1_direction(A, g, theta, l1 * mask)
            decrease = g @ d + l1 * (np.abs(theta + d)[mask].sum() - np.abs(theta)[mask].sum())
        else:
            d = _newton_direction(A, g)
            decrease = g @ d
        if np.max(np.abs(d)) <= STEP_TOL * (1.0 + np.max(np.abs(theta))):
            converged = True
            break
        t, accepted = 1.0, False
        near = np.max(np.abs(d)) <= 1e-4 * (1.0 + np.max(np.abs(theta)))
        while t >= 2.0**-20:
            st_new, f_new = evaluate(theta + t * d, last=near)
            passes += 1
            if np.isfinite(f_new) and f_new <= f + 1e-4 * t * min(decrease, 0.0) \
                    + 1e-13 * (1.0 + abs(f)):
                accepted = True
                break
            t *= 0.5
        if not accepted:  # no decrease along the step: the objective is flat to rounding
            converged = bool(np.max(np.abs(g)) < 1e-8)
            break
        theta, st, f = theta + t * d, st_new, f_new
        curve.append(f)
    if not converged:
        warnings.warn(
            f"The chunked Newton fit stopped after {n_iter} iterations before its step fell below "
            f"{STEP_TOL:g} (relative); increase max_iter, or check for separation (alpha > 0).",
            ConvergenceWarning, stacklevel=3)
    return NewtonOutcome(theta, st, n_iter, passes, converged, curve)
