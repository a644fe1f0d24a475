import importlib
import math
import re

import numpy as np
import pytest
import torch

from conftest import smooth_image
from deepprior import denoise
from deepprior.errors import ConfigError, DivergenceError
from deepprior.fit import Callback, FitConfig, fit
from deepprior.metrics import psnr
from deepprior.nets import build_net, make_code
from deepprior.operators import Identity, Mask
from deepprior.params import DIP, Pixels
from deepprior.regularizers import TV
from deepprior.tasks import add_noise, denoise_problem, solve, to_tensor

SMALL_SKIP = {"name": "skip", "channels_down": [16] * 4, "channels_up": [16] * 4, "channels_skip": [4] * 4,
              "upsample_mode": "bilinear"}
SMALL_PRESET = {"net": SMALL_SKIP, "code": {"kind": "noise", "channels": 8, "scale": 0.1}, "reg_noise_std": 1 / 30,
                "fit": {"iters": 250, "lr": 0.01, "ema": 0.99, "backtrack": True}}


def _noisy_case(sigma=25 / 255, c=1, seed=0):
    clean = to_tensor(smooth_image(32, 32, c, seed))
    return clean, add_noise(clean, sigma, seed=seed)


def test_dip_denoising_raises_psnr():
    clean, noisy = _noisy_case()
    r = solve(denoise_problem(noisy, clean, sigma=25 / 255), preset=SMALL_PRESET, seed=0, device="cpu")
    base = psnr(noisy, clean)
    assert r.metrics["psnr"] > base + 4.0, (base, r.metrics)
    # The history is per iteration and the EMA is what is delivered.
    assert len(r.fit.history["psnr"]) == 250 and r.fit.iters_run == 250
    assert torch.equal(r.fit.output, r.fit.ema)


def test_dip_is_seeded():
    clean, noisy = _noisy_case()
    p = denoise_problem(noisy, clean)
    a = solve(p, preset=SMALL_PRESET, seed=3, device="cpu", iters=5)
    b = solve(p, preset=SMALL_PRESET, seed=3, device="cpu", iters=5)
    c = solve(p, preset=SMALL_PRESET, seed=4, device="cpu", iters=5)
    assert np.array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("method", ["tv", "tv-aniso", "wavelet"])
def test_classical_baselines_raise_psnr(method):
    clean, noisy = _noisy_case(c=3)
    r = solve(denoise_problem(noisy, clean, sigma=25 / 255), method=method, device="cpu")
    assert r.metrics["psnr"] > psnr(noisy, clean) + 3.0, r.metrics


def test_tv_inpainting_fills_holes():
    clean = to_tensor(smooth_image(32, 32, 1))
    mask = (torch.rand(32, 32, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    from deepprior.tasks import inpaint_problem

    p = inpaint_problem(clean, mask, clean)
    r = solve(p, method="tv", device="cpu")
    assert r.metrics["psnr"] > psnr(p.degraded, clean) + 10


def test_ema_matches_manual():
    y = torch.rand(1, 1, 4, 4)
    seen = []

    class Grab(Callback):
        def on_step_end(self, state):
            seen.append(state.x.clone())

    r = fit(Pixels(torch.zeros_like(y)), Identity(), y, FitConfig(iters=20, lr=0.1, ema=0.9, backtrack=False),
            callbacks=[Grab()])
    ema = seen[0]
    for x in seen[1:]:
        ema = 0.9 * ema + 0.1 * x
    assert torch.allclose(r.ema, ema, atol=1e-6)


def test_the_loops_fused_adam_takes_the_same_steps_as_torchs_reference_adam():
    """The loop runs the fused Adam kernel: the iterates are those of the per-tensor implementation, to rounding."""
    y = torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    seen = []

    class Grab(Callback):
        def on_step_end(self, state):
            seen.append(state.x.clone())
            assert state.optimizer.defaults["fused"]

    fit(Pixels(torch.zeros_like(y)), Identity(), y, FitConfig(iters=15, lr=0.05, betas=(0.8, 0.95), ema=None,
                                                            backtrack=False), callbacks=[Grab()])
    x = torch.zeros_like(y, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.05, betas=(0.8, 0.95), foreach=False)
    for got in seen:  # Pixels' output is the parameter itself: the step's update is in it
        opt.zero_grad()
        (x - y).square().mean().backward()
        opt.step()
        assert torch.allclose(got, x.detach(), atol=1e-6)
    assert not torch.equal(seen[-1], seen[0])


def test_callback_can_stop():
    class StopAt(Callback):
        def on_step_end(self, state):
            state.stop = state.it == 6

    r = fit(Pixels(torch.zeros(1, 1, 4, 4)), Identity(), torch.ones(1, 1, 4, 4), FitConfig(iters=100, ema=None),
            callbacks=[StopAt()])
    assert r.iters_run == 7 and len(r.history["loss"]) == 7


def test_lbfgs_converges_on_tv_denoising():
    clean, noisy = _noisy_case()
    cfg = FitConfig(iters=30, lr=1.0, optimizer="lbfgs", ema=None, backtrack=False, reg_weight=0.05)
    r = fit(Pixels(noisy), Identity(), noisy, cfg, regularizer=TV(), gt=clean)
    assert r.history["loss"][-1] < r.history["loss"][0]
    assert psnr(r.image, clean) > psnr(noisy, clean) + 2


class _NaNAt(torch.nn.Module):
    """Wraps a parameterization and returns NaN at chosen calls: fault injection."""

    def __init__(self, inner, bad_calls):
        super().__init__()
        self.inner, self.bad, self.calls = inner, set(bad_calls), 0

    def forward(self, perturb=True):
        self.calls += 1
        x = self.inner(perturb)
        return x * float("nan") if self.calls in self.bad else x


def _tiny_dip(seed=0):
    torch.manual_seed(seed)
    net = build_net("skip", 4, 1, channels_down=[8] * 3, channels_up=[8] * 3, channels_skip=[2] * 3)
    z = make_code("noise", 4, net.code_size(16, 16), generator=torch.Generator().manual_seed(seed))
    return DIP(net, z, (16, 16))


def test_backtracking_restores_after_nan():
    y = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    param = _NaNAt(_tiny_dip(), bad_calls={15})
    backtracks = []

    class Seen(Callback):
        def on_backtrack(self, state):
            backtracks.append(state.it)

    r = fit(param, Identity(), y, FitConfig(iters=30, lr=0.01, backtrack_every=10), callbacks=[Seen()])
    assert r.backtracks == 1 and backtracks
    assert r.iters_run == 30 and all(math.isfinite(v) for v in r.history["loss"])
    assert torch.isfinite(r.image).all() and torch.isfinite(r.ema).all()


def test_backtracking_restores_optimizer_and_batchnorm_state():
    """After a restore, parameters, Adam moments and BN running stats equal the snapshot."""
    y = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    inner = _tiny_dip()
    snapshots = {}

    class Spy(Callback):
        def on_step_end(self, state):
            if state.it == 9:  # the snapshot is taken after step index 9 (every 10)
                snapshots["param"] = {k: v.clone() for k, v in state.param.state_dict().items()}
                st = state.optimizer.state_dict()["state"]
                snapshots["exp_avg"] = [s["exp_avg"].clone() for s in st.values()]

        def on_backtrack(self, state):
            sd = state.param.state_dict()
            snapshots["same_params"] = all(torch.equal(sd[k], v) for k, v in snapshots["param"].items())
            st = state.optimizer.state_dict()["state"]
            snapshots["same_adam"] = all(torch.equal(s["exp_avg"], e) for s, e in zip(st.values(), snapshots["exp_avg"]))

    param = _NaNAt(inner, bad_calls={14})
    fit(param, Identity(), y, FitConfig(iters=20, backtrack_every=10), callbacks=[Spy()])
    assert snapshots["same_params"] and snapshots["same_adam"]
    assert any("running_mean" in k for k in snapshots["param"])  # BN statistics are part of the snapshot


def test_divergence_gives_up_with_clear_error():
    y = torch.rand(1, 1, 16, 16)
    param = _NaNAt(_tiny_dip(), bad_calls=set(range(1, 1000)))
    with pytest.raises(DivergenceError, match="diverged"):
        fit(param, Identity(), y, FitConfig(iters=10, max_backtracks=3))


def test_fit_config_validation():
    for bad in ({"iters": 0}, {"lr": -1}, {"optimizer": "sgd"}, {"ema": 1.5}, {"loss": "huber"}, {"lr_schedule": "x"}):
        with pytest.raises(ConfigError):
            FitConfig(**bad)
    with pytest.raises(ConfigError, match="unknown fit option"):
        FitConfig().replace(foo=1)


def test_anneal_schedule_holds_the_rate_then_decays_to_one_percent():
    y = torch.full((1, 1, 8, 8), 0.5)
    cfg = FitConfig(iters=40, lr=0.1, ema=None, lr_schedule="anneal", anneal_frac=0.5, backtrack=False)
    lr = fit(Pixels(torch.zeros_like(y)), Identity(), y, cfg).history["lr"]
    assert lr[:20] == [0.1] * 20  # the constant phase keeps 1 − anneal_frac of the steps
    assert all(a > b for a, b in zip(lr[19:], lr[20:]))
    assert lr[-1] == pytest.approx(1e-3)
    for bad in ({"anneal_frac": 0}, {"anneal_frac": 1.5}, {"time_budget": 0}):
        with pytest.raises(ConfigError):
            cfg.replace(**bad)


def test_anneal_schedule_follows_the_clock_when_the_time_budget_runs_out_first():
    """A fit cut short by its time budget still ends annealed: progress is the steps or the clock, whichever is
    further along (a microsecond budget: every step is past it)."""
    y = torch.full((1, 1, 8, 8), 0.5)
    cfg = FitConfig(iters=40, lr=0.1, ema=None, lr_schedule="anneal", anneal_frac=0.5, backtrack=False)
    lr = fit(Pixels(torch.zeros_like(y)), Identity(), y, cfg.replace(time_budget=1e-6)).history["lr"]
    assert lr == pytest.approx([1e-3] * 40)
    assert fit(Pixels(torch.zeros_like(y)), Identity(), y, cfg.replace(time_budget=1e6)).history["lr"][:20] == [0.1] * 20


def test_anneal_schedule_keeps_a_backtracking_reduction():
    """Chained, as StepLR: a rate halved by divergence backtracking stays halved through the decay."""
    from deepprior.fit.schedule import BudgetAnneal

    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0)
    s = BudgetAnneal(opt, iters=10, frac=0.5)
    for _ in range(3):
        s.step()
    opt.param_groups[0]["lr"] *= 0.5
    for _ in range(7):
        s.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * 0.01)


def test_inpainting_loss_ignores_missing_pixels():
    """The data term only sees known pixels: changing hidden pixels of y changes nothing."""
    y = torch.rand(1, 1, 8, 8)
    m = torch.zeros(8, 8)
    m[:, :4] = 1
    op = Mask(m)
    y2 = y.clone()
    y2[..., 4:] = 0.123
    r1 = fit(Pixels(torch.zeros_like(y)), op, op(y), FitConfig(iters=5, ema=None))
    r2 = fit(Pixels(torch.zeros_like(y)), op, op(y2), FitConfig(iters=5, ema=None))
    assert torch.equal(r1.image, r2.image)


def test_api_one_liner_grayscale_and_rgb():
    clean, noisy = _noisy_case(c=3)
    img = noisy[0].permute(1, 2, 0).clamp(0, 1).numpy()
    r = denoise(img, sigma=25 / 255, preset=SMALL_PRESET, iters=3, device="cpu")
    assert r.image.shape == (32, 32, 3) and r.image.dtype == np.float32
    r = denoise((img[..., 0] * 255).astype(np.uint8), iters=2, net="deep_decoder", device="cpu")
    assert r.image.shape == (32, 32, 1)


def test_ssim_tracking_every_n():
    clean, noisy = _noisy_case()
    r = fit(Pixels(noisy), Identity(), noisy, FitConfig(iters=10, ema=None, ssim_every=5, reg_weight=0.1),
            regularizer=TV(), gt=clean)
    assert r.history["ssim_iter"] == [4, 9] and all(0 < v <= 1 for v in r.history["ssim"])


def test_cpu_default_is_the_quick_preset_and_slow_reference_recipes_ask_first(monkeypatch):
    from deepprior import presets
    from deepprior.tasks import inpaint_problem

    g = torch.Generator().manual_seed(0)
    clean = torch.rand(1, 1, 16, 16, generator=g)
    lines = []
    r = solve(denoise_problem(clean + 0.1 * torch.randn(1, 1, 16, 16, generator=g), clean, sigma=0.1), device="cpu",
              iters=2, announce=lines.append)
    assert r.preset == presets.CPU_DEFAULTS["denoise"] == "fast"
    # fast runs in bf16 exactly where the CPU has bf16 units (amp: auto), and the line says which
    from deepprior.fit import native_bf16

    where = "on cpu in bfloat16" if native_bf16("cpu") else "on cpu"
    assert len(lines) == 1 and lines[0].startswith(f"denoise: dip, preset fast {where}, up to 2 iterations")
    assert "s/iteration" in lines[0]
    # a reference recipe over the CPU budget, with neither preset nor iters given: refused, naming the choices
    monkeypatch.setattr(presets, "CPU_BUDGET_S", 1e-6)
    p = inpaint_problem(clean, torch.rand(1, 1, 16, 16, generator=g) > 0.5)
    with pytest.raises(ConfigError, match="--preset to run it anyway, --iters N"):
        solve(p, device="cpu")
    assert solve(p, device="cpu", iters=1).preset == "inpaint"  # an explicit budget runs


def test_amp_auto_is_bf16_exactly_where_the_device_has_bf16_units(monkeypatch):
    fit_config = importlib.import_module("deepprior.fit.config")  # the module, not the `fit` function of deepprior
    clean, noisy = _noisy_case()
    p = denoise_problem(noisy, clean)

    def run(amp):
        return solve(p, preset=SMALL_PRESET, seed=1, device="cpu", iters=4, amp=amp).image

    fp32, bf16 = run("off"), run("bf16")
    assert not np.array_equal(fp32, bf16)  # the autocast changes the arithmetic, so the comparison below can fail
    assert np.array_equal(run(None), fp32)
    monkeypatch.setattr(fit_config, "native_bf16", lambda device: True)
    assert np.array_equal(run("auto"), bf16)
    monkeypatch.setattr(fit_config, "native_bf16", lambda device: False)
    assert np.array_equal(run("auto"), fp32)
    with pytest.raises(ConfigError, match="amp must be"):
        FitConfig(amp="fp16")


def test_announce_times_the_run_itself_and_names_each_phase():
    import time

    from deepprior.fit import Announce, FitState

    lines = []
    a = Announce(lines.append, "job", device="cpu", unit="sweep", detail=" of 3 frames", warmup=1, timed=2)
    st = FitState(it=0, iters=100)
    for it in range(5):
        time.sleep(0.3 if it == 0 else 0.05)  # a slow first step (warm-up) is left out of the estimate
        st.it = it
        a.on_step_end(st)
    assert len(lines) == 1 and lines[0].startswith("job on cpu, up to 100 sweeps of 3 frames, stops by itself: at most")
    per = float(re.search(r"\(([\d.]+) s/sweep\)", lines[0]).group(1))
    assert 0.04 <= per < 0.2, lines[0]
    # phases (GIP's stages): each is timed and announced; only the first line names the job
    b = Announce(lines.append, "job", stops=False, timed=1)
    for name in ("cnn", "joint"):
        b.begin_phase(name, 10)
        for it in range(3):
            st.it = it
            b.on_step_end(st)
    assert lines[1].startswith("job on cpu, cnn: 10 iterations: about")
    assert lines[2].startswith("joint: 10 iterations: about") and len(lines) == 3
    # a time limit below the estimate caps the bound and is named; above it, it is not mentioned
    for limit, capped in ((1.0, True), (1e4, False)):
        c = Announce(lines.append, "job", timed=1, limit=limit)
        st = FitState(it=0, iters=1000)
        for it in range(2):
            time.sleep(0.02)
            st.it = it
            c.on_step_end(st)
        assert ("at most 1 s, its time limit (" in lines[-1]) == capped, lines[-1]


def test_fit_state_says_whether_the_network_runs_in_bf16():
    seen = []

    class Probe(Callback):
        def on_step_end(self, state):
            seen.append(state.bf16)

    x = torch.rand(1, 1, 8, 8)
    fit(Pixels(x), Identity(), x, FitConfig(iters=2, amp="off"), callbacks=[Probe()])
    assert seen == [False, False]


def test_auto_bf16_on_a_cpu_follows_the_instruction_set_and_vendor(monkeypatch):
    """amp 'auto' on a CPU: bf16 where AMX is, or AVX512-BF16 on an AMD CPU (AVX512-BF16 alone was slower on an Intel
    CPU), decided without timing anything, so that a run's precision cannot depend on the load of the machine."""
    import torch

    from deepprior.fit import config as fit_config

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(fit_config, "cpu_vendor", lambda: "GenuineIntel")
    assert not fit_config.native_bf16("cpu")
    assert not FitConfig(amp="auto").bf16_on("cpu")
    monkeypatch.setattr(fit_config, "cpu_vendor", lambda: "AuthenticAMD")
    assert fit_config.native_bf16("cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    assert not fit_config.native_bf16("cpu")  # an AMD CPU without bf16 instructions
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert fit_config.native_bf16("cpu") and FitConfig(amp="auto").bf16_on("cpu")
    assert not FitConfig(amp="off").bf16_on("cpu") and FitConfig(amp="bf16").bf16_on("cpu")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert not fit_config.native_bf16("cpu")
