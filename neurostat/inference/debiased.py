"""Cross-fitted, debiased average effects of a net and tests of its inputs.

A net's weights are not identified, but its average effects are smooth functionals of the
regression function with a known influence function (the semiparametric theory of average
derivatives: Newey & Stoker 1993; double machine learning: Chernozhukov et al. 2018, 2022). For
input j and linear predictor k the effect ``theta_kj = E[d eta_k(X) / d x_j]`` (the average
discrete change per unit for a binary input) has influence function

    psi_kj(x, y) = d_j eta_k(x) + alpha_j(x) v_k(x, y) - theta_kj,

with ``alpha_j`` the Riesz representer of the functional (:mod:`neurostat.inference.riesz`)
and ``v = (d mu / d eta)^-1 (y - mu)`` the working residual: the plug-in average of the
derivatives plus a correction that removes the first-order bias of a regularized fit. The
estimate is the mean of ``d_j eta_k + alpha_j v_k`` and its variance ``Var(psi) / n``, with
every piece cross-fitted (:mod:`neurostat.inference.crossfit`): the network and the
representers of each row come from fits that did not see it. For a network without hidden
layer nothing of this is used (its coefficients and their covariance are statsmodels').

Covariance types: ``"nonrobust"`` replaces the squared working residual by its model-based
conditional variance ``scale * W^-1`` (W the family's information in eta, ``scale`` the
dispersion from the held-out Pearson residuals) for families with a dispersion (gaussian,
gamma, tweedie). For families whose dispersion is fixed (bernoulli, binomial, poisson,
categorical, several responses) ``W^-1`` is the residual variance only where the fold fit is
exact: an overconfident fold fit makes ``(y - mu) / mu'`` vary more than ``W^-1`` says, and no
dispersion absorbs it. The calibration study measured that (40 replications on its seeds:
mean SE / Monte-Carlo SD 0.53-0.65 and coverage 0.60-0.88 for a bernoulli net fitted by adam;
0.65-0.84 and 0.80-0.88 for poisson at n=300), so for them ``"nonrobust"`` uses the residuals
themselves, as ``"HC0"`` (0.84-1.06 and 0.95-1.00; 0.92-1.15 and 0.93-0.95), the variance of
double machine learning's score. ``"HC0"`` and ``"HC1"`` always use the residuals (the same
for nets: HC1's ``n / (n - k)`` belongs to regression coefficients). The results' ``method``
names the variance used. The intercept is ``E[eta_k] - theta_k' E[X]``; the effects on the
mean (``get_margeff``) are ``E[d mu_c / d x_j]`` with the correction ``alpha_j (y_c - mu_c)``.

What the correction leaves: with a non-identity link the link-scale effect keeps a
second-order remainder ``E[alpha_j ((mu - mu_hat) / mu_hat' - (eta - eta_hat))]``, about
``E[alpha_j mu'' / (2 mu') (eta - eta_hat)^2]``, which no unbiased working residual of a 0/1
response can remove. In the calibration study's bernoulli (16,) L-BFGS cell (n=800) it was
-0.068 of x0's bias of -0.073 (0.6 of an SD; 40 replications, the fold fits' eta off by 0.51
RMS), and a TMLE-style fluctuation of the fold fits along the representers recovered only 0.007
of it. The effects on the mean have no such term (their correction is linear in ``y - mu``):
bias at most 0.17 SD and coverage 0.90-0.98 in the study's bernoulli cells.

Per-input test (``wald_test_terms``, the summary's test table): a one-sided cross-fitted
directional test of ``H0: eta does not depend on the term's inputs``. With ``w_kj`` the
derivative of fold model's ``eta_k`` in ``x_j``, the statistic estimates
``E[sum_kj w_kj(X) d_j eta_k(X)]`` by its debiased moment (Riesz representer
``w_kj alpha_j - d w_kj / d x_j``). Under H0 its mean is zero whatever the fold models are
(w comes from fits that did not see the row), and under an alternative it is about
``E[(d_j eta)^2] > 0``, so it has power against effects of any shape (not only monotone ones,
as the z test of the average effect). ``chi2 = max(z, 0)^2`` with the one-sided p-value
``Phi(-z)`` (the chi-bar-square of a one-sided test).

What its variance leaves out: the statistic's variance is the rows' empirical variance of the
moment. Under H0 the moment is degenerate: ``w`` is itself only fitted noise, so the plug-in
``E[w^2]`` and its correction are both of order 1/n, and the second-order terms (products of
the fold fits' and representers' errors, shared by all folds through their overlapping training
rows) are of the same order and vary from data set to data set. Measured on the study's seeds
(``benchmarks/directional_test_variance.py``, 60 replications): the mean of the reported SD over
the Monte-Carlo SD of the statistic was 0.80 for the noise input of the gaussian base cell and
0.70 in the bernoulli (16,) L-BFGS cell; the SD of the five fold means was no better (0.63,
0.52). (For inputs with an effect the ratio is 0.42-0.71, the weight's own estimation error
being first order there; it costs no size.) The null z then has an SD of 1.12-1.35 in the study's
gaussian cells (1.6 at n=5000) and 0.96-1.29 in its bernoulli and poisson cells, and the 5%
test's size is 0.00-0.12, depending also on the sign of the remainder
(``benchmarks/results/calibration.json``).

Where the missing variance comes from (the same script, the same 60 replications): not the
representer's error - with the true one (``alpha_j(x) = x_j`` for the study's independent
standard-normal inputs) the ratio is 0.82 and 0.69 - but cross-fitting itself. Each fold's net
saw the other folds' rows, so under H0 the moments of two rows in different folds are correlated
through the pair having entered each other's fits: a degenerate U-statistic whose cross terms
the rows' variance leaves out (for a linear smoother with a symmetric kernel they add up to
(K - 1) / K of the diagonal, a predicted ratio of 1 / sqrt(1.8) = 0.75). Nested folds, fold k
evaluated by a net fitted on folds 1..k-1 only, make the sum a martingale whose variance the
rows' variance is: ratio 1.14 and 0.95, size 0.08 and 0.03, but power against the weak input
fell from 0.77 to 0.37 (gaussian) and from 0.22 to 0.07 (bernoulli), the nets seeing 1/5-4/5 of
the rows, at 2 more fits. So the default keeps cross-fitting; a variance with the cross terms
needs each fold net's sensitivity to every other row, which is not built.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from .crossfit import crossfit


@dataclass(frozen=True)
class DebiasedEffects:
    """What :func:`debiased_effects` returns.

    Attributes
    ----------
    params, cov : ndarray
        Effects in the results' order (per output: intercept if any, then the inputs) and
        their covariance.
    margeff, margeff_cov : ndarray
        Effects on the mean ``E[d mu_c / d x_j]`` (per mean component, the inputs) and their
        covariance.
    tests : DataFrame
        Per term: ``chi2``, ``P>chi2``, ``df constraint``, ``z`` of the directional test.
    scale : float
        The dispersion from the held-out working residuals (1 without one).
    n_folds : int
    method : str
    """

    params: np.ndarray
    cov: np.ndarray
    margeff: np.ndarray
    margeff_cov: np.ndarray
    tests: pd.DataFrame
    scale: float
    n_folds: int
    method: str


def _gather(parts, name, n):
    first = getattr(parts[0], name)
    out = np.empty((n, *first.shape[1:]))
    for p in parts:
        out[p.rows] = getattr(p, name)
    return out


def debiased_effects(est, model, cov_type="nonrobust", n_folds=5, n_jobs=None,
                     random_state=None):
    """Cross-fitted debiased effects, their covariance and the per-term tests."""
    lik = model.likelihood
    n = lik.n_rows
    parts = crossfit(est, model, n_folds, n_jobs, random_state)
    q = {name: _gather(parts, name, n)
         for name in ("eta", "v", "W", "dmu", "effect", "curvature", "effect_mu", "alpha")}
    w = np.ones(n) if lik.w is None else lik.w.numpy()
    N = w.sum()
    X = lik.X.numpy()
    scale = 1.0
    if model.family.has_scale:
        scale = sum(p.pearson for p in parts) / (N * q["v"].shape[1])
    # model-based covariance of the working residual, per row: scale * W^-1 - only where a
    # dispersion is estimated from the held-out residuals (it absorbs the fold fits' average
    # misfit); with a fixed dispersion it would assume the fold fits exact (see the docstring)
    model_based = cov_type == "nonrobust" and bool(model.family.has_scale)
    Sigma_v = scale * np.linalg.inv(q["W"]) if model_based else None
    codes = None
    if cov_type == "cluster":  # influence functions summed within clusters
        codes = np.unique(np.asarray(model.groups), return_inverse=True)[1].reshape(-1)
    pieces = _link_pieces(q, X, w, model.layout.has_intercept)
    params, cov = _estimate(pieces, q["v"], w, Sigma_v, codes)
    margeff, margeff_cov = _estimate(_mean_pieces(q), q["v"], w, Sigma_v, codes)
    tests = _directional_tests(q, w, Sigma_v, model.layout, codes)
    kind = "model-based" if model_based else {"cluster": "cluster-summed"}.get(cov_type,
                                                                                "empirical")
    method = (f"cross-fitted debiased average derivatives ({n_folds} folds; influence-function "
              f"covariance with {kind} residual variance)")
    return DebiasedEffects(params, cov, margeff, margeff_cov, tests, scale, n_folds, method)


def _link_pieces(q, X, w, has_intercept):
    """``(A, B)``: each row's influence function is ``A_i + B_i v_i`` (A (n, m), B (n, m, k)),
    for the parameters in the results' order."""
    P, alpha, eta, v = q["effect"], q["alpha"], q["eta"], q["v"]
    n, k, d = P.shape
    N = w.sum()
    xbar = w @ X / N
    m_per = d + has_intercept
    A = np.zeros((n, k * m_per))
    B = np.zeros((n, k * m_per, k))
    for a in range(k):
        phi = P[:, a, :] + alpha * v[:, a, None]  # (n, d) pseudo-outcomes
        theta = w @ phi / N
        off = a * m_per + has_intercept
        A[:, off:off + d] = P[:, a, :] - theta
        B[:, off:off + d, a] = alpha
        if has_intercept:
            m0 = w @ (eta[:, a] + v[:, a]) / N
            A[:, a * m_per] = (eta[:, a] - m0) - (P[:, a, :] - theta) @ xbar \
                - (X - xbar) @ theta
            B[:, a * m_per, a] = 1.0 - alpha @ xbar
            # the A part carries the estimate's location: psi = A + B v has mean zero, and
            # the estimate itself is returned by _estimate as mean(pseudo-outcome)
    return A, B, _link_estimates(P, alpha, eta, v, X, w, has_intercept)


def _link_estimates(P, alpha, eta, v, X, w, has_intercept):
    N = w.sum()
    xbar = w @ X / N
    out = []
    for a in range(P.shape[1]):
        theta = w @ (P[:, a, :] + alpha * v[:, a, None]) / N
        if has_intercept:
            out.append(w @ (eta[:, a] + v[:, a]) / N - theta @ xbar)
        out.extend(theta)
    return np.asarray(out)


def _mean_pieces(q):
    """``(A, B, estimates)`` of the effects on the mean, ``E[d mu_c / d x_j]``."""
    Pm, alpha, dmu, v = q["effect_mu"], q["alpha"], q["dmu"], q["v"]
    n, m, d = Pm.shape
    k = v.shape[1]
    resid = np.einsum("nck,nk->nc", dmu, v)  # y - mu
    phi = Pm + alpha[:, None, :] * resid[:, :, None]  # (n, m, d)
    return Pm.reshape(n, m * d), np.einsum("nj,nck->ncjk", alpha, dmu).reshape(n, m * d, k), \
        phi


def _outer(psi, w, codes, N):
    """``sum_i w_i psi_i psi_i' / N^2``, or with clusters ``sum_g S_g S_g' / N^2``."""
    if codes is None:
        return (psi * w[:, None]).T @ psi / N**2
    S = np.zeros((codes.max() + 1, psi.shape[1]))
    np.add.at(S, codes, psi * w[:, None])
    return S.T @ S / N**2


def _estimate(pieces, v, w, Sigma_v, codes=None):
    """Estimates and their covariance from ``(A, B, ...)``."""
    A, B, third = pieces
    N = w.sum()
    if third.ndim == 1:  # the link effects: estimates given
        est = third
        A = A + 0.0
    else:  # the mean effects: estimates are the means of the pseudo-outcomes
        phi = third.reshape(third.shape[0], -1)
        est = w @ phi / N
        A = A - est
    psi = A + np.einsum("nmk,nk->nm", B, v)
    if Sigma_v is None:
        cov = _outer(psi, w, codes, N)
    else:
        Ac = A - w @ A / N
        cov = ((Ac * w[:, None]).T @ Ac
               + np.einsum("n,nmk,nkl,nql->mq", w, B, Sigma_v, B)) / N**2
    return est, 0.5 * (cov + cov.T)


def _directional_tests(q, w, Sigma_v, layout, codes=None):
    """The one-sided directional test of every term (see the module docstring)."""
    P, C, alpha, v = q["effect"], q["curvature"], q["alpha"], q["v"]
    N = w.sum()
    rows = []
    for _, cols in layout.term_groups:
        cols = list(cols)
        plug = (P[:, :, cols] ** 2).sum((1, 2))  # (n,)
        beta = P[:, :, cols] * alpha[:, None, cols] - C[:, :, cols]  # (n, k, |cols|)
        b = beta.sum(2)  # (n, k): coefficient on each working residual
        m = plug + (b * v).sum(1)
        M = w @ m / N
        if Sigma_v is None:
            var = float(_outer((m - M)[:, None], w, codes, N)[0, 0])
        else:
            var = (w @ (plug - w @ plug / N) ** 2
                   + np.einsum("n,nk,nkl,nl->", w, b, Sigma_v, b)) / N**2
        z = M / np.sqrt(var) if var > 0 else 0.0
        rows.append((max(z, 0.0) ** 2, float(sps.norm.sf(z)) if var > 0 else 1.0, 1, z))
    names = [name for name, _ in layout.term_groups]
    return pd.DataFrame(rows, index=pd.Index(names, name="term"),
                        columns=["chi2", "P>chi2", "df constraint", "z"])
