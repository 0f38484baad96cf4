"""Helpers of the estimators around their torch module: transfer of layers, the width of
the linear predictor, a validation score shifted by an offset, and copies for pickling."""

import torch
from sklearn.utils.validation import check_is_fitted

__all__ = ["_module_to_cpu", "_n_eta", "_set_output_bias", "_shifted_score", "_transfer"]


def _set_output_bias(module, b0):
    """Write the null model's biases ``b0`` into the output layer, then the ancillary
    predictors (``b0`` holds both, in that order)."""
    k = module.output_layer.out_features
    module.output_layer.bias.copy_(torch.as_tensor(b0[:k], dtype=torch.float32))
    if getattr(module, "ancillary", None) is not None:
        module.ancillary.copy_(torch.as_tensor(b0[k:], dtype=torch.float32))


def _n_eta(module):
    """Width of the module's linear predictor (its outputs and any ancillary predictors)."""
    return getattr(module, "n_linear_predictors", None) or module.output_layer.out_features


def _shifted_score(score_fn, offset):
    """``score_fn`` on the module's output plus ``offset`` (held-out rows of early stopping)."""
    def score(module, X, y, w):
        return score_fn(lambda x: module(x) + offset, X, y, w)
    return score


def _transfer(source, module):
    """Copy every layer of the fitted ``source`` but its output layer into ``module``."""
    check_is_fitted(source, "module_")
    src = source.module_.body_state_dict()
    dst = module.body_state_dict()
    if set(src) != set(dst):
        raise ValueError(
            "init: the fitted estimator's layers do not match this network's "
            f"({sorted(src)} vs {sorted(dst)}); use the same hidden structure."
        )
    for key, value in src.items():
        if value.shape != dst[key].shape:
            raise ValueError(
                f"init: layer parameter {key!r} has shape {tuple(value.shape)} in the fitted "
                f"estimator but {tuple(dst[key].shape)} here; the inputs and hidden sizes must "
                "match the source network."
            )
    module.load_state_dict({**module.state_dict(), **{k: v.detach().cpu().float()
                                                     for k, v in src.items()}})


def _module_to_cpu(module):
    if next(module.parameters()).device.type == "cpu":
        return module
    import copy
    return copy.deepcopy(module).cpu()
