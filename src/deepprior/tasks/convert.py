"""Images in and out of the solver: arrays (uint8/uint16/float) ↔ float tensors ``(1, C, H, W)``."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError


def to_tensor(img, name: str = "image") -> Tensor:
    """(H, W) / (H, W, C) array (uint8, uint16, bool or float in [0, 1]) → float32 (1, C, H, W)."""
    if isinstance(img, Tensor):
        a = img.detach().cpu().float().numpy()
    else:
        a = np.asarray(img)
        if a.dtype == np.uint8:
            a = a / 255.0
        elif a.dtype == np.uint16:
            a = a / 65535.0
        elif not (np.issubdtype(a.dtype, np.floating) or a.dtype == np.bool_):
            raise InputError(f"{name} has unsupported dtype {a.dtype}; use uint8, uint16 or floats in [0, 1]")
        a = a.astype(np.float32)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3):
        raise InputError(f"{name} has shape {a.shape}; expected (H, W) or (H, W, C) with C = 1 or 3")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"{name} is empty ({a.shape[0]}×{a.shape[1]})")
    if not np.isfinite(a).all():
        raise InputError(f"{name} contains NaN or Inf values")
    if a.min() < -1e-6 or a.max() > 1 + 1e-6:
        raise InputError(f"{name} has values outside [0, 1] ({a.min():.3g}..{a.max():.3g}); scale it to [0, 1]")
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 0)))[None]


def to_numpy(x: Tensor) -> np.ndarray:
    """(1, C, H, W) tensor → (H, W, C) float array clipped to [0, 1]."""
    return np.moveaxis(x.detach().clamp(0, 1).cpu().numpy()[0], 0, -1)


def check_gt(gt: Tensor | None, hw, channels) -> Tensor | None:
    if gt is None:
        return None
    if tuple(gt.shape[-2:]) != tuple(hw):
        raise InputError(f"ground truth is {gt.shape[-2]}×{gt.shape[-1]} but the result will be {hw[0]}×{hw[1]}")
    if gt.shape[1] != channels:
        raise InputError(f"ground truth has {gt.shape[1]} channel(s), the image {channels}; convert one of them")
    return gt
