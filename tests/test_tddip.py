import re

import pytest
import torch
from conftest import cine_phantom

from deepprior.errors import ConfigError, InputError
from deepprior.fit import FitConfig, fit
from deepprior.mri import CartesianSENSE, birdcage_maps, cartesian_mask, golden_angle_radial, simulate
from deepprior.mri.metrics import mri_metrics
from deepprior.mri.methods import reconstruct
from deepprior.mri.nufft import RadialSENSE, Weighted, ramp_dcf
from deepprior.mri.common import split_kspace
from deepprior.mri.tddip import build_tddip, manifold, tddip
from deepprior.presets import TDDIP_PRESETS
from deepprior.nets import MapNet, build_net
from deepprior.params import Pixels


@pytest.mark.parametrize("kind,d", [("helix", 3), ("circle", 2), ("line", 1)])
def test_manifold_shapes_and_continuity(kind, d):
    t = 26
    m = manifold(kind, t, cycles=1)
    assert m.shape == (t, d)
    step = (m[1:] - m[:-1]).norm(dim=1)
    # neighbouring frames are neighbouring points, evenly spaced (a continuous curve)
    assert step.max() < 0.3 and step.max() / step.min() < 1.01
    if kind == "circle":  # periodic: the last frame neighbours the first by one step
        assert (m[0] - m[-1]).norm() == pytest.approx(step[0].item(), rel=1e-4)
    if kind == "helix":  # the reference: 13 turns, the third coordinate runs 0 → 1
        h = manifold("helix", 1400, cycles=13)
        assert h[0, 2] == 0 and h[-1, 2] == 1 and torch.allclose(h[:, :2].norm(dim=1), torch.ones(1400))


def test_manifold_custom_phases_and_errors():
    ph = torch.tensor([0.0, 0.25, 0.5, 0.75])
    m = manifold("custom", 4, coords=ph)
    assert torch.allclose(m, torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]), atol=1e-6)
    assert manifold("custom", 3, coords=torch.rand(3, 5)).shape == (3, 5)
    with pytest.raises(InputError):
        manifold("custom", 4, coords=torch.rand(5))
    with pytest.raises(ConfigError):
        manifold("spiral", 4)
    with pytest.raises(ConfigError):
        manifold("helix", 4, cycles=0)


def test_reference_network_sizes():
    net = build_net("tddip", 1, 2, out_hw=(128, 128))  # basicnet: 128 channels, 1 block
    assert net.code_size(128, 128) == (8, 8) and net.ups == 4
    # first conv 1·128·9 + 9 convs 128·128·9 + final 128·2·9, no biases; 10 BatchNorms of 2·128
    assert net.num_parameters() == 1152 + 9 * 147456 + 2304 + 10 * 256
    assert sum(p.numel() for p in MapNet(3, (1, 8, 8)).parameters()) == 3 * 512 + 512 + 512 * 64 + 64


def test_decoder_widths_per_level():
    """``channels`` may name one width per level (seed → image): the parameter count follows the widths, a uniform
    list builds the same network as the int (same state dict), and a list of the wrong length is a ConfigError."""
    net = build_net("tddip", 1, 2, channels=[16, 16, 8], out_hw=(32, 32))
    assert net.ups == 2 and net.channels == [16, 16, 8]
    # level 0: 1→16 + block 16→16; level 1: up 16→16 + block; level 2: up 16→8 + block 8→8; final 8→2; BN 2·width
    convs = 9 * (16 + 256 + 256 + 256 + 128 + 64 + 16)
    assert net.num_parameters() == convs + 2 * (16 * 4 + 8 * 2)
    assert net(torch.rand(1, 1, 8, 8)).shape == (1, 2, 32, 32)
    torch.manual_seed(0)
    a = build_net("tddip", 1, 2, channels=[8, 8, 8], out_hw=(32, 32))
    torch.manual_seed(0)
    b = build_net("tddip", 1, 2, channels=8, out_hw=(32, 32))
    assert a.channels == 8 and all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    # fine_channels narrows the image's level alone, at any image size
    assert build_net("tddip", 1, 2, channels=16, fine_channels=8, out_hw=(32, 32)).num_parameters() == net.num_parameters()
    assert build_net("tddip", 1, 2, channels=16, fine_channels=8, out_hw=(64, 64)).channels == [16, 16, 16, 8]
    assert build_tddip(3, (32, 32), preset="tddip-cpu").net.channels == [64, 64, 32]  # the CPU preset's data
    with pytest.raises(ConfigError, match="one per level, 3 here"):
        build_net("tddip", 1, 2, channels=[16, 8], out_hw=(32, 32))
    with pytest.raises(ConfigError, match="bad TDDIP decoder size"):
        build_net("tddip", 1, 2, channels=[16, 0, 8], out_hw=(32, 32))


def test_decoder_folds_its_upsampling_exactly():
    """The nearest ×2 upsampling folded into the next convolution (NearestUpConv) computes the reference's Upsample +
    Conv2d: the same output and gradients in float64, in either layout, and the state dict keeps its keys."""
    from torch import nn

    from deepprior.nets.common import NearestUpConv

    torch.manual_seed(0)
    net = build_net("tddip", 1, 2, channels=8, out_hw=(32, 32)).double()
    assert sum(isinstance(m, NearestUpConv) for m in net.modules()) == net.ups == 2
    plain = build_net("tddip", 1, 2, channels=8, out_hw=(32, 32), fold_upsample=False).double()
    assert sum(isinstance(m, nn.Upsample) for m in plain.modules()) == 2
    assert not any(isinstance(m, NearestUpConv) for m in plain.modules())
    plain.load_state_dict(net.state_dict())  # the unfolded reference: same keys, same shapes
    for layout in (torch.contiguous_format, torch.channels_last):
        z = torch.rand(2, 1, 8, 8, dtype=torch.float64).contiguous(memory_format=layout)
        for n in (net, plain):
            n.to(memory_format=layout)
            n.zero_grad()
            n(z).square().sum().backward()
        assert torch.allclose(net(z), plain(z), atol=1e-12)
        for a, b in zip(net.parameters(), plain.parameters()):
            assert torch.allclose(a.grad, b.grad, atol=1e-10)
    bilinear = build_net("tddip", 1, 2, channels=8, out_hw=(32, 32), upsample_mode="bilinear")
    assert not any(isinstance(m, NearestUpConv) for m in bilinear.modules())  # only nearest folds this way


def test_folded_decoder_runs_under_vmap():
    """Static DIP fits the frames of a series as one vmapped BatchedDIP; the TDDIP decoder, folded, runs there too
    (a layout query inside NearestUpConv once failed under vmap), and each frame matches its own single fit."""
    from deepprior.mri.dip import dip_static

    d = simulate(torch.rand(2, 32, 32), coils=2, accel=2, center=4, seed=0)
    p = {"net": {"name": "tddip", "channels": 16}, "code": {"kind": "noise", "scale": 0.1},
         "fit": {"iters": 3, "lr": 0.01, "ema": None, "backtrack": False}}
    both, _ = dip_static(d, preset=p, device="cpu", dc=False)
    alone, _ = dip_static(d.frame(1), preset=p, device="cpu", dc=False)
    assert torch.isfinite(both).all() and torch.allclose(both[1:], alone, atol=1e-4)


@pytest.mark.parametrize("hw", [(37, 50), (64, 64), (20, 129)])
def test_decoder_and_parameterization_odd_sizes(hw):
    p = build_tddip(5, hw, preset={**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 8},
                                   "mapnet": {"hidden": [16, 16]}})
    assert p().shape == (5, 2, *hw)
    assert p(index=torch.tensor([1, 4])).shape == (2, 2, *hw)
    # other generators plug in: the ConvDecoder with the MapNet producing its seed code
    q = build_tddip(3, hw, preset={**TDDIP_PRESETS["tddip-cpu"],
                                   "net": {"name": "conv_decoder", "channels": 8, "layers": 3}, "mapnet": {"hidden": [8]}})
    assert q().shape == (3, 2, *hw)


def test_frame_select_matches_full_operator():
    t, h, w, c = 5, 12, 10, 3
    x = torch.randn(t, h, w, dtype=torch.complex64)
    idx = torch.tensor([0, 3])
    maps = birdcage_maps(c, h, w)
    cart = CartesianSENSE(cartesian_mask(t, h, w, accel=2, center=2, pattern="kt-random", seed=1), maps)
    assert torch.allclose(cart.select(idx)(x[idx]), cart(x)[idx])
    rad = RadialSENSE(golden_angle_radial(t, 3, 12), maps)
    assert torch.allclose(rad.select(idx)(x[idx]), rad(x)[idx], atol=1e-5)
    kb = RadialSENSE(golden_angle_radial(t, 3, 12), maps, backend="torchkbnufft")
    assert torch.allclose(kb.select(idx)(x[idx]), kb(x)[idx], atol=1e-5) and kb.select(idx)._kb is kb._kb
    wrad = Weighted(rad, ramp_dcf(rad.traj))
    assert torch.allclose(wrad.select(idx)(x[idx]), wrad(x)[idx], atol=1e-5)
    y = wrad(x)
    assert torch.allclose(wrad.select(idx).adjoint(y[idx]), wrad.adjoint(y)[idx], atol=1e-5)


def test_split_kspace_is_a_partition():
    d = simulate(cine_phantom(), coils=2, accel=2, center=4, seed=0)
    tr, ytr, va, yva, count = split_kspace(d, 0.1, seed=0)
    assert torch.equal(tr.mask + va.mask, d.mask) and (tr.mask * va.mask).sum() == 0
    assert torch.allclose(ytr + yva, d.kspace) and count == va.mask.sum() * 2
    dr = simulate(cine_phantom(), coils=2, spokes=3, seed=0)
    tr, ytr, va, yva, count = split_kspace(dr, 0.2, seed=0)
    assert torch.allclose(ytr + yva, dr.kspace) and (tr.sw * va.sw).sum() == 0


def test_batched_fit_visits_every_frame_and_rejects_bad_setups(monkeypatch):
    d = simulate(cine_phantom(frames=6, n=16), coils=2, accel=2, center=4, seed=0)
    p = build_tddip(6, d.shape, preset={**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 8},
                                        "mapnet": {"hidden": [8]}})
    from deepprior.mri.operators import ChannelsToComplex

    op = d.operator @ ChannelsToComplex(frames=6)
    steps = []
    orig = torch.optim.Adam.step

    def counting(self, *a, **k):
        steps.append(1)
        return orig(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", counting)  # restored by the fixture, whatever happens
    r = fit(p, op, d.kspace, FitConfig(iters=2, lr=1e-3, batch=4, ema=None, backtrack=False))
    assert len(steps) == 2 * 2  # ceil(6 / 4) optimizer steps per sweep
    assert r.image.shape == (6, 2, *d.shape) and torch.isfinite(r.image).all()
    with pytest.raises(ConfigError):
        FitConfig(batch=2, optimizer="lbfgs")
    with pytest.raises(ConfigError):
        FitConfig(batch=0)
    with pytest.raises(ConfigError):  # a single-image parameterization has no frames to batch
        fit(Pixels(torch.zeros(1, 1, 4, 4)), op, d.kspace, FitConfig(iters=1, batch=1))


@pytest.mark.parametrize("radial", [False, True])
def test_tiny_tddip_reduces_loss_and_beats_zero_filled(radial):
    s = cine_phantom(frames=4, n=32)
    d = simulate(s, coils=4, seed=0, **({"spokes": 8} if radial else {"pattern": "kt-random", "accel": 4, "center": 4}))
    preset = {**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 16}, "dc_weight": 3e-3,
              "fit": {**TDDIP_PRESETS["tddip-cpu"]["fit"], "lr": 3e-3, "lr_step": 10**6}}
    x, info = tddip(d, preset=preset, steps=600, stop="none", seed=0, ref=d.gt, dc=not radial)
    assert info["loss"][-1] < 0.2 * info["loss"][0]
    zf = reconstruct(d, "zerofill", device="cpu").image
    # radial at 8 spokes is the harder case for 150 sweeps of a 16-channel net (measured +2.0 dB)
    assert mri_metrics(x, d.gt)["psnr"] > mri_metrics(zf, d.gt)["psnr"] + (1 if radial else 2)
    # the oracle is recorded for diagnostics (on the network's image) and matches the final metric's definition
    net = info["network_image"]
    assert info["oracle_psnr"][-1] == pytest.approx(mri_metrics(net, d.gt)["psnr"], abs=0.05)
    if radial:  # a fixed μ is refused for radial data (below)
        assert info["dc"] is None and torch.equal(x, net)
    else:  # the final exact data consistency keeps the samples and gains on the network (measured +1.7 dB)
        assert info["dc"] == 3e-3
        assert mri_metrics(x, d.gt)["psnr"] > mri_metrics(net, d.gt)["psnr"] + 0.5
        assert (d.operator(x) - d.kspace).norm() < 0.5 * (d.operator(net) - d.kspace).norm()


def test_tddip_data_consistency_is_refused_where_it_was_not_tuned():
    s = cine_phantom(frames=2, n=16)
    p = {**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 4}, "mapnet": {"hidden": [4]},
         "dc_weight": 3e-3}
    with pytest.raises(ConfigError, match="radial"):
        tddip(simulate(s, coils=2, spokes=4, seed=0), preset=p, steps=2, stop="none", dc=True)
    with pytest.raises(ConfigError, match="no data-consistency weight"):
        tddip(simulate(s, coils=2, accel=2, center=4, seed=0), preset={**p, "dc_weight": None}, steps=2, stop="none", dc=True)
    with pytest.raises(ConfigError, match="dc_weight must be"):
        tddip(simulate(s, coils=2, accel=2, center=4, seed=0), preset={**p, "dc_weight": "high"}, steps=2, dc=True)


def test_tddip_holdout_stops_and_delivers_the_selected_sweep():
    d = simulate(cine_phantom(frames=4, n=32), coils=4, pattern="kt-random", accel=4, center=4, seed=0)
    preset = {**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 16},
              "fit": {**TDDIP_PRESETS["tddip-cpu"]["fit"], "lr": 3e-3, "lr_step": 10**6}}
    x, info = tddip(d, preset=preset, steps=4000, stop="holdout", patience=5, holdout=0.1, seed=0)
    assert info["fired_at"] is not None and info["sweeps"] < 1000  # ended by the rule, not by the budget
    assert info["selected_sweep"] == info["fired_at"] - 5
    best = min(range(len(info["stop_scores"])), key=info["stop_scores"].__getitem__)
    assert info["stop_iters"][best] == info["selected_sweep"]


def test_cli_tddip_writes_series_gif_plot_and_rejects_misplaced_options(tmp_path, capsys):
    import numpy as np

    from deepprior.cli import main

    np.save(tmp_path / "s.npy", cine_phantom(frames=4, n=24).numpy())
    k = tmp_path / "k.h5"
    assert main(["mri", "simulate", str(tmp_path / "s.npy"), "-o", str(k), "--coils", "2", "--accel", "2",
                 "--center", "4"]) == 0
    out, gif, plot = tmp_path / "r.npy", tmp_path / "r.gif", tmp_path / "curves.png"
    assert main(["mri", "recon", str(k), "--method", "tddip", "--iters", "40", "--manifold", "circle", "--stop", "holdout",
                 "-o", str(out), "--gif", str(gif), "--plot", str(plot), "-q"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    # the last stdout line is the delivered image's summary (scripts parse it); oracle lines come before
    assert re.fullmatch(r".*: tddip, 4 frame\(s\), [\d.]+ s, 40 steps \(10 sweeps\).* \| PSNR [\d.]+ dB SSIM [\d.]+ "
                        r"NRMSE [\d.]+", lines[-1]), lines[-1]
    assert lines[-2].startswith("oracle: best sweep")
    assert np.load(out).shape == (4, 24, 24) and gif.stat().st_size > 0 and plot.stat().st_size > 0
    for argv, msg in [(["--method", "cgsense", "--manifold", "helix"], "--manifold"),
                      (["--method", "zerofill", "--plot", str(tmp_path / "p.png")], "--plot"),
                      (["--method", "tddip", "--preset", "nope"], "--preset"),
                      (["--method", "lps", "--batch", "2"], "--batch"),
                      (["--method", "cgsense", "--no-dc-tv"], "--dc-tv"),
                      (["--method", "zerofill", "--device", "cuda"] if not torch.cuda.is_available() else
                       ["--method", "gip", "--stop", "wmv"], "cuda" if not torch.cuda.is_available() else "wmv")]:
        assert main(["mri", "recon", str(k), "-o", str(tmp_path / "x.npy"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x.npy").exists() and not (tmp_path / "p.png").exists()


def test_tddip_resumes_bit_identically_after_a_crash(tmp_path):
    from deepprior.fit import Callback

    d = simulate(cine_phantom(frames=4, n=16), coils=2, pattern="kt-random", accel=2, center=4, seed=0)
    preset = {**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 8}, "mapnet": {"hidden": [16]}}
    kw = dict(preset=preset, steps=48, stop="holdout", patience=100, seed=1)
    ref, _ = tddip(d, **kw)

    class Crash(Callback):
        def on_step_end(self, state):
            if state.it == 8:
                raise RuntimeError("crash")

    ck = tmp_path / "t.ckpt"
    with pytest.raises(RuntimeError):
        tddip(d, **kw, callbacks=[Crash()], checkpoint=ck, checkpoint_every=3)
    x, info = tddip(d, **kw, resume=ck)
    assert torch.equal(x, ref) and info["sweeps"] == 12


def test_ctrl_c_in_mri_recon_writes_the_image_so_far(tmp_path, capsys):
    """Ctrl-C during `mri recon` ends the fit after the current step, writes the image reached so far to the
    output and exits 130 (README, Long runs)."""
    import os
    import signal
    import threading

    import numpy as np

    from deepprior.cli import main

    np.save(tmp_path / "s.npy", cine_phantom(frames=4, n=24).numpy())
    k, out = tmp_path / "k.h5", tmp_path / "r.npy"
    assert main(["mri", "simulate", str(tmp_path / "s.npy"), "-o", str(k), "--coils", "2", "--accel", "2"]) == 0
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        rc = main(["mri", "recon", str(k), "--method", "tddip", "--iters", "100000", "--stop", "none", "-o", str(out),
                   "-q", "--device", "cpu"])
    finally:
        timer.cancel()
    assert rc == 130
    err = capsys.readouterr().err
    assert "interrupted after" in err and str(out) in err
    x = np.load(out)
    assert x.shape == (4, 24, 24) and np.iscomplexobj(x) and np.isfinite(x).all() and np.abs(x).max() > 0


def test_tddip_init_starts_exactly_at_the_classical_image():
    """--init: the generator's first image is the given series (inside the maps' support), and lr → 0 keeps it."""
    d = simulate(cine_phantom(frames=4, n=24), coils=4, pattern="kt-random", accel=4, center=4, seed=0)
    preset = {**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 8}, "mapnet": {"hidden": [16]}}
    start = reconstruct(d, "tv", device="cpu", iters=20).image
    x, _ = tddip(d, preset=preset, steps=8, stop="none", init=start, lr=1e-12, device="cpu", dc=False, amp="off")
    assert torch.allclose(x, start, atol=1e-4 * float(start.abs().max()))
    # a bf16 network (the preset's amp "auto" where the CPU has bf16 units) starts there too
    x, _ = tddip(d, preset=preset, steps=8, stop="none", init=start, lr=1e-12, device="cpu", dc=False, amp="bf16")
    assert torch.allclose(x, start, atol=1e-4 * float(start.abs().max()))
    x2, _ = tddip(d, preset=preset, steps=8, stop="none", init=start, lr=1e-2, device="cpu", dc=False)
    assert (x2 - start).abs().max() > 1e-3 * float(start.abs().max())  # and it does fit with a real step size
    with pytest.raises(InputError, match="complex series"):
        tddip(d, preset=preset, steps=2, init=start.abs(), device="cpu")
    with pytest.raises(ConfigError, match="init must be"):
        tddip(d, preset=preset, steps=2, init="lps", device="cpu")


def test_tddip_tv_weight_lowers_the_total_variation_of_the_frames():
    """DIP-TV in TDDIP: the same seeded fit with a TV penalty ends with smoother frames (lower TV) than without."""
    from deepprior.regularizers import TV

    d = simulate(cine_phantom(frames=4, n=16), coils=2, pattern="kt-random", accel=2, center=4, snr_db=20, seed=0)
    p = {**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 8}, "mapnet": {"hidden": [8]},
         "fit": {**TDDIP_PRESETS["tddip-cpu"]["fit"], "lr": 3e-3}}
    tv = lambda x: sum(float(TV("iso")(f.abs()[None, None])) for f in x)  # noqa: E731
    plain = tddip(d, preset=p, steps=80, stop="none", dc=False, seed=0)
    smooth = tddip(d, preset=p, steps=80, stop="none", dc=False, seed=0, tv_weight=0.05)
    assert smooth[1]["history"]["reg"][-1] > 0 and plain[1]["history"]["reg"][-1] == 0
    assert tv(smooth[0]) < 0.9 * tv(plain[0]), (tv(smooth[0]), tv(plain[0]))
    with pytest.raises(ConfigError, match="tv_weight"):
        tddip(d, preset=p, steps=2, stop="none", tv_weight=-1.0)


def test_dc_weight_is_chosen_by_the_held_out_samples():
    from deepprior.mri.common import split_kspace as split
    from deepprior.mri.dcweight import choose_dc_weight, dc_step

    s = cine_phantom(frames=4, n=32)
    # a blurred "network image" and clean samples: the samples must win (a small μ), and the step must gain
    clean = simulate(s, coils=4, pattern="kt-random", accel=4, center=4, seed=0)
    blur = torch.nn.functional.avg_pool2d(clean.gt.real[:, None], 3, 1, 1)[:, 0].to(clean.gt.dtype)
    tr, ytr, va, yva, _ = split(clean, 0.1, seed=3)
    mu, scores = choose_dc_weight(blur, tr, ytr, va, yva)
    assert mu is not None and mu <= 1e-2 and scores[mu] < 0.5 * scores[float("inf")]
    x = dc_step(blur, clean.operator, clean.kspace, mu)
    assert mri_metrics(x, clean.gt)["psnr"] > mri_metrics(blur, clean.gt)["psnr"] + 3
    # the exact image and very noisy samples: putting them back can only hurt, so the network image is kept
    noisy = simulate(s, coils=4, pattern="kt-random", accel=4, center=4, seed=0, snr_db=5.0)
    tr, ytr, va, yva, _ = split(noisy, 0.1, seed=3)
    mu, scores = choose_dc_weight(noisy.gt, tr, ytr, va, yva)
    assert mu is None or mu >= 0.3
    with pytest.raises(ConfigError):
        choose_dc_weight(blur, tr, ytr, va, yva, grid=(0.0,))


@pytest.mark.parametrize("radial", [False, True])
def test_tddip_auto_dc_needs_the_held_out_samples(radial):
    s = cine_phantom(frames=2, n=16)
    d = simulate(s, coils=2, seed=0, **({"spokes": 6} if radial else {"accel": 2, "center": 4}))
    p = {**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 4}, "mapnet": {"hidden": [4]},
         "dc_weight": "auto"}
    with pytest.raises(ConfigError, match="holdout"):
        tddip(d, preset=p, steps=2, stop="none", dc=True)
    # a preset whose default is dc meets a stop rule without held-out samples: the network image, unchanged
    x, info = tddip(d, preset={**p, "dc": True}, steps=2, stop="none")
    assert info["dc"] is None and torch.equal(x, info["network_image"])
    x, info = tddip(d, preset={**p, "dc": True}, steps=4, stop="holdout", holdout=0.2)
    scores = info["dc_scores"]
    assert float("inf") in scores and len(scores) >= 3  # ∞, then the grid from μ = 1 down to two past its best
    best = min(scores, key=lambda m: (scores[m], -m))  # the best held-out score, ties to the stiffer μ
    assert info["dc"] == (None if best == float("inf") else best)
    assert (info["dc"] is None) == torch.equal(x, info["network_image"])


@pytest.mark.parametrize("units", [False, True])
def test_tddip_budget_follows_the_precision(monkeypatch, units):
    import importlib

    config = importlib.import_module("deepprior.fit.config")  # the module (deepprior.fit.fit is a function)
    monkeypatch.setattr(config, "native_bf16", lambda device: units)
    d = simulate(cine_phantom(frames=2, n=16), coils=2, accel=2, center=4, seed=0)
    p = {**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 4}, "mapnet": {"hidden": [4]},
         "fit": {**TDDIP_PRESETS["tddip-cpu"]["fit"], "steps": 8}, "fit_fp32": {"steps": 4}}
    assert p["fit"]["amp"] == "auto"
    _, info = tddip(d, preset=p, stop="none")
    # bf16 units: the preset's budget; float32 (emulated bf16 would be slower): the fp32 budget
    assert info["bf16"] is units and info["steps"] == (8 if units else 4)
    _, info = tddip(d, preset=p, stop="none", amp="off")
    assert info["bf16"] is False and info["steps"] == 4
    # the CPU preset has no float32 schedule of its own: its budget ends a slower float32 fit instead
    q = {**p, "fit": {**p["fit"], "lr": 1e-2}}
    q.pop("fit_fp32")
    _, info = tddip(d, preset=q, stop="none")
    assert info["bf16"] is units and info["steps"] == 8 and set(info["history"]["lr"]) == {1e-2}


def test_tddip_holdout_rule_waits_for_the_last_learning_rate_drop():
    from deepprior.fit.stopping import replay
    from deepprior.presets import get_preset

    d = simulate(cine_phantom(4, 16), coils=2, accel=2, center=4, seed=0, snr_db=10)
    p = {**get_preset("tddip-cpu", "tddip"), "net": {"name": "tddip", "channels": 8}, "mapnet": {"hidden": [16]}}
    # a noisy held-out curve; StepLR drops at sweeps 50, 100
    p["fit"] = {**p["fit"], "lr_schedule": "step", "lr_step": 200, "lr": 1e-2, "ema": 0.0}
    _, info = tddip(d, preset=p, steps=400, patience=2, seed=0, device="cpu", dc=False)
    assert info["last_lr_drop"] == 50 and info["not_before"] == 52
    early, fired = replay(info["stop_scores"], info["stop_iters"], 2)  # the rule without the wait
    assert fired is not None and fired < 50
    # with it: no stop before sweep 52, and the minimum it then delivers is a later, lower one
    assert info["fired_at"] is None or info["fired_at"] >= 52
    assert info["selected_sweep"] > early
    scores = dict(zip(info["stop_iters"], info["stop_scores"]))
    assert scores[info["selected_sweep"]] < scores[early]


def test_tddip_cpu_preset_runs_at_a_constant_learning_rate():
    """The CPU preset's budget runs at one learning rate (no drops, so the held-out rule has no drop to wait for);
    a StepLR schedule in a preset still drops, and the rule then waits for its last drop."""
    from deepprior.presets import get_preset

    d = simulate(cine_phantom(4, 16), coils=2, accel=2, center=4, seed=0)
    p = {**get_preset("tddip-cpu", "tddip"), "net": {"name": "tddip", "channels": 8}, "mapnet": {"hidden": [16]}}
    assert p["fit"]["lr_schedule"] is None
    p["fit"] = {**p["fit"], "lr_step": 8}  # 2 sweeps of 4 frames: StepLR would drop at sweeps 2, 4, 6, 8
    _, flat = tddip(d, preset=p, steps=40, patience=2, seed=0, device="cpu", dc=False)
    assert flat["last_lr_drop"] == 0 == flat["not_before"]
    assert flat["history"]["lr"] == [p["fit"]["lr"]] * flat["sweeps"]
    step = {**p, "fit": {**p["fit"], "lr_schedule": "step"}}
    _, info = tddip(d, preset=step, steps=40, patience=2, seed=0, device="cpu", dc=False)
    assert info["last_lr_drop"] == 8 and info["not_before"] == 10
    # recorded after each sweep's scheduler step: halved after sweeps 2, 4, 6, 8 and 10
    assert info["history"]["lr"][-1] == pytest.approx(p["fit"]["lr"] * 0.5**5)


def test_tddip_channels_last_is_the_same_fit():
    """The CPU preset runs its decoder in channels-last layout (1.4× faster bf16 steps on this CPU, fewer layout
    copies): in float32 the fit follows the same trajectory as the default layout, only the kernels' summation
    order differs."""
    from deepprior.presets import get_preset

    d = simulate(cine_phantom(4, 16), coils=2, accel=2, center=4, seed=0)
    p = {**get_preset("tddip-cpu", "tddip"), "net": {"name": "tddip", "channels": 8}, "mapnet": {"hidden": [16]}}
    assert p["fit"]["channels_last"]
    out, loss = {}, {}
    for layout, steps in ((True, 24), (False, 24), (False, 4)):
        q = {**p, "fit": {**p["fit"], "channels_last": layout, "amp": "off"}, "fit_fp32": {}}
        out[layout, steps], info = tddip(d, preset=q, steps=steps, stop="none", seed=0, device="cpu", dc=False)
        loss[layout, steps] = info["loss"]
    apart = (out[True, 24] - out[False, 24]).abs().max()
    moved = (out[False, 24] - out[False, 4]).abs().max()  # what five more sweeps change
    assert apart < 1e-3 * moved
    assert loss[True, 24] == pytest.approx(loss[False, 24], rel=1e-4)


def test_tddip_time_limit_ends_the_fit_with_the_held_out_choice_so_far():
    """A wall-clock budget (the preset's time_limit): the fit ends at the first sweep past it, before its step
    budget, and delivers the sweep the held-out rule had selected by then (not simply the last one)."""
    from deepprior.presets import get_preset

    d = simulate(cine_phantom(4, 16), coils=2, accel=2, center=4, seed=0, snr_db=10)
    p = {**get_preset("tddip-cpu", "tddip"), "net": {"name": "tddip", "channels": 8}, "mapnet": {"hidden": [16]}}
    p["fit"] = {**p["fit"], "lr": 1e-2, "ema": 0.0}
    p.pop("budget")  # a preset's budget for the whole call comes before its time_limit
    _, full = tddip(d, preset=p, steps=120, patience=1000, seed=0, device="cpu", dc=False, time_limit=0)
    assert full["time_limited"] is None and full["sweeps"] == 30
    per_sweep = full["seconds"] / 30
    # 8 of the full run's 30 sweeps' time: it binds unless this run goes 3.75× faster than the first
    x, info = tddip(d, preset={**p, "time_limit": 8 * per_sweep}, steps=120, patience=1000, seed=0, device="cpu",
                    dc=False)
    assert info["time_limit"] == pytest.approx(8 * per_sweep)
    assert info["time_limited"] is not None and info["sweeps"] == info["time_limited"] + 1 < 30
    scores = dict(zip(info["stop_iters"], info["stop_scores"]))
    assert info["selected_sweep"] == min(scores, key=scores.get)
    # the same seeded fit up to there: its curve is the full run's first sweeps
    assert info["stop_scores"] == pytest.approx(full["stop_scores"][:info["sweeps"]], rel=1e-5)
    with pytest.raises(ConfigError, match="time limit"):
        tddip(d, preset=p, steps=8, device="cpu", dc=False, time_limit=-1)


def test_tddip_anneal_is_sized_to_the_time_limit_when_that_binds_first():
    """An "anneal" schedule decays over the last part of the budget: of the steps when they run out first, of the
    time limit when it binds first, so that a run cut short on a slow machine still ends at 1 % of the rate."""
    from deepprior.presets import get_preset

    d = simulate(cine_phantom(4, 16), coils=2, accel=2, center=4, seed=0, snr_db=10)
    p = {**get_preset("tddip-cpu", "tddip"), "net": {"name": "tddip", "channels": 8}, "mapnet": {"hidden": [16]}}
    p["fit"] = {**p["fit"], "lr": 1e-2, "ema": 0.0, "lr_schedule": "anneal", "anneal_frac": 0.5}
    _, full = tddip(d, preset=p, steps=120, patience=1000, seed=0, device="cpu", dc=False, time_limit=0)
    lr = full["history"]["lr"]
    assert full["sweeps"] == 30 and lr[:15] == [1e-2] * 15 and lr[-1] == pytest.approx(1e-4)
    per_sweep = full["seconds"] / 30
    _, cut = tddip(d, preset=p, steps=120, patience=1000, seed=0, device="cpu", dc=False, time_limit=8 * per_sweep)
    assert cut["time_limited"] is not None and cut["sweeps"] < 30
    assert cut["history"]["lr"][-1] == pytest.approx(1e-4, rel=0.05)


def test_tddip_final_step_can_pull_kt_tv_towards_the_network_image():
    from deepprior.mri.common import weighted
    from deepprior.mri.pics import pics

    d = simulate(cine_phantom(frames=4, n=16), coils=2, accel=2, center=4, seed=0)
    regs = {"tv": 1e-3, "tv-t": 1e-2}
    p = {**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 4}, "mapnet": {"hidden": [4]},
         "dc_weight": 0.01, "dc_regs": regs, "dc_pull": 0.5}
    x, info = tddip(d, preset=p, steps=8, stop="none", dc=True, seed=0, device="cpu")
    net = info["network_image"]
    assert info["dc_regs"] == regs and info["dc_pull"] == pytest.approx(0.005)
    # exactly k-t TV with the pull μ' = dc_pull × μ towards the network image, started there
    assert torch.allclose(x, pics(*weighted(d), regs, prior=(net, 0.005), x0=net, iters=p["dc_iters"]).image, atol=1e-6)
    plain, pinfo = tddip(d, preset=p, steps=8, stop="none", dc=True, seed=0, device="cpu", dc_regs={})
    assert torch.allclose(pinfo["network_image"], net) and pinfo["dc_regs"] == {} and pinfo["dc_pull"] is None
    tv_t = lambda v: float((v[1:] - v[:-1]).abs().sum())  # noqa: E731
    assert tv_t(x) < tv_t(plain)  # the temporal TV term acts
    with pytest.raises(ConfigError, match="dc_pull"):
        tddip(d, preset={**p, "dc_pull": 0}, steps=2, stop="none", dc=True)


def test_tddip_cpu_ends_with_the_tv_method_defaults_and_the_cli_turns_them_off(tmp_path):
    import numpy as np

    from deepprior.cli import main
    from deepprior.mri.io import load_data
    from deepprior.mri.pics import KT_FOURIER, kt_tv_terms

    # the preset spells the tv method's tuned weights out (presets cannot import deepprior.mri): they must agree, and
    # the command line's --dc-tv is the preset's step
    assert TDDIP_PRESETS["tddip-cpu"]["dc_regs"] == kt_tv_terms(fourier=KT_FOURIER)
    np.save(tmp_path / "s.npy", cine_phantom(frames=3, n=16).numpy())
    k = tmp_path / "k.h5"
    assert main(["mri", "simulate", str(tmp_path / "s.npy"), "-o", str(k), "--coils", "2", "--accel", "2",
                 "--center", "4"]) == 0
    for flag, name in (("--no-dc-tv", "off.npy"), ("--dc-tv", "on.npy")):
        assert main(["mri", "recon", str(k), "--method", "tddip", "--iters", "12", flag, "-o", str(tmp_path / name),
                     "-q"]) == 0
    r = reconstruct(load_data(str(k)), "tddip", iters=12, seed=0, dc_regs={})
    assert np.allclose(np.load(tmp_path / "off.npy"), r.image.numpy(), atol=1e-6)
    assert r.info["dc"] is not None  # 12 steps leave a poor network image: the held-out samples want a finite μ
    assert not np.allclose(np.load(tmp_path / "on.npy"), r.image.numpy(), atol=1e-6)  # where the TV terms act
    full = reconstruct(load_data(str(k)), "tddip", iters=12, seed=0, dc_regs=kt_tv_terms(fourier=KT_FOURIER))
    assert np.allclose(np.load(tmp_path / "on.npy"), full.image.numpy(), atol=1e-6)


def test_tddip_budget_leaves_the_final_step_its_timed_share():
    """The preset's ``budget`` covers the whole call: the fit's limit is the budget less the set-up so far and the
    final step's cost, timed before the fit; a budget too small for both still fits a tenth of it; an explicit
    ``time_limit`` (0: none) replaces it."""
    from deepprior.presets import get_preset

    d = simulate(cine_phantom(4, 16), coils=2, accel=2, center=4, seed=0, snr_db=30)
    p = {**get_preset("tddip-cpu", "tddip"), "net": {"name": "tddip", "channels": 8}, "mapnet": {"hidden": [16]},
         "budget": 1e5, "dc_iters": 5}
    _, info = tddip(d, preset=p, steps=40, seed=0, device="cpu")
    est = info["final_step_estimate"]
    assert info["budget"] == 1e5 and est > 0 and info["time_limited"] is None
    assert 1e5 - est - 30 < info["time_limit"] < 1e5 - est  # the set-up before the fit takes well under 30 s
    # the estimate grows with the final step's iterations (timed again: a loose factor for a noisy machine)
    _, longer = tddip(d, preset={**p, "dc_iters": 200}, steps=4, seed=0, device="cpu")
    assert longer["final_step_estimate"] > 2 * est
    _, tiny = tddip(d, preset={**p, "budget": 1e-3}, steps=40, seed=0, device="cpu")
    assert tiny["time_limit"] == pytest.approx(1e-4) and tiny["time_limited"] == 0 and tiny["sweeps"] == 1
    _, off = tddip(d, preset={**p, "budget": 1e-3}, steps=40, seed=0, device="cpu", time_limit=0)
    assert off["budget"] is None and off["time_limited"] is None and off["sweeps"] == 10
