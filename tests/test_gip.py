import pytest
import torch

from deepprior.errors import ConfigError
from deepprior.fit import FitConfig
from deepprior.mri import CartesianSENSE, birdcage_maps, cartesian_mask, simulate
from deepprior.mri.admm import admm, augmented_lagrangian
from deepprior.mri.gip import GIP, gip, scaled_schedule
from deepprior.nets.gip import GIPNet, knn_graph
from deepprior.presets import GIP_PRESETS
from deepprior.mri.metrics import mri_metrics
from deepprior.mri.methods import reconstruct
from deepprior.mri.operators import ChannelsToComplex
from conftest import cine_phantom


def test_knn_graph_matches_brute_force_and_puts_self_first():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(9, 12, generator=g)
    idx = knn_graph(f, 4)
    assert idx.shape == (9, 4) and torch.equal(idx[:, 0], torch.arange(9))
    fn = f / f.norm(dim=1, keepdim=True)
    for i in range(9):
        sims = sorted(((float(fn[i] @ fn[j]), j) for j in range(9) if j != i), reverse=True)
        assert set(idx[i, 1:].tolist()) == {j for _, j in sims[:3]}
    # identical frames still list themselves first (no tie between self and a duplicate)
    dup = torch.stack([f[0], f[0], f[1]])
    assert knn_graph(dup, 2)[:, 0].tolist() == [0, 1, 2]
    assert knn_graph(f, 1).tolist() == [[i] for i in range(9)]


@pytest.mark.parametrize("hw", [(32, 32), (20, 28)])
def test_vectorised_branches_equal_the_frame_loop(hw):
    torch.manual_seed(0)
    net = GIPNet(5, hw, ch=4, k=3)
    for p in net.parameters():  # make every kernel and bias distinct per frame and slot
        p.data.normal_(0, 0.2)
    z = torch.rand(1, 8, 8, 8)
    for stage in ("cnn", "gnn"):
        a, b = net(z, stage=stage), net.forward_loop(z, stage=stage)
        assert a.shape == (5, 2, *hw)
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), (stage, (a - b).abs().max())
    # the branches are independent: changing frame 2's stem changes frame 2 only
    before = net(z, stage="cnn").detach()
    with torch.no_grad():
        net.stem.weight[2] += 0.5
    diff = (net(z, stage="cnn").detach() - before).abs().amax(dim=(1, 2, 3))
    assert diff[2] > 1e-3 and torch.all(diff[[0, 1, 3, 4]] == 0)


def test_reference_sizes_and_parameter_count():
    net = GIPNet(26, (128, 128), ch=24, k=7)
    assert net.sizes == [(16, 16), (32, 32), (64, 64), (128, 128)]
    chans = [384, 192, 96, 48, 24, 24, 24]
    gen = 8 * 384 * 9 + 384 + sum(chans[i] * chans[i + 1] * 9 + chans[i + 1] for i in range(6)) + 24 * 2 + 2
    gnn = (7 * (24 * 24 * 9 + 24) + 24 * 24 * 9 + 24 + 7 * (48 * 24 * 9 + 24) + 2 * (24 * 24 * 9 + 24))
    fen = 24 * 12 * 25 + 12 * 12 * 25 + 2 * 12 * 12 * 16
    assert sum(p.numel() for p in net.parameters()) == 26 * (gen + gnn) + fen + 2 * 24 + 24 * 2 + 2
    with pytest.raises(ConfigError):
        GIPNet(4, (16, 16), k=5)


def test_schedule_scales_in_proportion():
    stages, a = scaled_schedule(GIP_PRESETS["gip"], None)
    assert [n for _, n, _ in stages] == [10000, 5000, 15000] and a["net_steps"] == 500 and a["outer"] == 20
    stages, a = scaled_schedule(GIP_PRESETS["gip"], 4000)
    assert [n for _, n, _ in stages] == [1000, 500, 1500] and a["net_steps"] == 50


def test_one_admm_iteration_decreases_the_augmented_lagrangian():
    t, h, w = 3, 16, 16
    gt = cine_phantom(frames=t, n=h).to(torch.complex64)
    op = CartesianSENSE(cartesian_mask(t, h, w, accel=3, center=4, pattern="kt-random", seed=0), birdcage_maps(2, h, w))
    y = op(gt)
    net = GIPNet(t, (h, w), ch=4, k=2)
    param = GIP(net, torch.rand(1, 8, 8, 8))
    param.freeze_graph()
    rho = 0.05
    c2c = ChannelsToComplex(frames=t)
    with torch.no_grad():
        g0 = c2c(param())
    x0, gam0 = g0.clone(), torch.zeros_like(g0)
    l0 = augmented_lagrangian(op, y, x0, g0, gam0, rho)
    r = admm(param, op, y, rho=rho, outer=1, cg_iters=10, net_steps=30, net_lr=1e-3,
             net_config=FitConfig(betas=(0.5, 0.98)))
    with torch.no_grad():
        g1 = c2c(param())
    # primal steps (X by CG, then the network) at the old multiplier lower L
    l1 = augmented_lagrangian(op, y, r.x, g1, gam0, rho)
    assert l1 < l0
    # and the X step alone is the exact minimiser in X: CG solved the normal equations
    resid = op.gram(r.x) + rho * r.x - (op.adjoint(y) + rho * g0 - gam0)
    assert resid.norm() < 1e-2 * op.adjoint(y).norm()


def test_tiny_gip_beats_zero_filled_and_holdout_selects():
    d = simulate(cine_phantom(frames=4, n=32), coils=4, pattern="kt-random", accel=4, center=4, seed=0)
    p = {**GIP_PRESETS["gip-cpu"], "ch": 4, "k": 2}
    x, info = gip(d, preset=p, iters=800, stop="holdout", seed=0, ref=d.gt)
    zf = reconstruct(d, "zerofill", device="cpu").image
    m, mz = mri_metrics(x, d.gt), mri_metrics(zf, d.gt)
    assert m["psnr"] > mz["psnr"] + 2
    admm_rec = info["stages"][-1]
    assert admm_rec["stage"] == "admm" and len(admm_rec["val_loss"]) == admm_rec["outer"]
    sel = admm_rec["selected"]
    assert admm_rec["val_loss"][sel] == min(admm_rec["val_loss"])


def test_poisson2d_masks_meet_the_acceleration_with_a_square_centre():
    m = cartesian_mask(6, 48, 40, accel=8, center=6, pattern="poisson2d", seed=3)
    assert m.shape == (6, 48, 40)
    assert abs(m.numel() / m.sum() - 8) < 0.5
    assert torch.all(m[:, 21:27, 17:23] == 1)  # the 6×6 centre
    assert (m[0] != m[1]).any()  # a new draw per frame
    assert torch.equal(m, cartesian_mask(6, 48, 40, accel=8, center=6, pattern="poisson2d", seed=3))
    # denser near the centre than in the periphery (variable density)
    yy, xx = torch.meshgrid(torch.arange(48) - 24, torch.arange(40) - 20, indexing="ij")
    r = (yy**2 + xx**2).sqrt()
    assert m[:, r < 8].mean() > 2 * m[:, r > 16].mean()


def test_cli_gip_runs_the_stages_and_rejects_tddip_options(tmp_path, capsys):
    import numpy as np

    from deepprior.cli import main

    np.save(tmp_path / "s.npy", cine_phantom(frames=4, n=24).numpy())
    k = tmp_path / "k.h5"
    assert main(["mri", "simulate", str(tmp_path / "s.npy"), "-o", str(k), "--coils", "2", "--pattern", "poisson2d",
                 "--accel", "4", "--center", "4"]) == 0
    out, plot = tmp_path / "r.npy", tmp_path / "p.png"
    assert main(["mri", "recon", str(k), "--method", "gip", "--iters", "80", "-o", str(out), "--plot", str(plot)]) == 0
    cap = capsys.readouterr()
    assert "cnn 20 + gnn 10 + joint" in cap.out and "after pretraining PSNR" in cap.out
    assert "gip admm" in cap.err  # the progress bar names the stage
    assert np.load(out).shape == (4, 24, 24) and plot.stat().st_size > 0
    for argv, msg in [(["--manifold", "helix"], "--manifold"), (["--stop", "wmv"], "wmv")]:
        assert main(["mri", "recon", str(k), "-o", str(tmp_path / "x.npy"), "--method", "gip", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err


def test_admm_reuses_any_generator_tddip_included():
    """ADMM is generic: on a TDDIP parameterization (fitted in mini-batches of frames) its X is
    closer to the data than the network output it starts from."""
    from deepprior.fit import fit
    from deepprior.mri.tddip import build_tddip
    from deepprior.presets import TDDIP_PRESETS

    d = simulate(cine_phantom(frames=4, n=24), coils=2, pattern="kt-random", accel=3, center=4, seed=0)
    preset = {**TDDIP_PRESETS["tddip-cpu"], "net": {"name": "tddip", "channels": 8}, "mapnet": {"hidden": [16]}}
    param = build_tddip(4, d.shape, preset=preset)
    c2c = ChannelsToComplex(frames=4)
    y = d.kspace * 10
    fit(param, d.operator @ c2c, y, FitConfig(iters=20, lr=3e-3, batch=1, ema=None))
    from deepprior.params import render

    g0 = c2c(render(param, 1))
    r = admm(param, d.operator, y, rho=1e-2, outer=2, net_steps=2, net_lr=1e-4, net_config=FitConfig(batch=1))
    misfit = lambda x: float((d.operator(x) - y).norm())  # noqa: E731
    assert misfit(r.x) < 0.5 * misfit(g0) and r.outer_run == 2 and len(r.lagrangian) == 2


def test_gip_runs_on_radial_data_through_the_nufft():
    d = simulate(cine_phantom(frames=3, n=24), coils=2, spokes=12, seed=0)
    p = {**GIP_PRESETS["gip-cpu"], "ch": 4, "k": 2}
    x, info = gip(d, preset=p, iters=120, stop="holdout", seed=0, ref=d.gt)
    zf = reconstruct(d, "zerofill", device="cpu").image
    assert x.shape == (3, 24, 24) and torch.isfinite(x).all()
    assert mri_metrics(x, d.gt)["psnr"] > mri_metrics(zf, d.gt)["psnr"]  # ADMM's data consistency helps


def test_gnn_gradients_are_bit_reproducible():
    """The GNN's gather of neighbour features must have a fixed-order backward: with a frame that neighbours
    most frames, x[idx]'s backward (atomic adds across threads) gave different gradients run to run, and
    GIP fits that differed in the last digits (28.79 vs 28.76 dB on the same command)."""
    torch.manual_seed(0)
    net = GIPNet(6, (32, 32), ch=8, k=3)
    net.nn_idx = torch.tensor([[0, 2, 1], [1, 4, 5], [2, 5, 4], [3, 4, 5], [4, 1, 5], [5, 4, 2]])
    z = torch.rand(1, 8, 8, 8) * 0.1
    grads = []
    for _ in range(5):
        net.zero_grad()
        (net(z) * torch.linspace(0, 1, 32)).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None]))
    assert all(torch.equal(grads[0], g) for g in grads[1:])


@pytest.mark.parametrize("where", ["gnn", "admm"])
def test_gip_resumes_from_its_last_boundary_to_the_same_image(tmp_path, where):
    from deepprior.fit import Callback

    class Count(Callback):  # network steps in all; raises at `crash_at`, as a killed process would stop
        def __init__(self, crash_at=None):
            self.n, self.crash_at = 0, crash_at

        def on_step_end(self, state):
            self.n += 1
            if self.n == self.crash_at:
                raise RuntimeError("killed")

    d = simulate(cine_phantom(frames=4, n=16), coils=2, pattern="kt-random", accel=3, center=4, seed=0)
    p = {**GIP_PRESETS["gip-cpu"], "ch": 4, "k": 2, "admm": {**GIP_PRESETS["gip-cpu"]["admm"], "outer": 4}}
    kw = dict(preset=p, iters=80, stop="holdout", seed=3, device="cpu")
    count = Count()
    ref, ref_info = gip(d, **kw, callbacks=[count])
    assert ref_info["stages"][-1]["outer"] >= 3
    crash_at = 30 if where == "gnn" else count.n - 1  # cnn has 24 steps, gnn 12; the last outer iteration
    ck = tmp_path / "gip.ckpt"
    with pytest.raises(RuntimeError, match="killed"):
        gip(d, **kw, checkpoint=ck, callbacks=[Count(crash_at)])
    assert ck.is_file()
    x, info = gip(d, **kw, checkpoint=ck, resume=ck)
    assert torch.equal(x, ref)
    assert [s["stage"] for s in info["stages"]] == ["cnn", "gnn", "joint", "admm"]
    assert info["stages"][-1]["val_loss"] == ref_info["stages"][-1]["val_loss"]
    with pytest.raises(Exception, match="different run"):
        gip(d, **{**kw, "seed": 4}, resume=ck)
