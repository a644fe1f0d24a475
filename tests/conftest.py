from __future__ import annotations

from pathlib import Path

import math

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


def smooth_image(h: int = 32, w: int = 32, c: int = 1, seed: int = 0) -> np.ndarray:
    """A seeded piecewise-smooth test image in [0.1, 0.9]: blobs + an edge, (H, W, C)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.zeros((h, w, c))
    for ch in range(c):
        a = 0.5 + 0.25 * np.sin(2 * np.pi * (xx * rng.uniform(0.5, 1.5) + yy * rng.uniform(0.5, 1.5)))
        a += 0.2 * (xx + 0.3 * yy > 0.6)
        img[..., ch] = a
    return np.clip(img, 0.1, 0.9).astype(np.float32)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED


def cine_phantom(frames=4, n=32, seed=0):
    """A beating disc on a smooth background: a tiny cine with real temporal redundancy."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    bg = 0.3 + 0.1 * torch.sin(3 * xx + torch.rand(1, generator=g) * 3) * torch.cos(2 * yy)
    out = []
    for t in range(frames):
        r = 0.3 + 0.1 * math.sin(2 * math.pi * t / frames)
        out.append(bg + 0.6 * ((xx**2 + yy**2) < r**2).float() * (0.5 + 0.5 * (yy < 0.3).float()))
    return torch.stack(out)
