"""Calibration of predicted probabilities: decile bins and the Hosmer-Lemeshow test."""

import numpy as np
import torch


def _np(a):
    return a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)


def probability_and_hit(y, mu):
    """The probability that :func:`calibration_table` bins (of the second class, or of the
    predicted class) and the outcome it predicts (0/1 floats), from numpy ``y`` and ``mu``."""
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim == 2:
        return mu.max(1), (mu.argmax(1) == np.asarray(y)).astype(np.float64)
    return mu, np.asarray(y, dtype=np.float64)


def calibration_table(y, mu, n_bins=10):
    """Bins of the predicted probability with observed frequencies and the Hosmer-Lemeshow test.

    For one probability per row (two classes) the bins are those of the probability of the
    second class against the 0/1 outcome; for several classes, of the predicted class's
    probability against whether it was right. Rows are sorted by probability and split into
    ``n_bins`` groups of (nearly) equal size (``np.array_split`` of the stable sort: equal
    counts, not quantile breaks).

    Returns
    -------
    table : DataFrame
        Per bin: ``n``, ``mean_predicted``, ``observed``, ``p_min``, ``p_max``.
    hosmer_lemeshow : tuple
        ``(statistic, p_value)`` on ``n_bins - 2`` degrees of freedom.
    """
    p, hit = probability_and_hit(_np(y), _np(mu))
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, min(n_bins, len(p)))
    rows = [(len(b), p[b].mean(), hit[b].mean(), p[b].min(), p[b].max()) for b in bins]
    return hosmer_lemeshow_table(rows)


def hosmer_lemeshow_table(rows):
    """The calibration table and the Hosmer-Lemeshow test from per-bin
    ``(n, mean_predicted, observed, p_min, p_max)`` rows (the bins of
    :func:`calibration_table`, however computed)."""
    import pandas as pd
    from scipy import stats as sps

    table = pd.DataFrame([(i + 1,) + tuple(r) for i, r in enumerate(rows)],
                         columns=["bin", "n", "mean_predicted", "observed",
                                  "p_min", "p_max"]).set_index("bin")
    e, o, n = table.mean_predicted.values, table.observed.values, table.n.values
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = float(np.nansum(n * (o - e) ** 2 / (e * (1 - e))))
    df = max(len(table) - 2, 1)
    return table, (stat, float(sps.chi2.sf(stat, df)))
