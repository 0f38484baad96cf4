"""Cross-fitting: refits of the estimator on K - 1 folds, evaluated on the held-out fold.

Each fold's network is fitted afresh (a clone with the estimator's hyperparameters) on the other
folds and evaluated only on its own rows, so that the residuals and derivatives entering an
influence function never come from a fit that saw those rows. Folds are refitted in parallel
through joblib (a Dask or Ray backend spreads them over a cluster).

What a fold returns (:class:`FoldQuantities`), all on its held-out rows, float64:
the linear predictor, the working residual ``v`` (``(d mu / d eta)^-1 (y - mu)``) and the
information ``W`` in eta (unit scale), ``d mu / d eta``, each input's effect on eta
(``d eta / d x_j`` for a continuous input, the discrete change per unit for a binary one), the
effect's own derivative in ``x_j`` (for the directional tests), the effect on the mean, and the
Riesz representers of the inputs' average effects (fitted on the fold's training rows).
"""

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold

from .._utils import blas_threads, num_threads
from .bootstrap import as_input, raw_target, run_parallel
from .riesz import RieszRepresenter


@dataclass
class FoldQuantities:
    """One fold's held-out quantities (see the module docstring); arrays over its rows."""

    rows: np.ndarray  # indices of the held-out rows in the data
    eta: np.ndarray  # (n, k)
    v: np.ndarray  # (n, k) working residual
    W: np.ndarray  # (n, k, k) information in eta at unit scale
    dmu: np.ndarray  # (n, m, k) d mu / d eta
    effect: np.ndarray  # (n, k, d) d eta / d x_j, or discrete change per unit
    curvature: np.ndarray  # (n, k, d) d effect / d x_j (0 for binary inputs)
    effect_mu: np.ndarray  # (n, m, d) the same on the mean
    alpha: np.ndarray  # (n, d) Riesz representers
    pearson: float  # sum of w v' W v over the rows (for a dispersion)


def folds(model, n_folds, random_state):
    """``[(train, test), ...]``: stratified by class for classifiers."""
    n = model.likelihood.n_rows
    if not (isinstance(n_folds, int | np.integer) and 2 <= n_folds <= n):
        raise ValueError(f"n_folds must be an integer in [2, n_samples]; got {n_folds!r}.")
    seed = np.random.default_rng(random_state).integers(2**31 - 1)
    y = model.likelihood.y.numpy()
    if model.family.classification:
        counts = np.bincount(y.astype(np.int64))
        if counts[counts > 0].min() >= n_folds:
            split = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
            return list(split.split(np.zeros(n), y))
    return list(KFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(n)))


def crossfit(est, model, n_folds=5, n_jobs=None, random_state=None):
    """The :class:`FoldQuantities` of every fold (their rows partition the data)."""
    lik = model.likelihood
    X, y = lik.X.numpy(), raw_target(model)
    w = None if lik.w is None else lik.w.numpy()
    offset = getattr(lik, "offset_input", None)
    seeds = np.random.default_rng(random_state).integers(0, 2**31 - 1, size=n_folds)
    args = [(est, X, y, w, offset, tr, te, int(s))
            for (tr, te), s in zip(folds(model, n_folds, random_state), seeds)]
    return run_parallel(_fold, args, n_jobs, "cross-fitting")


def _fold(est, X, y, w, offset, train, test, seed):
    fold_est = clone(est)
    params = fold_est.get_params()
    if params.get("random_state") is None:
        fold_est.set_params(random_state=seed)
    fold_est.set_params(verbose=0, warm_start=False)
    # the folds refit on the model's design (X as inference sees it): a formula and the
    # encoding of categorical columns were applied when it was built
    design = params.get("formula") is not None or getattr(est, "model_spec_", None) is not None
    if params.get("formula") is not None:
        fold_est.set_params(formula=None)
    wt = None if w is None else w[train]
    off = {} if offset is None else {"offset": offset[train]}
    with num_threads(1), blas_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fold_est.fit(X[train] if design else as_input(fold_est, X[train]), y[train],
                     sample_weight=wt, **off)
        riesz = RieszRepresenter().fit(X[train], wt)
        off = {} if offset is None else {"offset": offset[test]}
        fold_model = fold_est._statistical_model(X[test], y[test],
                                                 None if w is None else w[test], **off)
        return held_out_quantities(fold_model, riesz, test)


def held_out_quantities(model, riesz, rows):
    """:class:`FoldQuantities` of a fold's model at its held-out data."""
    lik, fam = model.likelihood, model.family
    Xt = lik.X
    with torch.no_grad():
        eta = lik.eta(lik.theta)
    v = fam.working_residual(eta, lik.y)
    W = fam.information_eta(eta, lik.y)
    dmu = fam.mean_jacobian(eta)
    effect, curvature, effect_mu = _input_effects(lik, fam, Xt, riesz, dmu)
    wv = v if lik.w is None else v * lik.w[:, None]
    pearson = float(torch.einsum("nk,nkl,nl->", wv, W, v))
    return FoldQuantities(rows, eta.numpy(), v.numpy(), W.numpy(), dmu.numpy(), effect,
                          curvature, effect_mu, riesz.transform(Xt.numpy()), pearson)


def _input_effects(lik, fam, X, riesz, dmu):
    """Per row, output and input: the effect on eta, its derivative in that input, and the
    effect on the mean (chain rule for continuous inputs, a discrete change for binary ones)."""
    n, d = X.shape
    theta = lik.theta
    Xg = X.clone().requires_grad_(True)
    eta = lik.eta(theta, Xg)
    k = eta.shape[1]
    effect = np.zeros((n, k, d))
    curvature = np.zeros((n, k, d))
    grads = []
    for a in range(k):
        (g,) = torch.autograd.grad(eta[:, a].sum(), Xg, create_graph=True)
        grads.append(g)
        effect[:, a, :] = g.detach().numpy()
    effect_mu = np.einsum("nmk,nkd->nmd", dmu.numpy(), effect)
    for j, kind in enumerate(riesz.kinds_):
        if kind == "binary":
            lo, hi = riesz.low_[j], riesz.high_[j]
            Xl, Xh = X.clone(), X.clone()
            Xl[:, j], Xh[:, j] = lo, hi
            with torch.no_grad():
                el, eh = lik.eta(theta, Xl), lik.eta(theta, Xh)
                effect[:, :, j] = ((eh - el) / (hi - lo)).numpy()
                mu_l, mu_h = _as_2d(fam.mean(el)), _as_2d(fam.mean(eh))
                effect_mu[:, :, j] = ((mu_h - mu_l) / (hi - lo)).numpy()
            continue
        for a in range(k):
            h = None
            if grads[a].requires_grad:
                (h,) = torch.autograd.grad(grads[a][:, j].sum(), Xg, retain_graph=True,
                                           allow_unused=True)
            if h is None or not torch.any(h[:, j] != 0):
                # piecewise-linear network (relu): autograd's second derivative is 0 almost
                # everywhere and misses the kinks, whose mass is what the directional test's
                # correction needs (without it a noise input was rejected 68% of the time at
                # 5%); a central difference of the gradient over +-0.1 sd of the input sees them
                curvature[:, a, j] = _fd_curvature(lik, theta, X, a, j,
                                                   0.1 * float(riesz.scale_[j]))
            else:
                curvature[:, a, j] = h[:, j].detach().numpy()
    return effect, curvature, effect_mu


def _fd_curvature(lik, theta, X, a, j, h):
    """``(d/dx_j eta_a(x + h e_j) - d/dx_j eta_a(x - h e_j)) / 2h`` per row (the second
    derivative of a piecewise-linear net, smoothed over its kinks)."""
    out = []
    for sign in (1.0, -1.0):
        Xs = X.clone()
        Xs[:, j] += sign * h
        Xs.requires_grad_(True)
        (g,) = torch.autograd.grad(lik.eta(theta, Xs)[:, a].sum(), Xs)
        out.append(g[:, j].detach())
    return ((out[0] - out[1]) / (2 * h)).numpy()


def _as_2d(a):
    return a[:, None] if a.ndim == 1 else a
