"""Minibatch training streamed from the chunks of a dask collection.

The trainer runs in the client process (on its CPU or GPU) and never holds the design: each
epoch visits the row chunks in a fresh random order, shuffles the rows within each chunk, and
takes minibatch steps through it, while a small pool of threads has the cluster compute (or
load) the next chunks and bring them over (``prefetch`` chunks ahead), so the trainer does not
wait for data. The client holds at most ``prefetch + 1`` chunks. The optimizer, schedules,
stopping rule, penalty and proximal L1 steps are those of the in-memory
:class:`~neurostat.engine.solvers.MinibatchSolver`; only the source of the minibatches differs.

Data parallelism across workers (several trainers averaging gradients, e.g. torch.distributed
on the workers) is not done: one trainer consumes the stream, the workers produce it.
"""

import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from .._utils import as_tensor
from ..engine.solvers import MinibatchSolver

#: chunks fetched ahead of the one being trained on
PREFETCH = 2


def _fetch(blocks):
    import dask
    return dask.compute(*blocks)


class ChunkStream:
    """The row chunks of ``(X, y, w)``, fetched ahead, as tensors of ``dtype`` on ``device``.

    Parameters
    ----------
    data : neurostat.distributed.chunks.ChunkedData
    dtype : torch.dtype
    device : torch.device
    transform_y : callable or None
        Applied to each chunk's target (the estimator's target standardization).
    prefetch : int, default=PREFETCH

    Attributes
    ----------
    shape : tuple
        ``(n, d)`` of the design (what the solver reads of its data).
    device : torch.device
    fetched : list of int
        The chunk indices in the order they were fetched (all epochs).
    """

    def __init__(self, data, dtype, device, transform_y=None, prefetch=PREFETCH):
        self.blocks = data.delayed_blocks()
        self.shape = tuple(int(s) for s in data.X.shape)
        self.device, self.dtype = device, dtype
        self.transform_y = transform_y
        self.prefetch = max(1, int(prefetch))
        self.fetched = []

    @property
    def n_chunks(self):
        """Number of row chunks."""
        return len(self.blocks)

    def chunks(self, order):
        """Yield ``(X, y, w)`` tensors for the chunks in ``order``, ``prefetch`` ahead."""
        order = list(order)
        with ThreadPoolExecutor(self.prefetch) as pool:
            pending = deque()
            it = iter(order)
            for i in it:
                pending.append(pool.submit(_fetch, self.blocks[i]))
                self.fetched.append(int(i))
                if len(pending) >= self.prefetch:
                    break
            while pending:
                Xb, yb, wb = pending.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(pool.submit(_fetch, self.blocks[nxt]))
                    self.fetched.append(int(nxt))
                yield self._tensors(Xb, yb, wb)

    def _tensors(self, Xb, yb, wb):
        if self.transform_y is not None:
            yb = self.transform_y(yb)
        return (as_tensor(Xb, self.dtype, self.device), as_tensor(yb, self.dtype, self.device),
                as_tensor(wb, self.dtype, self.device))


class StreamingSolver(MinibatchSolver):
    """:class:`~neurostat.engine.solvers.MinibatchSolver` whose epoch is a pass over a
    :class:`ChunkStream`: chunk order and rows within each chunk reshuffled every epoch.

    ``data`` passed to :meth:`run` is ``(stream, None, None)``.
    """

    def __init__(self, module, family, penalty, config, seed=0, augment=None):
        super().__init__(module, family, penalty, config, augment=augment)
        self.rng = np.random.default_rng(seed)

    def _epoch(self, data, history, loss_scale):
        stream = data[0]
        n_total = stream.shape[0]
        shuffle = self.config.shuffle
        order = self.rng.permutation(stream.n_chunks) if shuffle else range(stream.n_chunks)
        bs = self.config.n_batch(n_total)
        total = torch.zeros((), device=stream.device, dtype=stream.dtype)
        n, wsum, carry = 0, 0.0, None
        self.module.train()
        for X, y, w in stream.chunks(order):
            n += X.shape[0]
            wsum += float(X.shape[0]) if w is None else float(w.sum())
            if shuffle:
                perm = torch.randperm(X.shape[0], device=X.device)
                X, y = X[perm], y[perm]
                w = None if w is None else w[perm]
            if carry is not None:  # the rows left over from the last chunk's batches
                X, y = torch.cat([carry[0], X]), torch.cat([carry[1], y])
                w = None if w is None else torch.cat([carry[2], w])
            full = (X.shape[0] // bs) * bs  # whole batches only: as many steps as in memory
            total = total + self._batches(X[:full], y[:full], None if w is None else w[:full],
                                          bs)
            carry = (X[full:], y[full:], None if w is None else w[full:])
        if carry is not None and carry[0].shape[0]:
            total = total + self._batches(*carry, bs)
        return self._end_epoch(total, n, wsum, history, loss_scale)


def train_stream(est, data, summary, family, penalty, dtype, seed, incremental):
    """Train ``est.module_`` on the chunks of ``data`` (``y`` encoded) with its stochastic
    solver, as ``_BaseNeural._train`` does in memory (target standardization included)."""
    module = est.module_
    scaling = getattr(est, "_target_scaling", None)
    loss_scale, transform = 1.0, None
    if scaling is not None:
        center, scale = scaling
        c = center if data.y.ndim == 2 else center[0]

        def transform(yb):
            return (np.asarray(yb, dtype=np.float64) - c) / scale

        penalty = penalty.for_standardized_target(scale, len(module.penalized_parameters()))
        loss_scale = scale**2
        est._rescale_output_(center, scale, forward=True)
    history = est._history
    try:
        stream = ChunkStream(data, dtype, est.device_, transform)
        history.no_improvement = 0
        history.converged = False
        solver = est._solver
        if not isinstance(solver, StreamingSolver):
            solver = StreamingSolver(module, family, penalty, est._minibatch_config(), seed,
                                     augment=est._batch_augmentation())
            est._solver = solver
        else:
            solver.reconfigure(family, penalty, est._minibatch_config())
            solver.rng = np.random.default_rng(seed)
        n_epochs = 1 if incremental else est.max_iter
        solver.run((stream, None, None), history, n_epochs, check_stop=not incremental,
                   loss_scale=loss_scale)
        est._chunk_order = list(stream.fetched)  # chunk indices in the order trained on
    finally:
        if scaling is not None:
            est._rescale_output_(center, scale, forward=False)
    if not incremental and not history.converged:
        warnings.warn(
            f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and the "
            "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4)
    est._store_history(history, None)
    est.n_passes_ = history.n_iter + 1  # epochs and the summary pass
