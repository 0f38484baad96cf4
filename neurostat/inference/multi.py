"""Inference per response for a model of several responses (a joint family).

:class:`MultiResponseResults` reads a network fitted to several responses at once
(:class:`~neurostat.engine.composite.JointFamily`) the way one would read the separate
models: ``params`` indexed by (response, term), each gaussian response with its own dispersion
(``scale`` holds one per output) and t reference distribution on its residual df, the
log-likelihood per response, per-response Wald tests of each term, predictions per response
and a summary with one block per response.
"""

from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats as sps

from .predictions import _data, link_scale_prediction
from .results import InferenceResults
from .summary import Summary


class MultiResponseResults(InferenceResults):
    """:class:`~neurostat.inference.InferenceResults` of a joint model, read per response.

    Attributes
    ----------
    responses : list of str
    scale : ndarray
        Per network output, the dispersion of its response (1 where there is none).
    df_resid_by_response : ndarray
        Per response, ``nobs`` minus the parameters its head owns (and its share of the
        shared layers): the df of a gaussian response's dispersion and t tests.
    """

    def __init__(self, model, statistics, **kwargs):
        fam = model.family
        self.responses = list(fam.names)
        n_out = model.layout.n_outputs
        col_scale = np.ones(n_out)
        for j in range(len(fam.families)):
            col_scale[fam.output_columns(j)] = fam.dispersions[j]
        super().__init__(model, statistics.replace(scale=col_scale), **kwargs)
        self.df_resid_by_response = self.nobs - np.array(head_df(model.likelihood.module, fam))

    # ------------------------------------------------------------------ per-row bookkeeping
    @cached_property
    def _row_response(self):
        """The response of each row of ``params``."""
        fam, layout = self.model.family, self.model.layout
        n_terms = len(layout.term_names)
        col_resp = np.empty(layout.n_outputs, dtype=np.int64)
        for j in range(len(fam.families)):
            col_resp[fam.output_columns(j)] = j
        rows = list(np.repeat(col_resp, n_terms))
        for j, f in enumerate(fam.families):
            rows += [j] * len(f.ancillary)
        return np.array(rows)

    @cached_property
    def _index(self):
        fam, layout = self.model.family, self.model.layout
        tuples = []
        for label in self.model.outputs:
            tuples += [(label, t) for t in layout.term_names]
        for name, f in zip(fam.names, fam.families):
            tuples += [(name, a) for a in f.ancillary]
        return pd.MultiIndex.from_tuples(tuples, names=["response", "term"])

    def _row_use_t(self):
        fams = self.model.family.families
        return np.array([bool(fams[j].use_t) and self.cov_type == "nonrobust"
                         for j in self._row_response])

    def _row_df(self):
        return self.df_resid_by_response[self._row_response]

    @cached_property
    def _effects(self):
        values, D, cov = super()._effects
        if self.cov_type == "HC1":  # OLS's n / (n - p) per gaussian response, as statsmodels
            fams = self.model.family.families
            f = np.array([self.nobs / self.df_resid_by_response[j] if fams[j].has_scale else 1.0
                          for j in self._row_response])
            cov = cov * np.sqrt(np.outer(f, f))
        return values, D, cov

    @cached_property
    def pvalues(self):
        """Two-sided p-values: t on the response's residual df for a gaussian response
        (nonrobust), normal otherwise."""
        t = np.abs(self.tvalues.values)
        p = np.where(self._row_use_t(), 2 * sps.t.sf(t, self._row_df()), 2 * sps.norm.sf(t))
        return pd.Series(p, index=self._index, name="P>|z|")

    def _critical(self, alpha):
        return np.where(self._row_use_t(), sps.t.isf(alpha / 2, self._row_df()),
                        sps.norm.isf(alpha / 2))

    # ------------------------------------------------------------------ likelihood
    @cached_property
    def llf_by_response(self):
        """Each response's log-likelihood (gaussian at its maximum-likelihood variance)."""
        lik = self.likelihood
        return pd.Series(lik.family.loglik_by_response(self.model.eta(), lik.y, lik.w),
                         index=self.responses, name="llf")

    @cached_property
    def llnull_by_response(self):
        """Each response's null (intercept-only) log-likelihood."""
        lik = self.likelihood
        return pd.Series(lik.family.loglik_by_response(lik.null_eta(), lik.y, lik.w),
                         index=self.responses, name="llnull")

    # ------------------------------------------------------------------ tests
    def wald_test_terms(self):
        """Per response and term, the joint Wald chi-square test that the term's coefficients
        (effects, for a network with hidden layers) on that response are zero; a term of
        several columns (a categorical) is one test on as many df. For a network without
        hidden layer, statsmodels' ``wald_test_terms`` of each response's GLM."""
        params, cov = self.params.values, self.cov_params().values
        layout = self.model.layout
        n_terms = len(layout.term_names)
        shift = int(layout.has_intercept)
        rows, index = [], []
        for c, label in enumerate(self.model.outputs):
            for term, cols in layout.term_groups:
                idx = c * n_terms + shift + np.asarray(cols)
                b, C = params[idx], cov[np.ix_(idx, idx)]
                evals, evecs = np.linalg.eigh(0.5 * (C + C.T))
                keep = evals > 1e-10 * max(evals.max(), np.finfo(float).tiny)
                z = evecs[:, keep].T @ b
                stat, df = float(np.sum(z * z / evals[keep])), int(keep.sum())
                rows.append((stat, float(sps.chi2.sf(stat, df)) if df else np.nan, df))
                index.append((label, term))
        return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index,
                                                                  names=["response", "term"]),
                            columns=["chi2", "P>chi2", "df constraint"])

    # ------------------------------------------------------------------ predictions
    def get_prediction(self, X=None, offset=None):
        """Per response, predicted means with delta-method standard errors (intervals on each
        response's link scale): a :class:`MultiPredictionResults`."""
        lik, fam = self.likelihood, self.model.family
        Xt, off = _data(self, X, offset)
        eta = lik.eta(lik.theta, Xt, off).detach()
        out = {}
        for j, name in enumerate(self.responses):
            f = fam.families[j]
            use_t = bool(f.use_t and self.cov_type == "nonrobust")
            out[name] = link_scale_prediction(lik, Xt, eta, fam.columns(j), f, self.cov_theta,
                                              use_t, self.df_resid_by_response[j],
                                              fam.dispersions[j])
        return MultiPredictionResults(out)

    def summary(self, alpha=None):
        """One block per response: its family, log-likelihood, dispersion and coefficient (or
        effect) table."""
        return MultiResponseSummary(self, self.alpha if alpha is None else alpha)

    def __repr__(self):
        return (f"<MultiResponseResults {self.model.name} responses={self.responses} "
                f"cov_type={self.cov_type} nobs={self.nobs}>")


def head_df(module, family):
    """Per response of a joint ``family``, the parameters it owns: its head (output-layer
    rows and ancillary parameters) plus its share of the shared layers (all of them with no
    hidden layer: the separate GLMs' parameter counts)."""
    out = module.output_layer
    n_params = sum(p.numel() for p in module.parameters() if p.requires_grad)
    body = n_params - out.weight.numel() - out.bias.numel() - len(family.ancillary)
    k = out.out_features
    return [len(family.output_columns(j)) * (out.in_features + 1 + body / k) + len(f.ancillary)
            for j, f in enumerate(family.families)]


class MultiPredictionResults:
    """Predictions of every response: ``results[name]`` is that response's
    :class:`~neurostat.inference.predictions.PredictionResults`; ``summary_frame`` puts them
    side by side (columns: response, then statsmodels' names)."""

    def __init__(self, by_response):
        self.by_response = dict(by_response)

    def __getitem__(self, name):
        return self.by_response[name]

    @property
    def predicted_mean(self):
        """The predicted means of every response.

        Returns
        -------
        DataFrame
            One column per response, one row per input row.
        """
        return pd.DataFrame({k: v.predicted_mean for k, v in self.by_response.items()})

    def summary_frame(self, alpha=0.05, obs=False):
        """Every response's :meth:`PredictionResults.summary_frame`, side by side.

        Parameters
        ----------
        alpha : float, default=0.05
            One minus the coverage of the intervals (each response's on its own link scale
            and reference distribution).
        obs : bool, default=False
            Add prediction intervals for a new observation to the responses that have a
            gaussian noise variance (the others get none).

        Returns
        -------
        DataFrame
            Columns indexed by (response, statsmodels' column name), one row per input row.
        """
        frames = {}
        for k, v in self.by_response.items():
            frames[k] = v.summary_frame(alpha, obs=obs and v.obs_var is not None)
        return pd.concat(frames, axis=1, names=["response", None])


def _rows_of(frame, name):
    """The rows of ``frame`` (indexed by (response or "response:predictor", term)) that
    belong to response ``name``, indexed by term ("predictor: term" for a second predictor)."""
    owner = frame.index.get_level_values("response").str.split(":").str[0]
    block = frame[owner == name]

    def label(t):
        return t[1] if t[0] == name else f"{t[0].split(':', 1)[1]}: {t[1]}"

    return block.set_axis(block.index.map(label))


class MultiResponseSummary(Summary):
    """The summary of a joint model: its header, then one block per response (its family,
    log-likelihood, dispersion, coefficient table and, where the summary has them, Wald tests
    per term)."""

    def as_text(self):
        """The summary as plain text: the joint model's title and header, then one block per
        response (family and link, log-likelihood, the dispersion where the family has one,
        coefficient table, per-term Wald tests where present), then the notes.

        Returns
        -------
        str
        """
        res = self.res
        lines = super().as_text().split("\n")
        out = lines[:lines.index("=" * 78, 2) + 1]  # title and header
        joint = res.model.family
        for j, name in enumerate(res.responses):
            fam, disp = joint.families[j], joint.dispersions[j]
            out.append(f"Response: {name}   family: {fam.name} ({fam.link})   "
                       f"log-likelihood: {res.llf_by_response[name]:.5g}"
                       + (f"   scale: {disp:.5g}" if fam.has_scale else ""))
            out += self._fmt_table(_rows_of(self.params_table, name))
            if self.wald_table is not None:
                out += ["Wald tests per term on this response"]
                out += self._fmt_table(_rows_of(self.wald_table, name))
            out.append("=" * 78)
        out += [f"Notes: [{i + 1}] {n}" for i, n in enumerate(self.notes)]
        return "\n".join(out)

    __str__ = as_text

    def __repr__(self):
        return self.as_text()
