"""Centred, orthonormal 2-D FFTs over the last two axes (k-space centre in the middle)."""

from __future__ import annotations

import torch
from torch import Tensor


def fft2c(x: Tensor) -> Tensor:
    """Centred orthonormal 2-D DFT of the last two axes.

    >>> import torch
    >>> x = torch.randn(3, 8, 6, dtype=torch.complex64)
    >>> bool(torch.allclose(ifft2c(fft2c(x)), x, atol=1e-6))
    True
    """
    x = torch.fft.ifftshift(x, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))


def ifft2c(k: Tensor) -> Tensor:
    """Inverse of :func:`fft2c` (also its adjoint: the transform is unitary)."""
    k = torch.fft.ifftshift(k, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.ifft2(k, norm="ortho"), dim=(-2, -1))
