"""neurostat: neural networks as first-class statistical models.

Fit a network like a scikit-learn estimator, read it like a statsmodels model.
Public names are imported lazily so that ``import neurostat`` stays cheap and each
part (GP kernels, projection pursuit, conv nets) loads only when used.
"""

from importlib import import_module

from . import _moved

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "NeuralClassifier": "neurostat.estimators.neural",
    "NeuralRegressor": "neurostat.estimators.neural",
    "MultiResponseRegressor": "neurostat.estimators.multi",
    "DivergenceError": "neurostat.engine.solvers",
    "ProjectionPursuitRegressor": "neurostat.ppr",
    "RidgeFunctionDisplay": "neurostat.ppr",
    "LossCurveDisplay": "neurostat.plotting",
    "EffectDisplay": "neurostat.plotting",
    "PathDisplay": "neurostat.regularization",
    "ConvNetClassifier": "neurostat.estimators.convnet",
    "leekasso": "neurostat.selection",
    "NeuralCoxRegressor": "neurostat.survival.estimator",
    "regularization_path": "neurostat.regularization",
    "EarlyStoppingPath": "neurostat.implicit",
    "early_stopping_path": "neurostat.implicit",
    "sharpness": "neurostat.implicit",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

_moved.install()


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
