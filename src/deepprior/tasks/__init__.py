"""Tasks: each builds a :class:`Problem` (operator + measurement) from the user's images; one
:func:`solve` turns any problem plus a preset/method into a fit. Tasks are plug-ins — a new task
is a new ``*_problem`` function and a preset entry, never a new loop.

* :mod:`.convert` — arrays ↔ tensors; :mod:`.synthesis` — seeded degradations;
* :mod:`.problems` — the task plug-ins; :mod:`.solve` — presets → parameterization → the fit loop.
"""

from ..nets.common import center_crop
from .convert import check_gt, to_numpy, to_tensor
from .problems import (TASKS, Problem, deblur_problem, default_preset, denoise_problem, flash_problem,
                       inpaint_problem, jpeg_problem, superres_problem)
from .solve import Restoration, build_dip, make_stopper, resolve_preset, solve, solve_many
from .synthesis import add_noise, downscale, jpeg_compress, random_mask

__all__ = ["Problem", "Restoration", "solve", "solve_many", "denoise_problem", "inpaint_problem", "superres_problem",
           "deblur_problem", "jpeg_problem", "flash_problem", "add_noise", "random_mask", "downscale",
           "jpeg_compress", "to_tensor", "to_numpy", "check_gt", "TASKS", "center_crop", "build_dip", "make_stopper",
           "resolve_preset", "default_preset"]
