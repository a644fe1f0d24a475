"""The MRI Python API: every method through reconstruct() returns one MRIResult; options are checked as on the
command line; the Python defaults are the CLI's; radial L+S and k-t TV improve on the zero-filled image."""

from __future__ import annotations

import inspect

import pytest
import torch
from conftest import cine_phantom

import deepprior.mri as mri
from deepprior.errors import ConfigError
from deepprior.presets import DEFAULTS, get_preset

TINY = {
    "dip": {"preset": {"net": {"name": "conv_decoder", "channels": 8, "layers": 3, "need_sigmoid": False},
                       "code": {"kind": "noise", "scale": 0.1}, "fit": {"iters": 40, "lr": 0.01, "ema": None}}},
    "tddip": {"preset": {**get_preset("tddip-cpu", "tddip"), "net": {"name": "tddip", "channels": 8},
                         "mapnet": {"hidden": [16]}}, "stop": "none"},
    "gip": {"preset": {**get_preset("gip-cpu", "gip"), "ch": 4, "k": 2}, "stop": "none"},
}
ITERS = {"tddip": 16, "gip": 40}


@pytest.fixture(scope="module")
def cine():
    return mri.simulate(cine_phantom(frames=4, n=24), coils=4, pattern="kt-random", accel=3, center=4, seed=0)


MOCO = ("cg-moco", "dip-moco")


@pytest.mark.parametrize("method", MOCO)
def test_motion_methods_return_an_mri_result_with_the_motion(method):
    from deepprior.mri.motion import simulate_motion

    d = simulate_motion(cine_phantom(frames=1, n=24)[0], coils=2, shots=4, max_shift=1, max_rot=1, seed=0)
    kw = {"preset": {**get_preset(group="moco"), **TINY["dip"]["preset"]}, "stop": "none"} if method == "dip-moco" else {}
    r = mri.reconstruct(d, method, device="cpu", iters=20 if method == "dip-moco" else None, **kw)
    assert isinstance(r, mri.MRIResult) and r.image.shape == (1, 24, 24) and r.summary().startswith("PSNR ")
    assert r.info["motion"].shape == (4, 3) and set(r.info["motion_rmse"]) == {"shift_px", "rot_deg"}


@pytest.mark.parametrize("method", [m for m in mri.METHODS if m not in MOCO])
def test_every_method_returns_an_mri_result(cine, method):
    r = mri.reconstruct(cine, method, device="cpu", iters=ITERS.get(method), **TINY.get(method, {}))
    assert isinstance(r, mri.MRIResult) and r.method == method
    assert r.image.shape == (4, 24, 24) and r.image.is_complex() and torch.isfinite(r.image.abs()).all()
    assert set(r.metrics) >= {"psnr", "ssim", "nrmse", "ser", "per_frame"}
    assert len(r.metrics["per_frame"]["psnr"]) == 4 and r.seconds > 0
    assert r.summary().startswith("PSNR ") and "NRMSE" in r.summary()
    if method in ("dip", "tddip", "tv"):
        assert r.iters and len(r.history["loss"]) == (r.info["sweeps"] if method == "tddip" else r.iters)
    if method in ("cgsense", "tv", "lps"):  # the classical solvers must beat the zero-filled image
        zf = mri.reconstruct(cine, "zerofill", device="cpu").metrics["psnr"]
        assert r.metrics["psnr"] > zf + 1, (method, r.metrics["psnr"], zf)


@pytest.mark.parametrize("method,gain", [("lps", 1.0), ("tv", 2.0)])
def test_radial_lps_and_kt_tv_beat_zero_filled(method, gain):
    d = mri.simulate(cine_phantom(frames=6, n=32), coils=4, spokes=12, seed=0)
    zf = mri.reconstruct(d, "zerofill", device="cpu").metrics["psnr"]
    r = mri.reconstruct(d, method, device="cpu")
    assert r.metrics["psnr"] > zf + gain, (method, r.metrics["psnr"], zf)


def test_reconstruct_rejects_what_does_not_apply(cine):
    with pytest.raises(ConfigError, match="batch applies to tddip"):
        mri.reconstruct(cine, "lps", batch=2, device="cpu")
    with pytest.raises(ConfigError, match="direct method"):
        mri.reconstruct(cine, "zerofill", iters=5, device="cpu")
    with pytest.raises(ConfigError, match="unknown MRI method"):
        mri.reconstruct(cine, "sense", device="cpu")
    with pytest.raises(ConfigError, match="unknown tddip preset 'gip'.*a gip preset"):
        mri.reconstruct(cine, "tddip", preset="gip", device="cpu")


def test_python_defaults_are_the_command_lines():
    from deepprior.cli.mri import mri_recon

    assert inspect.signature(mri.tddip).parameters["preset"].default is None
    assert inspect.signature(mri.gip).parameters["preset"].default is None
    assert DEFAULTS == {"mri-dip": "convdecoder", "tddip": "tddip-cpu", "gip": "gip-cpu", "mapping": "map-skip",
                        "moco": "moco-convdecoder"}
    help_text = next(p.help for p in mri_recon.params if p.name == "preset")
    assert all(f"{DEFAULTS[g]} (default)" in help_text for g in ("mri-dip", "tddip", "gip"))
    from deepprior.cli.mapping import map_cmd

    assert f"{DEFAULTS['mapping']} (default)" in next(p.help for p in map_cmd.params if p.name == "preset")
    for f in (mri.reconstruct, mri.tddip, mri.gip):
        assert inspect.signature(f).parameters["device"].default == "auto"


def test_help_shows_the_whole_api():
    doc = mri.__doc__
    for name in ("simulate", "load", "reconstruct", "MRIResult", "tddip", "gip", "CartesianSENSE", "mri_metrics"):
        assert name in mri.__all__ and name in doc, name


def test_static_dip_holdout_selects_an_iterate_and_zeroes_outside_the_maps(cine):
    d = mri.MRIData(cine.kspace[:1], cine.mask[:1], cine.maps.clone(), cine.gt[:1], {})
    d.maps[:, :3] = 0  # a band where the coil maps (and so the data) say nothing
    r = mri.reconstruct(d, "dip", device="cpu", iters=60, stop="holdout", patience=1000, **TINY["dip"])
    assert r.selected_iter is not None and 0 <= r.selected_iter < 60 and r.iters == 60
    assert float(r.image[0, :3].abs().max()) == 0.0 and float(r.image[0, 3:].abs().max()) > 0


@pytest.mark.parametrize("method", ["tddip", "gip", "dip"])
def test_network_methods_refuse_a_fit_that_cannot_fit_in_memory(cine, method, monkeypatch):
    import deepprior.resources as res
    from deepprior.errors import ResourceError

    seen = []
    real = res.check_memory

    def spy(need, device, **kw):
        seen.append(need)
        return real(need, device, **kw)

    monkeypatch.setattr(res, "check_memory", spy)
    monkeypatch.setattr(res, "available_bytes", lambda device: 64 * 2**20)  # 64 MiB free
    with pytest.raises(ResourceError, match="needs about .* GiB but 0.1 GiB are free"):
        mri.reconstruct(cine, method, iters=2, device="cpu", **TINY[method])
    monkeypatch.setattr(res, "available_bytes", lambda device: 64 * 2**30)
    mri.reconstruct(cine, method, iters=2, device="cpu", **TINY[method])
    assert seen[0] > res.RUNTIME_OVERHEAD  # the network and the data are counted on top of the fixed part


def test_static_dip_resumes_to_the_same_image(cine, tmp_path):
    from deepprior.fit import Callback

    class Crash(Callback):
        def on_step_end(self, state):
            if state.it == 12:
                raise RuntimeError("killed")

    ref = mri.reconstruct(cine, "dip", device="cpu", **TINY["dip"]).image
    ck = tmp_path / "dip.ckpt"
    with pytest.raises(RuntimeError, match="killed"):
        mri.reconstruct(cine, "dip", device="cpu", checkpoint=ck, checkpoint_every=5, callbacks=[Crash()], **TINY["dip"])
    x = mri.reconstruct(cine, "dip", device="cpu", checkpoint=ck, checkpoint_every=5, resume=ck, **TINY["dip"]).image
    assert torch.equal(x, ref)
