"""scikit-learn estimators over the engine: one shared base and thin public classes."""

from ._base import _BaseNeural
from .convnet import ConvNetClassifier
from .multi import MultiResponseRegressor
from .neural import NeuralClassifier, NeuralRegressor

__all__ = ["ConvNetClassifier", "MultiResponseRegressor", "NeuralClassifier", "NeuralRegressor",
           "_BaseNeural"]
