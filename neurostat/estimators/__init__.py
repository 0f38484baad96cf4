"""scikit-learn estimators over the engine: one shared base and thin public classes."""

from ._base import _BaseNeural
from .convnet import ConvNetClassifier
from .neural import NeuralClassifier, NeuralRegressor

__all__ = ["ConvNetClassifier", "NeuralClassifier", "NeuralRegressor", "_BaseNeural"]
