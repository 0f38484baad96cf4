"""Learning-rate schedules, the stopping rule and iterate averaging of the minibatch solvers.

They follow scikit-learn's ``MLPClassifier`` (``_stochastic_optimizers.py``: the optimizer's
``iteration_ends`` and ``trigger_stopping``): the schedule and the stopping decision live with
the solver, not in the training loop.
"""

import copy
from dataclasses import dataclass

import torch

#: polynomial-decay averaging (Shamir & Zhang 2013): weight (eta + 1) / (t + eta) on epoch t
AVERAGING_ETA = 3


def set_learning_rate(optimizer, lr):
    """Set every parameter group's learning rate."""
    for g in optimizer.param_groups:
        g["lr"] = lr


@dataclass(frozen=True)
class LearningRateSchedule:
    """scikit-learn's learning-rate schedules.

    Parameters
    ----------
    kind : {"constant", "invscaling", "adaptive"}
        ``invscaling`` (sgd only, as scikit-learn) sets the step to
        ``learning_rate_init / (t + 1) ** power_t`` after each epoch, t the samples seen;
        ``adaptive`` divides it by 5 when the stopping rule sees a plateau, as long as it stays
        above 1e-6, instead of stopping.
    learning_rate_init : float
    power_t : float
    solver : str
    """

    kind: str = "constant"
    learning_rate_init: float = 1e-3
    power_t: float = 0.5
    solver: str = "adam"

    def epoch_ends(self, optimizer, samples_seen):
        """Update the step after an epoch (invscaling)."""
        if self.solver == "sgd" and self.kind == "invscaling":
            set_learning_rate(optimizer, self.learning_rate_init
                              / (samples_seen + 1) ** self.power_t)

    def on_plateau(self, optimizer):
        """React to a plateau; True when training should go on (adaptive: step / 5)."""
        if self.kind != "adaptive":
            return False
        lr = optimizer.param_groups[0]["lr"]
        if lr <= 1e-6:
            return False
        set_learning_rate(optimizer, lr / 5.0)
        return True


@dataclass(frozen=True)
class StoppingRule:
    """scikit-learn's rule: ``n_iter_no_change`` epochs without an improvement of ``tol``.

    The loss, or the validation score with early stopping (whose best state it keeps); for
    iterate-averaged fits (dropout) a change of the averaged parameters below ``tol`` over that
    many epochs.

    Parameters
    ----------
    tol : float
    n_iter_no_change : int
    """

    tol: float = 1e-4
    n_iter_no_change: int = 10

    def plateau(self, history, module, validation):
        """Record this epoch in ``history``; True when the rule's patience is exhausted."""
        if validation is not None:
            score = history.validation_scores[-1]
            if score < history.best_validation_score + self.tol:
                history.no_improvement += 1
            else:
                history.no_improvement = 0
            if score > history.best_validation_score:
                history.best_validation_score = score
                history.best_state = copy.deepcopy(module.state_dict())
        elif history.averaging:
            change, history.averaged_change = history.averaged_change, None
            if change is None or change >= self.tol:
                return False
            history.no_improvement = self.n_iter_no_change + 1
        else:
            loss = history.loss_curve[-1]
            if loss > history.best_loss - self.tol:
                history.no_improvement += 1
            else:
                history.no_improvement = 0
            history.best_loss = min(history.best_loss, loss)
        return history.no_improvement > self.n_iter_no_change


class IterateAverage:
    """Polynomial-decay average of a fit's per-epoch iterates (Shamir & Zhang 2013, eta = 3).

    Epoch t gets weight ``(eta + 1) / (t + eta)``, which forgets the transient and averages
    roughly the last quarter of the epochs. Every ``block`` epochs it records in
    ``history.averaged_change`` the largest absolute change of a parameter of the average over
    the block, which the stopping rule reads instead of the noisy loss.

    Parameters
    ----------
    module : torch.nn.Module
    block : int
        Epochs per block (the stopping rule's ``n_iter_no_change``).
    """

    def __init__(self, module, block):
        self.params = list(module.parameters())
        self.average = [p.detach().clone() for p in self.params]
        self.snapshot = [a.clone() for a in self.average]
        self.block = block
        self.epoch = 0

    @torch.no_grad()
    def update(self, history):
        """Fold the current iterate into the average (call once per epoch)."""
        self.epoch += 1
        rate = (AVERAGING_ETA + 1) / (self.epoch + AVERAGING_ETA)
        for a, p in zip(self.average, self.params, strict=True):
            a.lerp_(p, rate)
        if self.epoch % self.block == 0:
            history.averaged_change = max(
                float((a - s).abs().max()) for a, s in zip(self.average, self.snapshot,
                                                           strict=True))
            self.snapshot = [a.clone() for a in self.average]

    @torch.no_grad()
    def load(self, keep_zeros=()):
        """Copy the average into the module; parameters in ``keep_zeros`` keep their exact
        zeros (weights the L1 prox left at zero stay zero)."""
        ids = {id(w) for w in keep_zeros}
        for a, p in zip(self.average, self.params, strict=True):
            if id(p) in ids:
                a = torch.where(p == 0, torch.zeros_like(a), a)
            p.copy_(a)
