"""Output heads beyond the network's own outputs: ancillary (intercept-only) linear predictors.

A family with an ancillary parameter (the negative binomial's ``log alpha``) reads it from
extra columns of the linear predictor that do not depend on the inputs. :class:`AncillaryMLP`
is an :class:`~neurostat.engine.networks.MLP` whose forward pass appends those columns, one
learnable scalar each, so the solvers fit them jointly with the network (unpenalized, like the
biases) and inference treats them as parameters of the model like any other.
"""

import torch
from torch import nn

from .networks import MLP


class AncillaryMLP(MLP):
    """An MLP with ``n_ancillary`` intercept-only outputs appended: ``eta = [f(x), a]``.

    Parameters
    ----------
    n_inputs, hidden_layer_sizes, n_outputs, activation, dropout, input_dropout :
        As :class:`~neurostat.engine.networks.MLP`; ``n_outputs`` counts the network's own
        outputs (the output layer's width).
    n_ancillary : int
        Number of ancillary predictors (the learnable vector ``ancillary``).
    """

    def __init__(self, n_inputs, hidden_layer_sizes, n_outputs, activation="relu",
                 dropout=0.0, input_dropout=0.0, n_ancillary=1):
        super().__init__(n_inputs, hidden_layer_sizes, n_outputs, activation, dropout,
                         input_dropout)
        self.ancillary = nn.Parameter(torch.zeros(n_ancillary))

    @classmethod
    def from_mlp(cls, mlp, n_ancillary):
        """An :class:`AncillaryMLP` sharing the layers of ``mlp``."""
        out = cls.__new__(cls)
        nn.Module.__init__(out)
        out.layers = mlp.layers
        out.activation, out.dropout, out.input_dropout = (mlp.activation, mlp.dropout,
                                                          mlp.input_dropout)
        out.ancillary = nn.Parameter(torch.zeros(n_ancillary, dtype=mlp.layers[0].weight.dtype))
        return out

    @property
    def n_linear_predictors(self):
        """Width of ``eta``: the output layer's plus the ancillary predictors."""
        return self.output_layer.out_features + self.ancillary.numel()

    def forward(self, x):
        out = super().forward(x)
        return torch.cat([out, self.ancillary.expand(out.shape[0], -1)], 1)

    def body_state_dict(self):
        state = super().body_state_dict()
        state.pop("ancillary", None)  # a family's parameter, not part of what transfers
        return state

    def reset_parameters(self, init="glorot_uniform"):
        """Redraw the weights as :meth:`~neurostat.engine.networks.MLP.reset_parameters`; set
        the biases and the ancillary predictors to zero.

        Parameters
        ----------
        init : str, default="glorot_uniform"
            One of :data:`~neurostat.engine.networks.INIT_SCHEMES`.

        Returns
        -------
        self : AncillaryMLP
        """
        super().reset_parameters(init)
        nn.init.zeros_(self.ancillary)
        return self


def with_ancillary(module, n_ancillary):
    """``module`` with ``n_ancillary`` ancillary predictors (the module itself when 0)."""
    if n_ancillary == 0:
        return module
    if type(module) is not MLP:
        raise ValueError(
            f"A family with ancillary parameters needs a fully connected network (MLP); got "
            f"{type(module).__name__}.")
    return AncillaryMLP.from_mlp(module, n_ancillary)
