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
    replace = {**TINY, "dc_weight": "replace"}  # ConvDecoder's step
    x, info = dip_static(d, preset=replace, device="cpu", stop="holdout", holdout=0.2)
    raw, _ = dip_static(d, preset=replace, device="cpu", stop="holdout", holdout=0.2, dc=False)
    assert info["dc"] == "replace" and torch.equal(info["network_image"], raw)
    tr_op, y_tr, va_op, y_va, _ = split_kspace(d, 0.2, seed=11)  # dip_static's split (seed + 11)
    # single coil: the delivered image reproduces every acquired sample, the held-out ones too (they only chose
    # the iterate); the network's own image does not
    for op, y in ((tr_op, y_tr), (va_op, y_va)):
        assert float((op(x) - y).abs().max()) < 1e-5 * float(y.abs().max())
        assert float((op(raw) - y).norm()) > 0.1 * float(y.norm())
    multi = simulate(_phantom(32), coils=4, pattern="random", accel=3, center=6, seed=0)
    on, off = (dip_static(multi, preset=replace, device="cpu", dc=v)[0] for v in (True, False))
    res = lambda v: float((multi.operator(v) - multi.kspace).norm())  # noqa: E731
    assert res(on) < 0.5 * res(off)
    r = simulate(_phantom(32), coils=2, spokes=8, seed=0)
    with pytest.raises(ConfigError, match="radial"):
        dip_static(r, preset=replace, device="cpu", dc=True)
    assert dip_static(r, preset=replace, device="cpu")[1]["dc"] is None  # the default step skips radial data
    with pytest.raises(ConfigError, match="dc_weight"):
        dip_static(d, preset={**TINY, "dc_weight": -1}, device="cpu")


@pytest.mark.parametrize("radial", [False, True])
def test_dip_auto_dc_weight_is_chosen_on_samples_the_fit_never_saw(radial):
    """The default step: the fit trains without the held-out samples even with stop='none'; the candidate with the
    least estimated error is applied (Cartesian: against a fully sampled acquisition, ConvDecoder's replacement
    among the candidates; radial: on the held-out samples), and the image fits the acquired samples better."""
    from deepprior.mri.common import data_consistency, weighted
    from deepprior.mri.dip import dip_static

    d = (simulate(_phantom(32), coils=2, spokes=12, seed=0) if radial else
         simulate(_phantom(32), coils=4, pattern="random", accel=3, center=6, seed=0))
    p = {**TINY, "fit": {"iters": 30, "lr": 0.01, "ema": None}}
    x, info = dip_static(d, preset=p, device="cpu")  # stop="none": runs every iteration
    assert info["iters"] == 30 and info["selected"] is None
    (scores,) = info["dc_scores"]  # one frame: one choice
    assert float("inf") in scores and ("replace" in scores) != radial and len(scores) >= 4
    best = min(scores, key=scores.get)
    assert info["dc"] == [None if best == float("inf") else best] and info["dc"] != [None]
    net = info["network_image"]
    op, y = weighted(d)
    res = lambda v: float((op(v) - y).norm())  # noqa: E731
    assert res(x) < 0.9 * res(net)
    if best == "replace":
        torch.testing.assert_close(x, data_consistency(net, d.operator, d.kspace, d.maps))
    # the held-out samples were left out of the fit: without dc (no held-out samples needed) the same seeded fit
    # sees every sample and ends elsewhere
    full, _ = dip_static(d, preset=p, device="cpu", dc=False)
    assert not torch.equal(full, net)


def test_acquisition_estimate_tracks_the_error_against_a_fully_sampled_reference():
    """The Cartesian estimate (acquired residual + held-out error scaled to the unacquired positions) picks a step
    whose image is nearer the noisy fully sampled k-space than a blurred network image, and the scan of the grid
    ends two weights after its best."""
    from deepprior.mri.common import split_kspace
    from deepprior.mri.dcweight import choose_dc_for_acquisition

    d = simulate(_phantom(32)[None], coils=4, pattern="random", accel=3, center=6, seed=0, snr_db=20)
    full = simulate(_phantom(32)[None], coils=4, pattern="random", accel=1, center=32, seed=0, snr_db=20)
    split = split_kspace(d, 0.2, seed=1)[:4]
    unseen = float((1 - d.mask).sum() / split[2].mask.sum())
    blurred = torch.nn.functional.avg_pool2d(d.gt.real[None], 3, 1, 1)[0].to(torch.complex64)
    c, est, img = choose_dc_for_acquisition(blurred, split, d.operator, d.kspace, unseen)
    assert c is not None and est[c] == min(est.values())
    # the scan went from μ = 1 down and stopped two weights after its best, or ran out of grid
    mus = [m for m in est if m != float("inf")]
    assert mus == sorted(mus, reverse=True) and (mus[-1] == 1e-4 or mus.index(c) == len(mus) - 3)
    # the chosen image is nearer the noisy fully sampled acquisition (on this sampling pattern's unacquired
    # and acquired samples alike) than the network image
    err = lambda v: float((full.operator(v) - full.kspace).norm())  # noqa: E731
    assert err(img) < err(blurred)


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
