"""The Leekasso (J. Leek, 2017): keep the k features with the largest two-sample t-statistics,
then fit a linear model on them. Built from scikit-learn parts, not new machinery.

For two classes the one-way ANOVA F statistic of a feature is the square of the pooled-variance
two-sample t statistic, ``F = t^2``, so ranking by ``f_classif`` is ranking by ``|t|`` - the
ranking of genefilter's ``rowttests`` that Leek used.
"""

import numpy as np
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.pipeline import Pipeline


def leekasso(k=10, model="logistic", *, C=np.inf, max_iter=1000):
    """A scikit-learn pipeline: top-``k`` t-statistic selection, then a linear classifier.

    Parameters
    ----------
    k : int, default=10
        Number of features kept (Leek kept 10 pixels).
    model : {"logistic", "linear"}, default="logistic"
        "linear" is Leek's least-squares fit of the 0/1 label, classified by ``fitted > 1/2``:
        ``RidgeClassifier(alpha=0, solver="svd")`` fits least squares to the label coded -1/+1
        (an affine recoding of 0/1, so ``fitted > 0`` there is ``fitted > 1/2`` here), with the
        minimum-norm solution when fewer observations than coefficients make it non-unique (R's
        ``lm`` drops aliased columns instead; the fitted values agree, predictions elsewhere
        can differ). "logistic" is maximum-likelihood logistic regression (Beam's version).
    C : float, default=np.inf
        Inverse ridge strength of the logistic model; ``np.inf`` is no penalty (maximum
        likelihood). When the k features separate the two classes the likelihood has no maximum:
        the coefficients grow along a separating direction until the gradient falls below the
        solver's ``tol`` (no warning is raised; a smaller ``tol`` gives larger coefficients), so
        the fit is a separating rule chosen by the optimizer, not an estimate.
    max_iter : int, default=1000
        Iterations of the logistic model's L-BFGS.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``"select"`` (``SelectKBest(f_classif, k=k)``) and ``"model"``.

    Examples
    --------
    >>> from neurostat import leekasso
    >>> from neurostat.datasets import load_digit_pairs
    >>> X, y = load_digit_pairs(0, 1, flat=True)
    >>> bool(leekasso(10, "linear").fit(X[:40], y[:40]).score(X[40:], y[40:]) > 0.9)
    True
    """
    if model == "linear":
        clf = RidgeClassifier(alpha=0.0, solver="svd")
    elif model == "logistic":
        clf = LogisticRegression(C=C, max_iter=max_iter)
    else:
        raise ValueError(f"model must be 'logistic' or 'linear'; got {model!r}.")
    return Pipeline([("select", SelectKBest(f_classif, k=k)), ("model", clf)])
