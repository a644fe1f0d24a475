"""Callbacks: progress bar, periodic snapshots. (Early stopping and checkpoints plug in here too.)"""

from __future__ import annotations

import math
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
