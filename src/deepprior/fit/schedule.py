"""A learning-rate schedule sized to the run's budget in steps *and* seconds.

A fit that ends at a time limit (TDDIP's CPU preset on a slower machine than it was sized on) never reaches
the end of a schedule counted in steps, so a final decay counted in steps
would not happen there. :class:`BudgetAnneal` measures progress as whichever is further along, the steps
or the clock, and decays the rate over the last ``frac`` of it: the constant-rate phase keeps all its
steps, and every run, cut short or not, ends annealed.
"""

from __future__ import annotations

import math
from typing import Callable

from ..errors import ConfigError

FLOOR = 0.01  # the last factor: small enough to settle the iterate, and > 0 so that the chained ratios stay finite


def anneal_factor(progress: float, frac: float) -> float:
    """The rate's factor at ``progress`` (0 = start, 1 = budget spent): 1 until ``1 − frac``, then a half cosine
    down to :data:`FLOOR` at 1.

    >>> [round(anneal_factor(p, 0.25), 3) for p in (0.0, 0.75, 0.875, 1.0, 1.5)]
    [1.0, 1.0, 0.505, 0.01, 0.01]
    """
    t = min(1.0, max(0.0, (progress - (1 - frac)) / frac))
    return FLOOR + (1 - FLOOR) * 0.5 * (1 + math.cos(math.pi * t))


class BudgetAnneal:
    """Scheduler for a ``torch.optim`` optimizer: ``step()`` once per iteration of a fit of ``iters`` iterations
    that may also be ended after ``budget`` seconds of ``clock()`` (None: steps only). Chained: it multiplies each
    group's rate by the change of :func:`anneal_factor`, so that a reduction made outside it (divergence
    backtracking) persists. ``state_dict``/``load_state_dict`` as torch's schedulers (checkpoints, backtracking).

    >>> import torch
    >>> opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> s = BudgetAnneal(opt, iters=8, frac=0.5)
    >>> for _ in range(8):
    ...     s.step()
    >>> round(opt.param_groups[0]["lr"], 3)
    0.01
    """

    def __init__(self, optimizer, iters: int, frac: float, budget: float | None = None,
                 clock: Callable[[], float] | None = None):
        if not 0 < frac <= 1:
            raise ConfigError(f"the anneal fraction must be in (0, 1], got {frac}")
        if budget is not None and not (budget > 0 and clock is not None):
            raise ConfigError("a time budget must be > 0 seconds and needs a clock")
        self.optimizer, self.iters, self.frac, self.budget, self.clock = optimizer, iters, frac, budget, clock
        self.last_epoch, self.factor = 0, 1.0

    def progress(self) -> float:
        p = self.last_epoch / self.iters
        return max(p, self.clock() / self.budget) if self.budget else p

    def step(self) -> None:
        self.last_epoch += 1
        f = anneal_factor(self.progress(), self.frac)
        for g in self.optimizer.param_groups:
            g["lr"] *= f / self.factor
        self.factor = f

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "factor": self.factor}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch, self.factor = int(state["last_epoch"]), float(state["factor"])
