from __future__ import annotations

from pathlib import Path

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
