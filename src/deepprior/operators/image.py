"""Forward models of natural-image restoration: pixel mask, downsampler, blur."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, InputError
from .base import LinearOperator


def _as_image_tensor(a, name: str) -> Tensor:
    t = torch.as_tensor(np.asarray(a, dtype=np.float32)) if not isinstance(a, Tensor) else a.float()
    if not torch.isfinite(t).all():
        raise InputError(f"{name} contains NaN or Inf values; clean it before use")
    return t


class Mask(LinearOperator):
    """Pixel mask ``A x = m ⊙ x`` (inpainting, restoration from a subset of pixels).

    ``mask`` is 1 where a pixel is known and 0 where it is missing; shape ``(H, W)``,
    ``(C, H, W)`` or ``(B, C, H, W)``. It is self-adjoint.

    Examples
    --------
    >>> import torch
    >>> m = Mask(torch.tensor([[1.0, 0.0]]))
    >>> m(torch.tensor([[[[3.0, 4.0]]]])).tolist()
    [[[[3.0, 0.0]]]]
    """

    def __init__(self, mask):
        super().__init__()
        m = _as_image_tensor(mask, "mask")
        while m.ndim < 4:
            m = m.unsqueeze(0)
        if ((m != 0) & (m != 1)).any():
            raise InputError("mask must hold only 0 (missing) and 1 (known); threshold it first")
        self.register_buffer("mask", m)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.mask

    def adjoint(self, y: Tensor, in_shape=None) -> Tensor:
        return y * self.mask


# ----------------------------------------------------------------------------------------
# Kernels


def lanczos_kernel(factor: int, support: int = 2, phase: float = 0.5) -> np.ndarray:
    """The separable Lanczos-``support`` anti-aliasing kernel of the reference DIP code.

    The kernel is sampled at offsets ``(i - w/2)/factor`` (phase 0.5, ``w = 2·support·factor + 1``,
    giving a ``(w-1)×(w-1)`` kernel) or ``(i - (w+1)/2)/factor`` (phase 0, ``w×w``) of
    ``sinc(d)·sinc(d/support)`` and normalised to sum 1.

    Examples
    --------
    >>> k = lanczos_kernel(4)
    >>> k.shape, round(float(k.sum()), 6)
    ((16, 16), 1.0)
    """
    if factor < 1 or int(factor) != factor:
        raise ConfigError(f"Lanczos factor must be a positive integer, got {factor}")
    width = 2 * support * factor + 1
    if phase == 0.5:
        offsets = np.arange(1, width) - width / 2.0
    elif phase == 0:
        offsets = np.arange(1, width + 1) - (width + 1) / 2.0
    else:
        raise ConfigError("phase must be 0 or 0.5")
    d = offsets / factor
    w1 = np.sinc(d) * np.sinc(d / support)
    k = np.outer(w1, w1)
    return k / k.sum()


def gaussian_kernel(sigma: float, size: int | None = None) -> np.ndarray:
    """Normalised isotropic Gaussian blur kernel (default size: odd, ≥ 6σ+1).

    >>> gaussian_kernel(1.0).shape
    (7, 7)
    """
    if not sigma > 0:
        raise InputError(f"blur sigma must be > 0, got {sigma}")
    if size is None:
        size = 2 * math.ceil(3 * sigma) + 1
    r = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-(r**2) / (2 * sigma**2))
    k = np.outer(g, g)
    return k / k.sum()


def _depthwise(kernel: Tensor, channels: int) -> Tensor:
    return kernel.reshape(1, 1, *kernel.shape).expand(channels, 1, *kernel.shape)


def _pad_adjoint(y: Tensor, pad: tuple[int, int, int, int], mode: str, in_shape) -> Tensor:
    """Adjoint of ``F.pad(·, pad, mode)``: folds the padded border back onto the image."""
    if not any(pad):
        return y
    x0 = torch.zeros(in_shape, dtype=y.dtype, device=y.device)
    _, vjp = torch.func.vjp(lambda t: F.pad(t, pad, mode=mode), x0)
    return vjp(y)[0]


class Downsample(LinearOperator):
    """Anti-aliased downsampling by an integer ``factor`` (super-resolution).

    ``kernel='lanczos2'`` (default) is the reference DIP downsampler: Lanczos-2, phase 0.5,
    kernel size 4·factor (the ``4·factor+1`` window at half-pixel phase), replication padding
    so that ``H×W`` maps to ``H/factor × W/factor``; fixed weights. ``'lanczos3'`` likewise,
    ``'box'`` averages ``factor×factor`` blocks and ``'bicubic'`` is PyTorch's anti-aliased
    bicubic resize (adjoint by differentiation).

    >>> import torch
    >>> Downsample(4)(torch.rand(1, 3, 32, 24)).shape
    torch.Size([1, 3, 8, 6])
    """

    KERNELS = ("lanczos2", "lanczos3", "box", "bicubic")

    def __init__(self, factor: int, kernel: str = "lanczos2"):
        super().__init__()
        if int(factor) != factor or factor < 1:
            raise InputError(f"scale factor must be a positive integer, got {factor}")
        if kernel not in self.KERNELS:
            raise ConfigError(f"unknown downsampling kernel {kernel!r}; choose one of {', '.join(self.KERNELS)}")
        self.factor, self.kind = int(factor), kernel
        if kernel.startswith("lanczos"):
            k = lanczos_kernel(self.factor, support=int(kernel[-1]), phase=0.5)
        elif kernel == "box":
            k = np.full((self.factor, self.factor), 1.0 / self.factor**2)
        else:
            k = np.ones((1, 1))
        self.register_buffer("kernel", torch.as_tensor(k, dtype=torch.float32))
        ks = k.shape[0]
        p = (ks - 1) // 2 if ks % 2 == 1 else (ks - self.factor) // 2
        self.pad = (p, p, p, p)

    def _check(self, x: Tensor) -> None:
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise InputError(
                f"image size {h}×{w} is not divisible by the scale factor {self.factor}; crop it to a multiple"
            )
        ks = self.kernel.shape[-1]
        if self.kind == "bicubic" and min(h, w) < 2 * self.factor:
            # PyTorch's antialiased bicubic backward disagrees with its forward for 1-pixel outputs
            raise InputError(f"image size {h}×{w} is too small for bicubic downsampling by {self.factor} "
                             f"(needs at least {2 * self.factor} pixels per side)")
        if min(h, w) + 2 * self.pad[0] < ks:
            raise InputError(f"image size {h}×{w} is too small for the {self.kind} kernel at factor {self.factor} "
                             f"(needs at least {ks - 2 * self.pad[0]} pixels per side)")

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        if self.kind == "bicubic":
            h, w = x.shape[-2:]
            return F.interpolate(x, size=(h // self.factor, w // self.factor), mode="bicubic",
                                 align_corners=False, antialias=True)
        c = x.shape[1]
        xp = F.pad(x, self.pad, mode="replicate") if any(self.pad) else x
        return F.conv2d(xp, _depthwise(self.kernel.to(x.dtype), c), stride=self.factor, groups=c)

    def input_shape(self, out_shape):
        return (*out_shape[:-2], out_shape[-2] * self.factor, out_shape[-1] * self.factor)

    def adjoint(self, y: Tensor, in_shape=None) -> Tensor:
        if in_shape is None:
            in_shape = self.input_shape(tuple(y.shape))
        if self.kind == "bicubic":
            return super().adjoint(y, in_shape)
        c = y.shape[1]
        h, w = in_shape[-2:]
        p = self.pad
        padded = (*in_shape[:-2], h + p[2] + p[3], w + p[0] + p[1])
        ks = self.kernel.shape[-1]
        # conv_transpose may come out short of the padded size when (H+2p-k) % factor != 0;
        # output_padding restores the rows the strided forward never read.
        op_h = padded[-2] - ((y.shape[-2] - 1) * self.factor + ks)
        op_w = padded[-1] - ((y.shape[-1] - 1) * self.factor + ks)
        xp = F.conv_transpose2d(y, _depthwise(self.kernel.to(y.dtype), c), stride=self.factor,
                                groups=c, output_padding=(op_h, op_w))
        return _pad_adjoint(xp, self.pad, "replicate", in_shape)


class Blur(LinearOperator):
    """Convolution with a point-spread function ``kernel`` (deblurring), output the same size.

    ``boundary`` is how the image is extended beyond its edges: ``'reflect'`` (default; no
    wrap-around ringing on photographs), ``'replicate'`` or ``'circular'``. The kernel is
    normalised to sum 1 and applied as a true convolution (flipped).

    >>> import torch
    >>> Blur(gaussian_kernel(1.0))(torch.rand(1, 1, 16, 16)).shape
    torch.Size([1, 1, 16, 16])
    """

    BOUNDARIES = ("reflect", "replicate", "circular")

    def __init__(self, kernel, boundary: str = "reflect"):
        super().__init__()
        k = _as_image_tensor(kernel, "blur kernel")
        if k.ndim != 2:
            raise InputError(f"blur kernel must be a 2-D array, got shape {tuple(k.shape)}")
        if (k < 0).any() or k.sum() <= 0:
            raise InputError("blur kernel must be non-negative with a positive sum")
        if boundary not in self.BOUNDARIES:
            raise ConfigError(f"unknown boundary {boundary!r}; choose one of {', '.join(self.BOUNDARIES)}")
        k = torch.flip(k / k.sum(), dims=(0, 1))
        self.register_buffer("kernel", k)
        kh, kw = k.shape
        self.pad = (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2)
        self.boundary = boundary

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if self.boundary == "reflect" and (max(self.pad[:2]) >= w or max(self.pad[2:]) >= h):
            raise InputError(f"blur kernel {tuple(self.kernel.shape)} is too large for a {h}×{w} image")
        c = x.shape[1]
        return F.conv2d(F.pad(x, self.pad, mode=self.boundary), _depthwise(self.kernel.to(x.dtype), c), groups=c)

    def adjoint(self, y: Tensor, in_shape=None) -> Tensor:
        c = y.shape[1]
        xp = F.conv_transpose2d(y, _depthwise(self.kernel.to(y.dtype), c), groups=c)
        return _pad_adjoint(xp, self.pad, self.boundary, in_shape or tuple(y.shape))
