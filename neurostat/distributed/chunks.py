"""Row chunks of dask collections: alignment, and reductions computed where the chunks live.

Every reduction here is a dask graph over the row chunks (``dask.array.blockwise``), summed by
dask's tree reduction (``split_every``) on the workers: one pass over the chunks, a result of
the size of the statistic (a vector, a ``p x p`` matrix) reaching the client, never a row.
Within a task, torch and BLAS use one thread: the parallelism is dask's, across chunks.
"""

import numpy as np

from .._utils import blas_threads, num_threads

#: chunk results summed per node of dask's reduction tree
SPLIT_EVERY = 8


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - dask is there whenever a collection is
        raise ImportError(
            "Data in dask collections need dask: pip install 'neurostat[dask]'."
        ) from exc
    return dask, da


class ChunkedData:
    """``(X, y, w)`` as dask arrays with the same row chunks, ``X`` in one column chunk.

    Parameters
    ----------
    X : dask array (n, d) or dask DataFrame
    y : dask array, dask Series/DataFrame, numpy array or None
        Rows aligned with ``X``; an in-memory ``y`` is split into ``X``'s row chunks.
    sample_weight : same kinds as ``y``, or None

    Attributes
    ----------
    X, y, w : dask arrays (``y``, ``w`` may be None)
    meta : ndarray or DataFrame with no rows
        What scikit-learn's validation sees of the inputs (columns, their names).
    """

    def __init__(self, X, y=None, sample_weight=None):
        _, da = _dask()
        meta = None
        if hasattr(X, "columns") and hasattr(X, "to_dask_array"):  # a dask DataFrame
            meta = X._meta
            X = X.to_dask_array(lengths=True)
        elif not isinstance(X, da.Array):
            raise TypeError(
                f"X is a {type(X).__name__}; neurostat takes a dask array or a dask DataFrame "
                "(dask.array.from_array, dask.dataframe.from_pandas) or in-memory data."
            )
        if X.ndim != 2:
            raise ValueError(f"X must be 2-dimensional (rows, features); got shape {X.shape}.")
        if X.dtype.kind not in "fiub":
            raise ValueError(f"X must be numeric; got dtype {X.dtype}.")
        X = X.astype(np.float64).rechunk({1: -1})
        self.X = X
        self.meta = np.zeros((0, X.shape[1])) if meta is None else meta
        self.y = None if y is None else self._aligned(y, "y")
        if self.y is not None and self.y.ndim == 2 and self.y.shape[1] == 1:
            self.y = self.y[:, 0]
        self.w = None if sample_weight is None else self._aligned(sample_weight,
                                                                   "sample_weight")
        if self.w is not None and self.w.ndim != 1:
            raise ValueError(f"sample_weight must be 1-dimensional; got shape {self.w.shape}.")

    def _aligned(self, a, what):
        _, da = _dask()
        rows = self.X.chunks[0]
        if hasattr(a, "to_dask_array"):  # dask Series or DataFrame
            a = a.to_dask_array(lengths=True)
        if not isinstance(a, da.Array):
            a = np.asarray(a)
            if a.shape[0] != self.X.shape[0]:
                raise ValueError(f"X has {self.X.shape[0]} rows but {what} has {a.shape[0]}.")
            return da.from_array(a, chunks=(rows,) + a.shape[1:])
        if a.ndim not in (1, 2):
            raise ValueError(f"{what} must be 1- or 2-dimensional; got shape {a.shape}.")
        if a.shape[0] != self.X.shape[0]:
            raise ValueError(f"X has {self.X.shape[0]} rows but {what} has {a.shape[0]}.")
        return a.rechunk({0: rows, 1: -1} if a.ndim == 2 else {0: rows})

    @property
    def n_chunks(self):
        """Number of row chunks."""
        return self.X.numblocks[0]

    def delayed_blocks(self):
        """``[(X_i, y_i, w_i), ...]``: one tuple of delayed numpy blocks per row chunk."""
        xs = self.X.to_delayed().ravel()
        ys = [None] * len(xs) if self.y is None else self.y.to_delayed().ravel()
        ws = [None] * len(xs) if self.w is None else self.w.to_delayed().ravel()
        return list(zip(xs, ys, ws))

    def names(self):
        """The dask names of ``(X, y, w)``: equal names, equal data."""
        return tuple(None if a is None else a.name for a in (self.X, self.y, self.w))


def _block(*blocks, fn, present, kwargs):
    it = iter(blocks)
    args = [next(it) if p else None for p in present]
    with num_threads(1), blas_threads(1):
        out = np.asarray(fn(*args, **kwargs), dtype=np.float64)
    return out[None, :]


def per_chunk(fn, width, arrays, name=None, **kwargs):
    """A lazy ``(n_chunks, width)`` dask array: row ``i`` is ``fn(*blocks_i, **kwargs)``.

    ``arrays`` are dask arrays with the same row chunks (None entries are passed as None);
    ``fn`` returns a float vector of length ``width``. Sum it over axis 0 (dask's tree
    reduction) for a total over the rows.
    """
    _, da = _dask()
    args, present = [], []
    for j, a in enumerate(arrays):
        present.append(a is not None)
        if a is not None:
            args += [a, "i" + ("" if a.ndim == 1 else "abcdefgh"[j])]
    extra = {} if name is None else {"name": name}
    return da.blockwise(_block, "ir", *args, new_axes={"r": width}, adjust_chunks={"i": 1},
                        concatenate=True, dtype=np.float64, meta=np.empty((0, 0)),
                        fn=fn, present=tuple(present), kwargs=kwargs, **extra)


def chunk_sum(fn, width, arrays, **kwargs):
    """``sum_i fn(*blocks_i)`` over the row chunks, computed (a numpy vector)."""
    return per_chunk(fn, width, arrays, **kwargs).sum(axis=0, split_every=SPLIT_EVERY).compute()


def map_rows(fn, X, out_shape, dtype, **kwargs):
    """``fn(X_i, **kwargs)`` for every row chunk of the 2-D dask array X: a lazy dask array of
    shape ``(n,) + out_shape`` (``out_shape`` is ``()`` or ``(k,)``)."""
    _, da = _dask()

    def one(xb, **kw):
        with num_threads(1), blas_threads(1):
            return np.asarray(fn(xb, **kw))

    if out_shape == ():
        return X.map_blocks(one, drop_axis=1, dtype=dtype, meta=np.empty(0, dtype), **kwargs)
    return X.map_blocks(one, chunks=(X.chunks[0], out_shape), dtype=dtype,
                        meta=np.empty((0, 0), dtype), **kwargs)


# ---------------------------------------------------------------------- the summary pass
def _summary_block(X, y, w, classifier, validate):
    """Per chunk: rows, weight total, finiteness, and the labels' weights or y's moments."""
    n = X.shape[0]
    wb = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    bad_w = bool(np.any(~np.isfinite(wb)) or np.any(wb < 0))
    out = {"n": n, "wsum": float(wb.sum()), "finite": bool(np.all(np.isfinite(X))),
           "bad_w": bad_w}
    if y is None:
        return out
    if classifier:
        labels, inv = np.unique(y, return_inverse=True)
        out["labels"] = (labels, np.bincount(inv.ravel(), weights=wb, minlength=labels.size))
        return out
    yb = np.asarray(y, dtype=np.float64)
    out["finite"] &= bool(np.all(np.isfinite(yb)))
    if validate is not None and out["finite"]:
        validate(yb)
    yb2 = yb if yb.ndim == 2 else yb[:, None]
    W = out["wsum"]
    mean = (wb @ yb2) / W if W > 0 else np.zeros(yb2.shape[1])
    out["moments"] = (W, mean, wb @ (yb2 - mean) ** 2)
    return out


def _merge_moments(parts):
    """Chan's pairwise combination of (weight, mean, centered sum of squares)."""
    W, mean, m2 = parts[0]
    for Wb, mb, m2b in parts[1:]:
        tot = W + Wb
        if tot == 0:
            continue
        delta = mb - mean
        mean = mean + delta * (Wb / tot)
        m2 = m2 + m2b + delta**2 * (W * Wb / tot)
        W = tot
    return W, mean, m2


def summarize(data, classifier=False, validate=None):
    """One pass over the chunks: rows, total weight, checks, and the target's summary.

    Returns a dict with ``n``, ``wsum`` and, with a target, ``labels`` and ``label_weights``
    (classifier: the sorted labels and the total weight of each) or ``mean`` and ``var`` (the
    weighted mean and variance of each target column).

    Raises
    ------
    ValueError
        Non-finite inputs or targets, negative or non-finite weights, weights summing to zero.
    """
    import dask

    tasks = [dask.delayed(_summary_block)(xb, yb, wb, classifier, validate)
             for xb, yb, wb in data.delayed_blocks()]
    parts = dask.compute(*tasks)
    if not all(p["finite"] for p in parts):
        raise ValueError("Input contains NaN or infinity (X or y of a dask collection); "
                         "drop or impute those rows first.")
    if any(p["bad_w"] for p in parts):
        raise ValueError("sample_weight contains negative, NaN or infinite values; give finite "
                         "weights >= 0.")
    out = {"n": int(sum(p["n"] for p in parts)), "wsum": float(sum(p["wsum"] for p in parts))}
    if out["wsum"] <= 0:
        raise ValueError("sample_weight sums to zero; give at least one positive weight.")
    if data.y is None:
        return out
    if classifier:
        labels = np.unique(np.concatenate([p["labels"][0] for p in parts]))
        weights = np.zeros(labels.size)
        for p in parts:
            weights[np.searchsorted(labels, p["labels"][0])] += p["labels"][1]
        out.update(labels=labels, label_weights=weights)
        return out
    W, mean, m2 = _merge_moments([p["moments"] for p in parts])
    out.update(mean=mean, var=m2 / W)
    return out
