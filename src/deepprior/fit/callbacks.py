"""Callbacks: progress bar, periodic snapshots. (Early stopping and checkpoints plug in here too.)"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

from torch import Tensor

from .config import Callback, FitState


class ProgressBar(Callback):
    """A live rich progress bar with loss (and PSNR when a ground truth is given).

    Multi-stage methods call :meth:`begin_phase` so that one bar spans the several fits of a phase
    (e.g. GIP's 20 ADMM network steps) under the phase's name.
    """

    def __init__(self, description: str = "fitting", refresh_every: int = 1, console=None):
        self.description, self.refresh_every, self.console = description, refresh_every, console
        self._progress = None
        self._task = None
        self._phase: tuple[str, int] | None = None
        self._done = 0

    def begin_phase(self, description: str, total: int) -> None:
        """The next fits, until ``total`` steps or the next phase, share one bar named ``description``."""
        self._close()
        self._phase, self._done = (description, total), 0

    def end_phase(self) -> None:
        self._close()
        self._phase = None

    def _close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress = self._task = None

    def on_fit_start(self, state: FitState) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        if self._progress is not None and self._phase is not None:
            return  # the phase's bar is already running
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                  TextColumn("{task.fields[info]}"), console=self.console, transient=False)
        self._progress.start()
        desc, total = self._phase or (self.description, state.iters)
        self._task = self._progress.add_task(desc, total=total, info="")

    def on_step_end(self, state: FitState) -> None:
        if self._phase is not None:
            self._done += 1
            self._progress.update(self._task, completed=self._done, info=f"loss {state.loss:.3e}")
            return
        if (state.it + 1) % self.refresh_every and state.it + 1 != state.iters:
            return
        info = f"loss {state.loss:.3e}"
        h = state.history
        if h.get("psnr"):
            info += f"  PSNR {h['psnr'][-1]:.2f} dB (ema {h['psnr_ema'][-1]:.2f})"
        if state.backtracks:
            info += f"  restores {state.backtracks}"
        self._progress.update(self._task, completed=state.it + 1, info=info)

    def on_fit_end(self, state: FitState) -> None:
        if self._phase is None or self._done >= self._phase[1]:
            self._close()


def format_seconds(sec: float) -> str:
    """``95 → '95 s'``, ``400 → '7 min'``, ``9000 → '2.5 h'``: a run time as people say it.

    >>> format_seconds(0.2), format_seconds(95), format_seconds(400), format_seconds(9000)
    ('under 1 s', '95 s', '7 min', '2.5 h')
    """
    if sec < 1:
        return "under 1 s"
    return f"{sec:.0f} s" if sec < 120 else f"{sec / 60:.0f} min" if sec < 7200 else f"{sec / 3600:.1f} h"


class Announce(Callback):
    """Say once what runs and about how long it takes, timed on the run itself: after ``warmup`` iterations
    (the first ones pay for allocation and kernel selection) and ``timed`` more, ``emit`` receives
    ``"{what} on {device}[ in bfloat16], up to N {unit}s{detail}, stops by itself: at most T (s/{unit})"`` — or
    "N {unit}s{detail}: about T" when ``stops`` is False. Multi-stage methods call :meth:`begin_phase`: each phase
    is timed and announced on its own (its steps cost differently), the first line carrying ``what``. ``limit``
    (seconds): the fit's time limit (default: the fit's own, ``FitState.time_limit``), which caps the bound and is
    named when it is the smaller.

    >>> lines = []
    >>> a = Announce(lines.append, "demo", device="cpu", timed=1)
    >>> st = FitState(it=0, iters=10)
    >>> for it in range(3):
    ...     st.it = it; a.on_step_end(st)
    >>> lines[0].startswith("demo on cpu, up to 10 iterations, stops by itself: at most")
    True
    """

    def __init__(self, emit: Callable[[str], None], what: str, *, device: str = "cpu", stops: bool = True,
                 unit: str = "iteration", detail: str = "", warmup: int = 1, timed: int = 2, limit: float | None = None):
        self.emit, self.what, self.device, self.stops, self.unit, self.detail = emit, what, device, stops, unit, detail
        self.limit = limit
        self.warmup, self.timed = warmup, timed
        self._phase: tuple[str, int] | None = None
        self._steps, self._t0, self._said, self._first = 0, None, False, True

    def begin_phase(self, description: str, total: int) -> None:
        self._phase, self._steps, self._t0, self._said = (description, total), 0, None, False

    def end_phase(self) -> None:
        self._phase = None

    def on_fit_start(self, state: FitState) -> None:
        if self._phase is None:  # a plain fit is its own phase
            self._steps, self._t0, self._said = 0, None, False

    def on_step_end(self, state: FitState) -> None:
        if self._said:
            return
        self._steps += 1
        if self._steps == self.warmup:
            self._t0 = time.perf_counter()
        elif self._steps == self.warmup + self.timed:
            per = (time.perf_counter() - self._t0) / self.timed
            name, total = self._phase or (None, state.iters)
            n = f"{total} {self.unit}s{self.detail}"
            bound = f"up to {n}, stops by itself: at most" if self.stops else f"{n}: about"
            head = f"{self.what} on {self.device}{' in bfloat16' if state.bf16 else ''}" if self._first else ""
            sep = ", " if head else ""
            stage = f"{name}: " if name else ""
            est = format_seconds(per * total)
            limit = self.limit or state.time_limit
            if limit and limit < per * total:
                est = f"{format_seconds(limit)}, its time limit ({est} for every {self.unit})"
            self.emit(f"{head}{sep}{stage}{bound} {est} ({per:.3f} s/{self.unit})")
            self._said, self._first = True, False


class SaveEvery(Callback):
    """Call ``save(image, iteration)`` every ``every`` steps (e.g. to write intermediate PNGs)."""

    def __init__(self, every: int, save: Callable[[Tensor, int], None], which: str = "x"):
        if every < 1:
            raise ValueError("every must be ≥ 1")
        self.every, self.save, self.which = every, save, which

    def on_step_end(self, state: FitState) -> None:
        if (state.it + 1) % self.every == 0:
            img = state.ema if self.which == "ema" and state.ema is not None else state.x
            self.save(img, state.it + 1)


def numbered_path(path: Path, it: int) -> Path:
    """``out.png`` → ``out_01000.png``."""
    return path.with_name(f"{path.stem}_{it:0{max(5, int(math.log10(it + 1)) + 1)}d}{path.suffix}")
