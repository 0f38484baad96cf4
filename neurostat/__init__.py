"""neurostat: neural networks as first-class statistical models.

Fit a network like a scikit-learn estimator, read it like a statsmodels model.
Public names are imported lazily so that ``import neurostat`` stays cheap and each
part (GP kernels, projection pursuit, conv nets) loads only when used.
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "NeuralClassifier": "neurostat.estimators",
    "NeuralRegressor": "neurostat.estimators",
    "DivergenceError": "neurostat.training",
    "ProjectionPursuitRegressor": "neurostat.ppr",
    "RidgeFunctionDisplay": "neurostat.ppr",
    "LossCurveDisplay": "neurostat.plotting",
    "EffectDisplay": "neurostat.plotting",
    "PathDisplay": "neurostat.paths",
    "ConvNetClassifier": "neurostat.convnet",
    "leekasso": "neurostat.selection",
    "NeuralCoxRegressor": "neurostat.cox",
    "regularization_path": "neurostat.paths",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'neurostat' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
