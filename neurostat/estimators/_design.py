"""Formulas and categorical columns: from a DataFrame to the float64 design a network takes.

One module for every estimator (``formula=`` hyperparameter): formulaic builds the design
(``formulaic.model_matrix``), its ``ModelSpec`` is kept from ``fit`` (``est.model_spec_``) and
reused at predict time, so categorical levels are those of the training data and an unseen
level is a ValueError. Column names are statsmodels' (``C(region)[T.north]``, ``age:sex[T.m]``);
formulaic's intercept column is dropped (the network has its own bias), and each formula term
spans its columns, which inference tests jointly (``ParameterLayout.terms``).

Without a formula, a DataFrame with categorical or string columns is encoded the same way, as
the formula with one term per column (numeric columns as they are, the others one-hot against
their first level), instead of failing to convert strings to float.
"""

import re
import warnings

import numpy as np
import pandas as pd

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def _quote(name):
    name = str(name)
    return name if _PLAIN.match(name) else "`" + name.replace("`", "") + "`"


def _unalias(text, back):
    """``text`` (a design column or term name) with each column alias replaced by its name."""
    return re.sub(r"c\d+__", lambda m: back.get(m.group(0), m.group(0)), text)


def _categorical(series):
    dtype = series.dtype
    return not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def needs_encoding(X):
    """True for a DataFrame with a categorical, string or other non-numeric column."""
    return isinstance(X, pd.DataFrame) and any(_categorical(X[c]) for c in X.columns)


def _as_frame(X, formula):
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"formula={formula!r} needs X as a pandas DataFrame holding the columns it names; "
            f"got {type(X).__name__}.")
    if not all(isinstance(c, str) for c in X.columns):  # formulaic looks names up as text
        X = X.rename(columns=str)
    # formulaic does not see pandas' string dtype as categorical: hand it plain objects
    strings = [c for c in X.columns if isinstance(X[c].dtype, pd.StringDtype)]
    return X.astype({c: object for c in strings}) if strings else X


class Design:
    """A design fitted on a DataFrame: formulaic's ``ModelSpec``, the names of the design's
    columns and its terms.

    Attributes
    ----------
    formula : str
        The formula (for the categorical encoding: the one built from the columns).
    spec : formulaic.ModelSpec
        The right-hand side's model spec (levels, transforms' state).
    lhs : tuple of str or None
        Columns named on the left-hand side (plain names), or None.
    lhs_spec : formulaic.ModelSpec or None
        The left-hand side's spec when it is an expression (``np.log(y) ~ ...``).
    names : tuple of str
        Design column names without the intercept, statsmodels' spelling.
    terms : tuple of (str, tuple of int)
        Each term and the indices of its columns in the design.
    """

    def __init__(self, formula, spec, lhs, lhs_spec, names, terms, aliases=None):
        self.formula, self.spec, self.lhs, self.lhs_spec = formula, spec, lhs, lhs_spec
        self.names, self.terms = names, terms
        self.aliases = aliases  # column name -> the name formulaic saw (the encoding only)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, X, formula=None):
        """``(design, design_frame, y_or_None)`` from DataFrame ``X`` (``formula`` None: the
        encoding of its columns)."""
        from formulaic import Formula

        X = _as_frame(X, formula)
        aliases = None
        if formula is None:
            # formulaic reads a column named 0 or 1 as the intercept switch, quoted or not:
            # the encoding sees the columns under aliases, and the names come back after
            aliases = {c: f"c{i}__" for i, c in enumerate(X.columns)}
            X = X.rename(columns=aliases)
        text = formula if formula is not None else " + ".join(_quote(c) for c in X.columns)
        try:
            parsed = Formula(text)
        except Exception as exc:  # formulaic's parser errors are of several types
            raise ValueError(f"formula={formula!r} could not be parsed: {exc}") from exc
        rhs = parsed.rhs if hasattr(parsed, "rhs") else parsed
        if "1" not in [str(t) for t in rhs]:
            raise ValueError(
                f"formula={formula!r} removes the intercept ('- 1' or '0 +'), but the network "
                "always has one (its output bias); write the formula with an intercept.")
        lhs, lhs_spec, y = None, None, None
        if hasattr(parsed, "lhs") and len(parsed.lhs):
            lhs, lhs_spec, y = _fit_lhs(parsed.lhs, X, formula)
        mm = _evaluate(lambda: _model_matrix(rhs, X), X, formula)
        spec = mm.model_spec
        names, terms = _names_and_terms(spec)
        if aliases is not None:
            back = {a: c for c, a in aliases.items()}
            names = tuple(_unalias(n, back) for n in names)
            terms = tuple((_unalias(t, back), cols) for t, cols in terms)
        design = cls(text, spec, lhs, lhs_spec, names, terms, aliases)
        return design, design._frame(mm), y

    def _frame(self, mm):
        values = np.asarray(mm, dtype=np.float64)[:, 1:]  # drop formulaic's intercept
        return pd.DataFrame(values, columns=list(self.names), index=mm.index)

    # ------------------------------------------------------------------ new data
    def transform(self, X):
        """The design of new data with the fitted spec (the training levels)."""
        X = _as_frame(X, self.formula)
        aliases = getattr(self, "aliases", None)  # designs pickled before aliases have none
        if aliases is not None:
            X = X.rename(columns=aliases)
        from formulaic.errors import DataMismatchWarning

        def build():
            with warnings.catch_warnings():
                warnings.simplefilter("error", DataMismatchWarning)
                try:
                    return self.spec.get_model_matrix(X, na_action="raise")
                except DataMismatchWarning as exc:
                    raise ValueError(
                        f"X has a categorical level not seen at fit: {exc} The model has no "
                        "coefficient for it; map it to a known level or refit with it."
                    ) from None

        return self._frame(_evaluate(build, X, self.formula))

    def response(self, X):
        """The left-hand side evaluated on ``X`` (None without one)."""
        if self.lhs is None:
            return None
        X = _as_frame(X, self.formula)
        if self.lhs_spec is not None:
            return np.asarray(_evaluate(lambda: self.lhs_spec.get_model_matrix(
                X, na_action="raise"), X, self.formula), dtype=np.float64)[:, 0]
        missing = [c for c in self.lhs if c not in X.columns]
        if missing:
            raise ValueError(f"The formula's response column(s) {missing} are not in X.")
        y = X[list(self.lhs)]
        return y.iloc[:, 0].to_numpy() if len(self.lhs) == 1 else y

    def is_design(self, X):
        """X is already this design: a DataFrame with exactly its columns, or an array of its
        width (a formula needs a DataFrame, so an array can only be an encoded design, as the
        refits of the bootstrap pass)."""
        if isinstance(X, pd.DataFrame):
            return tuple(map(str, X.columns)) == self.names
        shape = getattr(X, "shape", None)
        return shape is not None and len(shape) == 2 and shape[1] == len(self.names)


def _model_matrix(rhs, X):
    from formulaic import model_matrix
    return model_matrix(rhs, X, na_action="raise")


def _evaluate(build, X, formula):
    """Run ``build()``, turning formulaic's errors into ValueErrors that name the problem."""
    from formulaic.errors import FactorEvaluationError

    try:
        return build()
    except FactorEvaluationError as exc:
        raise ValueError(
            f"formula={formula!r} names something X does not have ({exc}); X has the "
            f"columns {list(map(str, X.columns))}.") from None
    except ValueError as exc:
        if "null values" in str(exc):
            raise ValueError(f"X contains missing values (NaN/None) in a column the model "
                             f"uses: {exc} Drop or impute them first.") from None
        raise


def _fit_lhs(lhs, X, formula):
    factors = [f for term in lhs for f in term.factors]
    plain = all(f.eval_method.name == "LOOKUP" for f in factors) and all(
        len(t.factors) == 1 for t in lhs)
    if plain:
        cols = tuple(str(f.expr) for f in factors)
        missing = [c for c in cols if c not in X.columns]
        if missing:
            raise ValueError(f"formula={formula!r} names the response column(s) {missing}, "
                             f"which X does not have; X has {list(map(str, X.columns))}.")
        y = X[list(cols)]
        return cols, None, (y.iloc[:, 0].to_numpy() if len(cols) == 1 else y)
    mm = _evaluate(lambda: _model_matrix(lhs, X), X, formula)
    values = np.asarray(mm, dtype=np.float64)
    if values.shape[1] != 1:
        raise ValueError(f"formula={formula!r}: the left-hand side must give one numeric "
                         f"response column (or name plain columns); it gives "
                         f"{values.shape[1]}.")
    return (str(lhs),), mm.model_spec, values[:, 0]


def _names_and_terms(spec):
    names = tuple(str(c) for c in spec.column_names[1:])
    terms = []
    for term, sl in spec.term_slices.items():
        if str(term) == "1":
            continue
        terms.append((str(term), tuple(range(sl.start - 1, sl.stop - 1))))
    return names, tuple(terms)


# ---------------------------------------------------------------------- estimator glue
def design_fit(est, X, y, reset, lhs_needed=True):
    """``(X, y)`` for ``est``'s fit: the design of X when the estimator has a formula or X has
    categorical columns (kept as ``est._design`` / ``est.model_spec_`` on ``reset``), else X
    unchanged. ``y`` comes from the formula's left-hand side when it is None."""
    formula = getattr(est, "formula", None)
    if not reset:
        design = getattr(est, "_design", None)
        if design is None or design.is_design(X):
            return X, y
        return design.transform(X), _response(design, X, y, lhs_needed)
    if formula is None and not needs_encoding(X):
        est._design = None
        est.__dict__.pop("model_spec_", None)
        return X, y
    design, frame, y_lhs = Design.fit(X, formula)
    if y_lhs is not None and y is not None:
        raise ValueError(f"formula={formula!r} has a response (left-hand side) and y was "
                         "passed too; pass one of them (fit(df) with the formula's response).")
    if y is None and lhs_needed and y_lhs is None and formula is not None:
        raise ValueError(f"formula={formula!r} has no response (left-hand side) and y is "
                         "None; write 'y ~ ...' or pass y.")
    est._design, est.model_spec_ = design, design.spec
    return frame, (y if y_lhs is None else y_lhs)


def _response(design, X, y, lhs_needed):
    if y is not None or not lhs_needed:
        return y
    return design.response(X)


def design_transform(est, X):
    """X at predict time through the fitted design (unchanged without one)."""
    design = getattr(est, "_design", None)
    if design is None or design.is_design(X):
        return X
    return design.transform(X)


def design_response(est, X, y, required=False):
    """``y``, or the formula's response evaluated on X when y is None (``required``: a
    ValueError when there is none)."""
    design = getattr(est, "_design", None)
    if y is None and design is not None and not design.is_design(X):
        y = design.response(X)
    if y is None and required:
        raise ValueError("y is None: pass the response (or fit with a formula that names it).")
    return y


def design_terms(est):
    """The design's terms (``ParameterLayout.terms``), None without a design."""
    design = getattr(est, "_design", None)
    return None if design is None else design.terms
