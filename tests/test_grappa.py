import pytest
import torch

from deepprior.errors import ConfigError, InputError
from deepprior.mri import reconstruct, simulate
from deepprior.mri.grappa import grappa


def _phantom(n=48):
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    img = ((xx / 0.8) ** 2 + (yy / 0.6) ** 2 < 1).float() * (1 + 0.5 * xx)
    img[18:24, 10:30] = 0.3
    return img


def test_grappa_fills_kspace_and_keeps_the_acquired_samples():
    d = simulate(_phantom(64), coils=8, pattern="equispaced", accel=3, center=16, seed=0, snr_db=None)
    k, m = d.kspace[0], d.mask[0] > 0
    out = grappa(k, m, lam=1e-4)
    assert torch.equal(out[:, m], k[:, m])  # acquired samples untouched
    assert bool((out[:, ~m].abs() > 0).all())  # every missing point filled
    full = simulate(_phantom(64), coils=8, pattern="equispaced", accel=1, center=16, seed=0, snr_db=None).kspace[0]
    err = float((out - full)[:, ~m].norm() / full[:, ~m].norm())
    assert err < 0.05, err  # without noise, 8 coils predict the missing lines to a few per cent


def test_grappa_beats_zero_filling_and_reproduces_full_sampling():
    d = simulate(_phantom(64), coils=8, pattern="equispaced", accel=3, center=16, seed=0, snr_db=30)
    zf, gr = (reconstruct(d, m, device="cpu").metrics["psnr"] for m in ("zerofill", "grappa"))
    assert gr > zf + 6, (gr, zf)
    full = simulate(_phantom(), coils=8, pattern="vd", accel=1, center=16, seed=0, snr_db=None)
    x = reconstruct(full, "grappa", device="cpu").image
    assert torch.allclose(x, reconstruct(full, "zerofill", device="cpu").image, atol=1e-5)


def test_grappa_refuses_what_it_cannot_do():
    d = simulate(_phantom(), coils=4, pattern="equispaced", accel=3, center=4, seed=0)
    with pytest.raises(InputError, match="calibration region"):
        reconstruct(d, "grappa", device="cpu")
    r = simulate(_phantom(32), coils=2, spokes=8, seed=0)
    with pytest.raises(ConfigError, match="Cartesian"):
        reconstruct(r, "grappa", device="cpu")
