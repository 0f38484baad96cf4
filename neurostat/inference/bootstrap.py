"""Refits on resampled or simulated data: the bootstrap covariance and the parametric-bootstrap
LR test's null distribution.

Replicates are warm-started from the fitted network (so they stay in the fitted solution's basin
of attraction: hidden units cannot switch labels between replicates) and run through joblib,
so ``with joblib.parallel_backend("dask"):`` (or "ray") spreads them over a cluster. Each
replicate uses one torch thread; a tqdm bar shows progress.
"""

import pickle
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .._utils import blas_threads, num_threads
from .covariance import MAX_HESSIAN_PARAMS
from .effects import effect_params
from .statistics import curvature_statistics


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


def refit(est, X, y, w, offset=None):
    """Warm-started refit of a copy of ``est`` on (X, y, w) and the offset; returns the copy."""
    b = warm_copy(est)
    # one thread for torch and for BLAS: scipy's L-BFGS-B makes many tiny BLAS calls, and
    # waking an idle BLAS thread pool for each made small refits 8x slower (measured)
    with num_threads(1), blas_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        b.fit(as_input(b, X), y, sample_weight=w, **_offset_kw(offset))
    return b


def _offset_kw(offset):
    return {} if offset is None else {"offset": offset}


def run_parallel(fn, args, n_jobs, desc):
    """``[fn(*a) for a in args]`` through joblib with a progress bar."""
    from tqdm.auto import tqdm

    out = []
    jobs = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(fn)(*a) for a in args)
    for r in tqdm(jobs, total=len(args), desc=desc, leave=False, disable=None):
        out.append(r)
    return out


def raw_target(model):
    """The response as the estimator takes it in ``fit`` (class labels for a classifier)."""
    y = model.likelihood.y.numpy()
    return y if model.classes is None else model.classes[y.astype(np.int64)]


def _case_replicate(est, X, y, w, seed, offset=None):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, X.shape[0], X.shape[0])
    b = refit(est, X[idx], y[idx], None if w is None else w[idx],
              None if offset is None else offset[idx])
    model = b._statistical_model(X, y, w, **_offset_kw(offset))
    values, _ = effect_params(model, X)
    return model.likelihood.theta.numpy(), values


def bootstrap_statistics(est, model, n_bootstrap, n_jobs, random_state):
    """:class:`FitStatistics` whose covariances of theta and of params are those of
    ``n_bootstrap`` warm-started refits on case resamples."""
    if not (isinstance(n_bootstrap, int | np.integer) and n_bootstrap >= 2):
        raise ValueError(f"n_bootstrap must be an integer >= 2; got {n_bootstrap!r}.")
    lik = model.likelihood
    X, y = lik.X.numpy(), raw_target(model)
    w = None if lik.w is None else lik.w.numpy()
    rng = check_random_state(random_state)
    seeds = rng.randint(0, 2**31 - 1, size=n_bootstrap)
    reps = run_parallel(_case_replicate, [(est, X, y, w, s, lik.offset_input) for s in seeds],
                        n_jobs, "bootstrap")
    thetas = np.array([r[0] for r in reps])
    params = np.array([r[1] for r in reps])
    if lik.n_params <= MAX_HESSIAN_PARAMS:
        stats = curvature_statistics(model).replace(
            cov_theta=np.atleast_2d(np.cov(thetas, rowvar=False)))
    else:  # too large for a dense Hessian or a p x p covariance: the output layer's only
        from .lastlayer import last_layer_statistics, output_layer_index

        idx = output_layer_index(model)
        stats = last_layer_statistics(model, "HC0").replace(
            cov_subspace=(idx, np.atleast_2d(np.cov(thetas[:, idx], rowvar=False))))
    return stats.replace(
        cov_params=np.atleast_2d(np.cov(params, rowvar=False)), bootstrap_params=params,
        method=f"case bootstrap ({n_bootstrap} warm-started refits on resamples)")


def simulate(model, eta, scale, rng):
    """Draw a response at the fitted linear predictor ``eta`` (``family.sample``; binomial
    trials are the data's weights), as labels for a classifier."""
    draw = model.family.sample(eta, scale, rng, model.likelihood.w)
    return draw if model.classes is None else model.classes[draw.astype(np.int64)]
