"""Stopping without ground truth (issue: "stop at the right iterate").

* :class:`WindowedVariance` — ES-WMV (Wang, Li et al., TMLR 2023): the mean squared deviation of the
  last ``window`` outputs from their mean; stop when it has not reached a new minimum for
  ``patience`` steps and deliver the output at the minimum.
* :class:`ExponentialVariance` — ES-EMV: the exponential version (weight ``alpha``), one image of state.
* :class:`Holdout` — self-validation: a fraction of the measurements is held out of the data term;
  stop when their loss has not improved for ``patience`` steps, deliver the best iterate.

``not_before`` keeps a rule from firing before a given step. After a learning-rate drop a score can rise for
longer than the patience and then fall below its earlier minimum (TDDIP's held-out score: a minimum ~50 sweeps
after the first drop, a rise of ~65 sweeps, then lower for the rest of the run; the sweep chosen there was 1.6 dB
better — docs/mri.md), so a fit with a step schedule lets its last drop act for ``patience`` steps before the rule
may end it.

All set ``state.selected``/``selected_iter`` (what :attr:`FitResult.output` returns) and
``state.stop``; their score curves are kept in ``self.scores``/``self.iters`` for plots.
:class:`TimeLimit` ends a fit at a wall-clock budget; the iterate a rule above has selected so far is delivered.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import ConfigError
from ..operators.base import Operator
from .config import Callback, FitState

# The rules a fit can stop by (``none`` runs all iterations): the choices of ``--stop``.
STOP_RULES = ("none", "wmv", "wmv-ema", "emv", "holdout")


class _Detector(Callback):
    """Shared bookkeeping: a score per step, its running minimum, patience, the selected iterate."""

    def __init__(self, patience: int, stop: bool, not_before: int = 0):
        if patience < 1:
            raise ConfigError(f"patience must be ≥ 1, got {patience}")
        self.patience, self.stop, self.not_before = patience, stop, not_before
        self.scores: list[float] = []
        self.iters: list[int] = []
        self.best_score = math.inf
        self.best_iter: int | None = None
        self.fired_at: int | None = None  # the step at which the rule fired (also with stop=False)

    _extra: tuple[str, ...] = ()  # subclass state that a checkpoint keeps

    def state_dict(self) -> dict:
        keys = ("scores", "iters", "best_score", "best_iter", "fired_at", *self._extra)
        return {k: getattr(self, k) for k in keys}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def _update(self, state: FitState, score: float | None) -> None:
        if score is None:
            return
        self.scores.append(score)
        self.iters.append(state.it)
        if self.fired_at is not None:
            return  # the selection is frozen once the rule has fired (a run may go on to measure the oracle)
        if score < self.best_score:
            self.best_score, self.best_iter = score, state.it
            # Deliver what the fit delivers at that step: the EMA when it keeps one, else the output.
            img = state.ema if state.ema is not None else state.x
            state.selected, state.selected_iter = img.clone(), state.it
        elif self.best_iter is not None and state.it - self.best_iter >= self.patience and state.it >= self.not_before:
            self.fired_at = state.it
            state.stop = self.stop


def replay(scores: list[float], iters: list[int], patience: int, not_before: int = 0) -> tuple[int | None, int | None]:
    """(selected step, step at which the rule fires) of a detector with ``patience`` (and ``not_before``) on a
    recorded score curve — the same rule as the live detectors. The rule only decides when to stop, so one run
    that did not stop answers for every shorter one. ``(best, None)`` if it would not have fired within the curve.

    >>> replay([3.0, 2.0, 2.5, 2.4, 2.6, 1.5], [0, 1, 2, 3, 4, 5], patience=2)
    (1, 3)
    >>> replay([3.0, 2.0, 2.5, 2.4, 2.6, 1.5], [0, 1, 2, 3, 4, 5], patience=2, not_before=5)
    (5, None)
    """
    best, at = math.inf, None
    for s, it in zip(scores, iters):
        if s < best:
            best, at = s, it
        elif at is not None and it - at >= patience and it >= not_before:
            return at, it
    return at, None


class WindowedVariance(_Detector):
    """ES-WMV. Running sums make each step O(N): ``S1 = Σ x_i`` (float64 image) and ``S2 = Σ ‖x_i‖²``
    over a ring buffer of the last ``window`` outputs; VAR = (S2 − ‖S1‖²/W) / (W·N).

    Memory: the ring buffer, ``window × N`` floats (N = pixels × channels; 100 × 256² × 3 × 4 B = 79 MB),
    plus one float64 image.
    """

    def __init__(self, window: int = 100, patience: int = 1000, stop: bool = True, source: str = "x",
                 not_before: int = 0):
        super().__init__(patience, stop, not_before)
        if window < 2:
            raise ConfigError(f"window must be ≥ 2, got {window}")
        if source not in ("x", "ema"):
            raise ConfigError(f"source must be 'x' (the outputs, as in the paper) or 'ema', got {source!r}")
        self.window, self.source = window, source
        self._extra = ("_buf", "_s1", "_s2", "_n")
        self._buf: Tensor | None = None
        self._s1: Tensor | None = None
        self._s2 = 0.0
        self._n = 0

    def on_step_end(self, state: FitState) -> None:
        src = state.ema if self.source == "ema" and state.ema is not None else state.x
        x = src.detach().reshape(-1)
        if self._buf is None:
            self._buf = torch.empty((self.window, x.numel()), dtype=x.dtype, device=x.device)
            self._s1 = torch.zeros(x.numel(), dtype=torch.float64, device=x.device)
        slot = self._n % self.window
        if self._n >= self.window:  # the oldest output leaves the window
            old = self._buf[slot].double()
            self._s1 -= old
            self._s2 -= float(old.square().sum())
        self._buf[slot] = x
        xd = x.double()
        self._s1 += xd
        self._s2 += float(xd.square().sum())
        self._n += 1
        if self._n < self.window:
            return self._update(state, None)
        w, n = self.window, x.numel()
        var = (self._s2 - float(self._s1.square().sum()) / w) / (w * n)
        self._update(state, max(var, 0.0))


class ExponentialVariance(_Detector):
    """ES-EMV: ``m ← m + α(x − m)``, ``v ← (1 − α)(v + α‖x − m_prev‖²/N)``; one image of state."""

    def __init__(self, alpha: float = 0.1, patience: int = 1000, warmup: int = 20, stop: bool = True):
        super().__init__(patience, stop)
        if not 0 < alpha <= 1:
            raise ConfigError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha, self.warmup = alpha, warmup
        self._extra = ("_m", "_v", "_n")
        self._m: Tensor | None = None
        self._v = 0.0
        self._n = 0

    def on_step_end(self, state: FitState) -> None:
        x = state.x.detach().double()
        self._n += 1
        if self._m is None:
            self._m = x.clone()
            return self._update(state, None)
        d = x - self._m
        self._v = (1 - self.alpha) * (self._v + self.alpha * float(d.square().mean()))
        self._m += self.alpha * d
        self._update(state, self._v if self._n > self.warmup else None)


class Holdout(_Detector):
    """Self-validation: ``loss(val_op(x), y_val)`` every ``every`` steps (of the held-out samples).
    ``source='ema'`` scores the moving average of the outputs (smoother; what the fit delivers). A ``val_op`` that
    evaluates its squared misfit itself (the loop's protocol: ``val_op.misfit(x, y_val)``, a mean over its
    ``entries``, as the radial Toeplitz data term :class:`~deepprior.mri.gramloss.GramMisfit`) is asked for it, and
    the score is the same sum over the held-out samples / ``count``."""

    def __init__(self, val_op: Operator, y_val: Tensor, every: int = 10, patience: int = 500, stop: bool = True,
                 count: float | None = None, source: str = "x", not_before: int = 0):
        super().__init__(patience, stop, not_before)
        if source not in ("x", "ema"):
            raise ConfigError(f"source must be 'x' or 'ema', got {source!r}")
        self.val_op, self.y_val, self.every, self.source = val_op, y_val, every, source
        # number of held-out samples (the rest of val_op's output is masked to 0)
        self._count = count or float(y_val.ne(0).sum()) or 1.0

    def on_step_end(self, state: FitState) -> None:
        if (state.it + 1) % self.every:
            return
        x = state.ema if self.source == "ema" and state.ema is not None else state.x
        with torch.no_grad():
            if callable(getattr(self.val_op, "misfit", None)):
                score = float(self.val_op.misfit(x, self.y_val)) * self.val_op.entries / self._count
            else:
                r = self.val_op(x) - self.y_val
                score = float((r.abs() ** 2).sum()) / self._count
        self._update(state, score)


class Discrepancy(Callback):
    """Morozov's discrepancy principle: stop at the first step whose data misfit (the loop's mean ``data`` loss)
    falls to ``level`` — the noise's own mean square, so that fitting further would fit noise (the noise-level
    stopping of DIP parameter mapping, Hellström et al., MRM 2023). Delivers that step's output (its EMA when the
    fit keeps one).

    >>> from deepprior.fit.config import FitState
    >>> d = Discrepancy(0.5)
    >>> st = FitState(it=3, iters=10, x=torch.zeros(1), history={"data": [0.4]})
    >>> d.on_step_end(st); st.stop, st.selected_iter
    (True, 3)
    """

    def __init__(self, level: float):
        if not level > 0:
            raise ConfigError(f"the discrepancy level must be > 0, got {level}")
        self.level = float(level)
        self.fired_at: int | None = None

    def state_dict(self) -> dict:
        return {"fired_at": self.fired_at}

    def load_state_dict(self, state: dict) -> None:
        self.fired_at = state["fired_at"]

    def on_step_end(self, state: FitState) -> None:
        data = state.history.get("data") or []
        if self.fired_at is None and data and data[-1] <= self.level:
            self.fired_at = state.it
            img = state.ema if state.ema is not None else state.x
            state.selected, state.selected_iter = img.clone(), state.it
            state.stop = True


class TimeLimit(Callback):
    """End the fit once it has run ``seconds`` (wall clock, counted as the loop counts ``state.elapsed``, resumed
    time included): a budget that holds on a slower or busier machine than the one a preset was sized on. Put it
    after the stop rules, so that the last step's score is counted before the fit ends; the loop then delivers
    what they selected so far. ``fired_at`` is the step it ended the fit after (None: it did not).

    >>> t = TimeLimit(60.0)
    >>> st = FitState(it=5, iters=10, elapsed=61.0)
    >>> t.on_step_end(st); st.stop, t.fired_at
    (True, 5)
    """

    def __init__(self, seconds: float):
        if not seconds > 0:
            raise ConfigError(f"the time limit must be > 0 seconds, got {seconds}")
        self.seconds = float(seconds)
        self.fired_at: int | None = None

    def on_step_end(self, state: FitState) -> None:
        if state.elapsed >= self.seconds and state.it + 1 < state.iters:
            state.stop, self.fired_at = True, state.it


def holdout_split(sampled: Tensor, fraction: float, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Split a 0/1 ``sampled`` array into (train, validation) masks: a seeded random ``fraction`` of the
    sampled entries goes to validation.

    >>> tr, va = holdout_split(torch.ones(10, 10), 0.1, seed=0)
    >>> int(va.sum()), int((tr * va).sum())
    (10, 0)
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"holdout fraction must be in (0, 1), got {fraction}")
    s = sampled.bool()
    idx = s.flatten().nonzero().squeeze(1)
    g = torch.Generator().manual_seed(seed)
    k = max(1, int(round(fraction * idx.numel())))
    pick = idx[torch.randperm(idx.numel(), generator=g)[:k]]
    val = torch.zeros(s.numel(), dtype=torch.float32)
    val[pick] = 1
    val = val.reshape(s.shape)
    return s.float() - val, val
