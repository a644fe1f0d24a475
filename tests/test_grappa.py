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


TINY = {"net": {"name": "conv_decoder", "channels": 8, "layers": 3, "need_sigmoid": False},
        "code": {"kind": "noise", "scale": 0.1}, "fit": {"iters": 5, "lr": 0.01, "ema": None}}


def test_dip_data_consistency_puts_every_measured_sample_back():
    from deepprior.mri.common import split_kspace
    from deepprior.mri.dip import dip_static

    d = simulate(_phantom(32), coils=1, pattern="random", accel=3, center=6, seed=0)
    x, info = dip_static(d, preset=TINY, device="cpu", stop="holdout", holdout=0.2)
    raw, _ = dip_static(d, preset=TINY, device="cpu", stop="holdout", holdout=0.2, dc=False)
    assert info["dc"] is True and torch.equal(info["network_image"], raw)
    tr_op, y_tr, va_op, y_va, _ = split_kspace(d, 0.2, seed=11)  # dip_static's split (seed + 11)
    # single coil: the delivered image reproduces every acquired sample, the held-out ones too (they only chose
    # the iterate); the network's own image does not
    for op, y in ((tr_op, y_tr), (va_op, y_va)):
        assert float((op(x) - y).abs().max()) < 1e-5 * float(y.abs().max())
        assert float((op(raw) - y).norm()) > 0.1 * float(y.norm())
    multi = simulate(_phantom(32), coils=4, pattern="random", accel=3, center=6, seed=0)
    on, off = (dip_static(multi, preset=TINY, device="cpu", dc=v)[0] for v in (True, False))
    res = lambda v: float((multi.operator(v) - multi.kspace).norm())  # noqa: E731
    assert res(on) < 0.5 * res(off)
    r = simulate(_phantom(32), coils=2, spokes=8, seed=0)
    with pytest.raises(ConfigError, match="radial"):
        dip_static(r, preset=TINY, device="cpu", dc=True)


def test_dip_tv_penalty_smooths_the_output():
    from deepprior.mri.dip import dip_static
    from deepprior.regularizers import TV

    d = simulate(_phantom(32), coils=2, pattern="random", accel=3, center=6, seed=0, snr_db=10)
    p = {**TINY, "fit": {"iters": 60, "lr": 0.01, "ema": None}}
    plain, _ = dip_static(d, preset=p, device="cpu", dc=False)
    smooth, info = dip_static(d, preset=p, device="cpu", dc=False, tv_weight=1.0)
    assert info["history"]["reg"][-1] > 0
    assert float(TV()(smooth[None])) < 0.8 * float(TV()(plain[None]))
    with pytest.raises(ConfigError, match="tv_weight"):
        dip_static(d, preset=p, device="cpu", tv_weight=-1)


@pytest.mark.parametrize("method", ["dip", "tddip", "gip"])
def test_network_methods_deliver_zero_where_the_maps_see_nothing(method):
    """ESPIRiT crops its maps to the object; there the SENSE operator has a null space that a generator would
    paint freely (TDDIP scored 26 dB instead of 36 dB on OCMR with estimated maps before this rule)."""
    from conftest import cine_phantom
    from deepprior.presets import GIP_PRESETS, TDDIP_PRESETS

    d = simulate(cine_phantom(frames=3, n=16), coils=2, pattern="kt-random", accel=2, center=6, seed=0)
    d.maps[:, :, :3] = 0  # a band the coils do not see
    opts = {"dip": dict(preset=TINY, iters=5),
            "tddip": dict(preset={**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 8},
                                  "mapnet": {"hidden": [16]}}, iters=6, stop="none"),
            "gip": dict(preset={**GIP_PRESETS["gip-cpu"], "ch": 4, "k": 2}, iters=40, stop="none")}[method]
    x = reconstruct(d, method, device="cpu", **opts).image
    assert bool((x[..., :3] == 0).all()) and float(x[..., 3:].abs().mean()) > 0
