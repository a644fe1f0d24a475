"""Task plug-ins: each ``*_problem`` builds a :class:`Problem` (operator + measurement) from the user's
images. A new task is a new function here and a preset entry, never a new loop."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError
from ..operators import Blur, Downsample, Identity, Mask, Operator, gaussian_kernel
from .convert import check_gt

TASKS = ("denoise", "inpaint", "superres", "deblur", "jpeg", "flash")


@dataclass
class Problem:
    """A reconstruction problem: find x (``out_hw``, ``channels``) with ``operator(x) ≈ y``.

    ``degraded`` is the measurement shown at the output size (for figures and as the classical
    initialisation); ``code_image`` is an image used as the network input (flash/no-flash).
    """

    task: str
    operator: Operator
    y: Tensor
    out_hw: tuple[int, int]
    channels: int
    degraded: Tensor
    gt: Tensor | None = None
    code_image: Tensor | None = None
    info: dict = field(default_factory=dict)

    def to(self, device) -> "Problem":
        mv = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Problem(self.task, self.operator.to(device), self.y.to(device), self.out_hw, self.channels,
                       mv(self.degraded), mv(self.gt), mv(self.code_image), self.info)



def denoise_problem(noisy: Tensor, gt: Tensor | None = None, *, sigma: float | None = None) -> Problem:
    """Denoising: ``A = I``, y = the noisy image."""
    hw, c = tuple(noisy.shape[-2:]), noisy.shape[1]
    return Problem("denoise", Identity(), noisy, hw, c, noisy, check_gt(gt, hw, c), info={"sigma": sigma})


def jpeg_problem(decoded: Tensor, gt: Tensor | None = None) -> Problem:
    """JPEG artifact removal: the data term is on the decoded image (``A = I``)."""
    hw, c = tuple(decoded.shape[-2:]), decoded.shape[1]
    return Problem("jpeg", Identity(), decoded, hw, c, decoded, check_gt(gt, hw, c))


def inpaint_problem(img: Tensor, mask, gt: Tensor | None = None) -> Problem:
    """Inpainting: ``A x = m ⊙ x`` with m = 1 on known pixels."""
    hw, c = tuple(img.shape[-2:]), img.shape[1]
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32)) if not isinstance(mask, Tensor) else mask.float()
    while m.ndim > 2 and m.shape[0] == 1:
        m = m[0]
    if tuple(m.shape[-2:]) != hw:
        raise InputError(f"mask is {m.shape[-2]}×{m.shape[-1]} but the image is {hw[0]}×{hw[1]}; they must match")
    op = Mask(m)
    if op.mask.sum() == 0:
        raise InputError("the mask marks no pixel as known; 1 = known, 0 = missing")
    y = op(img)
    return Problem("inpaint", op, y, hw, c, y, check_gt(gt, hw, c), info={"known": float(op.mask.mean())})


def superres_problem(low: Tensor, factor: int, gt: Tensor | None = None, *, kernel: str = "lanczos2") -> Problem:
    """Super-resolution: ``A`` = anti-aliased downsampling by ``factor``; x is ``factor`` times larger."""
    if int(factor) != factor or factor < 2:
        raise InputError(f"scale factor must be an integer ≥ 2, got {factor}")
    hw, c = (low.shape[-2] * factor, low.shape[-1] * factor), low.shape[1]
    op = Downsample(int(factor), kernel)
    shown = F.interpolate(low, size=hw, mode="bicubic", align_corners=False).clamp(0, 1)
    return Problem("superres", op, low, hw, c, shown, check_gt(gt, hw, c), info={"factor": int(factor)})


def deblur_problem(blurred: Tensor, kernel=None, gt: Tensor | None = None, *, sigma_blur: float | None = None,
                   boundary: str = "reflect") -> Problem:
    """Deblurring: ``A`` = convolution with ``kernel`` (or a Gaussian of std ``sigma_blur``)."""
    if kernel is None:
        if sigma_blur is None:
            raise InputError("deblurring needs the blur: give a kernel file or a Gaussian blur sigma")
        kernel = gaussian_kernel(sigma_blur)
    hw, c = tuple(blurred.shape[-2:]), blurred.shape[1]
    op = Blur(kernel, boundary)
    if op.kernel.shape[0] > hw[0] or op.kernel.shape[1] > hw[1]:
        raise InputError(f"blur kernel {tuple(op.kernel.shape)} is larger than the image {hw}")
    return Problem("deblur", op, blurred, hw, c, blurred, check_gt(gt, hw, c))


def flash_problem(flash: Tensor, noflash: Tensor, gt: Tensor | None = None) -> Problem:
    """Flash/no-flash: the flash photo is the network input, the no-flash photo the target."""
    if flash.shape != noflash.shape:
        raise InputError(f"flash {tuple(flash.shape[-2:])} and no-flash {tuple(noflash.shape[-2:])} images differ in size")
    hw, c = tuple(noflash.shape[-2:]), noflash.shape[1]
    return Problem("flash", Identity(), noflash, hw, c, noflash, check_gt(gt, hw, c), code_image=flash)


def default_preset(problem: Problem, device=None) -> str:
    """The recipe a run gets when it names none: on a CPU the task's quick preset (``CPU_DEFAULTS``), else the
    reference recipe that fits the problem."""
    from ..presets import CPU_DEFAULTS

    if device is not None and getattr(device, "type", device) == "cpu" and problem.task in CPU_DEFAULTS:
        return CPU_DEFAULTS[problem.task]
    if problem.task == "denoise":
        s = problem.info.get("sigma")
        return "denoise-s50" if s is not None and s >= 37.5 / 255 else "denoise"
    if problem.task == "superres":
        return "sr4" if problem.info["factor"] <= 4 else "sr8"
    if problem.task == "inpaint":
        return problem.info.get("preset", "inpaint")
    return problem.task
