"""The minibatch solvers: sgd, adam, adamw, rmsprop, adagrad, in one explicit training loop.

The data live on the device already; each epoch draws one permutation, gathers X and y once,
and the minibatches are views (slices) of the gathered tensors. The epoch loss is accumulated
on the device and read once per epoch, so there is one host synchronisation per epoch, not per
step. The L1 part of the penalty is applied by a proximal step after each step
(:meth:`neurostat.engine.penalties.ElasticNetPenalty.prox_`), so weights reach exact zeros.

With dropout (any rate > 0) the objective is an expectation over the masks: the epoch loss is
noisy and constant-step iterates hover around the minimizer instead of converging to it. A
full fit (not ``partial_fit``, not ``early_stopping``) then keeps the polynomial-decay average
of its per-epoch iterates (:class:`~neurostat.engine.solvers.schedules.IterateAverage`), stops
when that average moves by less than ``tol`` over ``n_iter_no_change`` epochs rather than on
the noisy loss, and returns the averaged parameters. Without dropout nothing changes. This
makes a linear model with input dropout converge to the adaptive-ridge solution of Wager, Wang
& Liang (2013) with the default Adam settings (``tests/test_dropout.py``).
"""

from dataclasses import dataclass

import numpy as np
import torch

from ..._utils import num_threads
from ._fused import Stepper
from .base import diverged, has_dropout, shifted, unpack
from .schedules import IterateAverage, LearningRateSchedule, StoppingRule


@dataclass(frozen=True)
class MinibatchConfig:
    """The numeric settings of a minibatch solver (scikit-learn's ``MLPClassifier`` names).

    ``batch_size="auto"`` is ``min(200, n_samples)``; ``momentum`` and ``nesterovs_momentum``
    are for sgd, ``beta_1``, ``beta_2`` for adam/adamw, ``epsilon`` for the adaptive solvers.
    ``name`` labels the progress bar shown when ``verbose``.
    """

    solver: str = "adam"
    learning_rate_init: float = 1e-3
    batch_size: object = "auto"
    shuffle: bool = True
    momentum: float = 0.9
    nesterovs_momentum: bool = True
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    learning_rate: str = "constant"
    power_t: float = 0.5
    tol: float = 1e-4
    n_iter_no_change: int = 10
    verbose: int = 0
    name: str = "fit"

    def n_batch(self, n):
        """The batch size for ``n`` rows."""
        return min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)


def make_optimizer(config, module, penalty):
    """The torch optimizer of ``config.solver`` over the module's trainable parameters.

    adamw gets one group per weight carrying the ridge part of the penalty as decoupled weight
    decay (the biases none); the fused kernels are used where torch has them.
    """
    weights = module.penalized_parameters()
    ids = {id(w) for w in weights}
    others = [p for p in module.parameters() if id(p) not in ids and p.requires_grad]
    lr = config.learning_rate_init
    solver = config.solver
    if solver == "adamw":
        mult = penalty.multipliers("l2", len(weights))
        groups = [{"params": [w], "weight_decay": penalty.l2 * c}
                  for w, c in zip(weights, mult) if w.requires_grad]
        groups.append({"params": others, "weight_decay": 0.0})
    else:
        groups = [{"params": [w for w in weights if w.requires_grad] + others}]
    if solver == "sgd":
        nesterov = bool(config.nesterovs_momentum and config.momentum > 0)

        def make(**kw):
            return torch.optim.SGD(groups, lr=lr, momentum=config.momentum, nesterov=nesterov,
                                   **kw)
    elif solver in ("adam", "adamw"):
        cls = torch.optim.Adam if solver == "adam" else torch.optim.AdamW

        def make(**kw):
            return cls(groups, lr=lr, betas=(config.beta_1, config.beta_2),
                       eps=config.epsilon, **kw)
    elif solver == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, eps=config.epsilon)
    else:
        return torch.optim.Adagrad(groups, lr=lr, eps=config.epsilon)
    try:  # fused kernels exist on CUDA and, since torch 2.4, on CPU for Adam/AdamW/SGD
        return make(fused=True)
    except (RuntimeError, TypeError, ValueError):
        return make()


class MinibatchSolver:
    """Minibatch training of ``module`` on ``family``'s loss plus ``penalty``.

    Parameters
    ----------
    module : torch.nn.Module
        Returns the linear predictor; provides ``penalized_parameters()``.
    family : neurostat.engine.families.Family
    penalty : neurostat.engine.penalties.ElasticNetPenalty
    config : MinibatchConfig
    augment : callable or None
        ``augment(xb) -> xb``, applied to every training minibatch (on its device).

    Attributes
    ----------
    optimizer : torch.optim.Optimizer
        Built on the first :meth:`run` and kept, so ``partial_fit`` continues its state.
    """

    def __init__(self, module, family, penalty, config, augment=None):
        self.module = module
        self.augment = augment
        self.optimizer = None
        self.reconfigure(family, penalty, config)

    def reconfigure(self, family, penalty, config):
        """New family, penalty and settings for the next :meth:`run`; the optimizer and its
        state are kept (``partial_fit``, warm starts)."""
        self.family, self.penalty, self.config = family, penalty, config
        self.schedule = LearningRateSchedule(config.learning_rate, config.learning_rate_init,
                                             config.power_t, config.solver)
        self.stopping = StoppingRule(config.tol, config.n_iter_no_change)

    def run(self, data, history, n_epochs, validation=None, score_fn=None, check_stop=True,
            loss_scale=1.0):
        """Train for up to ``n_epochs`` epochs; returns ``history``.

        Parameters
        ----------
        data : tuple (X, y, w) or (X, y, w, offset) of tensors on the device (``w`` and the
            offset, an (n, k) tensor added to the module's output, may be None)
        history : neurostat.engine.solvers.History
            Continued: ``loss_curve`` (penalized objective per epoch, times ``loss_scale``),
            ``validation_scores``, ``n_iter``, ``t``, ``converged``, ``best_state``.
        n_epochs : int
        validation : tuple (X, y, w) or None
            Held-out rows for early stopping, scored by ``score_fn(module, X, y, w)``
            (higher is better); the best state is kept in ``history.best_state``.
        check_stop : bool
            Apply the stopping rule (False for ``partial_fit``'s single epochs).
        loss_scale : float
            Converts the objective optimized here to the one reported (``scale^2`` for a
            gaussian target standardized by the estimator).
        """
        module = self.module
        # Small networks spend their time in per-step overhead, not in matrix products: one
        # intra-op thread is as fast there and does not collapse when a neighbouring process
        # is busy (2-thread loops slowed >10x on a loaded 2-core machine, 1-thread ones not).
        n = data[0].shape[0]
        work = max(p.numel() for p in module.parameters()) * self.config.n_batch(n)
        with num_threads(1 if data[0].device.type == "cpu" and work < (1 << 22) else None):
            if self.optimizer is None:
                self.optimizer = make_optimizer(self.config, module, self.penalty)
            average = None
            if has_dropout(module) and check_stop and validation is None:
                average = IterateAverage(module, self.config.n_iter_no_change)
            history.averaged_change = None
            history.averaging = average is not None
            self._step = Stepper(self.optimizer)
            progress = self._progress(n_epochs)
            try:
                for _ in range(n_epochs):
                    epoch_loss = self._epoch(data, history, loss_scale)
                    if average is not None:
                        average.update(history)
                    if validation is not None:
                        module.eval()
                        with torch.no_grad():
                            history.validation_scores.append(float(score_fn(module,
                                                                            *validation)))
                    if progress is not None:
                        _show(progress, epoch_loss, history)
                    self.schedule.epoch_ends(self.optimizer, history.t)
                    if check_stop and self._stop(history, validation):
                        history.converged = True
                        break
            finally:
                if progress is not None:
                    progress.close()
                module.eval()
            if average is not None:
                average.load(keep_zeros=module.penalized_parameters()
                             if self.penalty.l1 > 0 else ())
        return history

    def _stop(self, history, validation):
        if not self.stopping.plateau(history, self.module, validation):
            return False
        if self.schedule.on_plateau(self.optimizer):
            history.no_improvement = 0
            return False
        return True

    def _epoch(self, data, history, loss_scale):
        """One pass over the data; returns the epoch's penalized objective (reported scale)."""
        X, y, w, offset = unpack(data)
        n = X.shape[0]
        wsum = float(n) if w is None else float(w.sum())
        self.module.train()
        if self.config.shuffle:
            perm = torch.randperm(n, device=X.device)
            Xe, ye = X[perm], y[perm]
            we = None if w is None else w[perm]
            oe = None if offset is None else offset[perm]
        else:
            Xe, ye, we, oe = X, y, w, offset
        total = self._batches(Xe, ye, we, self.config.n_batch(n), oe)
        return self._end_epoch(total, n, wsum, history, loss_scale)

    def _batches(self, Xe, ye, we, bs, oe=None):
        """Steps on consecutive minibatches of ``bs`` rows of (Xe, ye, we) with offsets oe;
        returns the weighted sum of their losses (a tensor on the device)."""
        module, family, penalty, optimizer = self.module, self.family, self.penalty, \
            self.optimizer
        weights = module.penalized_parameters()
        add_l2 = penalty.l2 > 0 and self.config.solver != "adamw"
        stepper = self._step
        total = torch.zeros((), device=Xe.device, dtype=Xe.dtype)
        for start in range(0, Xe.shape[0], bs):
            xb, yb = Xe[start:start + bs], ye[start:start + bs]
            wb = None if we is None else we[start:start + bs]
            ob = None if oe is None else oe[start:start + bs]
            if self.augment is not None:
                xb = self.augment(xb)
            loss = family.loss(shifted(module(xb), ob), yb, wb)
            obj = loss + penalty.smooth(weights) if add_l2 else loss
            stepper.zero_grad()
            obj.backward()
            stepper()
            if penalty.l1 > 0:
                penalty.prox_(weights, optimizer.param_groups[0]["lr"], optimizer)
            total += loss.detach() * (xb.shape[0] if wb is None else wb.sum())
        return total

    def _end_epoch(self, total, n, wsum, history, loss_scale):
        """Record an epoch of ``n`` rows (total weight ``wsum``) whose weighted loss sum is
        ``total``; returns its penalized objective on the reported scale."""
        history.n_iter += 1
        history.t += n
        epoch_loss = total.item() / wsum
        if not np.isfinite(epoch_loss):
            raise diverged(history.n_iter, self.config.solver,
                           self.optimizer.param_groups[0]["lr"])
        weights = self.module.penalized_parameters()
        epoch_loss = (epoch_loss + float(self.penalty.value(weights))) * loss_scale
        history.loss_curve.append(epoch_loss)
        return epoch_loss

    def _progress(self, n_epochs):
        if not self.config.verbose:
            return None
        from tqdm.auto import tqdm
        return tqdm(total=n_epochs, desc=self.config.name, leave=False)


def _show(progress, epoch_loss, history):
    progress.update(1)
    post = {"loss": f"{epoch_loss:.5g}"}
    if history.validation_scores:
        post["val"] = f"{history.validation_scores[-1]:.4g}"
    progress.set_postfix(post)
