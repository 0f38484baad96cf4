"""The summary table: statsmodels' layout (header, coefficient table, tests)."""

import html

import numpy as np
import pandas as pd

_WIDTH = 78


def penalty_text(penalty):
    """How the summary header names a penalty."""
    if not penalty.alpha:
        return "none"
    if penalty.l1_ratio == 0:
        return f"ridge (alpha={penalty.alpha:g})"
    if penalty.l1_ratio == 1:
        return f"lasso (alpha={penalty.alpha:g})"
    return f"elastic net (alpha={penalty.alpha:g}, l1_ratio={penalty.l1_ratio:g})"


def header_items(res):
    """``(left, right)`` columns of the header: the model's description, then the fit's."""
    fam = res.likelihood.family
    left = [*res.model.describe(), ("Converged:", str(res.converged))]
    right = [
        ("No. Observations:", f"{res.nobs:.0f}" if float(res.nobs).is_integer()
         else f"{res.nobs:.6g}"),
        ("Df Model:" if not res.penalized else "Effective df:", f"{res.df_model:.4g}"),
        ("Df Residuals:", f"{res.df_resid:.6g}"),
        ("Log-Likelihood:", f"{res.llf:.5g}"),
        ("LL-Null:", f"{res.llnull:.5g}"),
        ("Pseudo R-squ.:", f"{res.prsquared:.4g}"),
        ("AIC:", f"{res.aic:.5g}"),
        ("BIC:", f"{res.bic:.5g}"),
        ("Covariance Type:", res.cov_type),
    ]
    if fam.has_scale:
        right.append(("Scale:", f"{res.scale:.5g}" if np.ndim(res.scale) == 0
                       else ", ".join(f"{v:.4g}" for v in res.scale)))
    return left, right


class Summary:
    """The summary of an :class:`InferenceResults`.

    Attributes
    ----------
    header : DataFrame
        Name/value pairs of the header.
    params_table : DataFrame
        ``coef | std err | z | P>|z| | [0.025 0.975]`` (``t``/``P>|t|`` for OLS).
    wald_table : DataFrame or None
        Per-input joint Wald tests (networks with hidden layers).
    tables : list of DataFrame
    """

    def __init__(self, res, alpha=0.05):
        self.res = res
        self.alpha = alpha
        left, right = header_items(res)
        self._left, self._right = left, right
        self.header = pd.DataFrame(left + right, columns=["item", "value"]).set_index("item")
        stat = "t" if res.use_t else "z"
        ci = res.conf_int(alpha)
        lo, hi = f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"
        self.params_table = pd.DataFrame({
            "coef": res.params, "std err": res.bse, stat: res.tvalues,
            f"P>|{stat}|": res.pvalues, lo: ci[0], hi: ci[1],
        })
        # per-term Wald tests: for networks (weights are not identifiable), and for a GLM
        # whose terms span several columns (a formula's categorical term)
        grouped = any(len(cols) > 1 for _, cols in res.model.layout.term_groups)
        # the delta path's Wald test reads the first layer's weights: none for a frozen (or
        # convolutional) first layer, whose summary says so instead of raising
        self._untestable = (not res.is_glm and res.statistics.effects is None
                            and res.model.layout.input_weights is None)
        self.wald_table = (None if (res.is_glm and not grouped) or self._untestable
                           else res.wald_test_terms())
        self.tables = [self.header, self.params_table] + (
            [self.wald_table] if self.wald_table is not None else [])
        self.notes = self._notes()

    def _notes(self):
        res, notes = self.res, []
        debiased = res.statistics.effects
        if debiased is not None:
            notes.append(f"coef: {debiased.method}; an input's effect is the average partial "
                         "derivative of the linear predictor (for a binary input, the average "
                         "change from its low to its high value, per unit).")
            notes.append("Tests per input: one-sided cross-fitted directional test of no effect "
                         "(chi2 = max(z, 0)^2, P = Phi(-z)).")
        elif not res.is_glm:
            notes.append("coef: average partial derivative of the linear predictor with respect "
                         "to each input (weights are not identifiable); delta-method std err.")
        if self._untestable:
            notes.append("Tests per input: none (the first layer is frozen or not fully "
                         "connected, so no weights leave an input); test an input with "
                         "compare_lr_test against the model without it.")
        if debiased is None:
            notes.append(f"Covariance: {res.statistics.method}.")
        if res.penalized:
            notes.append("Penalized fit: df are effective degrees of freedom trace(F A^-1).")
        if res.separated:
            notes.append("Perfect separation detected: the MLE does not exist, standard errors "
                         "are not meaningful.")
        if res.statistics.hess_info.get("singular"):
            notes.append("The Hessian is singular; a pseudo-inverse was used.")
        if not res.converged:
            notes.append("The fit did not converge; standard errors assume a stationary point.")
        calibration = res.calibration
        if calibration is not None:
            notes.append(calibration.note())
        return notes

    @staticmethod
    def _fmt_table(df):
        def fmt(v):
            if isinstance(v, float | np.floating):
                if np.isnan(v):
                    return "nan"
                return f"{v:.3f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3g}"
            return str(v)

        idx = [" ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in df.index]
        cols = list(df.columns)
        cells = [[fmt(v) for v in row] for row in df.itertuples(index=False)]
        w0 = max([len(s) for s in idx] + [1])
        ws = [max([len(str(c))] + [len(r[j]) for r in cells]) for j, c in enumerate(cols)]
        lines = [" " * w0 + "".join(f"  {str(c):>{w}}" for c, w in zip(cols, ws, strict=True))]
        lines.append("-" * len(lines[0]))
        for name, row in zip(idx, cells, strict=True):
            lines.append(f"{name:<{w0}}" + "".join(f"  {v:>{w}}"
                                                   for v, w in zip(row, ws, strict=True)))
        return lines

    def as_text(self):
        """The summary as plain text, laid out as statsmodels' ``summary()`` (78 columns).

        Returns
        -------
        str
            The title, the header's items in two columns, the coefficient table (estimate,
            standard error, z or t statistic, two-sided p-value, ``1 - alpha`` interval), the
            per-term or per-input joint tests where the summary has them, and the notes.
        """
        title = f"{self.res.model.name} Results".center(_WIDTH)
        lines = [title, "=" * _WIDTH]
        half = _WIDTH // 2 - 1
        pad = [("", "")] * max(0, len(self._left) - len(self._right))
        for (a, b), (c, d) in zip(self._left, self._right + pad, strict=False):
            lines.append(f"{a:<16}{b:>{half - 16}}  {c:<18}{d:>{half - 18}}")
        for c, d in self._right[len(self._left):]:
            lines.append(" " * (half + 2) + f"{c:<18}{d:>{half - 18}}")
        lines.append("=" * _WIDTH)
        lines += self._fmt_table(self.params_table)
        if self.wald_table is not None:
            title = ("Tests per input (cross-fitted directional test of no effect)"
                     if self.res.statistics.effects is not None
                     else "Wald tests per term (all its coefficients = 0)" if self.res.is_glm
                     else "Wald tests per input (all weights leaving the input = 0)")
            lines += ["=" * _WIDTH, title]
            lines += self._fmt_table(self.wald_table)
        lines.append("=" * _WIDTH)
        lines += [f"Notes: [{i + 1}] {n}" for i, n in enumerate(self.notes)]
        return "\n".join(lines)

    def __str__(self):
        return self.as_text()

    __repr__ = __str__

    def as_html(self):
        """The summary as an HTML fragment (what notebooks display).

        Returns
        -------
        str
            The title, the header, the coefficient table and the joint tests where present
            as HTML tables (numbers to 4 significant digits), and the notes.
        """
        title = f"<h4>{html.escape(self.res.model.name)} Results</h4>"
        parts = [title, self.header.to_html(header=False),
                 self.params_table.to_html(float_format=lambda v: f"{v:.4g}")]
        if self.wald_table is not None:
            parts.append(self.wald_table.to_html(float_format=lambda v: f"{v:.4g}"))
        if self.notes:
            parts.append("<p>" + "<br>".join(html.escape(n) for n in self.notes) + "</p>")
        return "\n".join(parts)

    def _repr_html_(self):
        return self.as_html()
