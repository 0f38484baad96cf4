"""Network structure: the multilayer perceptron, the conv net, activations and init schemes.

The structure is one of the three parts of a net (structure, family, solver). A network maps
inputs to the *linear predictor* ``eta`` of the family: the output layer has no activation of
its own, the family's inverse link turns ``eta`` into a mean or class probabilities.
"""

import math
from numbers import Integral

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "elu": F.elu,
    "gelu": F.gelu,
    "softplus": F.softplus,
    "erf": torch.erf,
    "identity": lambda x: x,
}

INIT_SCHEMES = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_normal",
    "normal",
    "truncated_normal",
    "uniform",
    "orthogonal",
    "zeros",
)


def init_variance(scheme, fan_in, fan_out):
    """Variance of a weight drawn by ``scheme`` for a layer of the given fans.

    ``normal``, ``truncated_normal`` and ``uniform`` use the fixed scale 0.05 (standard deviation of
    the normal, half-width of the uniform; the truncated normal is cut at two standard deviations,
    which shrinks its variance by the factor 0.7737). ``orthogonal`` gives the rows (or columns) of
    an orthogonal matrix, whose entries have variance ``1 / max(fan_in, fan_out)``. ``zeros``
    starts every weight at 0 (variance 0): gradient descent from the origin, the starting point
    of the early-stopping and minimum-norm identities of :mod:`neurostat.implicit`. With a hidden
    layer the units of a layer then stay identical (nothing breaks the symmetry), so it is
    meant for networks without one.
    """
    if scheme == "glorot_uniform" or scheme == "glorot_normal":
        return 2.0 / (fan_in + fan_out)
    if scheme == "he_uniform" or scheme == "he_normal":
        return 2.0 / fan_in
    if scheme == "lecun_normal":
        return 1.0 / fan_in
    if scheme == "normal":
        return 0.05**2
    if scheme == "truncated_normal":
        # variance of N(0, s^2) truncated to [-2s, 2s]
        a = 2.0
        phi = math.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
        z = math.erf(a / math.sqrt(2))
        return 0.05**2 * (1 - 2 * a * phi / z)
    if scheme == "uniform":
        return 0.05**2 / 3.0
    if scheme == "orthogonal":
        return 1.0 / max(fan_in, fan_out)
    if scheme == "zeros":
        return 0.0
    raise ValueError(f"init={scheme!r} is not one of {INIT_SCHEMES}.")


@torch.no_grad()
def initialize_(weight, scheme):
    """Fill ``weight`` (shape (fan_out, fan_in)) in place by the named scheme; biases stay zero."""
    fan_out, fan_in = weight.shape
    var = init_variance(scheme, fan_in, fan_out)
    if scheme in ("glorot_uniform", "he_uniform"):
        bound = math.sqrt(3.0 * var)
        weight.uniform_(-bound, bound)
    elif scheme in ("glorot_normal", "he_normal", "lecun_normal", "normal"):
        weight.normal_(0.0, math.sqrt(var))
    elif scheme == "truncated_normal":
        nn.init.trunc_normal_(weight, 0.0, 0.05, -0.1, 0.1)
    elif scheme == "uniform":
        weight.uniform_(-0.05, 0.05)
    elif scheme == "orthogonal":
        nn.init.orthogonal_(weight)
        # unit-norm rows or columns give entries of variance 1 / max(fan_in, fan_out) already
    elif scheme == "zeros":
        weight.zero_()
    else:  # pragma: no cover - validated by the estimator
        raise ValueError(f"init={scheme!r} is not one of {INIT_SCHEMES}.")
    return weight


class MLP(nn.Module):
    """A fully connected network returning the linear predictor of a family.

    Parameters
    ----------
    n_inputs : int
    hidden_layer_sizes : tuple of int
        ``()`` gives no hidden layer: the network is the linear predictor of a GLM.
    n_outputs : int
    activation : str
        A key of :data:`ACTIVATIONS`.
    dropout : float
        Inverted-dropout rate on every hidden layer's output.
    input_dropout : float
        Inverted-dropout rate on the inputs.
    """

    def __init__(self, n_inputs, hidden_layer_sizes, n_outputs, activation="relu",
                 dropout=0.0, input_dropout=0.0):
        super().__init__()
        sizes = [n_inputs, *hidden_layer_sizes, n_outputs]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = activation
        self.dropout = float(dropout)
        self.input_dropout = float(input_dropout)

    @property
    def n_hidden_layers(self):
        """Number of hidden layers (0: the network is a GLM's linear predictor).

        Returns
        -------
        int
        """
        return len(self.layers) - 1

    def penalized_parameters(self):
        """The weight matrices (never the biases): what the penalty acts on."""
        return [layer.weight for layer in self.layers]

    def hidden(self, x):
        """Output of the last hidden layer (the inputs when there is none)."""
        act = ACTIVATIONS[self.activation]
        if self.input_dropout > 0 and self.training:
            x = F.dropout(x, self.input_dropout, True)
        layers = self.layers
        for i in range(len(layers) - 1):  # (slicing a ModuleList builds a new one per call)
            x = act(layers[i](x))
            if self.dropout > 0 and self.training:
                x = F.dropout(x, self.dropout, True)
        return x

    def forward(self, x):
        return self.layers[-1](self.hidden(x))

    @property
    def input_linear(self):
        """The first linear layer, the one that reads the inputs.

        Solvers and inference find it by this name: the L-BFGS solver folds the standardization
        of the inputs into it, inference reads the weights leaving each input from it.

        Returns
        -------
        torch.nn.Linear
            The output layer itself when there is no hidden layer.
        """
        return self.layers[0]

    @property
    def output_layer(self):
        """The last linear layer, whose outputs are the linear predictor ``eta``.

        Returns
        -------
        torch.nn.Linear
        """
        return self.layers[-1]

    def body_state_dict(self):
        """State of every layer but the output layer: what transfer learning copies."""
        n = len(self.layers) - 1
        return {k: v for k, v in self.state_dict().items() if not k.startswith(f"layers.{n}.")}

    def body_layers(self):
        """The layers before the output layer, in order (what ``freeze`` counts)."""
        return list(self.layers[:-1])

    def reset_parameters(self, init="glorot_uniform"):
        """Draw every weight afresh by the named scheme and set every bias to zero.

        Parameters
        ----------
        init : str, default="glorot_uniform"
            One of :data:`INIT_SCHEMES` (see :func:`init_variance`).

        Returns
        -------
        self : MLP
        """
        for layer in self.layers:
            initialize_(layer.weight, init)
            nn.init.zeros_(layer.bias)
        return self


def conv_plan(conv_layers):
    """Validate ``conv_layers``; return a list of ("conv", filters, kernel) / ("pool",)."""
    plan = []
    for spec in conv_layers:
        if isinstance(spec, str):
            if spec != "pool":
                raise ValueError(f"conv_layers: unknown layer {spec!r}; use (filters, kernel) "
                                 "or 'pool'.")
            plan.append(("pool",))
            continue
        ok = (isinstance(spec, (tuple, list)) and len(spec) == 2
              and all(isinstance(v, Integral) and not isinstance(v, bool) and v >= 1
                      for v in spec))
        if not ok:
            raise ValueError(
                f"conv_layers entries must be (filters, kernel_size) pairs of positive integers "
                f"or 'pool'; got {spec!r} in {conv_layers!r}."
            )
        plan.append(("conv", int(spec[0]), int(spec[1])))
    return plan


class ConvNet(nn.Module):
    """Convolutions (+ 2x2 max pooling) then dense layers, returning the linear predictor.

    Convolutions use "same" padding and stride 1; a pool halves each spatial side of at least 2
    (rounding up), so any image size works, including the ``1 x n`` rows of non-image data.

    Parameters
    ----------
    image_shape : tuple (c, h, w)
    conv_layers : sequence of (filters, kernel_size) or "pool"
    dense_layers : tuple of int
    n_outputs : int
    activation : str
        A key of :data:`neurostat.networks.ACTIVATIONS`, after every conv and dense layer.
    dropout : float
        Inverted dropout on the output of every dense hidden layer.
    input_dropout : float
        Inverted dropout on the pixels.
    """

    def __init__(self, image_shape, conv_layers, dense_layers, n_outputs, activation="relu",
                 dropout=0.0, input_dropout=0.0):
        super().__init__()
        c, h, w = (int(v) for v in image_shape)
        self.image_shape = (c, h, w)
        self.plan = []
        self.convs = nn.ModuleList()
        for step in conv_plan(conv_layers):
            if step[0] == "pool":
                kernel = (2 if h >= 2 else 1, 2 if w >= 2 else 1)
                h, w = math.ceil(h / kernel[0]), math.ceil(w / kernel[1])
                self.plan.append(("pool", kernel))
            else:
                self.convs.append(nn.Conv2d(c, step[1], step[2], padding="same"))
                c = step[1]
                self.plan.append(("conv", len(self.convs) - 1))
        sizes = [c * h * w, *dense_layers]
        self.dense = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.output = nn.Linear(sizes[-1], n_outputs)
        self.activation = activation
        self.dropout = float(dropout)
        self.input_dropout = float(input_dropout)

    @property
    def layers(self):
        """Every layer with weights, in order: convolutions, dense layers, the output layer."""
        return [*self.convs, *self.dense, self.output]

    @property
    def output_layer(self):
        """The last linear layer, whose outputs are the linear predictor ``eta``.

        Returns
        -------
        torch.nn.Linear
        """
        return self.output

    def body_layers(self):
        """The layers before the output layer, in order (what ``freeze`` counts)."""
        return [*self.convs, *self.dense]

    def body_state_dict(self):
        """State of every layer but the output layer: what transfer learning copies."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("output.")}

    def penalized_parameters(self):
        """The weights (never the biases): what the penalty acts on."""
        return [layer.weight for layer in self.layers]

    def reset_parameters(self, init="glorot_uniform"):
        """Weights by the named scheme (a conv kernel's fans: ``c_in k^2`` and ``c_out``)."""
        for layer in self.layers:
            initialize_(layer.weight.data.view(layer.weight.shape[0], -1), init)
            nn.init.zeros_(layer.bias)
        return self

    def features(self, x):
        """Output of the last dense hidden layer (the flattened conv features if none)."""
        if x.ndim == 2:
            x = x.reshape(x.shape[0], *self.image_shape)
        act = ACTIVATIONS[self.activation]
        if self.input_dropout > 0 and self.training:
            x = F.dropout(x, self.input_dropout, True)
        for kind, arg in self.plan:
            if kind == "conv":
                x = act(self.convs[arg](x))
            else:
                x = F.max_pool2d(x, arg, ceil_mode=True)
        x = x.flatten(1)
        for layer in self.dense:
            x = act(layer(x))
            if self.dropout > 0 and self.training:
                x = F.dropout(x, self.dropout, True)
        return x

    def forward(self, x):
        return self.output(self.features(x))
