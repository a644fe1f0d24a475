"""The fit loop and its callbacks."""

from .callbacks import ProgressBar, SaveEvery
from .loop import Callback, FitConfig, FitResult, FitState, fit, resolve_device

__all__ = ["fit", "FitConfig", "FitResult", "FitState", "Callback", "ProgressBar", "SaveEvery", "resolve_device"]
