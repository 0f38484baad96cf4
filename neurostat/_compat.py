"""The one place that imports scikit-learn's private helpers (they may move between releases)."""

from sklearn.base import _fit_context  # noqa: F401
from sklearn.utils._param_validation import (  # noqa: F401
    HasMethods,
    Hidden,
    Interval,
    StrOptions,
    validate_params,
)
