"""Motion correction: the rigid transform's exactness (adjoint, inverse, accuracy against an analytic rotation), the
multi-shot operator's adjoint (Cartesian and radial), shot layouts, the true motion as a stationary point and the
motion-free reduction, recovery of a known jump by the DIP joint estimate, the CLI round trip and its bad inputs."""

import math
import re

import numpy as np
import pytest
import torch

from deepprior.cli import main
from deepprior.errors import ConfigError, InputError
from deepprior.fit import FitConfig, fit
from deepprior.mri.data import MRIData, simulate
from deepprior.mri.io import load_data, save_data
from deepprior.mri.methods import reconstruct
from deepprior.mri.metrics import mri_metrics
from deepprior.mri.motion import MotionSENSE, RigidMotion, WithMotion, motion_curve, rigid, rigid_adjoint, simulate_motion
from deepprior.mri.motion.recon import cg_moco, dip_moco, known_motion, motion_operator, motion_rmse
from deepprior.mri.operators import CartesianSENSE
from deepprior.mri.shots import shot_labels
from deepprior.operators import Identity
from deepprior.params import Pixels

G = torch.Generator().manual_seed(0)


def _cplx(*shape):
    return torch.complex(torch.randn(*shape, generator=G), torch.randn(*shape, generator=G))


def _phantom(n=48):
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    body = ((xx**2 / 0.5 + yy**2 / 0.8) < 0.6).float() * (1 + 0.5 * (xx > 0.1).float())
    return body + 0.5 * ((xx + 0.2) ** 2 + (yy - 0.2) ** 2 < 0.05).float()


def test_rigid_transform_is_unitary_with_an_exact_adjoint():
    m = torch.tensor([[0.0, 0, 0], [1.7, -2.2, 4.0], [-3.1, 0.4, -11.0]])
    x, z = _cplx(32, 40), _cplx(3, 32, 40)
    lhs = torch.vdot(rigid(x, m).flatten(), z.flatten())
    rhs = torch.vdot(x.flatten(), rigid_adjoint(z, m).flatten())
    assert abs(lhs - rhs) < 1e-4 * abs(lhs)
    y = rigid(x, m)
    assert torch.allclose(y.norm(dim=(-2, -1)), x.norm().expand(3), rtol=1e-5)  # no energy lost or made
    assert torch.allclose(rigid_adjoint(y[1:2], m[1:2]), x, atol=1e-4)  # the adjoint undoes it
    assert torch.allclose(y[0], x, atol=1e-5)  # zero motion is the identity


@pytest.mark.parametrize("deg", [2.0, 10.0, 30.0])
def test_rotation_matches_the_analytic_rotation_of_a_smooth_object(deg):
    """Gaussians (nearly band-limited) rotated by the three-pass shear vs the same Gaussians evaluated at the
    analytically rotated and shifted coordinates: the error is at float precision, not an interpolator's."""
    n = 64
    yy, xx = torch.meshgrid(torch.arange(n) - n // 2.0, torch.arange(n) - n // 2.0, indexing="ij")
    obj = lambda u, v: torch.exp(-((u - 5) ** 2 + (v + 3) ** 2) / 18) + 0.5 * torch.exp(-(u + 8) ** 2 / 8 - (v - 6) ** 2 / 32)  # noqa: E731
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    u, v = xx - 1.3, yy - 0.7  # the shift, then the inverse rotation (counter-clockwise on screen)
    ref = obj(c * u - s * v, s * u + c * v)
    out = rigid(obj(xx, yy).to(torch.complex64), torch.tensor([[1.3, 0.7, deg]]))[0]
    assert float((out - ref).norm() / ref.norm()) < 1e-4
    assert float(out.imag.abs().max()) < 1e-4


def test_rotations_beyond_45_degrees_are_refused():
    with pytest.raises(InputError, match="45"):
        MotionSENSE(torch.zeros(8, 8, dtype=torch.long), None, torch.tensor([[0.0, 0, 60]]))


@pytest.mark.parametrize("radial", [False, True])
def test_motion_operator_adjoint(radial):
    maps = simulate(torch.rand(1, 16, 16), coils=3, accel=1, seed=0).maps
    m = torch.tensor([[0.0, 0, 0], [0.5, -1, 3], [2, 1, -4], [-1, 0, 1]])
    if radial:
        from deepprior.mri.sampling import golden_angle_radial

        traj = golden_angle_radial(4, 2, 16).reshape(-1, 2)
        a = MotionSENSE(torch.arange(4).repeat_interleave(traj.shape[0] // 4), maps, m, traj=traj, shape=(16, 16))
    else:
        a = MotionSENSE(shot_labels(16, 16, 4, "sequential", accel=2, center=4), maps, m)
    x = _cplx(1, 16, 16)
    y = _cplx(*a.output_shape((1, 16, 16)))
    lhs, rhs = torch.vdot(a(x).flatten(), y.flatten()), torch.vdot(x.flatten(), a.adjoint(y).flatten())
    assert abs(lhs - rhs) < 1e-4 * abs(lhs)


def test_zero_motion_is_the_plain_sense_operator():
    d = simulate(torch.rand(1, 16, 16), coils=2, accel=1, seed=0)
    lab = shot_labels(16, 16, 4, "interleaved")
    x = _cplx(1, 16, 16)
    assert torch.allclose(MotionSENSE(lab, d.maps, torch.zeros(4, 3))(x), CartesianSENSE(torch.ones(1, 16, 16), d.maps)(x),
                          atol=1e-5)


@pytest.mark.parametrize("order", ["interleaved", "sequential", "centre-out"])
@pytest.mark.parametrize("accel", [1, 2])
def test_shot_layouts_tile_the_acquired_lines(order, accel):
    lab = shot_labels(8, 64, 16, order, accel=accel, center=8)
    lines = lab[0]
    acquired = (lines >= 0).sum().item()
    assert acquired == (64 if accel == 1 else 32 + 4)  # every other line + the centre's odd lines
    sizes = torch.bincount(lines[lines >= 0], minlength=16)
    assert int(sizes.max() - sizes.min()) <= 1 and bool((lab == lab[0]).all())  # whole lines, balanced
    if order == "centre-out":
        assert lines[32] == 0
    if order == "interleaved":
        assert len(set(lines[lines >= 0][:16].tolist())) == 16


def test_shots_that_do_not_tile_are_refused():
    with pytest.raises(InputError, match="do not tile"):
        shot_labels(8, 8, 9, "interleaved")
    d = simulate_motion(torch.rand(16, 16), coils=1, shots=4, seed=0)
    bad = d.shots.clone()
    bad[:, 3] = -1  # an acquired line without a shot
    with pytest.raises(InputError, match="do not tile"):
        MRIData(d.kspace, d.mask, d.maps, d.gt, shots=bad)
    with pytest.raises(InputError, match="expected \\(4, 3\\)"):
        MRIData(d.kspace, d.mask, d.maps, d.gt, shots=d.shots, motion=torch.zeros(5, 3))


def test_motion_curves_are_seeded_with_the_asked_peak():
    for kind in ("jumps", "walk"):
        a = motion_curve(kind, 16, max_shift=5, max_rot=3, seed=1)
        assert torch.equal(a, motion_curve(kind, 16, max_shift=5, max_rot=3, seed=1))
        assert a[0].abs().sum() == 0
        assert torch.allclose(a.abs().max(0).values, torch.tensor([5.0, 5.0, 3.0]))
    assert motion_curve("none", 4).abs().sum() == 0


def test_true_motion_explains_the_data_and_reduces_to_the_motion_free_problem():
    img = _phantom(32)
    m = motion_curve("jumps", 8, max_shift=3, max_rot=3, seed=0)
    moved = simulate_motion(img, coils=4, shots=8, motion=m, snr_db=None, seed=0)
    still = simulate_motion(img, coils=4, shots=8, motion="none", snr_db=None, seed=0)
    assert torch.allclose(moved.gt, still.gt)
    # the truth fits the data exactly and is a stationary point of the joint misfit
    rm = RigidMotion(8, init=m)
    a = motion_operator(moved, rm)
    loss = (a(moved.gt) - moved.kspace).abs().square().sum()
    loss.backward()
    assert float(loss.detach()) < 1e-8 * float(moved.kspace.abs().square().sum())
    assert float(rm.free.grad.abs().max()) < 1e-4
    # CG-SENSE through the true motion = CG-SENSE of the motion-free acquisition
    x = known_motion(moved, m, iters=30)
    ref = reconstruct(still, "cgsense", iters=30, device="cpu").image
    assert mri_metrics(x, ref)["psnr"] > 60
    assert reconstruct(moved, "cgsense", device="cpu", motion=m).metrics["psnr"] > 60
    assert reconstruct(moved, "cgsense", device="cpu").metrics["psnr"] < 40  # uncorrected


def test_dip_joint_estimate_recovers_a_known_jump():
    m = torch.zeros(4, 3)
    m[2:] = torch.tensor([2.0, -2.0, 2.0])
    d = simulate_motion(_phantom(), coils=4, shots=4, motion=m, snr_db=40, seed=0)
    p = {"net": {"name": "conv_decoder", "channels": 32, "layers": 4, "need_sigmoid": False},
         "code": {"kind": "noise", "scale": 0.1}, "fit": {"iters": 600, "lr": 0.01, "ema": 0.99},
         "motion": {"lr_scale": 2.5, "init": "zero"}, "dc_iters": 10}
    x, est, info = dip_moco(d, preset=p, stop="none", device="cpu", seed=0)
    err = motion_rmse(est, d.motion)
    assert err["shift_px"] < 0.1 and err["rot_deg"] < 0.2, err
    uncorrected = reconstruct(d, "cgsense", device="cpu").metrics["psnr"]
    assert mri_metrics(x, d.gt)["psnr"] > uncorrected + 15
    assert info["motion_trace"].shape == (600, 4, 3)


def test_classical_joint_estimate_recovers_a_small_jump():
    m = torch.zeros(4, 3)
    m[3] = torch.tensor([0.5, 0.0, 0.5])
    d = simulate_motion(_phantom(32), coils=4, shots=4, motion=m, snr_db=None, seed=0)
    x, est, info = cg_moco(d, levels=(1,), outer=10)
    before = motion_rmse(torch.zeros(4, 3), d.motion)
    after = motion_rmse(est, d.motion)
    assert after["shift_px"] < 0.5 * before["shift_px"] and after["rot_deg"] < 0.5 * before["rot_deg"]
    assert len(info["rounds"]) == 10


def test_motion_has_its_own_learning_rate_in_the_loop():
    img = Pixels(torch.zeros(1, 1, 4, 4))
    mo = RigidMotion(3)
    param = WithMotion(img, mo, motion_lr=0.1)
    seen = {}

    class Spy:
        def on_fit_start(self, state):
            seen["lrs"] = [g["lr"] for g in state.optimizer.param_groups]

        def __getattr__(self, name):
            return lambda *a, **k: None

    fit(param, Identity(), torch.ones(1, 1, 4, 4), FitConfig(iters=1, lr=0.5, ema=None), callbacks=[Spy()])
    assert seen["lrs"] == [0.5, 0.05]
    with pytest.raises(ConfigError, match="L-BFGS"):
        fit(param, Identity(), torch.ones(1, 1, 4, 4), FitConfig(iters=1, optimizer="lbfgs", ema=None))


def test_multishot_data_round_trip(tmp_path):
    d = simulate_motion(torch.rand(16, 16), coils=2, shots=4, seed=0, accel=2, center=4)
    save_data(tmp_path / "d.h5", d)
    e = load_data(tmp_path / "d.h5")
    assert torch.equal(e.shots, d.shots) and torch.equal(e.motion, d.motion) and torch.equal(e.kspace, d.kspace)


def test_radial_spoke_groups():
    d = simulate_motion(_phantom(32), coils=2, shots=4, spokes=32, max_shift=2, max_rot=2, seed=0)
    assert d.radial and d.shots.shape == (d.kspace.shape[-1],)
    x = known_motion(d, d.motion, iters=20)
    assert mri_metrics(x, d.gt)["psnr"] > reconstruct(d, "cgsense", device="cpu").metrics["psnr"]
    with pytest.raises(InputError, match="divisible"):
        simulate_motion(_phantom(32), shots=3, spokes=32, seed=0)


def _psnr(out):
    return float(re.search(r"\| PSNR ([0-9.]+) dB", out.strip().splitlines()[-1]).group(1))


def test_cli_round_trip(tmp_path, capsys):
    img = tmp_path / "img.npy"
    np.save(img, _phantom(32).numpy()[None])
    d = tmp_path / "d.h5"
    assert main(["mri", "simulate", str(img), "--coils", "4", "--motion", "jumps", "--max-shift", "2", "--max-rot", "2",
                 "--shots", "8", "--seed", "0", "-o", str(d)]) == 0
    assert "8 interleaved shots" in capsys.readouterr().out
    assert main(["mri", "recon", str(d), "--method", "cgsense", "-o", str(tmp_path / "a.npy")]) == 0
    plain = _psnr(capsys.readouterr().out)
    mo, png = tmp_path / "m.csv", tmp_path / "m.png"
    assert main(["mri", "recon", str(d), "--method", "dip-moco", "--iters", "40", "-q", "-o", str(tmp_path / "b.npy"),
                 "--motion-out", str(mo), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "motion: 8 shots, RMSE" in out and _psnr(out) > 0
    est = np.loadtxt(mo, delimiter=",", skiprows=1)
    assert est.shape == (8, 3) and png.stat().st_size > 1000
    # the truth as a known motion: the motion-corrected CG-SENSE beats the plain one
    truth = tmp_path / "truth.npy"
    np.save(truth, load_data(d).motion.numpy())
    assert main(["mri", "recon", str(d), "--method", "cgsense", "--motion", str(truth), "-o", str(tmp_path / "c.npy")]) == 0
    assert _psnr(capsys.readouterr().out) > plain + 10
    # the motion-free ceiling: --motion none, --method dip
    assert main(["mri", "simulate", str(img), "--coils", "4", "--motion", "none", "--shots", "8", "-o",
                 str(tmp_path / "n.h5")]) == 0
    assert main(["mri", "recon", str(tmp_path / "n.h5"), "--method", "cgsense", "-o", str(tmp_path / "n.npy")]) == 0
    assert _psnr(capsys.readouterr().out) > plain + 10


@pytest.mark.parametrize("sim, rec, msg", [
    (["--shots", "40"], None, "do not tile"),
    (["--shots", "8", "--pattern", "random"], None, "drop --pattern"),
    (None, ["--motion", "{bad}"], "has 5 shots but the data have 8"),
    (None, ["--method", "cgsense", "--motion-out", "{tmp}/m.csv"], "--motion-out applies"),
    (None, ["--method", "lps", "--motion", "{bad}"], "--motion applies to"),
])
def test_cli_bad_input(tmp_path, capsys, sim, rec, msg):
    img = tmp_path / "img.npy"
    np.save(img, _phantom(32).numpy())
    np.save(tmp_path / "bad.npy", np.zeros((5, 3)))
    d, out = tmp_path / "d.h5", tmp_path / "x.npy"
    base = ["mri", "simulate", str(img), "--coils", "2", "--motion", "walk", "-o", str(d)]
    if sim is not None:
        assert main([*base, *sim]) == 2
        assert not d.exists()
    else:
        assert main([*base, "--shots", "8"]) == 0
        capsys.readouterr()
        args = [a.format(bad=tmp_path / "bad.npy", tmp=tmp_path) for a in rec]
        method = [] if "--method" in args else ["--method", "cg-moco"]
        assert main(["mri", "recon", str(d), *method, "-o", str(out), *args]) == 2
        assert not out.exists()
    err = capsys.readouterr().err.strip()
    assert msg in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_cli_shot_options_need_motion(tmp_path, capsys):
    img = tmp_path / "img.npy"
    np.save(img, _phantom(16).numpy())
    assert main(["mri", "simulate", str(img), "--shots", "4", "-o", str(tmp_path / "d.h5")]) == 2
    assert "apply only with --motion" in capsys.readouterr().err


def test_moco_methods_need_multishot_data():
    d = simulate(torch.rand(1, 16, 16), coils=2, accel=2, center=4, seed=0)
    with pytest.raises(InputError, match="multi-shot"):
        reconstruct(d, "cg-moco", device="cpu")


def test_radial_methods_run_at_full_resolution_without_holdout():
    d = simulate_motion(_phantom(32), coils=2, shots=4, spokes=32, max_shift=1, max_rot=1, seed=0)
    r = reconstruct(d, "cg-moco", device="cpu")
    assert r.info["levels"] == [1] and r.info["motion"].shape == (4, 3)
    p = {"net": {"name": "conv_decoder", "channels": 8, "layers": 3, "need_sigmoid": False},
         "code": {"kind": "noise", "scale": 0.1}, "fit": {"iters": 5, "lr": 0.01, "ema": None},
         "motion": {"lr_scale": 1.0, "init": "zero"}}
    x, m, info = dip_moco(d, preset=p, device="cpu")
    assert info["stop"] == "none" and x.shape == (1, 32, 32)
    with pytest.raises(ConfigError, match="radial"):
        dip_moco(d, preset=p, stop="holdout", device="cpu")
