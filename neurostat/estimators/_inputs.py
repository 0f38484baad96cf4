"""What the estimators take beside X and y: formulas and categorical columns (through
:mod:`neurostat.estimators._design`) and offsets; a mixin of :class:`_BaseNeural`."""

import numpy as np
import torch

from .._utils import check_offset
from . import _design


class _InputsMixin:
    """Formulas, categorical columns and offsets for :class:`_BaseNeural`."""

    _supports_offset = True

    def _design_fit(self, X, y, reset):
        """X (and y from a formula's left-hand side) through the formula or the encoding of
        categorical columns (:mod:`neurostat.estimators._design`)."""
        return _design.design_fit(self, X, y, reset)

    def _check_offset(self, offset, X):
        """The offset as float64 of shape (n,), or None (see :func:`check_offset`)."""
        return check_offset(offset, X.shape[0] if hasattr(X, "shape") else len(X))

    def _inference_offset(self, X, offset):
        """The offset inference conditions on: the training one when X is None."""
        if X is None:
            return getattr(self, "_training_offset", None)
        return self._check_offset(offset, X)

    def _offset_eta(self, offset, n_eta, family=None):
        """The (n, n_eta) float64 numpy array the offset adds to eta (the family decides
        which linear predictors it enters)."""
        family = self.family_ if family is None else family
        return family.offset_eta(torch.as_tensor(offset), n_eta).numpy()

    def _initial_bias(self, family, y_enc, sample_weight, offset):
        """The output biases (and ancillary predictors) of the null model, net of the offset's
        weighted mean."""
        b0 = np.array(family.initial_intercept(y_enc, sample_weight), dtype=np.float64)
        if offset is not None:
            b0 -= np.average(self._offset_eta(offset, b0.size, family), axis=0,
                             weights=sample_weight)
        return b0

    def _inference_family(self, X, y, w, offset):
        """The family inference conditions on (the fitted one; a family holding quantities
        estimated from the data, as the joint family's dispersions, re-estimates them)."""
        return self.family_
