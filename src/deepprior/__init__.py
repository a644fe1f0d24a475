"""deepprior — image reconstruction with untrained networks (Deep Image Prior and descendants).

>>> import numpy as np, deepprior
>>> noisy = np.random.default_rng(0).random((32, 32))
>>> deepprior.denoise(noisy, iters=2, device="cpu").image.shape
(32, 32, 1)
"""

from . import errors, metrics, nets, operators, presets
from .api import deblur, denoise, flash_no_flash, inpaint, jpeg_restore, super_resolve
from .errors import ConfigError, DeeppriorError, DivergenceError, InputError, OutputExistsError
from .fit import Callback, FitConfig, FitResult, fit
from .params import DIP, Pixels
from .tasks import Problem, Restoration, solve

__version__ = "0.1.0"

__all__ = ["denoise", "inpaint", "super_resolve", "deblur", "jpeg_restore", "flash_no_flash", "fit", "FitConfig",
           "FitResult", "Callback", "DIP", "Pixels", "Problem", "Restoration", "solve", "DeeppriorError",
           "InputError", "ConfigError", "OutputExistsError", "DivergenceError", "operators", "nets", "metrics",
           "presets", "errors"]
