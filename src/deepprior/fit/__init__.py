"""The fit loop and its callbacks: :mod:`.loop` (the one loop), :mod:`.config` (its types),
:mod:`.checkpoint` (the state it carries and saves), :mod:`.callbacks`, :mod:`.stopping`."""

from .callbacks import Announce, ProgressBar, SaveEvery, format_seconds
from .checkpoint import load_checkpoint
from .config import (Callback, FitConfig, FitInterrupted, FitResult, FitState, native_bf16, resolve_device,
                     set_deterministic)
from .loop import fit

__all__ = ["fit", "FitConfig", "FitResult", "FitState", "Callback", "ProgressBar", "SaveEvery", "resolve_device",
           "FitInterrupted", "load_checkpoint", "set_deterministic", "native_bf16", "Announce",
           "format_seconds"]
