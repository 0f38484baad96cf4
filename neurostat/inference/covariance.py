"""Parameter covariances: inverse information, sandwiches (robust, penalized) and safe inverses.

All matrices are float64 and on the *sum* scale of the log-likelihood. With the objective
``sum_i w_i nll_i / N + alpha * (l1_ratio ||W||_1 + 0.5 (1 - l1_ratio) ||W||^2)`` (frequency
weights, ``N = sum_i w_i``, the number of rows without weights) the penalized Hessian on that
scale is ``A = H + N * alpha * (1 - l1_ratio) * D`` with ``D`` the diagonal indicator of the
weights (never the biases), divided by the dispersion ``scale`` like ``H``.
"""

import warnings

import numpy as np
from scipy.linalg import eigh as scipy_eigh
from scipy.linalg import lapack

# relative eigenvalue below which the information matrix is treated as singular
RCOND = 1e-10
#: above this many parameters a dense Hessian (p x p float64) is refused
MAX_HESSIAN_PARAMS = 20_000


class InferenceWarning(UserWarning):
    """Standard errors may be unreliable (singular information, no stationary point...)."""


def symmetric_pinv(A, what="Hessian", cause=None):
    """Inverse of a symmetric matrix, or its pseudo-inverse with a warning when it is singular.

    The matrix is first scaled to unit diagonal. Returns ``(inverse, info)``, ``info`` a dict
    with the condition number of the scaled matrix (LAPACK's 1-norm estimate when Cholesky
    succeeds, else from the eigenvalues, which are then also given), its numerical rank and
    whether the pseudo-inverse was used.
    """
    A = 0.5 * (A + A.T)
    if A.shape[0] == 0:
        return A.copy(), {"min_eig": np.nan, "max_eig": np.nan, "condition": np.nan,
                          "singular": False, "rank": 0}
    # scale to unit diagonal first: the decision "singular" should not depend on the units of
    # the inputs (the Longley data's X'X has condition 1e19 in raw units, 1e8 scaled)
    diag = np.diag(A).copy()
    d = np.sqrt(np.where(diag > 0, diag, 1.0))
    As = A / d[:, None] / d[None, :]
    # fast path: Cholesky plus LAPACK's condition estimate (a third of an eigendecomposition's
    # cost, which matters at thousands of parameters); the eigendecomposition only when the
    # matrix is not safely positive definite
    chol, fail = lapack.dpotrf(As, lower=0, clean=1)
    if fail == 0:
        rcond, _ = lapack.dpocon(chol, np.abs(As).sum(0).max())
        if rcond > RCOND:
            inv, _ = lapack.dpotri(chol, lower=0)
            inv = np.triu(inv) + np.triu(inv, 1).T
            info = {"min_eig": np.nan, "max_eig": np.nan, "condition": float(1 / rcond),
                    "singular": False, "rank": A.shape[0]}
            return inv / d[:, None] / d[None, :], info
    evals, evecs = scipy_eigh(As, driver="evd")  # divide and conquer: fastest here
    top = max(abs(evals[-1]), abs(evals[0]), np.finfo(float).tiny)
    keep = evals > RCOND * top
    singular = not keep.all()
    info = {"min_eig": float(evals[0]), "max_eig": float(evals[-1]),
            "condition": float(top / evals[0]) if evals[0] > 0 else np.inf,
            "singular": bool(singular), "rank": int(keep.sum())}
    if singular:
        why = cause or (
            "the network has more parameters than the data identify (hidden units that are "
            "inactive, duplicated or symmetric; weights are not identifiable), collinear "
            "inputs, or (quasi-)perfect separation"
        )
        warnings.warn(
            f"The {what} is singular or ill-conditioned (eigenvalues of its unit-diagonal "
            f"scaling from {evals[0]:.3g} to {evals[-1]:.3g}); using its pseudo-inverse. Likely "
            f"cause: {why}. Standard errors of unidentified directions are not meaningful; "
            "consider alpha > 0, fewer hidden units or cov_type='bootstrap'.",
            InferenceWarning, stacklevel=3,
        )
    inv = (evecs[:, keep] / evals[keep]) @ evecs[:, keep].T
    return inv / d[:, None] / d[None, :], info


def sandwich(bread, meat):
    """``bread @ meat @ bread`` symmetrized."""
    c = bread @ meat @ bread
    return 0.5 * (c + c.T)


def penalty_diagonal(lik, penalty):
    """The diagonal of the penalty's Hessian on the sum scale (before dividing by the scale)."""
    mask = lik.penalized_mask().numpy()
    return lik.nobs * penalty.l2 * mask.astype(np.float64)


def active_set(lik, penalty):
    """Entries of theta that are estimated: all but weights set exactly to zero by an L1 penalty.

    With ``l1_ratio > 0`` a zero weight sits at a kink of the objective; as is usual for the
    lasso, it is treated as fixed and gets no standard error (NaN).
    """
    active = np.ones(lik.n_params, dtype=bool)
    if penalty.l1 > 0:
        mask = lik.penalized_mask().numpy()
        active &= ~(mask & (lik.theta.numpy() == 0.0))
    return active


def expand(cov_active, active):
    """Covariance on the active set -> full (p, p) matrix with NaN rows for fixed entries."""
    p = active.size
    out = np.full((p, p), np.nan)
    out[np.ix_(active, active)] = cov_active
    return out
