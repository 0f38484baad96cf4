"""Shared hyperparameter handling of :class:`NNGPKernel` and :class:`NTKKernel`."""

import numbers

import torch
from gpytorch.constraints import Positive
from gpytorch.kernels import Kernel

from ._recursions import blocked_layer_kernel, layer_kernels, resolve_activation, use_blocked_kernel


class _WideNetKernel(Kernel):
    """Base of the infinite-width kernels: depth, activation, two positive variances."""

    is_stationary = False
    _ntk = False

    def __init__(
        self,
        depth=1,
        activation="relu",
        weight_variance=1.0,
        bias_variance=0.0,
        weight_variance_constraint=None,
        bias_variance_constraint=None,
        **kwargs,
    ):
        if kwargs.get("last_dim_is_batch"):
            raise ValueError("last_dim_is_batch is not supported (deprecated in gpytorch).")
        super().__init__(**kwargs)
        if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 0:
            raise ValueError(f"depth must be a non-negative integer, got {depth!r}")
        resolve_activation(activation)  # fail early on a bad name
        self.depth = int(depth)
        self.activation = activation
        for name, value, constraint in (
            ("weight_variance", weight_variance, weight_variance_constraint),
            ("bias_variance", bias_variance, bias_variance_constraint),
        ):
            self.register_parameter(
                f"raw_{name}", torch.nn.Parameter(torch.zeros(*self.batch_shape, 1, 1))
            )
            self.register_constraint(
                f"raw_{name}", Positive() if constraint is None else constraint
            )
            _check_variance(name, value)
            setattr(self, name, value)

    @property
    def weight_variance(self):
        return self.raw_weight_variance_constraint.transform(self.raw_weight_variance)

    @weight_variance.setter
    def weight_variance(self, value):
        self._set_variance("weight_variance", value)

    @property
    def bias_variance(self):
        return self.raw_bias_variance_constraint.transform(self.raw_bias_variance)

    @bias_variance.setter
    def bias_variance(self, value):
        self._set_variance("bias_variance", value)

    def _set_variance(self, name, value):
        raw = getattr(self, f"raw_{name}")
        value = torch.as_tensor(value, dtype=raw.dtype, device=raw.device)
        # 0 is allowed (a net without biases): softplus^-1(0) = -inf, and softplus(-inf) = 0
        self.initialize(
            **{f"raw_{name}": getattr(self, f"raw_{name}_constraint").inverse_transform(value)}
        )

    def forward(self, x1, x2, diag=False, **params):
        if params.get("last_dim_is_batch"):
            raise ValueError("last_dim_is_batch is not supported (deprecated in gpytorch).")
        w, b = self.weight_variance, self.bias_variance
        if diag:
            nngp, ntk = layer_kernels(
                x1,
                x2,
                self.depth,
                self.activation,
                w.squeeze(-1),
                b.squeeze(-1),
                diag=True,
                ntk=self._ntk,
            )
        elif use_blocked_kernel(x1, x2, w, b):
            # the training matrix of a large n (the hyperparameter fit): in row blocks, no n x n
            # temporaries (see _recursions.blocked_layer_kernel)
            return blocked_layer_kernel(x1, self.depth, self.activation, w, b, ntk=self._ntk)
        else:
            nngp, ntk = layer_kernels(x1, x2, self.depth, self.activation, w, b, ntk=self._ntk)
        return ntk if self._ntk else nngp

    def extra_repr(self):  # shown by print(kernel)
        act = (
            self.activation
            if isinstance(self.activation, str)
            else getattr(self.activation, "__name__", "callable")
        )
        return f"depth={self.depth}, activation={act!r}"


def _check_variance(name, value):
    if torch.is_tensor(value):
        ok = bool(torch.isfinite(value).all() and (value >= 0).all())
    else:
        ok = (
            isinstance(value, numbers.Real)
            and value >= 0
            and value == value
            and value != float("inf")
        )
    if not ok:
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
