"""The Gaussian-process limit of wide networks: NNGP and NTK kernels, GP estimators, wide nets.

A fully connected network whose weights are drawn ``N(0, weight_variance / fan_in)`` and biases
``N(0, bias_variance)`` becomes a Gaussian process as its widths grow (Neal 1996; Lee et al. 2018);
:class:`NNGPKernel` is that process's covariance and :class:`NTKKernel` the kernel of the same
net trained by gradient descent (Jacot et al. 2018). :func:`sample_wide_networks` and
:func:`empirical_kernel` draw finite nets to show the limit.
"""

from .conv_kernel import ConvNNGPKernel, ConvNTKKernel
from .nngp_kernel import NNGPKernel
from .ntk_kernel import NTKKernel

__all__ = [
    "NNGPKernel",
    "NTKKernel",
    "ConvNNGPKernel",
    "ConvNTKKernel",
    "NNGPRegressor",
    "NNGPClassifier",
    "empirical_kernel",
    "sample_wide_networks",
]


def __getattr__(name):
    # the regressor and the samplers import scikit-learn: load them on first use
    if name == "NNGPRegressor":
        from .regressor import NNGPRegressor

        return NNGPRegressor
    if name == "NNGPClassifier":
        from .classifier import NNGPClassifier

        return NNGPClassifier
    if name in ("empirical_kernel", "sample_wide_networks"):
        from . import wide

        return getattr(wide, name)
    raise AttributeError(f"module 'neurostat.gp' has no attribute {name!r}")
