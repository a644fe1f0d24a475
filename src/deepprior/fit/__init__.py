"""The fit loop and its callbacks."""

from .callbacks import ProgressBar, SaveEvery
from .loop import Callback, FitConfig, FitInterrupted, FitResult, FitState, fit, load_checkpoint, resolve_device, set_deterministic

__all__ = ["fit", "FitConfig", "FitResult", "FitState", "Callback", "ProgressBar", "SaveEvery", "resolve_device",
           "FitInterrupted", "load_checkpoint", "set_deterministic"]
