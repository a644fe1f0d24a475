"""Coil sensitivity maps: simulation (birdcage-style) and estimation from calibration data."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import InputError
from .fft import fft2c, ifft2c


def birdcage_maps(coils: int, h: int, w: int, *, radius: float = 1.5, dtype=torch.complex64) -> Tensor:
    """Smooth simulated sensitivities ``(C, H, W)`` of ``coils`` loops on a circle around the FOV.

    Each coil's magnitude falls off with distance from its position (radius ``radius`` in units of
    the half-FOV) and its phase follows the azimuth, as for a birdcage/loop array. Normalised so
    that ``Σ_c |S_c|² = 1`` everywhere.

    >>> s = birdcage_maps(8, 32, 32)
    >>> bool(torch.allclose((s.abs() ** 2).sum(0), torch.ones(32, 32), atol=1e-5))
    True
    """
    if coils < 1 or h < 1 or w < 1:
        raise InputError("coil simulation needs ≥ 1 coil and a non-empty image")
    y = torch.linspace(-1, 1, h, dtype=torch.float64)[:, None]
    x = torch.linspace(-1, 1, w, dtype=torch.float64)[None, :]
    maps = []
    for c in range(coils):
        phi = 2 * math.pi * c / coils
        cy, cx = radius * math.sin(phi), radius * math.cos(phi)
        d = torch.sqrt((y - cy) ** 2 + (x - cx) ** 2)
        mag = 1.0 / (d**2 + 0.1)  # smooth, like a loop's near field
        phase = torch.atan2(y - cy, x - cx) + phi
        maps.append(mag * torch.exp(1j * phase))
    s = torch.stack(maps)
    return normalize_maps(s).to(dtype)


def normalize_maps(maps: Tensor, support: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """Scale maps so that ``Σ_c |S_c|² = 1`` where there is signal (``support``), 0 elsewhere."""
    rss = torch.sqrt((maps.abs() ** 2).sum(0, keepdim=True))
    out = maps / (rss + eps)
    if support is not None:
        out = out * support.to(out.real.dtype)
    return out


def estimate_maps(kspace: Tensor, center: int = 24, *, threshold: float = 0.05, smooth: float = 0.0) -> Tensor:
    """Estimate coil maps from the fully sampled k-space centre (low-resolution coil images / RSS).

    ``kspace``: ``(C, H, W)`` or ``(T, C, H, W)`` (frames are averaged, as their centre is shared).
    The ``center×center`` calibration region is windowed (Hann, to avoid ringing), transformed,
    and each coil image divided by the root-sum-of-squares; pixels whose RSS is below
    ``threshold × max`` are set to 0 (outside the object). Normalised so Σ|S|² = 1 in the support.
    """
    k = torch.as_tensor(kspace)
    if k.ndim == 4:
        k = k.mean(0)
    if k.ndim != 3:
        raise InputError(f"k-space for coil estimation must be (C, H, W) or (T, C, H, W), got {tuple(k.shape)}")
    c, h, w = k.shape
    ch, cw = min(center, h), min(center, w)
    win = torch.zeros(h, w, dtype=torch.float64)
    wh = torch.hann_window(ch + 2, periodic=False, dtype=torch.float64)[1:-1]
    ww = torch.hann_window(cw + 2, periodic=False, dtype=torch.float64)[1:-1]
    h0, w0 = (h - ch) // 2, (w - cw) // 2
    win[h0:h0 + ch, w0:w0 + cw] = torch.outer(wh, ww)
    low = ifft2c(k * win.to(k.dtype if k.is_complex() else torch.complex64))
    rss = torch.sqrt((low.abs() ** 2).sum(0))
    support = rss > threshold * rss.max()
    return normalize_maps(low, support).to(torch.complex64)


def rss(coil_images: Tensor, dim: int = -3) -> Tensor:
    """Root-sum-of-squares coil combination."""
    return torch.sqrt((coil_images.abs() ** 2).sum(dim))


__all__ = ["birdcage_maps", "normalize_maps", "estimate_maps", "rss", "fft2c"]
