"""Centred, orthonormal 2-D FFTs over the last two axes (k-space centre in the middle)."""

from __future__ import annotations

import functools

import torch
from torch import Tensor


def fft2c(x: Tensor) -> Tensor:
    """Centred orthonormal 2-D DFT of the last two axes.

    >>> import torch
    >>> x = torch.randn(3, 8, 6, dtype=torch.complex64)
    >>> bool(torch.allclose(ifft2c(fft2c(x)), x, atol=1e-6))
    True
    """
    return _centred(torch.fft.fft2, x)


def ifft2c(k: Tensor) -> Tensor:
    """Inverse of :func:`fft2c` (also its adjoint: the transform is unitary)."""
    return _centred(torch.fft.ifft2, k)


def _centred(transform, x: Tensor) -> Tensor:
    """fftshift ∘ ``transform`` ∘ ifftshift over the last two axes, orthonormal."""
    chk = _checker(x)
    if chk is None:
        x = torch.fft.ifftshift(x, dim=(-2, -1))
        return torch.fft.fftshift(transform(x, norm="ortho"), dim=(-2, -1))
    c_in, c_out = chk
    return transform(x * c_in, norm="ortho").mul_(c_out)


@functools.lru_cache(maxsize=16)
def _checker_cached(h: int, w: int, device: str, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    n = torch.arange(h).view(h, 1) + torch.arange(w).view(1, w)
    c = (1 - 2 * (n % 2)).to(dtype=dtype, device=device)
    return c, (c if (h // 2 + w // 2) % 2 == 0 else -c)


def _checker(x: Tensor) -> tuple[Tensor, Tensor] | None:
    """For even sizes the centring shifts are a ±1 checkerboard on both sides of the FFT:
    fftshift(F(ifftshift(x))) = s·C ⊙ F(C ⊙ x) with C = (−1)^(n₁+n₂) and s = (−1)^(H/2+W/2) (the same for
    F⁻¹). Two elementwise products replace two rolls, which cost 3× the FFT itself on a CPU (measured on
    26×8×128² complex64: 83 ms with rolls, 22 ms for the bare FFT). Returns (C, s·C), or None (odd sizes)."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2 or x.device.type == "meta":
        return None
    real = torch.float64 if x.dtype in (torch.complex128, torch.float64) else torch.float32
    return _checker_cached(h, w, str(x.device), real)
