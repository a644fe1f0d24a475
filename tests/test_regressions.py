"""Regression tests for the bugs of the code review (issue #13): each failed before its fix."""

from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest
import torch
from conftest import cine_phantom, smooth_image

from deepprior.errors import ConfigError
from deepprior.fit import FitConfig, fit
from deepprior.metrics import ssim
from deepprior.mri import CartesianSENSE, reconstruct, simulate
from deepprior.mri.pics import KT_TV_TEMPORAL, KT_TV_WEIGHT, kt_tv
from deepprior.mri.recon import lipschitz, low_rank_plus_sparse
from deepprior.params import Pixels
from deepprior.regularizers import TV
from deepprior.tasks import add_noise, denoise_problem, inpaint_problem, random_mask, solve, to_tensor

TINY = {"net": {"name": "skip", "channels_down": [8] * 3, "channels_up": [8] * 3, "channels_skip": [2] * 3},
        "code": {"kind": "noise", "channels": 4, "scale": 0.1}, "reg_noise_std": 0.0,
        "fit": {"iters": 30, "lr": 0.01, "ema": 0.99, "backtrack": True}}


def test_using_a_preset_never_changes_it():
    clean = to_tensor(smooth_image(16, 16))
    preset = copy.deepcopy(TINY)
    solve(denoise_problem(add_noise(clean, 0.1), clean), preset=preset, device="cpu", iters=3, lr=0.02,
          net="deep_decoder", reg_noise_std=0.01)
    assert preset == TINY


def test_refit_does_not_inherit_the_first_runs_stopper():
    """The first run hits its cap without the held-out rule firing; the refit must run exactly the chosen
    count on all samples and deliver its own last iterate (no stale selection, no early stop)."""
    clean = to_tensor(smooth_image(24, 24))
    p = inpaint_problem(add_noise(clean, 0.05), random_mask((24, 24), 0.3, seed=1), clean)
    r = solve(p, preset=TINY, device="cpu", stop="holdout", patience=10**6, refit=True)
    chosen = r.metrics["selected_iter"] + 1
    assert r.fit.iters_run == chosen and r.fit.selected_iter is None
    assert torch.equal(r.fit.output, r.fit.ema)


def test_a_regularizer_with_weight_zero_is_refused():
    y = torch.rand(1, 1, 8, 8)
    with pytest.raises(ConfigError, match="reg_weight"):
        fit(Pixels(y), torch.nn.Identity(), y, FitConfig(iters=2, reg_weight=0.0), regularizer=TV())


def test_ssim_scores_every_image_of_a_batch():
    ref = torch.from_numpy(np.stack([smooth_image(24, 24, seed=s)[..., 0] for s in (0, 1)]))[:, None]
    x = ref.clone()
    x[1] = 1 - x[1]  # only the second image is wrong
    assert ssim(x[:1], ref[:1]) == pytest.approx(1.0)
    assert ssim(x, ref) < 0.9 * ssim(x[:1], ref[:1])
    assert ssim(x, ref) == pytest.approx((ssim(x[:1], ref[:1]) + ssim(x[1:], ref[1:])) / 2)


def test_kt_tv_has_one_default_weight():
    sig = inspect.signature(kt_tv).parameters
    assert sig["weight"].default == KT_TV_WEIGHT and sig["temporal"].default == KT_TV_TEMPORAL
    d = simulate(cine_phantom(frames=3, n=16), coils=2, accel=2, center=4, seed=0)
    info = reconstruct(d, "tv", iters=2, device="cpu").info
    assert (info["weight"], info["temporal"]) == (KT_TV_WEIGHT, KT_TV_TEMPORAL)


def test_lps_step_follows_the_maps_scale():
    """L+S with maps at 3× scale (and 3× data) is the same problem: its step must be 1/9, not 1."""
    d = simulate(cine_phantom(frames=4, n=24), coils=4, pattern="kt-random", accel=3, center=4, seed=0)
    op = CartesianSENSE(d.mask, d.maps)
    op3 = CartesianSENSE(d.mask, 3 * d.maps)
    assert lipschitz(op3, (4, 24, 24)) == pytest.approx(9 * lipschitz(op, (4, 24, 24)), rel=1e-5)
    a = sum(low_rank_plus_sparse(op, d.kspace, iters=20))
    b = sum(low_rank_plus_sparse(op3, 3 * d.kspace, iters=20))
    assert torch.isfinite(b).all()
    torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4)
