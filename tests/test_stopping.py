import math

import pytest
import torch

from deepprior.errors import ConfigError
from deepprior.fit import FitState
from deepprior.fit.stopping import ExponentialVariance, WindowedVariance, holdout_split


def _feed(det, images, ema=None):
    st = FitState(it=0, iters=len(images))
    for i, x in enumerate(images):
        st.it, st.x, st.ema = i, x, None if ema is None else ema[i]
        det.on_step_end(st)
        if st.stop:
            break
    return st


def _u_shaped(n=600, center=300, seed=0):
    """Outputs whose fluctuation amplitude is U-shaped in time: the variance is lowest near `center`."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 1, 8, 8, generator=g)
    return [base + (abs(t - center) / center + 0.02) * torch.randn(1, 1, 8, 8, generator=g) for t in range(n)]


def test_running_variance_matches_naive():
    imgs = [torch.randn(1, 3, 5, 4, generator=torch.Generator().manual_seed(i)) for i in range(40)]
    det = WindowedVariance(window=10, patience=10**6)
    _feed(det, imgs)
    naive = []
    for t in range(9, 40):
        win = torch.stack([imgs[i].double() for i in range(t - 9, t + 1)])
        naive.append(float(((win - win.mean(0)) ** 2).mean()))
    assert det.iters == list(range(9, 40))
    assert max(abs(a - b) for a, b in zip(det.scores, naive)) < 1e-9


def test_exponential_variance_matches_recursion():
    imgs = [torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(i)) for i in range(30)]
    det = ExponentialVariance(alpha=0.1, patience=10**6, warmup=0)
    _feed(det, imgs)
    m, v, ref = imgs[0].double(), 0.0, []
    for x in imgs[1:]:
        d = x.double() - m
        v = 0.9 * (v + 0.1 * float(d.square().mean()))
        m = m + 0.1 * d
        ref.append(v)
    assert max(abs(a - b) for a, b in zip(det.scores, ref)) < 1e-12


def test_wmv_fires_near_the_bottom_of_a_u_curve():
    imgs = _u_shaped()
    det = WindowedVariance(window=50, patience=100)
    st = _feed(det, imgs)
    # The window's variance is lowest when the window is centred on t = 300, i.e. ending near 325.
    assert 290 <= det.best_iter <= 345, det.best_iter
    assert st.stop and st.it == det.best_iter + 100  # patience: exactly 100 steps without a new minimum
    assert st.selected_iter == det.best_iter and torch.equal(st.selected, imgs[det.best_iter])


def test_emv_fires_and_selects_the_ema_when_present():
    imgs = _u_shaped()
    emas = [x * 0.5 for x in imgs]
    det = ExponentialVariance(alpha=0.1, patience=80)
    st = _feed(det, imgs, ema=emas)
    assert 250 <= det.best_iter <= 340 and st.stop
    assert torch.equal(st.selected, emas[det.best_iter])


def test_patience_is_respected_and_stop_can_be_disabled():
    imgs = _u_shaped()
    det = WindowedVariance(window=50, patience=100, stop=False)
    st = _feed(det, imgs)
    assert not st.stop and st.it == len(imgs) - 1 and det.best_iter is not None
    # Running on does not change the selection: it is frozen when the rule fires.
    ref = WindowedVariance(window=50, patience=100)
    _feed(ref, imgs)
    assert det.fired_at == ref.fired_at == ref.best_iter + 100 and det.best_iter == ref.best_iter
    with pytest.raises(ConfigError):
        WindowedVariance(patience=0)
    with pytest.raises(ConfigError):
        WindowedVariance(window=1)


def test_holdout_split():
    sampled = torch.zeros(20, 20)
    sampled[:, ::2] = 1
    tr, va = holdout_split(sampled, 0.2, seed=1)
    assert torch.equal(tr + va, sampled) and (tr * va).sum() == 0
    assert va.sum() == 40 and torch.equal(holdout_split(sampled, 0.2, seed=1)[1], va)
    with pytest.raises(ConfigError):
        holdout_split(sampled, 1.5)


def test_holdout_stops_an_inpainting_fit():
    from conftest import smooth_image

    from deepprior.tasks import inpaint_problem, random_mask, solve, to_tensor

    clean = to_tensor(smooth_image(32, 32, 1))
    p = inpaint_problem(clean, random_mask((32, 32), 0.5, seed=0), clean)
    preset = {"net": {"name": "skip", "channels_down": [16] * 4, "channels_up": [16] * 4, "channels_skip": [4] * 4},
              "code": {"kind": "noise", "channels": 8, "scale": 0.1}, "reg_noise_std": 0.03,
              "fit": {"iters": 400, "lr": 0.01, "ema": None, "backtrack": True}}
    r = solve(p, preset=preset, stop="holdout", patience=60, device="cpu")
    assert r.fit.selected_iter is not None and r.fit.iters_run < 400
    assert r.fit.iters_run - 1 - r.fit.selected_iter >= 60 - 10  # scored every 10 steps
    assert math.isfinite(r.metrics["psnr"]) and r.metrics["psnr"] > 20


def test_wmv_can_score_the_ema():
    imgs = _u_shaped()
    emas = [torch.zeros(1, 1, 8, 8) + (0.0 if t < 200 else float(t - 200)) for t in range(len(imgs))]
    det = WindowedVariance(window=20, patience=50, source="ema")
    st = _feed(det, imgs, ema=emas)
    # The EMA is constant (variance 0) until t = 200, so the first full window is the minimum.
    assert det.best_iter == 19 and st.stop and st.it == 19 + 50
    with pytest.raises(ConfigError):
        WindowedVariance(source="z")


def _tiny_inpaint(stop_rule=None):
    from conftest import smooth_image

    from deepprior.tasks import inpaint_problem, random_mask, to_tensor

    clean = to_tensor(smooth_image(24, 24, 1))
    p = inpaint_problem(clean, random_mask((24, 24), 0.5, seed=0), clean)
    preset = {"net": {"name": "skip", "channels_down": [8] * 3, "channels_up": [8] * 3, "channels_skip": [2] * 3},
              "code": {"kind": "noise", "channels": 4, "scale": 0.1}, "reg_noise_std": 0.0,
              "fit": {"iters": 300, "lr": 0.01, "ema": None, "backtrack": False}}
    if stop_rule:
        preset["stop"] = stop_rule
    return p, preset


def test_preset_stop_rule_is_the_default_and_can_be_overridden():
    from deepprior.tasks import solve

    p, preset = _tiny_inpaint({"rule": "holdout", "patience": 30})
    r = solve(p, preset=preset, device="cpu")
    assert r.stop == "holdout" and r.fit.selected_iter is not None
    assert r.fit.iters_run < 300  # the preset's patience (30, scored every 10) ended it early
    r = solve(p, preset=preset, device="cpu", stop="none", iters=40)
    assert r.stop == "none" and r.fit.selected_iter is None and r.fit.iters_run == 40


def test_refit_runs_all_samples_for_the_chosen_count():
    from deepprior.tasks import solve

    p, preset = _tiny_inpaint()
    held = solve(p, preset=preset, device="cpu", stop="holdout", patience=30)
    r = solve(p, preset=preset, device="cpu", stop="holdout", patience=30, refit=True)
    chosen = held.fit.selected_iter + 1
    assert r.stop == "holdout+refit" and r.fit.iters_run == chosen and r.metrics["selected_iter"] == chosen - 1
    # the refit saw every known pixel: its data fit on the full mask beats the held-out run's
    full = p.operator
    assert torch.mean((full(r.fit.output) - p.y) ** 2) < torch.mean((full(held.fit.output) - p.y) ** 2)
    with pytest.raises(ConfigError, match="holdout"):
        solve(p, preset=preset, device="cpu", stop="wmv", refit=True)


def test_holdout_waits_for_not_before_and_then_selects_the_later_minimum():
    from deepprior.fit.config import FitState
    from deepprior.fit.stopping import Holdout, replay
    from deepprior.operators import Identity

    scores = [3.0, 2.0, 2.5, 2.4, 2.6, 1.5, 1.6, 1.7, 1.8]  # a minimum, a rise past the patience, a lower one

    def run(not_before):
        h = Holdout(Identity(), torch.zeros(1), every=1, patience=2, count=1.0, not_before=not_before)
        st = FitState(it=0, iters=len(scores))
        for it, s in enumerate(scores):
            st.it, st.x = it, torch.tensor([s ** 0.5])
            h.on_step_end(st)
            if st.stop:
                break
        return st.selected_iter, h.fired_at

    assert run(0) == (1, 3) == replay(scores, list(range(len(scores))), 2)
    assert run(5) == (5, 7) == replay(scores, list(range(len(scores))), 2, not_before=5)
