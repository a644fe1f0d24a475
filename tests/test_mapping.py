"""Parameter mapping: signal models against closed forms and finite differences, the per-contrast operator's
adjoint, fits that recover known maps, the Rician floor, the CLI round trip and its bad inputs."""

import math
import re

import nibabel as nib
import numpy as np
import pytest
import torch

from deepprior.cli import main
from deepprior.errors import InputError
from deepprior.mri.mapping.data import load_map_data, map_metrics, save_map_data, simulate_map
from deepprior.mri.mapping.images import map_images
from deepprior.mri.mapping.models import InversionRecovery, Param, T2Decay, VariableFlipAngle
from deepprior.mri.mapping.phantom import brain_phantom
from deepprior.mri.mapping.pixelfit import loglinear_fit, nlls_fit, rician_mean
from deepprior.mri.mapping.recon import reconstruct_map

G = torch.Generator().manual_seed(0)


def _maps(h=3, w=4):
    return {"T2": 20 + 100 * torch.rand(h, w, generator=G, dtype=torch.float64),
            "T1": 300 + 2000 * torch.rand(h, w, generator=G, dtype=torch.float64),
            "eff": 0.8 + 0.2 * torch.rand(h, w, generator=G, dtype=torch.float64)}


def test_models_match_their_closed_forms():
    m = _maps()
    m0 = torch.complex(torch.rand(3, 4, generator=G), torch.rand(3, 4, generator=G)).to(torch.complex128)
    te, ti, fa, tr = [8.0, 16.0, 40.0], [50.0, 400.0, 2500.0], [3.0, 10.0, 25.0], 12.0
    b1 = (0.8 + 0.4 * torch.rand(3, 4, generator=G)).double()
    got = {"t2": T2Decay(te)(m0, m), "ir": InversionRecovery(ti)(m0, m), "vfa": VariableFlipAngle(fa, tr, b1)(m0, m)}
    a0, t2, t1, eff = m0.numpy(), m["T2"].numpy(), m["T1"].numpy(), m["eff"].numpy()
    want = {"t2": np.stack([a0 * np.exp(-t / t2) for t in te]),
            "ir": np.stack([a0 * (1 - 2 * eff * np.exp(-t / t1)) for t in ti]),
            "vfa": np.stack([a0 * np.sin(np.radians(a) * b1.numpy()) * (1 - np.exp(-tr / t1))
                             / (1 - np.cos(np.radians(a) * b1.numpy()) * np.exp(-tr / t1)) for a in fa])}
    for k in want:
        np.testing.assert_allclose(got[k].numpy(), want[k], rtol=1e-5, err_msg=k)
    mag = InversionRecovery(ti, magnitude=True)(m0, m)
    np.testing.assert_allclose(mag.numpy(), np.abs(want["ir"]), rtol=1e-5)


@pytest.mark.parametrize("model", [T2Decay([10.0, 25.0, 60.0]), InversionRecovery([80.0, 700.0, 2000.0]),
                                   VariableFlipAngle([4.0, 12.0], 10.0)])
def test_model_gradients_match_finite_differences(model):
    model = model.double()
    raw = (0.5 * torch.randn(len(model.params), 2, 3, generator=G, dtype=torch.float64)).requires_grad_()
    m0 = torch.randn(2, 2, 3, generator=G, dtype=torch.float64).requires_grad_()

    def f(raw, m0):
        return torch.view_as_real(model(torch.complex(m0[0], m0[1]), model.bounded(raw)))

    assert torch.autograd.gradcheck(f, (raw, m0), eps=1e-6, atol=1e-6)


def test_bounds_are_smooth_strict_and_invertible():
    p = Param("T2", "ms", 1.0, 3000.0)
    u = torch.linspace(-12, 12, 101)  # float32 sigmoid saturates to 0/1 beyond ~±16
    v = p.bounded(u)
    assert (v > 1.0).all() and (v < 3000.0).all() and (v.diff() >= 0).all()
    vals = torch.tensor([2.0, 50.0, 2500.0])
    torch.testing.assert_close(p.bounded(p.raw(vals)), vals, rtol=1e-4, atol=0)


@pytest.mark.parametrize("radial", [False, True])
def test_per_contrast_sense_adjoint(radial):
    md = simulate_map(T2Decay([10, 20, 30]), brain_phantom(32), coils=3, accel=3, center=4, seed=1,
                      spokes=8 if radial else None)
    op = md.data.operator
    x = torch.randn(3, 32, 32, generator=G, dtype=torch.complex64)
    y = torch.randn(op(x).shape, generator=G, dtype=torch.complex64)
    if not radial:
        y = y * md.data.mask[:, None]
    lhs = torch.vdot(op(x).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), op.adjoint(y).flatten())
    assert abs(lhs - rhs) / abs(lhs) < 1e-4
    if not radial:  # each contrast keeps its own sampling
        assert not torch.equal(md.data.mask[0], md.data.mask[1])


def test_radial_contrasts_map_through_the_same_methods():
    md = simulate_map(T2Decay([10, 30, 50, 70]), brain_phantom(32), coils=4, spokes=24, snr_db=40, seed=0)
    assert md.data.radial and not torch.equal(md.data.traj[0], md.data.traj[1])  # each echo its own spokes
    # the model-based fit through the radial operator must beat both per-echo reconstructions + fit
    zf = reconstruct_map(md, "zf-fit", device="cpu").metrics["T2 NRMSE"]
    cg = reconstruct_map(md, "fit", device="cpu").metrics["T2 NRMSE"]
    tv = reconstruct_map(md, "model-tv", iters=150, device="cpu").metrics["T2 NRMSE"]
    assert tv < 0.5 * min(zf, cg)


def test_noise_free_fits_recover_the_maps():
    md = simulate_map(T2Decay([10, 20, 30, 40, 50, 60]), brain_phantom(32), coils=4, accel=1, center=4,
                      snr_db=None, seed=0)
    for how in ("nlls", "loglin"):
        r = reconstruct_map(md, "fit", fit_kind=how, device="cpu")
        assert r.metrics["T2 NRMSE"] < 1e-3, how
        assert r.metrics["M0 PSNR"] > 50, how
    for model in (InversionRecovery([100, 300, 800, 1500, 3000]), VariableFlipAngle([2, 6, 12, 20], 12.0)):
        ph = brain_phantom(24)
        if model.name == "vfa":
            model = VariableFlipAngle([2, 6, 12, 20], 12.0, ph.b1)
        mdi = simulate_map(model, ph, coils=1, accel=1, snr_db=None, seed=0)
        maps = nlls_fit(mdi.data.gt, model, ph.pd > 0.05)
        assert map_metrics(maps, mdi)["T1 NRMSE"] < 1e-3, model.name
    ph = brain_phantom(24)
    v = VariableFlipAngle([2, 6, 12, 20], 12.0, ph.b1)
    mdv = simulate_map(v, ph, coils=1, accel=1, snr_db=None, seed=0)
    assert map_metrics(loglinear_fit(mdv.data.gt, v, ph.pd > 0.05), mdv)["T1 NRMSE"] < 1e-3


def test_model_based_tv_recovers_maps_and_beats_the_pixel_fit():
    """Noise-free R = 2: the model-based fit must drive the maps to within 5 % of the truth, and with noise at
    R = 4 its TV must beat CG-SENSE + fit (seeded)."""
    md = simulate_map(T2Decay([10, 25, 40, 55, 70]), brain_phantom(32), coils=4, accel=2, center=6, snr_db=None,
                      seed=0)
    r = reconstruct_map(md, "model-tv", weight=0.0, iters=300, device="cpu")
    assert r.metrics["T2 NRMSE"] < 0.05
    md = simulate_map(T2Decay([10, 25, 40, 55, 70]), brain_phantom(32), coils=4, accel=4, center=4, snr_db=30, seed=0)
    base = reconstruct_map(md, "fit", device="cpu").metrics["T2 NRMSE"]
    tv = reconstruct_map(md, "model-tv", iters=200, device="cpu").metrics["T2 NRMSE"]
    assert tv < 0.8 * base


def test_dip_maps_fit_the_data_and_stop_on_holdout():
    md = simulate_map(T2Decay([10, 30, 50, 70]), brain_phantom(32), coils=4, accel=3, center=6, snr_db=30, seed=0)
    preset = {"net": {"name": "skip", "channels_down": [16] * 3, "channels_up": [16] * 3, "channels_skip": [4] * 3,
                      "upsample_mode": "bilinear", "need_sigmoid": False},
              "code": {"kind": "noise", "channels": 8, "scale": 0.1},
              "fit": {"iters": 150, "lr": 0.01, "ema": None, "backtrack": False}}
    r = reconstruct_map(md, "dip", preset=preset, stop="holdout", patience=500, device="cpu")
    h = r.history["data"]
    assert h[-1] < 0.2 * h[0]
    assert set(r.maps) == {"M0", "T2"} and r.maps["T2"].min() > 1.0  # bounded by construction
    assert r.selected_iter is not None and r.metrics["T2 NRMSE"] < 0.5
    # a classical start: after its image-domain steps (and one k-space step) the generator outputs the fit's maps
    fit_err = reconstruct_map(md, "fit", device="cpu").metrics["T2 NRMSE"]
    preset["fit"]["iters"] = 1
    warm = reconstruct_map(md, "dip", preset=preset, stop="none", init="fit", device="cpu").metrics["T2 NRMSE"]
    cold = reconstruct_map(md, "dip", preset=preset, stop="none", device="cpu").metrics["T2 NRMSE"]
    assert warm < 1.5 * fit_err < cold


def test_image_mode_models_the_rician_floor():
    """Magnitude images at low SNR: a fit that ignores the noise floor overestimates a long T2; modelling the
    Rician mean removes most of that bias."""
    te = [10, 30, 50, 70, 90, 110, 130, 150]
    m = T2Decay(te)
    clean = m(torch.full((40, 40), 1.0 + 0j), {"T2": torch.full((40, 40), 60.0)})
    g = torch.Generator().manual_seed(3)
    sigma = 0.05
    noisy = (clean + sigma * torch.complex(torch.randn(clean.shape, generator=g),
                                           torch.randn(clean.shape, generator=g))).abs()
    naive = map_images(noisy, m, "fit", sigma=0.0).maps["T2"].median()
    floor = map_images(noisy, m, "fit", sigma=sigma).maps["T2"].median()
    assert abs(float(floor) - 60) < 0.4 * abs(float(naive) - 60)
    assert float(rician_mean(torch.tensor(0.0), 1.0)) == pytest.approx(math.sqrt(math.pi / 2))


def test_measurable_mask_excludes_csf_and_edges():
    ph = brain_phantom(64)
    m = ph.measurable()
    assert not (m & (ph.t2 >= 200)).any()
    assert not m[ph.labels == ph.names.index("CSF")].any()
    assert m.sum() > 0.2 * (ph.pd > 0).sum()


def test_mapping_file_round_trip(tmp_path):
    md = simulate_map(T2Decay([10, 20, 30]), brain_phantom(32), coils=2, accel=2, center=4, seed=0)
    save_map_data(tmp_path / "d.h5", md)
    back = load_map_data(tmp_path / "d.h5")
    assert back.model.axis == [10.0, 20.0, 30.0]
    assert torch.equal(back.truth.t2, md.truth.t2) and torch.equal(back.data.kspace, md.data.kspace)
    with pytest.raises(InputError, match="stores TE"):
        load_map_data(tmp_path / "d.h5", axis=[10, 20, 40])
    with pytest.raises(InputError, match="acquired for the t2 model"):
        load_map_data(tmp_path / "d.h5", model="ir")


def test_cli_round_trip(tmp_path, capsys):
    d, out, png = tmp_path / "t2.h5", tmp_path / "a.nii.gz", tmp_path / "a.png"
    assert main(["mri", "simulate-map", "--model", "t2", "--echoes", "6", "--accel", "4", "--size", "32",
                 "--seed", "0", "-o", str(d)]) == 0
    assert main(["mri", "map", str(d), "--model", "t2", "--method", "fit", "-o", str(out), "--png", str(png)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    nrmse = float(re.search(r"T2 NRMSE ([0-9.]+)", line).group(1))
    assert 0 < nrmse < 1
    vol = nib.load(out).get_fdata()
    assert vol.shape == (32, 32, 1, 2) and png.stat().st_size > 1000
    before = out.read_bytes()
    assert main(["mri", "map", str(d), "--method", "fit", "-o", str(out)]) == 2  # exists, no --overwrite
    assert out.read_bytes() == before
    # magnitude images: the image-domain mode
    imgs = tmp_path / "imgs.npy"
    np.save(imgs, load_map_data(d).data.gt.abs().numpy())
    assert main(["mri", "map", str(imgs), "--model", "t2", "--tes", "10,20,30,40,50,60", "--sigma", "0",
                 "-o", str(tmp_path / "b.npz")]) == 0
    t2 = np.load(tmp_path / "b.npz")["T2"]
    ref = load_map_data(d).truth
    inside = ref.measurable().numpy()
    assert np.abs(t2[inside] - ref.t2.numpy()[inside]).max() / ref.t2.numpy()[inside].min() < 1e-2


@pytest.mark.parametrize("args, msg", [
    (["--tes", "10,20,30"], "stores TE"),
    (["--tes", "10,-20,30,40,50,60"], "positive"),
    (["--model", "t2", "--tis", "100,200"], "--tis belongs to --model ir"),
    (["--model", "ir"], "acquired for the t2 model"),
    (["--echoes", "6", "--tes", "10,20"], "give one TE per echo"),
    (["--weight", "0.1"], "--weight applies to --method model-tv"),
])
def test_cli_bad_input(tmp_path, capsys, args, msg):
    d = tmp_path / "t2.h5"
    assert main(["mri", "simulate-map", "--echoes", "6", "--size", "32", "--accel", "2", "-o", str(d)]) == 0
    capsys.readouterr()
    out = tmp_path / "m.npz"
    assert main(["mri", "map", str(d), "--method", "fit", "-o", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_image_count_mismatch(tmp_path, capsys):
    p = tmp_path / "imgs.npy"
    np.save(p, np.random.default_rng(0).random((5, 16, 16)).astype(np.float32))
    assert main(["mri", "map", str(p), "--model", "t2", "--tes", "10,20,30", "-o", str(tmp_path / "m.npz")]) == 2
    assert "5 images but 3 TE values" in capsys.readouterr().err


def test_finer_grid_simulation_is_not_band_limited():
    """oversample=2 renders the phantom on a 2× grid: its k-space differs from the band-limited one (edges are
    partial-volume mixtures), while a smooth region's signal agrees."""
    m, ph = T2Decay([10, 40]), brain_phantom(32)
    a = simulate_map(m, ph, coils=1, accel=1, snr_db=None, seed=0)
    b = simulate_map(m, ph, coils=1, accel=1, snr_db=None, seed=0, oversample=2,
                     render=lambda h, w: brain_phantom(h, w, seed=0))
    rel = float((a.data.kspace - b.data.kspace).norm() / a.data.kspace.norm())
    assert 0.02 < rel < 0.5
    with pytest.raises(InputError, match="oversample"):
        simulate_map(m, ph, coils=1, seed=0, oversample=2)  # a user's maps cannot be rendered finer


def test_mrphantom_maps_when_installed():
    pytest.importorskip("mrphantom")
    from deepprior.mri.mapping.phantom import mrphantom_maps

    ph = mrphantom_maps(64)
    assert {"fat", "myo", "blood", "liver"} <= set(ph.names)
    assert ph.t2.shape == (64, 64) and (ph.t2[ph.pd > 0] > 1).all()  # in ms, not seconds
