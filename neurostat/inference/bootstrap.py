"""Refits on resampled or simulated data: the bootstrap covariance and the parametric-bootstrap
LR test's null distribution.

Replicates are warm-started from the fitted network (so they stay in the fitted solution's basin
of attraction: hidden units cannot switch labels between replicates) and run through joblib,
so ``with joblib.parallel_backend("dask"):`` (or "ray") spreads them over a cluster. Each
replicate uses one torch thread; a tqdm bar shows progress.
"""

import pickle

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import is_classifier
from sklearn.utils import check_random_state

from .._utils import blas_threads, num_threads
from .core import MAX_HESSIAN_PARAMS, encode_target, fit_statistics, pearson_chi2
from .effects import effect_params


def warm_copy(est):
    """A copy of the fitted estimator that refits from its current weights (training data and
    optimizer state are not copied)."""
    b = pickle.loads(pickle.dumps(est))
    b.set_params(warm_start=True, verbose=0)
    return b


def as_input(est, X):
    """X as the estimator saw it at fit (a DataFrame with the same columns if it had names)."""
    names = getattr(est, "feature_names_in_", None)
    return pd.DataFrame(X, columns=names) if names is not None else X


def refit(est, X, y, w):
    """Warm-started refit of a copy of ``est`` on (X, y, w); returns the copy."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    b = warm_copy(est)
    # one thread for torch and for BLAS: scipy's L-BFGS-B makes many tiny BLAS calls, and
    # waking an idle BLAS thread pool for each made small refits 8x slower (measured)
    with num_threads(1), blas_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        b.fit(as_input(b, X), y, sample_weight=w)
    return b


def run_parallel(fn, args, n_jobs, desc):
    """``[fn(*a) for a in args]`` through joblib with a progress bar."""
    from tqdm.auto import tqdm

    out = []
    jobs = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(fn)(*a) for a in args)
    for r in tqdm(jobs, total=len(args), desc=desc, leave=False, disable=None):
        out.append(r)
    return out


def _case_replicate(est, X, y, w, seed, X_eval):
    from .core import make_likelihood

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, X.shape[0], X.shape[0])
    b = refit(est, X[idx], np.asarray(y)[idx], None if w is None else w[idx])
    lik = make_likelihood(b, X_eval, encode_target(b, y), w)
    values, _ = effect_params(lik, X_eval)
    return lik.theta.numpy(), values


def bootstrap_statistics(est, lik, X, y, w, n_bootstrap, n_jobs, random_state):
    """Covariance of theta and of params over ``n_bootstrap`` case resamples."""
    if not (isinstance(n_bootstrap, int | np.integer) and n_bootstrap >= 2):
        raise ValueError(f"n_bootstrap must be an integer >= 2; got {n_bootstrap!r}.")
    rng = check_random_state(random_state)
    seeds = rng.randint(0, 2**31 - 1, size=n_bootstrap)
    reps = run_parallel(_case_replicate, [(est, X, y, w, s, X) for s in seeds], n_jobs,
                        "bootstrap")
    thetas = np.array([r[0] for r in reps])
    params = np.array([r[1] for r in reps])
    if lik.n_params <= MAX_HESSIAN_PARAMS:
        stats = fit_statistics(est, lik)
    else:
        edf = float(lik.n_params)
        scale = 1.0
        if lik.family.has_scale:
            scale = pearson_chi2(lik, lik.theta) / (lik.nobs - edf)
        stats = {"edf": edf, "scale": scale, "penalized": False,
                 "hess_info": {"singular": False}}
    stats["cov_theta"] = np.atleast_2d(np.cov(thetas, rowvar=False))
    stats["cov_params"] = np.atleast_2d(np.cov(params, rowvar=False))
    stats["bootstrap_params"] = params
    return stats


def simulate(est, family, mu, scale, rng):
    """Draw a response from fitted means ``mu`` (``family.simulate``), as labels for a
    classifier."""
    draw = family.simulate(mu, scale, rng)
    if is_classifier(est):
        return est.classes_[draw.astype(np.int64)]
    return draw
