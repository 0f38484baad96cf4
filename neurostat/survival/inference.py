"""Inference results of the neural Cox model.

The partial likelihood's information and Lin & Wei's score residuals are the Cox family's
(:class:`neurostat.survival.family.Cox`), the absent intercept is the model's layout: the
generic :class:`~neurostat.inference.InferenceResults` does the rest.
:class:`CoxInferenceResults` adds hazard ratios with intervals, the martingale and deviance
residuals, and a summary with ``exp(coef)`` columns.
"""

from functools import cached_property

import numpy as np
import pandas as pd
import torch

from ..inference.results import InferenceResults
from ..inference.summary import Summary


class CoxInferenceResults(InferenceResults):
    """Results of a neural Cox model: log hazard ratios (or effects), hazard ratios.

    As :class:`neurostat.inference.InferenceResults`: there is no intercept term, so
    ``df_model`` counts every estimated coefficient (``k_constant = 0``) and
    ``aic = -2 llf + 2 df_model`` as statsmodels' ``PHReg`` and R; ``llnull`` is the log partial
    likelihood at ``eta = 0``; ``fittedvalues`` and ``get_prediction`` give relative hazards
    ``exp(eta)``; ``diagnostics()`` returns the deviance residuals and, in ``resid_pearson``,
    the martingale residuals (the Cox model has no Pearson residual).
    """

    def hazard_ratios(self, alpha=None):
        """``exp(coef)`` with its confidence interval (DataFrame: "exp(coef)", "lower", "upper").

        For a net, ``exp`` of the average effect on the log hazard.
        """
        ci = self.conf_int(alpha)
        return pd.DataFrame({"exp(coef)": np.exp(self.params.values),
                             "lower": np.exp(ci[0].values), "upper": np.exp(ci[1].values)},
                            index=self._index)

    def summary(self, alpha=None):
        return CoxSummary(self, self.alpha if alpha is None else alpha)

    @cached_property
    def resid_martingale(self):
        """Martingale residuals ``d_i - H0(t_i) exp(eta_i)`` (Breslow's H0, as R's
        ``residuals(fit, "martingale")`` after a Breslow fit)."""
        lik = self.likelihood
        with torch.no_grad():
            eta = lik.eta(lik.theta)
        return lik.family.martingale_residuals(eta, lik.y, lik.w)

    @cached_property
    def resid_deviance(self):
        """Deviance residuals ``sign(M) sqrt(-2 (M + d log(d - M)))`` of the martingale M."""
        lik = self.likelihood
        with torch.no_grad():
            eta = lik.eta(lik.theta)
        return lik.family.residuals(eta, lik.y, lik.w)[0]


class CoxSummary(Summary):
    """statsmodels' layout plus ``exp(coef)`` and its interval, as lifelines and R print."""

    def __init__(self, res, alpha=0.05):
        super().__init__(res, alpha)
        hr = res.hazard_ratios(alpha)
        level = f"{100 * (1 - alpha):g}%"
        self.params_table["exp(coef)"] = hr["exp(coef)"]
        self.params_table[f"exp(coef) lower {level}"] = hr["lower"]
        self.params_table[f"exp(coef) upper {level}"] = hr["upper"]
        self._left = [(k, v if k != "Link:" else "log (HR = exp(coef))")
                      for k, v in self._left]
        self.header = pd.DataFrame(self._left + self._right,
                                   columns=["item", "value"]).set_index("item")
        self.tables[0] = self.header
        self.tables[1] = self.params_table
        self.notes.insert(0, "Log partial likelihood; no intercept (it cancels). coef is the "
                             "log hazard ratio per unit of the input.")
