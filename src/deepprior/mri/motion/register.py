"""Per-shot registration of the measured k-space to an image: the motion step of the classical joint
estimate. With the image fixed, each shot's misfit depends only on its own three parameters, so
Levenberg–Marquardt runs on every shot at once: three Jacobian columns (one forward-mode
``torch.func.jvp`` per parameter, all shots together: their samples are disjoint), a 3×3 normal matrix per
shot, and a per-shot damping that grows when a step does not lower that shot's misfit."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.func import jvp


def per_shot(v: Tensor, labels: Tensor, shots: int) -> Tensor:
    """Sum of the real ``v`` ``(1, C, *grid)`` over the coils and over each shot's samples → ``(shots,)``.

    >>> per_shot(torch.ones(1, 2, 2, 2), torch.tensor([[0, 1], [1, -1]]), 2).tolist()
    [2.0, 4.0]
    """
    v = v.sum(1)[0].flatten()
    lab = labels.flatten()
    keep = lab >= 0
    return torch.zeros(shots, dtype=v.dtype, device=v.device).index_add_(0, lab[keep], v[keep])


def _column(res, m: Tensor, k: int, h: float = 1e-2) -> Tensor:
    """∂res/∂θ_k for every shot at once: forward-mode AD, or a central difference (``h`` px or degrees) where the
    forward has no forward-mode derivative (the finufft NUFFT of radial data)."""
    t = torch.zeros_like(m)
    t[:, k] = 1
    try:
        return jvp(res, (m,), (t,))[1].detach()
    except (RuntimeError, NotImplementedError):
        with torch.no_grad():
            return (res(m + h * t) - res(m - h * t)) / (2 * h)


def register_shots(forward, y: Tensor, labels: Tensor, motion: Tensor, *, iters: int = 3,
                   damping: float = 1e-3) -> tuple[Tensor, Tensor]:
    """Levenberg–Marquardt on every shot's pose with the image x fixed: minimises each shot's
    ``‖M_s F S T_θs x − y_s‖²``. ``forward(motion)`` returns the k-space of ``x`` under ``motion`` ``(S, 3)``;
    shot 0 stays at its pose (the reference). Returns the motion and each shot's final misfit.

    >>> import torch
    >>> from deepprior.mri.motion import MotionSENSE, simulate_motion
    >>> d = simulate_motion(torch.rand(24, 24), coils=2, shots=2, max_shift=1, max_rot=1, snr_db=None, seed=0)
    >>> fwd = lambda m: MotionSENSE(d.shots, d.maps, m)(d.gt)
    >>> m, _ = register_shots(fwd, d.kspace, d.shots, torch.zeros(2, 3), iters=10)
    >>> bool((m - d.motion).abs().max() < 1e-2)
    True
    """
    n = motion.shape[0]
    m = motion.detach().clone()
    lam = torch.full((n,), float(damping), device=m.device)
    eye = torch.eye(3, device=m.device)
    res = lambda mm: forward(mm) - y  # noqa: E731
    with torch.no_grad():
        r = res(m)
    cost = per_shot(r.abs().square(), labels, n)
    for _ in range(iters):
        cols = [_column(res, m, k) for k in range(3)]
        g = torch.stack([per_shot((c.conj() * r).real, labels, n) for c in cols], 1)
        gram = torch.empty(n, 3, 3, device=m.device)
        for a in range(3):
            for b in range(a, 3):
                gram[:, a, b] = gram[:, b, a] = per_shot((cols[a].conj() * cols[b]).real, labels, n)
        scale = torch.diag_embed(torch.diagonal(gram, dim1=1, dim2=2)) + 1e-12 * eye
        improved = torch.zeros(n, dtype=torch.bool, device=m.device)
        for _ in range(8):  # raise the damping of the shots whose step failed, until each improves or gives up
            step = -torch.linalg.solve(gram + lam[:, None, None] * scale, g[..., None])[..., 0]
            step[0] = 0
            trial = torch.where(improved[:, None], m, m + step)
            with torch.no_grad():
                r_new = res(trial)
            c_new = per_shot(r_new.abs().square(), labels, n)
            ok = (c_new < cost) & ~improved
            m = torch.where(ok[:, None], trial, m)
            cost = torch.where(ok, c_new, cost)
            lam = torch.where(ok, lam / 3, torch.where(improved, lam, lam * 4))
            improved |= ok
            if bool(improved[1:].all()) or n == 1:
                break
        with torch.no_grad():
            r = res(m)
    return m, cost
