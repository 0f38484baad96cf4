"""The fit's statistics: curvature, effective df, dispersion and the parameter covariance.

Everything is float64 and on the *sum* scale of the log-likelihood (see
:mod:`neurostat.inference.covariance`). The result travels as one frozen
:class:`FitStatistics`, never as a dict, and the dispersion is an argument of the likelihood,
never a mutable attribute.
"""

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .covariance import active_set, expand, penalty_diagonal, sandwich, symmetric_pinv


@dataclass(frozen=True)
class FitStatistics:
    """What a fit's inference is computed from (frozen).

    Attributes
    ----------
    cov_theta : ndarray of shape (p, p)
        Covariance of the flat parameter vector; NaN rows and columns for entries an L1
        penalty fixed at zero.
    edf : float
        Effective number of parameters: ``trace(F A^-1)`` for a penalized fit, else the rank of
        the information.
    scale : float or ndarray
        Dispersion (one per output for separate regressions; 1 without one).
    method : str
        How ``cov_theta`` was computed, in words (shown in the summary's notes).
    penalized : bool
    hess_info : dict
        Condition number, rank and whether a pseudo-inverse was used
        (:func:`~neurostat.inference.covariance.symmetric_pinv`).
    active : ndarray of bool
        Entries of theta that are estimated (all but L1 zeros).
    H, I, A, Ainv : ndarray or None
        On the active set, divided by the dispersion: the observed information, the Fisher
        (Gauss-Newton) information, the penalized Hessian and its (pseudo-)inverse. None for
        bootstrap covariances of nets too large for a dense Hessian.
    param_scale : ndarray or None
        Per-entry dispersion for separate regressions.
    cov_params : ndarray or None
        A covariance of ``params`` computed directly (the bootstrap's), instead of the delta
        method on ``cov_theta``.
    bootstrap_params : ndarray or None
        The bootstrap replicates of ``params`` (n_bootstrap, n_params).
    cov_subspace : tuple (ndarray, ndarray) or None
        For nets too large for a dense Hessian: ``(index, cov)``, the covariance of the
        entries ``index`` of theta (the output layer's, :mod:`neurostat.inference.lastlayer`);
        ``cov_theta`` is then None.
    effects : DebiasedEffects or None
        The cross-fitted debiased effects of a network with hidden layers
        (:mod:`neurostat.inference.debiased`): ``params``, their covariance, the effects on
        the mean and the per-term tests come from it.
    scale_df : float or None
        The degrees of freedom of ``scale`` where it is not the training residuals'
        ``Pearson chi2 / (nobs - edf)``: ``nobs`` for the cross-fitted held-out dispersion
        that replaces it when the fit has no residual df (``edf >= nobs``). None otherwise.
    """

    cov_theta: np.ndarray = field(repr=False)
    edf: float
    scale: object
    method: str
    penalized: bool = False
    hess_info: dict = field(default_factory=dict)
    active: np.ndarray = field(default=None, repr=False)
    H: np.ndarray = field(default=None, repr=False)
    I: np.ndarray = field(default=None, repr=False)  # noqa: E741 (the information, by name)
    A: np.ndarray = field(default=None, repr=False)
    Ainv: np.ndarray = field(default=None, repr=False)
    param_scale: np.ndarray = field(default=None, repr=False)
    cov_params: np.ndarray = field(default=None, repr=False)
    bootstrap_params: np.ndarray = field(default=None, repr=False)
    cov_subspace: tuple = field(default=None, repr=False)
    effects: object = field(default=None, repr=False)
    scale_df: float = None

    def replace(self, **changes):
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return replace(self, **changes)


def separate_scales(lik):
    """True for a gaussian model with several outputs and no hidden layer: k separate
    regressions sharing nothing, each with its own dispersion (per-column OLS). Networks with
    hidden layers share parameters across outputs and keep one pooled dispersion."""
    return bool(lik.family.has_scale and lik.additive and lik.y.ndim == 2
                and lik.y.shape[1] > 1 and getattr(lik.module, "n_hidden_layers", None) == 0)


def pearson_chi2(lik, theta, by_output=False):
    """The family's Pearson chi-square at ``theta`` (the residual sum of squares for gaussian);
    with ``by_output`` one per output column (an array)."""
    with torch.no_grad():
        eta = lik.eta(theta)
    return lik.pearson_chi2(eta, by_output=by_output)


def llf_at(lik, eta, scale=None):
    """The reported log-likelihood at linear predictor ``eta``: at the family's ``llf_scale``
    (for gaussian the maximum-likelihood variance ``RSS / n``, per output for separate
    regressions, as statsmodels reports it)."""
    fam = lik.family
    if not fam.has_scale:
        return float(lik.loglik(eta))
    chi2 = lik.pearson_chi2(eta, by_output=separate_scales(lik))
    k = lik.y.shape[1] if lik.y.ndim == 2 else 1
    return float(lik.loglik(eta, scale=fam.llf_scale(chi2, lik.nobs, k, scale)))


def curvature_statistics(model, scale=None):
    """Curvature, effective df and dispersion of ``model`` (a :class:`FitStatistics` whose
    ``cov_theta`` is not yet set: see :func:`with_covariance`). ``scale``: a dispersion
    estimated elsewhere (the cross-fitted held-out one) in place of the training residuals'
    (one pooled value; not for separate regressions)."""
    lik, layout = model.likelihood, model.layout
    active = active_set(lik, model.penalty)
    H1, F1 = (m.numpy()[np.ix_(active, active)] for m in lik.curvatures())
    pen = penalty_diagonal(lik, model.penalty)[active]
    penalized = bool(np.any(pen > 0))
    A1 = H1 + np.diag(pen)
    A1inv, info = symmetric_pinv(A1, "Hessian of the negative log-likelihood"
                                 if not penalized else "penalized Hessian")
    # the information I of the sandwich A^-1 I A^-1: Fisher's (positive semi-definite; equal to
    # the observed one for a GLM with canonical link) - the observed information of a penalized
    # net need not be, and would give negative variances.
    # trace(F A^-1) without forming the product (both symmetric): O(p^2), not O(p^3)
    edf = float(np.sum(F1 * A1inv)) if penalized else float(info["rank"])
    sp = None
    if separate_scales(lik):
        # one dispersion per output, each on its own residual df (n - edf / k): the curvature
        # is block diagonal across outputs, so block j is divided by scale_j
        k = lik.y.shape[1]
        scale = pearson_chi2(lik, lik.theta, by_output=True) / max(lik.nobs - edf / k, 1e-300)
        sp = scale[layout.output_of_param][active]
        R = np.sqrt(np.outer(sp, sp))
    elif scale is not None:
        R = scale = float(scale)
    else:
        scale = 1.0
        if lik.family.has_scale:
            k = lik.y.shape[1] if lik.y.ndim == 2 else 1
            scale = pearson_chi2(lik, lik.theta) / max(lik.nobs * k - edf, 1e-300)
        R = scale
    return FitStatistics(cov_theta=None, edf=edf, scale=scale, method="", penalized=penalized,
                         hess_info=info, active=active, H=H1 / R, I=F1 / R, A=A1 / R,
                         Ainv=A1inv * R, param_scale=sp)


#: the words the summary uses for each analytic covariance
METHODS = {
    "nonrobust": "inverse observed information",
    "nonrobust_expected": "inverse expected (Fisher) information",
    "nonrobust_penalized": "penalized sandwich A^-1 F A^-1 (A = observed information + "
                           "penalty, F = Fisher information)",
    "HC0": "robust sandwich A^-1 (sum_i s_i s_i') A^-1 (HC0)",
    "HC1": "robust sandwich A^-1 (sum_i s_i s_i') A^-1 (HC1)",
    "cluster": "cluster-robust sandwich A^-1 (sum_g S_g S_g') A^-1 over {} clusters (no "
               "small-sample factor)",
}


def cluster_meat(lik, groups):
    """``sum_g S_g S_g'`` with ``S_g`` the sum of the per-row scores of cluster g (p, p), and
    the number of clusters."""
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != lik.n_rows:
        raise ValueError(
            f"groups must be 1-D with one label per row: it has shape {groups.shape} but the "
            f"data have {lik.n_rows} rows.")
    _, codes = np.unique(groups, return_inverse=True)
    codes = torch.as_tensor(codes.reshape(-1))
    n_groups = int(codes.max()) + 1 if codes.numel() else 0
    S = lik.score_obs()
    Sg = torch.zeros(n_groups, S.shape[1], dtype=S.dtype).index_add_(0, codes, S)
    return (Sg.T @ Sg).numpy(), n_groups


def with_covariance(model, stats, cov_type):
    """``stats`` with the covariance of theta for an analytic ``cov_type`` (full p x p, NaN
    for entries fixed at zero by an L1 penalty)."""
    lik = model.likelihood
    Ainv, active = stats.Ainv, stats.active
    if cov_type == "nonrobust" and not stats.penalized and lik.family.expected_information:
        # a non-canonical link: statsmodels' IRLS reports the inverse Fisher information
        cov = symmetric_pinv(stats.I, "Fisher information")[0]
        method = METHODS["nonrobust_expected"]
    elif cov_type == "nonrobust":
        cov = sandwich(Ainv, stats.I) if stats.penalized else Ainv
        method = METHODS["nonrobust_penalized" if stats.penalized else "nonrobust"]
    else:
        sp = stats.param_scale
        div = stats.scale if sp is None else sp
        if cov_type == "cluster":
            full, n_groups = cluster_meat(lik, model.groups)
        else:
            full = lik.meat().numpy()
        meat = full[np.ix_(active, active)] / np.outer(
            np.broadcast_to(div, active.sum()), np.broadcast_to(div, active.sum()))
        cov = sandwich(Ainv, meat)
        if cov_type == "HC1" and lik.family.has_scale and lik.family.use_t:
            # statsmodels applies the n / (n - k) correction for OLS only (the family with t
            # tests); its likelihood models (Logit, MNLogit, GLM - gamma included) report HC1
            # equal to HC0, and so does neurostat
            edf = stats.edf / (lik.y.shape[1] if sp is not None else 1)  # per regression
            cov = cov * lik.nobs / (lik.nobs - edf)
        method = METHODS[cov_type].format(n_groups if cov_type == "cluster" else "")
    return stats.replace(cov_theta=expand(cov, active), method=method)
