"""The radial data term through the Toeplitz gram (deepprior.mri.gramloss) is the NUFFT data term."""

import pytest
import torch
from conftest import cine_phantom

from deepprior.errors import ConfigError
from deepprior.fit import FitConfig, fit
from deepprior.mri import birdcage_maps, golden_angle_radial, simulate
from deepprior.mri.gramloss import GramMisfit, data_term
from deepprior.mri.nufft import RadialSENSE, Weighted
from deepprior.mri.operators import ChannelsToComplex
from deepprior.mri.tddip import tddip
from deepprior.params import Pixels
from deepprior.presets import get_preset


def _problem(frames=3, n=16, spokes=5, coils=3):
    g = torch.Generator().manual_seed(0)
    op = RadialSENSE(golden_angle_radial(frames, spokes, n), birdcage_maps(coils, n, n))
    k = op.traj.shape[1]
    w = Weighted(op, 0.2 + torch.rand(frames, k, generator=g))  # uneven density weights
    x0 = torch.randn(frames, n, n, dtype=torch.complex64, generator=g)
    y = w(x0) + 0.1 * torch.randn(frames, coils, k, dtype=torch.complex64, generator=g)
    return w, y


def test_gram_misfit_is_the_nufft_data_term_with_its_gradient():
    w, y = _problem()
    m = GramMisfit(w, y)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 16, 16, dtype=torch.complex64, generator=g)
    idx = torch.tensor([0, 2])  # a mini-batch of frames, as the loop selects them
    xa = x[idx].clone().requires_grad_(True)
    direct = (w.select(idx)(xa) - y[idx]).abs().square().mean()
    direct.backward()
    xb = x[idx].clone().requires_grad_(True)
    gram = m.select(idx).misfit(xb, m.normal_data[idx])
    gram.backward()
    assert gram.item() == pytest.approx(direct.item(), rel=1e-4)
    assert torch.allclose(xb.grad, xa.grad, rtol=1e-3, atol=1e-3 * xa.grad.abs().max().item())
    # at the least-squares fit's neighbourhood the value is a small difference of large terms: still exact
    near = x.clone()
    assert m.misfit(near, m.normal_data).item() == pytest.approx((w(near) - y).abs().square().mean().item(), rel=1e-4)


def test_the_loop_takes_the_operators_own_misfit_and_refuses_another_loss():
    w, y = _problem(frames=2)
    m = GramMisfit(w, y, inner=ChannelsToComplex(frames=2))
    p = Pixels(torch.zeros(1, 4, 16, 16))  # two frames as (real, imag) channel pairs
    r = fit(p, m, m.normal_data, FitConfig(iters=30, lr=0.05, ema=None, backtrack=False))
    c2c = ChannelsToComplex(frames=2)
    assert r.history["data"][0] == pytest.approx(y.abs().square().mean().item(), rel=1e-5)  # x = 0: ‖y‖²/n
    direct = (w(c2c(r.image)) - y).abs().square().mean().item()
    assert m.misfit(r.image, m.normal_data).item() == pytest.approx(direct, rel=1e-4)
    assert r.history["data"][-1] < 0.5 * r.history["data"][0]
    with pytest.raises(ConfigError, match="squared-error"):
        fit(p, m, m.normal_data, FitConfig(iters=2, loss="l1"))
    with pytest.raises(ConfigError, match="Toeplitz"):
        GramMisfit(Weighted(RadialSENSE(golden_angle_radial(2, 5, 16), shape=(16, 16), toeplitz=False),
                            torch.ones(2, 160)), y)


def test_holdout_scores_the_same_sum_through_the_gram():
    """The held-out rule asks a GramMisfit for its misfit: the same sum of squares over the held-out samples / count as
    the NUFFT, frame by frame too."""
    from deepprior.fit.config import FitState
    from deepprior.fit.stopping import Holdout

    w, y = _problem()
    x = torch.randn(3, 16, 16, dtype=torch.complex64, generator=torch.Generator().manual_seed(2))
    direct, gram = Holdout(w, y, every=1, count=7.0), Holdout(*data_term(w, y, None), every=1, count=7.0)
    for h in (direct, gram):
        h.on_step_end(FitState(it=0, iters=1, x=x))
    assert gram.scores[0] == pytest.approx(direct.scores[0], rel=1e-4)
    assert gram.scores[0] == pytest.approx(float((w(x) - y).abs().square().sum()) / 7.0, rel=1e-4)


def test_tddip_radial_fits_the_same_through_the_gram():
    """TDDIP on radial data takes the Toeplitz data term by default; the NUFFT pair (gram=False) gives the same fit in
    float32, up to the kernels' rounding."""
    d = simulate(cine_phantom(4, 16), coils=2, seed=0, spokes=5)
    p = {**get_preset("tddip-cpu", "tddip"), "net": {"name": "tddip", "channels": 8}, "mapnet": {"hidden": [16]}}
    p["fit"] = {**p["fit"], "amp": "off", "lr": 3e-3}
    x, fast = tddip(d, preset=p, steps=40, patience=1000, seed=0, device="cpu", dc=False)
    ref, slow = tddip(d, preset=p, steps=40, patience=1000, seed=0, device="cpu", dc=False, gram=False)
    assert fast["loss"] == pytest.approx(slow["loss"], rel=1e-3)
    assert fast["loss"][-1] < 0.5 * fast["loss"][0]
    assert (x - ref).norm() < 1e-2 * ref.norm()
    assert fast["stop_scores"] == pytest.approx(slow["stop_scores"], rel=1e-3)  # the held-out rule sees the same fit


def test_gip_radial_stages_fit_the_same_through_the_gram():
    from deepprior.mri.gip import gip

    d = simulate(cine_phantom(3, 16), coils=2, seed=0, spokes=5)
    p = {**get_preset("gip-cpu", "gip"), "ch": 4, "k": 2}
    x, fast = gip(d, preset=p, iters=40, stop="none", device="cpu", admm_stage=False)
    ref, slow = gip(d, preset=p, iters=40, stop="none", device="cpu", admm_stage=False, gram=False)
    assert [s["steps"] for s in fast["stages"]] == [s["steps"] for s in slow["stages"]] == [10, 5, 15]
    assert (x - ref).norm() < 1e-3 * ref.norm()
