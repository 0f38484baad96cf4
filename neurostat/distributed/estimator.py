"""The estimators' side of dask collections: fit, the inference likelihood, prediction, score.

``_BaseNeural`` hands a dask collection here before scikit-learn's validation (which would
gather it into memory). The fit leaves the estimator exactly as an in-memory fit does (the
same attributes, the same ``module_``), with the training data kept by reference as dask
collections, so ``inference()``, ``summary()`` and ``predict`` work on them chunk by chunk.
"""

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._utils import resolve_device
from ..engine.penalties import ElasticNetPenalty
from .chunks import ChunkedData, map_rows, summarize
from .likelihood import ChunkedLikelihood


def _check_inputs(est, data, reset):
    """scikit-learn's column checks on the collection's (empty) metadata: ``n_features_in_``
    and ``feature_names_in_`` are set at fit and checked afterwards, as in memory."""
    validate_data(est, data.meta, reset=reset, dtype=np.float64, ensure_min_samples=0,
                  ensure_all_finite=False)


def _encoder(est):
    """Encodes y as the family expects, chunk by chunk (the estimator's own encoding)."""
    dtype = np.float64
    if est._classifier and len(est.classes_) > 2:
        dtype = np.int64
    return est._inference_target, dtype


def _encode(est, y):
    fn, dtype = _encoder(est)
    return y.map_blocks(fn, dtype=dtype, meta=np.empty((0,) * y.ndim, dtype))


def _surrogate_target(est, summary):
    """A few rows with the target's weighted summary (labels' weights, or mean and variance):
    what the estimator's initialization reads of y (null intercept, target scaling)."""
    if est._classifier:
        w = np.zeros(len(est.classes_))
        pos = np.searchsorted(est.classes_, summary["labels"])
        w[pos] = summary["label_weights"]
        y = np.arange(len(est.classes_))
        return (y.astype(np.float64) if len(est.classes_) == 2 else y), w
    m, s = summary["mean"], np.sqrt(summary["var"])
    y = np.vstack([m - s, m + s])
    return (y[:, 0] if y.shape[1] == 1 else y), np.array([0.5, 0.5])


def _set_classes(est, summary, incremental):
    labels = summary["labels"]
    check_classification_targets(labels)
    if not hasattr(est, "classes_") or not (est.warm_start or incremental):
        est.classes_ = labels
    if len(est.classes_) < 2:
        raise ValueError(
            f"The target has only one class ({est.classes_[0]!r}); a classifier needs at "
            "least 2 classes.")
    if not np.isin(labels, est.classes_).all():
        raise ValueError(
            f"y contains labels not seen in classes_ {est.classes_.tolist()}; pass all "
            "classes to the first partial_fit (classes=...) or refit.")


def _check_solver(est, family):
    hidden = est._hidden_sizes()
    if est.early_stopping:
        raise ValueError(
            "early_stopping is not available for dask collections; hold out a validation "
            "collection and score it with est.score(X_val, y_val).")
    if est.solver == "lbfgs" and (hidden or not family.newton):
        raise ValueError(
            "solver='lbfgs' on a dask collection fits networks without hidden layer "
            "(hidden_layer_sizes=()) by chunked Newton; train a network with hidden layers "
            "with a stochastic solver (solver='adam'), which streams minibatches from the "
            "chunks.")


def fit_chunked(est, X, y, sample_weight=None, incremental=False):
    """Fit ``est`` to dask collections without gathering them (see :mod:`neurostat.distributed`).

    Returns
    -------
    est : the fitted estimator
    """
    from .glm import newton_fit
    from .stream import train_stream

    if y is None:
        raise ValueError("fit needs y: a dask array or Series aligned with the rows of X.")
    est._check_options()
    first = not (est._is_initialized() and (est.warm_start or incremental))
    data = ChunkedData(X, y, sample_weight)
    _check_inputs(est, data, reset=first)
    validate = None
    if not est._classifier:
        validate = est._make_family(np.zeros(1)).validate
    summary = summarize(data, classifier=est._classifier, validate=validate)
    if est._classifier:
        _set_classes(est, summary, incremental)
    y_s, w_s = _surrogate_target(est, summary)
    family = est._make_family(y_s)
    _check_solver(est, family)
    family.validate(y_s)
    est.family_ = family
    raw_y = data.y
    data.y = _encode(est, data.y)
    if first:
        est.device_ = resolve_device(est.device)
    newton = est.solver == "lbfgs"
    dtype = torch.float64 if newton else torch.float32
    penalty = ElasticNetPenalty(est.alpha, est.l1_ratio)
    with _seeded(est, first) as seed:
        if first:
            est._initialize(data.X, y_s, family, w_s, dtype)
        else:
            est.module_.to(dtype=dtype)
        b0 = family.initial_intercept(y_s, w_s)
        stats = None
        if newton:
            out = newton_fit(data, est.module_.cpu(), family, penalty, b0,
                             max_iter=min(est.max_iter, 100))
            stats = _store_newton(est, out)
            est.module_.to(est.device_)
        else:
            train_stream(est, data, summary, family, penalty, dtype, seed, incremental)
    est._training_data = (data.X, raw_y, data.w)
    # what inference on the training data reuses: the names of the data, the null intercept
    # and the last pass's statistics at the final parameters (parameter-sized, picklable)
    est._chunked_fit = {"data": (data.X.name, raw_y.name, None if data.w is None
                                 else data.w.name), "b0": np.atleast_1d(b0),
                        "statistics": stats}
    return est


class _seeded:
    """The in-memory fit's seeding (``_BaseNeural._fit``): one RandomState per fit sequence,
    torch's generator seeded inside the block."""

    def __init__(self, est, first):
        if first or not hasattr(est, "_seed_sequence"):
            est._seed_sequence = check_random_state(est.random_state)
        self.seed = est._seed_sequence.randint(np.iinfo(np.int32).max)
        dev = est.device_
        self._fork = torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda"
                                           else [])

    def __enter__(self):
        self._fork.__enter__()
        torch.manual_seed(self.seed)
        return self.seed

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)


def _store_newton(est, out):
    layer = est.module_.output_layer
    nw = layer.weight.numel()
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(out.theta[:nw]).view_as(layer.weight))
        layer.bias.copy_(torch.as_tensor(out.theta[nw:]).view_as(layer.bias))
    history = est._history
    history.loss_curve.extend(out.objective)
    history.n_iter += out.n_iter
    history.converged = out.converged
    est._store_history(history, None)
    est.n_passes_ = out.n_passes + 1  # and the summary pass
    return out.theta.tobytes(), out.statistics


def likelihood_on_chunks(est, X=None, y=None, sample_weight=None):
    """The :class:`ChunkedLikelihood` of fitted ``est`` on dask data (default: the training
    data, whose fit's last pass is reused)."""
    check_is_fitted(est, "module_")
    if (X is None) != (y is None):
        raise ValueError("Pass both X and y, or neither (then the training data are used).")
    fit = getattr(est, "_chunked_fit", None) or {}
    if X is None:
        Xd, raw_y, w = est._training_data
        data = ChunkedData(Xd, raw_y, None)
        data.w = w
    else:
        data = ChunkedData(X, y, sample_weight)
        _check_inputs(est, data, reset=False)
    cache, b0 = {}, None
    if data.names() == fit.get("data"):
        b0 = fit["b0"]
        if fit.get("statistics") is not None:
            key, stats = fit["statistics"]
            cache[key] = stats
    if b0 is None:
        b0 = _null_intercept(est, data)
    return ChunkedLikelihood(est.module_, est.family_, data.X, _encode(est, data.y), data.w,
                             null_intercept=b0, cache=cache)


def _null_intercept(est, data):
    def compute():
        summary = summarize(data, classifier=est._classifier)
        y_s, w_s = _surrogate_target(est, summary)
        return np.atleast_1d(est.family_.initial_intercept(y_s, w_s))
    return compute


# ---------------------------------------------------------------------- prediction
def map_method(est, name, X, *args, **kwargs):
    """``est.<name>(X)`` for a dask collection: the in-memory method on every row chunk, a
    dask array back (``score``: a float, reduced over the chunks)."""
    if name == "score":
        return _score(est, X, *args, **kwargs)
    check_is_fitted(est, "module_")
    data = ChunkedData(X)
    _check_inputs(est, data, reset=False)
    columns = getattr(data.meta, "columns", None)
    method = getattr(est, name)

    def call(xb):
        import pandas as pd
        xb = xb if columns is None else pd.DataFrame(xb, columns=columns)
        return method(xb)

    probe = np.asarray(call(np.zeros((1, data.X.shape[1]))))
    return map_rows(call, data.X, probe.shape[1:], probe.dtype)


def _score(est, X, y, sample_weight=None):
    """Accuracy (classifier) or the uniform average R^2 (regressor), over the chunks."""
    import dask

    data = ChunkedData(X, y, sample_weight)
    pred = map_method(est, "predict", X)
    w = data.w
    yv = data.y
    if est._classifier:
        hit = (pred == yv).astype(np.float64)
        num, den = (hit.sum(), hit.shape[0]) if w is None else ((hit * w).sum(), w.sum())
        num, den = dask.compute(num, den)
        return float(num / den)
    yv = yv.astype(np.float64)
    y2 = yv if yv.ndim == 2 else yv[:, None]
    p2 = pred if pred.ndim == 2 else pred[:, None]
    w2 = 1.0 if w is None else w[:, None]
    W = y2.shape[0] if w is None else w.sum()
    ybar = (w2 * y2).sum(0) / W
    ss_res, ss_tot = dask.compute((w2 * (y2 - p2) ** 2).sum(0), (w2 * (y2 - ybar) ** 2).sum(0))
    with np.errstate(divide="ignore", invalid="ignore"):  # scikit-learn's r2_score
        r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
    return float(np.mean(r2))
