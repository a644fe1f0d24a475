import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from deepprior.errors import ConfigError
from deepprior.metrics import psnr, ssim
from deepprior.presets import PRESETS
from deepprior.regularizers import TV, WaveletL1, build_regularizer
from deepprior.tasks import (add_noise, deblur_problem, denoise_problem, flash_problem, inpaint_problem, jpeg_compress,
                             jpeg_problem, random_mask, solve, superres_problem)


def test_psnr_matches_skimage():
    rng = np.random.default_rng(0)
    a, b = rng.random((16, 16, 3)), rng.random((16, 16, 3))
    assert abs(psnr(torch.tensor(a)[None].permute(0, 3, 1, 2), torch.tensor(b)[None].permute(0, 3, 1, 2))
               - peak_signal_noise_ratio(b, a, data_range=1)) < 1e-9
    assert abs(psnr(a, b) - peak_signal_noise_ratio(b, a, data_range=1)) < 1e-9
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) < 0.2


def test_wavelet_is_orthonormal():
    for name in ("haar", "db4"):
        w = WaveletL1(name, 3).double()
        w.bank = w.bank.double()
        x = torch.randn(1, 2, 32, 48, dtype=torch.float64)
        energy = sum(c.square().sum() for c in w.transform(x))
        assert float(energy / x.square().sum()) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ConfigError):
        WaveletL1("bior2.2")
    with pytest.raises(ConfigError):
        build_regularizer("nuclear")


def test_tv_values():
    x = torch.zeros(1, 1, 4, 4)
    x[..., 2:] = 1.0  # one vertical edge: |∂x| = 1 on 4 of 16 pixels
    assert TV("aniso")(x).item() == pytest.approx(4 / 16)
    assert TV("iso", eps=0)(x).item() == pytest.approx(4 / 16)
    assert TV()(torch.ones(1, 1, 5, 5)).item() < 1e-3


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_runs_one_step(name):
    """Each reference recipe builds its net and takes a finite step on a small problem of its task."""
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, 64, 64, generator=g)
    if name.startswith("sr"):
        f = 4 if name == "sr4" else 8
        p = superres_problem(torch.rand(1, 3, 64 // f, 64 // f, generator=g), f)
    elif name.startswith("inpaint") or name == "restoration":
        p = inpaint_problem(img, random_mask((64, 64), 0.5))
    elif name == "flash":
        p = flash_problem(img, torch.rand(1, 3, 64, 64, generator=g))
    elif name == "deblur":
        p = deblur_problem(img, sigma_blur=1.0)
    elif name == "jpeg":
        p = jpeg_problem(jpeg_compress(img, 20))
    else:
        p = denoise_problem(img)
    r = solve(p, preset=name, iters=1, device="cpu")
    assert r.image.shape == (64, 64, 3) and np.isfinite(r.fit.history["loss"][0])
    assert r.preset == name


def test_synthesis_is_seeded():
    x = torch.rand(1, 1, 8, 8)
    assert torch.equal(add_noise(x, 0.1, seed=1), add_noise(x, 0.1, seed=1))
    m = random_mask((100, 100), 0.3, seed=0)
    assert abs(1 - m.mean().item() - 0.3) < 0.03
