"""Speed levers that must not change results: batched multi-image fits and compiled steps."""

import pytest
import torch

from deepprior.fit import FitConfig, fit
from deepprior.operators import Identity
from deepprior.params import BatchedDIP
from deepprior.tasks import add_noise, build_dip, denoise_problem, solve, solve_many

TINY = {"net": {"name": "skip", "channels_down": [8] * 3, "channels_up": [8] * 3, "channels_skip": [2] * 3},
        "code": {"kind": "noise", "channels": 8, "scale": 0.1}, "reg_noise_std": 1 / 30,
        "fit": {"iters": 10, "ema": 0.9, "backtrack": False, "lr": 0.01}}


def _problems(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    imgs = [torch.rand(1, 3, 24, 24, generator=g, dtype=dtype) for _ in range(3)]
    return [denoise_problem(add_noise(x, 0.1, seed=i), x) for i, x in enumerate(imgs)]


@pytest.mark.parametrize("dtype,iters,tol", [(torch.float64, 40, 1e-10), (torch.float32, 3, 1e-4)])
def test_batched_fit_equals_separate_fits(dtype, iters, tol):
    # In float32, Adam's normalised steps amplify rounding differences between the grouped and the plain
    # convolutions over many steps; float64 shows that the batched fit is the same computation.
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        ps = _problems(dtype)
        preset = {**TINY, "fit": {**TINY["fit"], "iters": iters}}
        seeds = [5, 6, 7]
        many = solve_many(ps, preset=preset, seeds=seeds, device="cpu")
        for p, s, m in zip(ps, seeds, many):
            one = solve(p, preset=preset, seed=s, device="cpu")
            assert abs(one.image - m.image).max() < tol
            assert m.metrics["psnr"] == pytest.approx(one.metrics["psnr"], abs=1e-3)
        # different seeds give different fits: the images are not just copies of one fit
        assert abs(many[0].image - solve(ps[0], preset=preset, seed=6, device="cpu").image).max() > 1e-3
    finally:
        torch.set_default_dtype(old)


def test_batched_dip_keeps_per_image_batchnorm_and_unstacks():
    ps = _problems()
    dips = [build_dip(p, TINY, seed=s) for p, s in zip(ps, (0, 1, 2))]
    b = BatchedDIP(dips)
    assert b.independent == 3
    out = b(perturb=False)
    for i, d in enumerate(dips):  # before fitting, image i is DIP i's output
        assert torch.allclose(out[i:i + 1], d(perturb=False), atol=1e-5)
    states = b.unstack()  # unfitted: the unstacked weights are each DIP's own, BatchNorm buffers included
    for d, st in zip(dips, states):
        ref = d.net.state_dict()
        assert st.keys() == ref.keys()
        assert all(torch.allclose(st[k], ref[k], atol=1e-6) for k in ref)


def test_batched_dip_rejects_mixed_architectures():
    ps = _problems()
    other = {**TINY, "net": {**TINY["net"], "channels_down": [4] * 3}}
    with pytest.raises(ValueError, match="identical"):
        BatchedDIP([build_dip(ps[0], TINY), build_dip(ps[1], other)])


def test_compiled_step_matches_eager():
    p = _problems()[0]
    res = []
    for compiled in (False, True):
        dip = build_dip(p, TINY, seed=0)
        cfg = FitConfig(iters=3, lr=0.01, ema=None, backtrack=False, compile=compiled)
        res.append(fit(dip, Identity(), p.y, cfg).image)
    assert torch.allclose(res[0], res[1], atol=1e-4)


def test_bf16_and_channels_last_paths_run_on_cpu():
    """The GPU levers run on a CPU too (slowly): a few steps stay close to float32, outputs stay float32."""
    p = _problems()[0]
    res = {}
    for name, kw in (("fp32", {}), ("bf16", {"amp": "bf16"}), ("nhwc", {"channels_last": True})):
        dip = build_dip(p, TINY, seed=0)
        res[name] = fit(dip, Identity(), p.y, FitConfig(iters=3, lr=0.01, ema=None, backtrack=False, **kw)).image
    assert res["bf16"].dtype == torch.float32 and torch.isfinite(res["bf16"]).all()
    assert (res["bf16"] - res["fp32"]).abs().mean() < 0.05  # bf16 keeps ~3 significant digits
    # channels-last picks other float32 kernels (summation order): 2.2e-5 apart after 3 Adam steps on an AMX CPU
    assert torch.allclose(res["nhwc"], res["fp32"], atol=1e-4)


def test_channels_last_default_follows_device_and_width(monkeypatch):
    """channels_last=None (the default) takes NHWC on an AVX-512 CPU for nets of 16 channels or more, never with AVX2
    only, never on a GPU, never for stacked (5-D) weights; the fit loop converts the generator accordingly."""
    from deepprior.errors import ConfigError

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    p = _problems()[0]
    wide_spec = {**TINY, "net": {**TINY["net"], "channels_down": [16] * 3, "channels_up": [16] * 3}}
    wide, narrow = build_dip(p, wide_spec, seed=0), build_dip(p, TINY, seed=0)
    cfg = FitConfig(iters=2, lr=0.01, ema=None, backtrack=False)
    assert cfg.channels_last is None
    assert cfg.channels_last_on("cpu", wide) and not cfg.channels_last_on("cpu", narrow)
    assert not cfg.channels_last_on("cuda", wide)  # a device object only: no GPU needed
    assert cfg.replace(channels_last=True).channels_last_on("cpu", narrow)
    stacked = BatchedDIP([build_dip(p, wide_spec, seed=i) for i in range(2)])
    assert not cfg.replace(channels_last=True).channels_last_on("cpu", stacked)

    def first_conv(d):
        return next(m for m in d.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)).weight

    fit(wide, Identity(), p.y, cfg)
    assert first_conv(wide).is_contiguous(memory_format=torch.channels_last)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not cfg.channels_last_on("cpu", wide)
    other = build_dip(p, wide_spec, seed=0)
    fit(other, Identity(), p.y, cfg)
    assert first_conv(other).is_contiguous() and not first_conv(other).is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ConfigError, match="channels_last"):
        FitConfig(channels_last="yes")


def test_bf16_keeps_complex_outputs_complex():
    """Complex pixels (k-t TV, MRI) pass the bf16 autocast untouched: a cast once dropped the imaginary part."""
    from deepprior.params import Pixels

    x0 = torch.complex(torch.rand(4, 4), torch.rand(4, 4))
    y = x0 * 2
    r = fit(Pixels(x0), Identity(), y, FitConfig(iters=50, lr=0.05, ema=None, backtrack=False, amp="bf16"))
    assert r.image.is_complex() and (r.image.imag - y.imag).abs().max() < 0.05


def test_amp_option_is_validated():
    from deepprior.errors import ConfigError

    with pytest.raises(ConfigError, match="bf16"):
        FitConfig(amp="fp16")


def test_ema_warmup_follows_its_recursion():
    from deepprior.fit import Callback
    from deepprior.params import Pixels

    xs = []

    class Keep(Callback):
        def on_step_end(self, state):
            xs.append(state.x.clone())

    y = torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    r = fit(Pixels(torch.zeros_like(y)), Identity(), y, FitConfig(iters=30, lr=0.05, ema=0.99, ema_warmup=True,
                                                                 backtrack=False), callbacks=[Keep()])
    m = xs[0].clone()
    for t in range(1, 30):
        w = min(0.99, (1 + t) / (10 + t))
        m = w * m + (1 - w) * xs[t]
    assert torch.allclose(r.ema, m, atol=1e-6)
    # without the warm-up the EMA still holds ~74 % of the first (zero-start) outputs after 30 steps
    plain = fit(Pixels(torch.zeros_like(y)), Identity(), y, FitConfig(iters=30, lr=0.05, ema=0.99, backtrack=False))
    assert (r.ema - y).abs().mean() < 0.5 * (plain.ema - y).abs().mean()


def test_fast_preset_stops_by_itself_and_denoises():
    from conftest import smooth_image

    from deepprior.metrics import psnr
    from deepprior.tasks import to_tensor

    clean = to_tensor(smooth_image(48, 48, 3))
    noisy = add_noise(clean, 25 / 255, seed=0)
    r = solve(denoise_problem(noisy, clean, sigma=25 / 255), preset="fast", device="cpu")
    assert r.stop == "wmv" and r.fit.iters_run < 1500  # ES-WMV ended it, not the iteration cap
    assert r.fit.selected_iter is not None and r.fit.iters_run - 1 - r.fit.selected_iter == 100  # patience
    # the rule's score curve comes back with the result, and the delivered step is its minimum
    scores, iters = r.stopper.scores, r.stopper.iters
    assert len(scores) == r.fit.iters_run - 99  # one score per step once the 100-step window is full
    assert iters[scores.index(min(scores))] == r.fit.selected_iter
    # replaying the curve gives what the live rule did, and a longer patience never selects an earlier step
    from deepprior.fit.stopping import replay

    assert replay(scores, iters, 100) == (r.fit.selected_iter, r.fit.iters_run - 1)
    assert replay(scores, iters, 50)[0] <= r.fit.selected_iter and replay(scores, iters, 10_000)[1] is None
    assert r.metrics["psnr"] > psnr(noisy, clean) + 5
