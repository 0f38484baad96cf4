"""Small helpers that every floor of the package uses, each written once.

Nothing here imports another neurostat module: it is the ground floor.
"""

import contextlib

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

#: rows per block of a float64 forward pass at prediction time
PREDICT_CHUNK = 1 << 16


@contextlib.contextmanager
def num_threads(n):
    """Temporarily set torch's intra-op threads to ``n`` (restored afterwards); None: no change."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


_CONTROLLER = []


def blas_threads(n):
    """Limit the BLAS libraries' threads (numpy/scipy) to ``n``; None leaves them alone.

    One ``ThreadpoolController`` is kept: building one (what ``threadpool_limits`` does on every
    call) scans the loaded libraries, 3 ms, a sixth of a 10,000-row GLM fit. Only BLAS is
    limited (``user_api="blas"``): torch's OpenMP pool is :func:`num_threads`' business
    (limiting every library also cut torch to one thread: a 1e6-row fit took 20% longer).
    """
    if n is None:
        return contextlib.nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=n, user_api="blas")


def resolve_device(device):
    """``torch.device`` for ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda[:N]"``.

    Raises
    ------
    ValueError
        When CUDA is asked for and none is available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but no CUDA device is available; use "
            "device='auto' (CUDA when present, else CPU) or device='cpu'."
        )
    return dev


def as_tensor(a, dtype=torch.float64, device=None):
    """A numpy array as a tensor without a copy where possible (None stays None).

    Floating arrays get ``dtype``; integer arrays keep theirs. A read-only or non-contiguous
    array is copied first (torch needs a writeable, contiguous buffer; it is never written to).
    """
    if a is None:
        return None
    a = np.asarray(a)
    if not a.flags.writeable or not a.flags.c_contiguous:
        a = np.array(a, order="C")
    t = torch.from_numpy(a)
    return t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)


def float64_forward(module, X, device=None, chunk=PREDICT_CHUNK):
    """The module's output for numpy ``X`` in float64, in row chunks, as a numpy array.

    The parameters are cast to float64 for the pass (the module itself is not changed): a
    row's prediction must not depend on which other rows share its batch, and float32 matrix
    products round differently by batch size. The module is put in evaluation mode.
    """
    module.eval()
    params = {k: v.detach().to(torch.float64) for k, v in module.named_parameters()}
    buffers = {k: v.detach().to(torch.float64) if v.is_floating_point() else v
               for k, v in module.named_buffers()}
    if device is None:
        device = next(module.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, X.shape[0], chunk):
            xb = as_tensor(X[start:start + chunk], torch.float64, device)
            out.append(torch.func.functional_call(module, {**params, **buffers}, (xb,)).cpu())
    if not out:
        return None
    return torch.cat(out).numpy()


def is_dask_collection(obj):
    """True for a dask array, DataFrame, Series or delayed object, without importing dask.

    A dask collection can exist only when dask was imported by the caller, so with dask absent
    from ``sys.modules`` the answer is False at no cost (``import neurostat`` never imports it).
    """
    import sys

    if "dask" not in sys.modules:
        return False
    return bool(sys.modules["dask"].is_dask_collection(obj))


def default_feature_names(n_features):
    """``["x0", "x1", ...]``: the names of inputs without column names."""
    return [f"x{i}" for i in range(n_features)]


def feature_names(est, n_features=None):
    """The estimator's input names (``feature_names_in_``), else :func:`default_feature_names`."""
    names = getattr(est, "feature_names_in_", None)
    if names is None:
        n = est.n_features_in_ if n_features is None else n_features
        return default_feature_names(n)
    return [str(v) for v in names]


def check_sample_weight(sample_weight, X, normalize=False):
    """Validated frequency weights (float64, finite, >= 0, positive sum), or None.

    ``normalize`` rescales them to mean 1 (training: the objective is a weighted mean, so only
    their ratios matter). Weights that are all 1 return None.

    Raises
    ------
    ValueError
        Wrong length, negative, NaN or infinite weights, or weights summing to zero.
    """
    from sklearn.utils.validation import _check_sample_weight

    if sample_weight is None:
        return None
    sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if not np.all(np.isfinite(sw)):
        raise ValueError("sample_weight contains NaN or infinity; give finite weights >= 0.")
    total = sw.sum()
    if total <= 0:
        raise ValueError("sample_weight sums to zero; give at least one positive weight.")
    if normalize:
        sw = sw * (sw.shape[0] / total)
    return None if np.all(sw == 1.0) else sw


def check_offset(offset, n):
    """A validated offset: float64 of shape (n,), finite, or None.

    Raises
    ------
    ValueError
        Not numeric, not one value per row, NaN or infinity.
    """
    if offset is None:
        return None
    try:
        o = np.asarray(offset, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"offset must be numeric; got {exc}.") from None
    if o.ndim != 1 or o.shape[0] != n:
        raise ValueError(f"offset must be 1-D with one value per row of X ({n} rows); got "
                         f"shape {o.shape}.")
    if not np.all(np.isfinite(o)):
        raise ValueError("offset contains NaN or infinity (the log of a zero exposure?); give "
                         "finite values.")
    return o
