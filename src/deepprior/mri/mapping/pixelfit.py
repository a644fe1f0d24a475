"""Pixel-wise fits of a signal model to a contrast series: log-linear (T2; DESPOT1 for VFA) and nonlinear least
squares (dictionary start + batched Levenberg–Marquardt), on magnitudes, optionally with the Rician noise floor.

The nonlinear fit separates the linear amplitude |M0| (variable projection for the dictionary start: for each
atom the best |M0| is a projection), then refines (|M0|, raw parameters) per pixel with Levenberg–Marquardt,
its Jacobian from forward-mode autograd (one JVP per unknown), all pixels at once.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...errors import InputError
from .models import SignalModel, build_model


def rician_mean(nu: Tensor, sigma: float) -> Tensor:
    """E|S + n| for a true magnitude ``nu`` and complex Gaussian noise of std ``sigma`` per channel (the Rician
    mean, ``σ √(π/2) L_½(−ν²/2σ²)``, exact, differentiable; → ν when ν ≫ σ, → σ√(π/2) at ν = 0).

    >>> round(float(rician_mean(torch.tensor(0.0), 1.0)), 4), round(float(rician_mean(torch.tensor(50.0), 1.0)), 2)
    (1.2533, 50.01)
    """
    if not sigma:
        return nu
    q = nu.square() / (4 * sigma**2)
    return sigma * math.sqrt(math.pi / 2) * ((1 + 2 * q) * torch.special.i0e(q) + 2 * q * torch.special.i1e(q))


def _pixel_model(model: SignalModel, where: Tensor) -> SignalModel:
    """The model acting on a (1, N) row of pixels (a per-pixel B1 map restricted to ``where``)."""
    if getattr(model, "b1", None) is None:
        return model
    return build_model(model.name, model.axis, tr=model.tr, b1=model.b1[where][None])


def nlls_fit(images: Tensor, model: SignalModel, where: Tensor | None = None, *, sigma: float = 0.0,
             iters: int = 40) -> dict[str, Tensor]:
    """Nonlinear least-squares fit of ``|images|`` ``(K, H, W)`` per pixel; returns maps (H, W): ``M0``
    (complex: |M0| with the phase of the first contrast), and the model's parameters (0 outside ``where``).

    >>> from deepprior.mri.mapping.models import T2Decay
    >>> m = T2Decay([10, 20, 30, 40])
    >>> x = m(torch.full((2, 2), 2.0 + 0j), {"T2": torch.full((2, 2), 50.0)})
    >>> round(float(nlls_fit(x, m)["T2"][0, 0]), 2)
    50.0
    """
    k, h, w = images.shape
    if k != model.contrasts:
        raise InputError(f"{k} contrast images but {model.contrasts} {model.axis_name} values")
    where = torch.ones(h, w, dtype=torch.bool) if where is None else where.bool().cpu()
    s = images.abs().float().cpu()[:, where]  # (K, N)
    pm = _pixel_model(model, where)
    n = s.shape[1]
    # dictionary start: per pixel the atom with the smallest residual after the best |M0|
    raw_grid = _grid(model)
    best_err = torch.full((n,), math.inf)
    best = torch.zeros(n, dtype=torch.long)
    for chunk in torch.split(torch.arange(raw_grid.shape[0]), 64):
        maps = {p.name: p.bounded(raw_grid[chunk, i][:, None].expand(-1, n)) for i, p in enumerate(model.params)}
        f = pm(torch.ones(len(chunk), n, dtype=torch.complex64)[None], {k_: v[None] for k_, v in maps.items()}).abs()
        # f: (K, A, N)
        num = (f * s[:, None]).sum(0)
        den = f.square().sum(0).clamp(min=1e-12)
        err = s.square().sum(0)[None] - num.square() / den
        e_min, idx = err.min(0)
        better = e_min < best_err
        best_err = torch.where(better, e_min, best_err)
        best = torch.where(better, chunk[idx], best)
    theta_raw = raw_grid[best].T  # (P, N)
    maps0 = {p.name: p.bounded(theta_raw[i][None]) for i, p in enumerate(model.params)}
    f0 = pm(torch.ones(1, n, dtype=torch.complex64), maps0).abs()[:, 0]
    amp = ((f0 * s).sum(0) / f0.square().sum(0).clamp(min=1e-12)).clamp(min=1e-6)
    theta = torch.cat([amp[None], theta_raw]).T.contiguous()  # (N, 1+P)

    def residual(th: Tensor) -> Tensor:
        mp = {p.name: p.bounded(th[:, 1 + i][None]) for i, p in enumerate(model.params)}
        f = pm(th[:, 0][None].to(torch.complex64), mp).abs()[:, 0]  # (K, N)
        return (rician_mean(f, sigma) - s).T  # (N, K)

    theta = levenberg_marquardt(residual, theta, iters=iters)
    out = {p.name: torch.zeros(h, w) for p in model.params}
    for i, p in enumerate(model.params):
        out[p.name][where] = p.bounded(theta[:, 1 + i]).detach()
    m0 = torch.zeros(h, w, dtype=torch.complex64)
    amp = theta[:, 0].detach()
    if images.is_complex():
        # M0's phase: the least-squares complex amplitude of the fitted, signed curve against the complex data
        # (an inversion-recovery series starts at −M0: the first contrast's phase would be off by π there)
        with torch.no_grad():
            mp = {p.name: p.bounded(theta[:, 1 + i][None]) for i, p in enumerate(model.params)}
            f = pm(torch.ones(1, n, dtype=torch.complex64), mp)[:, 0]  # (K, N), real-valued and signed
            proj = (f.conj() * images.cpu()[:, where].to(torch.complex64)).sum(0)
        m0[where] = (amp * torch.exp(1j * proj.angle())).to(torch.complex64)
    else:
        m0[where] = amp.to(torch.complex64)
    out["M0"] = m0
    return out


def reference_phase(images: Tensor) -> Tensor:
    """exp(i·phase) of M0 for a magnitude fit: the phase of the contrast with the most energy. Not simply the
    first: an inversion-recovery series starts inverted (signal −M0 at short TI), and M0 taken with that phase
    would be off by π, a start a model-based fit of the complex data cannot recover from.

    >>> x = torch.stack([-torch.ones(2, 2), 2 * torch.ones(2, 2)]).to(torch.complex64)
    >>> reference_phase(x)[0, 0].real.item()
    1.0
    """
    if not images.is_complex():
        return torch.ones(images.shape[-2:])
    k = int(images.abs().square().sum((-2, -1)).argmax())
    return torch.exp(1j * images[k].angle()).cpu()


def _grid(model: SignalModel) -> Tensor:
    grids = [torch.linspace(-7, 7, 300 if i == 0 else 9) for i, _ in enumerate(model.params)]
    return torch.cartesian_prod(*grids) if len(grids) > 1 else grids[0][:, None]


def levenberg_marquardt(residual, theta: Tensor, *, iters: int = 40) -> Tensor:
    """Minimise ``Σ_k residual(θ)[n, k]²`` for each row n of ``theta`` ``(N, P)`` independently (batched LM with
    per-row damping; the Jacobian from P forward-mode JVPs).

    >>> th = levenberg_marquardt(lambda t: t - torch.tensor([[1.0, 2.0]]), torch.zeros(3, 2))
    >>> th[0].tolist()
    [1.0, 2.0]
    """
    n, p = theta.shape
    mu = torch.full((n,), 1e-2)
    r = residual(theta)
    cost = r.square().sum(1)
    eye = torch.eye(p)
    for _ in range(iters):
        cols = []
        for j in range(p):
            e = torch.zeros_like(theta)
            e[:, j] = 1
            cols.append(torch.func.jvp(residual, (theta,), (e,))[1])
        jac = torch.stack(cols, -1)  # (N, K, P)
        jtj = jac.transpose(1, 2) @ jac
        g = (jac.transpose(1, 2) @ r[..., None])[..., 0]
        damp = mu[:, None, None] * (torch.diag_embed(jtj.diagonal(dim1=1, dim2=2)) + 1e-9 * eye)
        step = torch.linalg.solve(jtj + damp + 1e-12 * eye, -g[..., None])[..., 0]
        step = torch.nan_to_num(step)
        cand = theta + step
        r_new = residual(cand)
        c_new = r_new.square().sum(1)
        ok = c_new < cost
        theta = torch.where(ok[:, None], cand, theta)
        r = torch.where(ok[:, None], r_new, r)
        cost = torch.where(ok, c_new, cost)
        mu = torch.where(ok, mu / 3, mu * 4).clamp(1e-9, 1e9)
    return theta


def loglinear_fit(images: Tensor, model: SignalModel, where: Tensor | None = None) -> dict[str, Tensor]:
    """Linearised fits: T2 by weighted least squares on ``log|S|`` (weights |S|², the usual WLLS); VFA T1 by
    DESPOT1 (``S/sin α = E1 · S/tan α + M0(1 − E1)``). Values outside the model's bounds are pulled inside.

    >>> from deepprior.mri.mapping.models import T2Decay
    >>> m = T2Decay([10, 20, 30])
    >>> x = m(torch.full((1, 1), 3.0 + 0j), {"T2": torch.full((1, 1), 40.0)})
    >>> round(float(loglinear_fit(x, m)["T2"][0, 0]), 2)
    40.0
    """
    k, h, w = images.shape
    where = torch.ones(h, w, dtype=torch.bool) if where is None else where.bool().cpu()
    s = images.abs().double().cpu().clamp(min=1e-12)
    phase = reference_phase(images)
    if model.name == "t2":
        x = model.te.double()[:, None, None].expand_as(s)
        wt = s.square()
        ys = s.log()
        sw, sx, sy = wt.sum(0), (wt * x).sum(0), (wt * ys).sum(0)
        sxx, sxy = (wt * x * x).sum(0), (wt * x * ys).sum(0)
        slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx).clamp(min=1e-30)
        icpt = (sy - slope * sx) / sw
        p = model.params[0]
        t2 = torch.where(slope < 0, -1 / slope.clamp(max=-1e-12), torch.full_like(slope, p.hi))
        t2 = p.bounded(p.raw(t2.float()))
        m0 = icpt.exp().float()
        return {"T2": t2 * where, "M0": (m0 * where * phase).to(torch.complex64)}
    if model.name == "vfa":
        a = torch.deg2rad(model.fa.double())[:, None, None]
        if model.b1 is not None:
            a = a * model.b1.double()
        yv, xv = s / torch.sin(a), s / torch.tan(a)
        mx, my = xv.mean(0), yv.mean(0)
        e1 = ((xv - mx) * (yv - my)).sum(0) / (xv - mx).square().sum(0).clamp(min=1e-30)
        e1 = e1.clamp(1e-6, 1 - 1e-6)
        t1 = -model.tr / torch.log(e1)
        p = model.params[0]
        t1 = p.bounded(p.raw(t1.float()))
        m0 = ((my - e1 * mx) / (1 - e1)).float().clamp(min=0)
        return {"T1": t1 * where, "M0": (m0 * where * phase).to(torch.complex64)}
    raise InputError(f"no log-linear fit for the {model.name} model; use the nonlinear fit (--fit nlls)")
