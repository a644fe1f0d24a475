"""MRI forward models: Cartesian single/multi-coil SENSE and complex↔channel adapters.

Shapes: images ``(..., H, W)`` complex (``...`` = frames T, or nothing for a static slice); coil
maps ``(C, H, W)``; Cartesian k-space ``(..., C, H, W)`` on the full grid, zero where not sampled;
masks ``(..., H, W)`` (or broadcastable, e.g. ``(T, 1, W)`` for line sampling). One broadcasted
expression serves all frames and coils — no Python loop in the hot path.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import InputError
from ..operators.base import LinearOperator
from .fft import fft2c, ifft2c


class CartesianSENSE(LinearOperator):
    """``y = M ⊙ F (S ⊙ x)``: coil sensitivities S, centred orthonormal FFT F, sampling mask M.

    ``maps=None`` is single-coil (S = 1, C = 1). The adjoint is ``Σ_c conj(S_c) ⊙ Fᴴ (M ⊙ y_c)``.

    >>> import torch
    >>> mask = torch.ones(2, 8, 8)
    >>> A = CartesianSENSE(mask)
    >>> A(torch.randn(2, 8, 8, dtype=torch.complex64)).shape
    torch.Size([2, 1, 8, 8])
    """

    def __init__(self, mask: Tensor, maps: Tensor | None = None):
        super().__init__()
        mask = torch.as_tensor(mask)
        if mask.is_complex() or not torch.isfinite(mask.float()).all():
            raise InputError("the sampling mask must be real and finite (0 = not sampled, 1 = sampled)")
        if maps is not None:
            maps = torch.as_tensor(maps)
            if maps.ndim != 3:
                raise InputError(f"coil maps must be (coils, H, W), got shape {tuple(maps.shape)}")
            if tuple(maps.shape[-2:]) != tuple(mask.shape[-2:]) and mask.shape[-2] != 1:
                raise InputError(f"coil maps are {tuple(maps.shape[-2:])} but the mask is {tuple(mask.shape[-2:])}")
            if not torch.isfinite(torch.view_as_real(maps.to(torch.complex64))).all():
                raise InputError("coil maps contain NaN or Inf")
            maps = maps.to(torch.complex64)
        self.register_buffer("mask", mask.float())
        self.register_buffer("maps", maps)

    @property
    def coils(self) -> int:
        return 1 if self.maps is None else self.maps.shape[0]

    def select(self, index: Tensor) -> "CartesianSENSE":
        """The operator of the frames ``index`` (for mini-batches of frames)."""
        if self.mask.ndim < 3:
            return self
        sub = CartesianSENSE.__new__(CartesianSENSE)
        LinearOperator.__init__(sub)
        sub.register_buffer("mask", self.mask[index.to(self.mask.device)])
        sub.register_buffer("maps", self.maps)
        return sub

    def _m(self) -> Tensor:
        return self.mask.unsqueeze(-3)  # broadcast over the coil axis

    def forward(self, x: Tensor) -> Tensor:
        xc = x.unsqueeze(-3)
        if self.maps is not None:
            xc = xc * self.maps
        return fft2c(xc) * self._m()

    def adjoint(self, y: Tensor, in_shape=None) -> Tensor:
        img = ifft2c(y * self._m())
        if self.maps is None:
            return img.squeeze(-3)
        return (img * self.maps.conj()).sum(-3)

    def output_shape(self, in_shape):
        return (*in_shape[:-2], self.coils, *in_shape[-2:])

    def input_shape(self, out_shape):
        return (*out_shape[:-3], *out_shape[-2:])


class ChannelsToComplex(LinearOperator):
    """Real ``(B, 2k, H, W)`` network output → complex ``(B·k, H, W)`` frames (channel pairs = real, imag).

    Linear over the reals; its adjoint splits real and imaginary parts back into channels.
    ``frames=None`` drops a single frame, so a static slice becomes ``(H, W)``; give ``frames`` to keep
    the frame axis (``(1, H, W)`` for one frame).
    """

    def __init__(self, frames: int | None = None):
        super().__init__()
        self.frames = frames

    def select(self, index: Tensor) -> "ChannelsToComplex":
        return self  # acts per item: frames are the batch axis

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        if c % 2:
            raise InputError(f"a complex image needs an even number of channels (real, imag), got {c}")
        z = torch.complex(x[:, 0::2], x[:, 1::2])  # (B, T, H, W)
        z = z.reshape(b * (c // 2), h, w)
        return z[0] if self.frames is None and z.shape[0] == 1 else z

    def adjoint(self, z: Tensor, in_shape=None) -> Tensor:
        if z.ndim == 2:
            z = z[None]
        n, h, w = z.shape
        b, c = (in_shape[0], in_shape[1]) if in_shape is not None else (1, 2 * n)
        return torch.stack([z.real, z.imag], dim=1).reshape(b, c, h, w)

    def output_shape(self, in_shape):
        b, c, h, w = in_shape
        n = b * (c // 2)
        return (h, w) if self.frames is None and n == 1 else (n, h, w)
