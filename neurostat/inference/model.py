"""The statistical model that inference works on, and the layout of its parameter vector.

An estimator hands inference a :class:`StatisticalModel` (``est._statistical_model(X, y, w)``):
its likelihood (the fitted network in float64, the family and the data), the penalty it was
fitted with, the :class:`ParameterLayout` of the flat parameter vector, and what the summary
header says about it. Inference never reads the estimator's attributes: ``res.model`` is this
object (as in statsmodels, the statistical model) and ``res.estimator`` the fitted estimator.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from ..engine.networks import MLP


@dataclass(frozen=True, eq=False)
class ParameterLayout:
    """Where things sit in the flat parameter vector ``theta`` (frozen; formulaic's ``ModelSpec``
    is the model: names, slices and the indices a test needs, never string lookups).

    Attributes
    ----------
    names : tuple of str
        Name of each estimated parameter block (``module.named_parameters()`` order).
    shapes : tuple of torch.Size
    slices : dict
        ``{name: slice}`` of each block in ``theta``.
    input_names : tuple of str
        The inputs (feature names, else ``x0, x1, ...``).
    has_intercept : bool
        The model has an intercept term per output (not the Cox model).
    n_outputs : int
        Linear predictors of the network.
    input_weights : tuple of ndarray or None
        For each input, the indices in ``theta`` of the first fully connected layer's
        estimated weights leaving it (None when the first layer is not such a layer or is
        frozen: per-input Wald tests do not apply).
    linear_index : ndarray or None
        For a network without hidden layer, the index in ``theta`` of each (output, term)
        coefficient, output-major, terms as :attr:`term_names` (-1 for a term not estimated).
    penalized : ndarray of bool
        Entries of ``theta`` the penalty acts on (the weights, never the biases).
    output_of_param : ndarray of int or None
        The output each entry of ``theta`` belongs to (networks without hidden layer).
    terms : tuple of (str, tuple of int) or None
        Groups of input columns tested jointly (a formula's categorical term spans several
        columns); None: every input is its own term. See :attr:`term_groups`.
    ancillary : tuple of (str, int) or None
        Parameters of the family estimated beside the network (the negative binomial's
        ``alpha``): each name and the index in ``theta`` of its intercept-only linear
        predictor; reported after the coefficients or effects, on the scale of the family's
        ``ancillary_values``.
    """

    names: tuple
    shapes: tuple
    slices: dict
    input_names: tuple
    has_intercept: bool
    n_outputs: int
    input_weights: tuple = None
    linear_index: np.ndarray = None
    penalized: np.ndarray = field(default=None, repr=False)
    output_of_param: np.ndarray = field(default=None, repr=False)
    terms: tuple = None
    ancillary: tuple = None

    @property
    def term_groups(self):
        """``((term, (column, ...)), ...)``: the input columns of each term, in order."""
        if self.terms is not None:
            return self.terms
        return tuple((name, (j,)) for j, name in enumerate(self.input_names))

    @property
    def n_params(self):
        """Length of ``theta``."""
        return int(sum(s.stop - s.start for s in self.slices.values()))

    @property
    def term_names(self):
        """``["intercept", inputs...]``, or the inputs alone without an intercept."""
        return (["intercept"] if self.has_intercept else []) + list(self.input_names)

    @property
    def is_glm(self):
        """No hidden layer and every coefficient estimated: ``params`` are the coefficients."""
        return self.linear_index is not None and bool(np.all(self.linear_index >= 0))

    @classmethod
    def from_likelihood(cls, lik, input_names, has_intercept=True, terms=None):
        """The layout of ``lik.theta`` for ``lik.module`` (``terms``: see the attribute)."""
        slices = lik.slices()
        names = tuple(lik.names)
        name_of = {id(p): k for k, p in lik.module.named_parameters()}
        k = lik.module.output_layer.out_features
        d = len(input_names)
        first = getattr(lik.module, "input_linear", None)
        input_weights = None
        if first is not None and name_of.get(id(first.weight)) in slices:
            start = slices[name_of[id(first.weight)]].start
            n_out = first.weight.shape[0]
            input_weights = tuple(start + np.arange(n_out) * d + m for m in range(d))
        linear_index = output_of = None
        if isinstance(lik.module, MLP) and lik.module.n_hidden_layers == 0:
            layer = lik.module.output_layer
            w_sl, b_sl = slices.get(name_of[id(layer.weight)]), slices.get(name_of[id(layer.bias)])
            idx = -np.ones((k, d + has_intercept), dtype=np.int64)
            if w_sl is not None:
                idx[:, has_intercept:] = w_sl.start + np.arange(k)[:, None] * d + np.arange(d)
            if has_intercept and b_sl is not None:
                idx[:, 0] = b_sl.start + np.arange(k)
            linear_index = idx.reshape(-1)
            output_of = np.concatenate([
                np.repeat(np.arange(s[0]), s[1]) if len(s) == 2 else np.arange(s[0])
                for s in lik.shapes])
        anc = slices.get("ancillary")
        ancillary = None if anc is None else tuple(
            (str(name), anc.start + j) for j, name in enumerate(lik.family.ancillary))
        return cls(names=names, shapes=tuple(lik.shapes), slices=slices,
                   input_names=tuple(input_names), has_intercept=has_intercept, n_outputs=k,
                   input_weights=input_weights, linear_index=linear_index,
                   penalized=lik.penalized_mask().numpy(), output_of_param=output_of,
                   terms=None if terms is None else tuple((str(t), tuple(c)) for t, c in terms),
                   ancillary=ancillary)


@dataclass(frozen=True, eq=False)
class StatisticalModel:
    """A fitted net as a statistical model: what inference computes everything from.

    Attributes
    ----------
    likelihood : neurostat.inference.likelihood.Likelihood
        The fitted network (float64 copy), its family and the data conditioned on.
    penalty : neurostat.engine.penalties.ElasticNetPenalty
        The training penalty (``alpha``, ``l1_ratio``).
    layout : ParameterLayout
    name : str
        The estimator's class name (the summary's title).
    header : tuple of (str, str)
        The model's own lines of the summary header (structure, penalty, solver...).
    outputs : tuple or None
        Labels of the linear predictors when there are several (the non-reference classes, or
        the target columns), else None.
    classes : ndarray or None
        Class labels of a classifier (simulated responses are mapped back to them).
    converged : bool
    n_iter : int
    prepare_X : callable
        Validates new inputs as the estimator does at predict time (``get_prediction``).
    results_class : type
        The results class (:class:`~neurostat.inference.results.InferenceResults` or a
        subclass, as the Cox model's).
    groups : ndarray or None
        The cluster of each row of the data (``cov_type="cluster"``), or None.
    output_level : str
        Name of the outer level of a multi-output index (``"class"``; ``"cause"`` for
        cause-specific Cox heads).
    regime : dict or None
        What the calibration study's envelope is looked up by
        (:mod:`neurostat.inference.envelope`): ``architecture``, ``hidden``, ``activation``,
        ``solver``, ``alpha``, ``dropout``.
    chunked : object or None
        Operations on inputs held in chunks (dask collections, :mod:`neurostat.distributed`):
        ``chunked.get_prediction(results, X)``; None where the estimator offers none.
    """

    likelihood: object
    penalty: object
    layout: ParameterLayout
    name: str
    header: tuple
    outputs: tuple = None
    classes: np.ndarray = None
    converged: bool = True
    n_iter: int = 0
    prepare_X: object = None
    results_class: type = None
    groups: np.ndarray = None
    chunked: object = None
    regime: dict = None
    output_level: str = "class"

    @property
    def family(self):
        """The family of the likelihood."""
        return self.likelihood.family

    @property
    def k_constant(self):
        """Number of intercepts (one per output, none for the Cox model), ancillary
        parameters included (the null model has them too)."""
        k = self.layout.n_outputs if self.layout.has_intercept else 0
        return k + len(self.layout.ancillary or ())

    def describe(self):
        """The summary header's left column: model, family, link, then :attr:`header`."""
        fam = self.family
        return [("Model:", self.name), ("Family:", fam.name), ("Link:", fam.link),
                *self.header]

    def eta(self, X=None):
        """Fitted linear predictor (n, k) at the data (or at validated inputs X)."""
        lik = self.likelihood
        with torch.no_grad():
            return lik.eta(lik.theta, X)
