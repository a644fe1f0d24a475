"""Seeded degradations: make a measurement from a clean image (noise, missing pixels, downscaling, JPEG)."""

from __future__ import annotations

import io

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from .convert import to_numpy, to_tensor


def add_noise(img: Tensor, sigma: float, seed: int = 0) -> Tensor:
    """Additive white Gaussian noise of std ``sigma`` (on the [0, 1] scale), seeded; not clipped."""
    if sigma < 0:
        raise InputError(f"noise sigma must be ≥ 0, got {sigma}")
    g = torch.Generator().manual_seed(seed)
    return img + sigma * torch.randn(img.shape, generator=g)


def random_mask(hw: tuple[int, int], drop: float, seed: int = 0) -> Tensor:
    """Bernoulli pixel mask (1 = kept) that drops a fraction ``drop`` of the pixels, seeded."""
    if not 0 <= drop < 1:
        raise InputError(f"mask ratio must be in [0, 1) (fraction of pixels removed), got {drop}")
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(hw, generator=g) >= drop).float()


def downscale(img: Tensor, factor: int) -> Tensor:
    """Lanczos (PIL ``LANCZOS``, as the reference) downscaling by an integer factor, per channel in float."""
    from PIL import Image

    _, c, h, w = img.shape
    if h % factor or w % factor:
        raise InputError(f"image size {h}×{w} is not divisible by {factor}; crop it to a multiple of the factor")
    if h // factor < 1 or w // factor < 1:
        raise InputError(f"image {h}×{w} is too small to downscale by {factor}")
    chans = [np.asarray(Image.fromarray(img[0, i].numpy(), mode="F").resize((w // factor, h // factor), Image.LANCZOS))
             for i in range(c)]
    return torch.from_numpy(np.stack(chans))[None].clamp(0, 1)


def jpeg_compress(img: Tensor, quality: int) -> Tensor:
    """Encode and decode with Pillow at ``quality`` (1–95)."""
    from PIL import Image

    if not 1 <= quality <= 100:
        raise InputError(f"JPEG quality must be in 1..100, got {quality}")
    a = np.round(to_numpy(img) * 255).astype(np.uint8)
    pil = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=quality)
    dec = np.asarray(Image.open(buf)).astype(np.float32) / 255
    return to_tensor(dec)
