"""Input codes z for the generators."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError

CODES = ("noise", "gaussian", "meshgrid")


def make_code(kind: str, channels: int, size: tuple[int, int], *, scale: float = 0.1,
              generator: torch.Generator | None = None, device="cpu") -> Tensor:
    """A fixed network input of shape ``(1, channels, H, W)``.

    ``'noise'``: uniform on [0, scale) — the reference DIP default (scale 1/10);
    ``'gaussian'``: N(0, scale²); ``'meshgrid'``: the 2 channels x and y in [0, 1] (used for
    large-hole inpainting, where noise gives no structure to fill from).

    >>> g = torch.Generator().manual_seed(0)
    >>> make_code("meshgrid", 2, (3, 5)).shape
    torch.Size([1, 2, 3, 5])
    >>> float(make_code("noise", 4, (8, 8), generator=g).max()) < 0.1
    True
    """
    h, w = size
    if kind == "noise":
        return torch.rand((1, channels, h, w), generator=generator).to(device) * scale
    if kind == "gaussian":
        return torch.randn((1, channels, h, w), generator=generator).to(device) * scale
    if kind == "meshgrid":
        if channels != 2:
            raise ConfigError("a meshgrid code has exactly 2 channels; set the code channels to 2")
        ys = torch.linspace(0, 1, h) if h > 1 else torch.zeros(1)
        xs = torch.linspace(0, 1, w) if w > 1 else torch.zeros(1)
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([xx, yy])[None].to(device)
    raise ConfigError(f"unknown input code {kind!r}; choose one of {', '.join(CODES)}")
