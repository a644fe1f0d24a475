"""Long fits survive faults: checkpoints, resume (kill -9 included), Ctrl-C, divergence recovery."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import smooth_image
from deepprior.errors import ConfigError, InputError
from deepprior.fit import Callback, FitConfig, fit, load_checkpoint
from deepprior.fit.stopping import WindowedVariance
from deepprior.io import save_image
from deepprior.nets import build_net, make_code
from deepprior.operators import Identity
from deepprior.params import DIP

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _setup(seed=0):
    torch.manual_seed(seed)
    clean = torch.from_numpy(smooth_image(16, 16, 1)).permute(2, 0, 1)[None]
    y = (clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    net = build_net("skip", 8, 1, channels_down=[8, 8], channels_up=[8, 8], channels_skip=[2, 2])
    code = make_code("noise", 8, net.code_size(16, 16), generator=torch.Generator().manual_seed(2))
    param = DIP(net, code, (16, 16), reg_noise_std=0.03, generator=torch.Generator().manual_seed(3))
    cfg = FitConfig(iters=60, lr=0.01, ema=0.9, backtrack=True, backtrack_every=10, lr_schedule="step", lr_step=30)
    return param, y, clean, cfg


class _Crash(Callback):
    """Simulates a crash (the process dying) after iteration ``at``."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, state):
        if state.it == self.at:
            raise RuntimeError("simulated crash")


@pytest.mark.parametrize("schedule", ["step", "anneal"])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, schedule):
    param, y, clean, cfg = _setup()
    cfg = cfg.replace(lr_schedule=schedule)
    ref = fit(param, Identity(), y, cfg, gt=clean, callbacks=[WindowedVariance(window=5, patience=1000)])

    ck = tmp_path / "run.ckpt"
    param, y, clean, cfg = _setup()
    cfg = cfg.replace(lr_schedule=schedule)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(param, Identity(), y, cfg, gt=clean, callbacks=[WindowedVariance(window=5, patience=1000), _Crash(37)],
            checkpoint=ck, checkpoint_every=25)
    assert load_checkpoint(ck)["it"] == 25  # the last checkpoint before the crash: 12 iterations are lost

    param, y, clean, cfg = _setup(seed=123)  # a fresh process: nothing carried over but the file
    cfg = cfg.replace(lr_schedule=schedule)
    wmv = WindowedVariance(window=5, patience=1000)
    res = fit(param, Identity(), y, cfg, gt=clean, callbacks=[wmv], resume=ck)
    assert torch.equal(res.image, ref.image) and torch.equal(res.ema, ref.ema)
    assert res.history["loss"] == ref.history["loss"] and res.history["psnr"] == ref.history["psnr"]
    assert res.best_iter == ref.best_iter and res.iters_run == 60
    assert len(wmv.scores) == 60 - 5 + 1  # the detector's window and scores were restored too


def test_checkpoint_refuses_another_run_and_untrusted_files(tmp_path):
    param, y, clean, cfg = _setup()
    ck = tmp_path / "a.ckpt"
    fit(param, Identity(), y, cfg.replace(iters=10), checkpoint=ck, checkpoint_every=5)
    param, y, clean, cfg = _setup()
    with pytest.raises(ConfigError, match="different run"):
        fit(param, Identity(), y, cfg.replace(iters=10, lr=0.02), resume=ck)
    # a pickle that would run code when unpickled is refused by weights_only loading
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": "deepprior-fit-1", "x": Evil()}, tmp_path / "evil.ckpt")
    with pytest.raises(InputError, match="not a readable"):
        load_checkpoint(tmp_path / "evil.ckpt")
    assert not marker.exists()
    (tmp_path / "junk.ckpt").write_bytes(b"\x00" * 50)
    with pytest.raises(InputError):
        load_checkpoint(tmp_path / "junk.ckpt")
    with pytest.raises(InputError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_learning_rate_spike_is_recovered_with_a_lower_rate():
    param, y, clean, cfg = _setup()
    cfg = cfg.replace(iters=200, lr_schedule=None, backtrack_lr_factor=0.5)

    class Spike(Callback):
        def on_step_end(self, state):
            if state.it == 104:  # a wild learning rate for one step, as from a bad schedule
                for g in state.optimizer.param_groups:
                    g["lr"] = 50.0
            elif state.it == 105:
                for g in state.optimizer.param_groups:
                    g["lr"] = min(g["lr"], 0.01)

    res = fit(param, Identity(), y, cfg, gt=clean, callbacks=[Spike()])
    assert res.backtracks >= 1
    assert res.history["lr"][-1] <= 0.005 + 1e-12  # restored, then lowered by the factor
    assert res.history["psnr_ema"][-1] > 20 and np.isfinite(res.history["loss"]).all()


def _write_img(tmp_path):
    p = tmp_path / "noisy.png"
    save_image(p, smooth_image(32, 32, 1))
    return p


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "deepprior.cli", *map(str, args)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_ckpt(ck, min_it, proc, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if ck.exists():
            try:
                if load_checkpoint(ck)["it"] >= min_it:
                    return
            except InputError:
                pass  # being replaced right now
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


ITERS = 150


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    noisy = _write_img(d)
    args = ["denoise", noisy, "--preset", "denoise-fast", "--iters", ITERS, "--seed", "5", "-q"]
    p = _cli(*args, "-o", d / "ref.png")
    assert p.wait(120) == 0, p.communicate()
    return args, (d / "ref.png").read_bytes()


@pytest.mark.parametrize("how", ["kill9", "ctrl-c"])
def test_killed_cli_run_resumes_to_the_same_image(tmp_path, how, uninterrupted):
    args, ref = uninterrupted
    out = tmp_path / "out.png"
    ck = tmp_path / "out.png.ckpt"
    p = _cli(*args, "-o", out, "--checkpoint-every", "10")
    _wait_ckpt(ck, 30, p)
    if how == "kill9":
        p.kill()  # SIGKILL: no chance to clean up
        p.wait(30)
        assert not out.exists()
    else:
        p.send_signal(signal.SIGINT)
        assert p.wait(60) == 130
        err = p.stderr.read()
        assert "interrupted after" in err and "--resume" in err and "Traceback" not in err
        assert out.exists()  # the current image was written; --resume replaces it
    done_at = load_checkpoint(ck)["it"]
    assert 30 <= done_at < ITERS
    p = _cli(*args, "-o", out, "--checkpoint-every", "10", "--resume")
    assert p.wait(120) == 0, p.communicate()
    assert out.read_bytes() == ref  # bit-identical to the uninterrupted run


def test_cli_resume_and_checkpoint_errors(tmp_path, capsys):
    from deepprior.cli import main

    noisy = _write_img(tmp_path)
    out = tmp_path / "o.png"
    assert main(["denoise", str(noisy), "-o", str(out), "--resume", "--iters", "5"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    (tmp_path / "o.png.ckpt").write_bytes(b"x")
    assert main(["denoise", str(noisy), "-o", str(out), "--checkpoint-every", "5", "--iters", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--resume" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert main(["denoise", str(noisy), "-o", str(out), "--resume", "--iters", "5"]) == 2
    err = capsys.readouterr().err.strip()
    # the run's first line (what runs, on what device) came before the checkpoint was opened; the error is one line
    lines = err.splitlines()
    assert "not a readable deepprior checkpoint" in lines[-1] and [ln[:6] for ln in lines].count("error:") == 1
    assert len(lines) == 2 and lines[0].startswith("denoise: dip, preset fast on cpu")
    assert not out.exists()


def test_memory_guard_names_a_setting_that_fits(monkeypatch, tmp_path, capsys):
    from deepprior import resources
    from deepprior.cli import main
    from deepprior.errors import ResourceError
    from deepprior.tasks import denoise_problem, solve

    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    p = denoise_problem(x, None, sigma=0.1)
    # 0.8 GiB free: the reference preset (estimate ≈ 1.2 GiB) does not fit, denoise-fast (≈ 0.65 GiB) does
    monkeypatch.setattr(resources, "available_bytes", lambda device: int(0.8 * resources.GIB))
    with pytest.raises(ResourceError, match="--preset denoise-fast fits"):
        solve(p, preset="denoise", iters=1, device="cpu")
    monkeypatch.setattr(resources, "available_bytes", lambda device: int(0.35 * resources.GIB))
    with pytest.raises(ResourceError, match=r"crop or downscale the image to about \d+×\d+") as e:
        solve(p, preset="denoise", iters=1, device="cpu")
    side = int(str(e.value).split("about ")[-1].split("×")[0])
    q = denoise_problem(x[..., :side, :side], None, sigma=0.1)  # the suggested crop does fit
    from deepprior.tasks import build_dip, resolve_preset

    need = resources.estimate_fit_bytes(build_dip(q, resolve_preset(q, "denoise")[1]), 3 * side * side * 4)
    assert need <= 0.9 * 0.35 * resources.GIB, (side, need)
    save_image(tmp_path / "big.png", x[0].permute(1, 2, 0).numpy())
    assert main(["denoise", str(tmp_path / "big.png"), "-o", str(tmp_path / "o.png"), "-q", "--preset", "denoise"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "GiB" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


def test_memory_estimate_covers_the_measured_peak():
    code = """
import torch
from deepprior.tasks import denoise_problem, solve, build_dip, resolve_preset
from deepprior.resources import estimate_fit_bytes
def status(key):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))
p = denoise_problem(torch.rand(1, 3, 256, 256), None, sigma=0.1)
est = estimate_fit_bytes(build_dip(p, resolve_preset(p, "denoise-fast")[1]), 3 * 256 * 256 * 4)
open("/proc/self/clear_refs", "w").write("5")  # reset the peak-RSS mark, so earlier peaks do not hide this one
base = status("VmRSS")
solve(p, preset="denoise-fast", iters=2, device="cpu")
print(est, status("VmHWM") - base)
"""
    r = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    est, used = map(int, r.stdout.split())
    assert used <= est <= 3 * used, (est, used)  # conservative, but not absurdly so
