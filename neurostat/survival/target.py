"""Survival targets as they come: right-censored, counting-process, stratified, competing risks.

A target is parsed into one float64 array the Cox family reads column by column:

* ``(time, event)`` - right-censored data (2 columns);
* ``(start, stop, event, stratum)`` - counting-process data (one row per interval
  ``(start, stop]``: time-varying covariates, left truncation / delayed entry) and/or strata
  (4 columns; ``start = -inf`` when the data have no entry times, ``stratum = 0`` when there
  are no strata).

Event codes are 0 (censored) or ``1..n_causes`` (the cause of the event; with one cause, 1 is
the event). The row of an interval is at risk at time ``t`` when ``start < t <= stop`` and it
belongs to the stratum of the event (R's ``Surv(start, stop, event)`` and ``strata()``).
"""

import numpy as np

_EVENT_NAMES = ("event", "status", "dead", "death", "died", "observed", "fail", "cens", "delta",
                "cause")
_START_NAMES = ("start", "entry", "enter", "tstart", "begin", "left", "t0")


class SurvivalArray(np.ndarray):
    """A parsed survival target (a float64 ndarray of 2 or 4 columns, see the module);
    :func:`as_survival_target` returns it unchanged."""


def _mark(arr):
    return np.ascontiguousarray(arr, dtype=np.float64).view(SurvivalArray)


def _is_bool(dtype):
    return np.dtype(dtype) == np.bool_


def _pick(names, dtypes, keys, prefer_bool):
    if prefer_bool:
        bools = [k for k, t in zip(names, dtypes, strict=True) if _is_bool(t)]
        if len(bools) == 1:
            return bools[0]
    named = [k for k in names if any(s in str(k).lower() for s in keys)]
    return named[0] if len(named) == 1 else None


def _by_names(names, dtypes, get):
    """(start or None, stop, event) of named fields / columns."""
    names = list(names)
    if len(names) not in (2, 3):
        raise ValueError(
            f"A survival target needs two fields (time, event) or three (start, stop, event); "
            f"got {names}."
        )
    ev = _pick(names, dtypes, _EVENT_NAMES, prefer_bool=True)
    if ev is None:
        raise ValueError(
            f"Cannot tell which field of the target {names} is the event indicator: make it "
            "boolean (as scikit-survival's Surv) or name it 'event'."
        )
    rest = [k for k in names if k != ev]
    if len(rest) == 1:
        return None, get(rest[0]), get(ev)
    st = _pick(rest, [None] * 2, _START_NAMES, prefer_bool=False)
    st = rest[0] if st is None else st
    stop = rest[1] if rest[0] == st else rest[0]
    return get(st), get(stop), get(ev)


def _columns(y):
    names = getattr(getattr(y, "dtype", None), "names", None)
    if names is not None:
        return _by_names(names, [y.dtype[k] for k in names], lambda k: np.asarray(y[k]))
    if hasattr(y, "columns") and getattr(y, "ndim", 2) == 2:  # DataFrame
        cols = list(y.columns)
        if len(cols) not in (2, 3):
            raise ValueError(
                "A survival target DataFrame needs two columns (time, event) or three "
                f"(start, stop, event); got {cols}."
            )
        if any(_is_bool(t) for t in y.dtypes):
            return _by_names(cols, list(y.dtypes), lambda k: y[k].to_numpy())
        get = [y[k].to_numpy() for k in cols]
        return (None, *get) if len(cols) == 2 else tuple(get)
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 1:
        return None, arr, np.ones(arr.shape[0])
    if arr.ndim == 2 and arr.shape[1] in (2, 3):
        return (None, arr[:, 0], arr[:, 1]) if arr.shape[1] == 2 else tuple(arr.T)
    raise ValueError(
        f"y must be (time, event) pairs of shape (n_samples, 2), (start, stop, event) triples "
        f"of shape (n_samples, 3), a structured array or 1-D times; got shape {arr.shape}."
    )


def _rows(mask, limit=10):
    rows = np.flatnonzero(mask)
    more = f" and {rows.size - limit} more" if rows.size > limit else ""
    return f"{rows[:limit].tolist()}{more}"


def _numeric(a, what):
    if np.iscomplexobj(a):
        raise ValueError("Complex data not supported: survival times and events must be real.")
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Survival {what} must be numeric: {exc}") from None


def _check_times(start, stop):
    if not np.all(np.isfinite(stop)) or (start is not None and not np.all(np.isfinite(start))):
        bad = ~np.isfinite(stop) if start is None else ~(np.isfinite(stop) & np.isfinite(start))
        raise ValueError(f"Survival times contain NaN or infinity (rows {_rows(bad)}); give "
                         "finite times.")
    if start is None:
        if np.any(stop < 0):
            raise ValueError(
                f"Survival times must be >= 0; got {int((stop < 0).sum())} negative time(s) "
                f"(smallest {stop.min():g}, rows {_rows(stop < 0)})."
            )
    elif np.any(stop <= start):
        raise ValueError(
            f"Each interval needs start < stop; rows {_rows(stop <= start)} have stop <= start. "
            "A row is at risk on (start, stop]: drop empty intervals."
        )


def _check_events(event, n_causes):
    codes = np.arange(n_causes + 1, dtype=np.float64)
    ok = np.isin(event, codes)
    if not np.all(ok):
        bad = np.unique(event[~ok])[:5].tolist()
        allowed = ("0 (censored) or 1 (event)" if n_causes == 1 else
                   f"0 (censored) or a cause 1..{n_causes} (n_causes={n_causes})")
        hint = "" if n_causes > 1 or not np.all(np.isin(event[~ok], np.arange(2, 100))) else (
            "; for competing risks set n_causes to the number of causes")
        raise ValueError(
            f"The event indicator must be {allowed}; rows {_rows(~ok)} have codes {bad}{hint}."
        )
    if event.size and not np.any(event > 0):
        raise ValueError(
            "The data contain no events (every observation is censored): the partial "
            "likelihood is constant and a Cox model cannot be fitted."
        )
    missing = [k for k in range(1, n_causes + 1) if event.size and not np.any(event == k)]
    if missing and n_causes > 1:
        raise ValueError(
            f"No event of cause(s) {missing}: their cause-specific partial likelihood is "
            "constant. Give data with every declared cause, or lower n_causes."
        )


def as_survival_target(y, n_causes=1):
    """Parse a survival target into (time, event) or (start, stop, event) columns (float64).

    Accepts a structured array (scikit-survival's ``Surv``: the boolean field is the event
    indicator; otherwise the field whose name says event/status; with three fields the one
    named start/entry is the entry time), a two- or three-column array or DataFrame
    ``(time, event)`` / ``(start, stop, event)`` (a boolean column, if exactly one, is the
    event), or a 1-D array of times, all of them events (lifelines' convention when no event
    column is given). A :class:`SurvivalArray` is returned as it is.

    Parameters
    ----------
    y : array-like or structured array
    n_causes : int, default=1
        Number of competing causes: event codes 0 (censored) or ``1..n_causes``.

    Returns
    -------
    ndarray of shape (n_samples, 2) or (n_samples, 3)

    Raises
    ------
    ValueError
        For a missing target, non-finite times, negative times of right-censored data, an
        interval with ``stop <= start``, event codes outside ``0..n_causes`` or no event at
        all (naming the rows).
    """
    if isinstance(y, SurvivalArray):
        return y
    parsed = _parsed(y)
    if parsed is not None:
        return parsed
    if y is None:
        raise ValueError(
            "NeuralCoxRegressor requires y to be passed, but the target y is None. Give "
            "(time, event) pairs or (start, stop, event) triples: a structured array, an "
            "array or DataFrame with 2 or 3 columns, or 1-D times (all events)."
        )
    start, stop, event = _columns(y)
    stop, event = _numeric(stop, "times"), _numeric(event, "events")
    start = None if start is None else _numeric(start, "times")
    _check_times(start, stop)
    _check_events(event, n_causes)
    cols = [stop, event] if start is None else [start, stop, event]
    return np.column_stack(cols)


def _parsed(y):
    """A plain 4-column numeric array is the parsed form (start, stop, event, stratum code),
    as inference hands the training target back to ``fit`` (the bootstrap): checked and
    marked, else None."""
    if y is None or hasattr(y, "columns") or getattr(getattr(y, "dtype", None), "names", None):
        return None
    arr = np.asarray(y)
    if arr.ndim != 2 or arr.shape[1] != 4 or arr.dtype.kind not in "fiub":
        return None
    arr = arr.astype(np.float64)
    start = np.where(np.isfinite(arr[:, 0]), arr[:, 0], arr[:, 1] - 1.0)
    _check_times(start, arr[:, 1])
    codes = arr[:, 3]
    if not np.all((codes >= 0) & (codes == np.round(codes))):
        raise ValueError("The stratum column of a parsed (start, stop, event, stratum) target "
                         "must hold integer codes >= 0.")
    return _mark(arr)


def encode_labels(values, n, what):
    """Integer codes 0..k-1 and the sorted labels of a per-row ``strata`` or ``groups``."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"{what} must be 1-D with one entry per row of y: it has shape {arr.shape} but y "
            f"has {n} rows."
        )
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or infinity (rows {_rows(~np.isfinite(arr))}).")
    labels, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64), labels


def check_intervals(start, stop, groups):
    """Raise when two intervals of one subject (``groups``) overlap."""
    codes, labels = encode_labels(groups, stop.shape[0], "groups")
    order = np.lexsort((start, codes))
    g, s, e = codes[order], start[order], stop[order]
    bad = (g[1:] == g[:-1]) & (s[1:] < e[:-1])
    if np.any(bad):
        i = np.flatnonzero(bad)[:5]
        pairs = [(int(order[k]), int(order[k + 1])) for k in i]
        subjects = [np.asarray(labels[g[k]]).tolist() for k in i]
        raise ValueError(
            f"Overlapping (start, stop] intervals of one subject: rows {pairs} (groups "
            f"{subjects}). A subject is at risk once at each time: split its follow-up into "
            "disjoint intervals."
        )


def survival_data(y, strata=None, groups=None, n_causes=1):
    """The target as the Cox family reads it (a :class:`SurvivalArray`) and the stratum labels.

    Parameters
    ----------
    y : see :func:`as_survival_target`
    strata : array-like of shape (n_samples,), default=None
        Stratum of each row (any labels): separate baseline hazards, shared coefficients.
    groups : array-like of shape (n_samples,), default=None
        Subject (cluster) of each row; with (start, stop] data its intervals must not overlap.
    n_causes : int, default=1

    Returns
    -------
    target : SurvivalArray of shape (n_samples, 2) or (n_samples, 4)
    strata_labels : ndarray or None
    """
    if isinstance(y, SurvivalArray) or _parsed(y) is not None:
        if strata is not None:
            raise ValueError("This target already carries its strata (4 columns); drop "
                             "strata=.")
        return as_survival_target(y, n_causes), None
    yy = as_survival_target(y, n_causes)
    n = yy.shape[0]
    start = yy[:, 0] if yy.shape[1] == 3 else None
    if groups is not None:
        encode_labels(groups, n, "groups")
        if start is not None:
            check_intervals(start, yy[:, 1], groups)
    if start is None and strata is None:
        return _mark(yy), None
    codes, labels = (np.zeros(n, np.int64), None) if strata is None else encode_labels(
        strata, n, "strata")
    if start is None:
        start = np.full(n, -np.inf)
    return _mark(np.column_stack([start, yy[:, -2], yy[:, -1], codes])), labels


def columns(y):
    """``(start or None, stop, event, stratum or None)`` of a parsed target (any array type
    with ``shape[1]`` 2 or 4, numpy or torch)."""
    if y.shape[1] == 2:
        return None, y[:, 0], y[:, 1], None
    return y[:, 0], y[:, 1], y[:, 2], y[:, 3]


def time_ranks(y):
    """The target with times replaced by dense ranks (the partial likelihood only uses their
    order, and ranks stay exact in float32); entry times share the ranks of the stop times
    (``start = -inf`` becomes -1)."""
    y = np.array(y, dtype=np.float64)
    start, stop, _, _ = columns(y)
    if start is None:
        _, rank = np.unique(stop, return_inverse=True)
        y[:, 0] = rank
        return y
    finite = np.isfinite(start)
    both = np.concatenate([start[finite], stop])
    uniq = np.unique(both)
    y[:, 1] = np.searchsorted(uniq, stop)
    y[:, 0] = np.where(finite, np.searchsorted(uniq, np.where(finite, start, 0.0)), -1.0)
    return y
