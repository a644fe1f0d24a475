"""ADMM with a network prior and exact data consistency — usable with any generator (GIP, TDDIP, DIP).

    min_{X, θ} ½‖A X − y‖²  s.t.  X = G_θ(z)

Augmented Lagrangian ``L(X, θ, Γ) = ½‖AX − y‖² + Re⟨Γ, X − G⟩ + ρ/2 ‖X − G‖²``; each outer iteration:

1. image step: ``(AᴴA + ρI) X = Aᴴy + ρ G − Γ`` by ``cg_iters`` conjugate-gradient steps (warm start);
2. network step: ``net_steps`` Adam steps of the shared fit loop on ``‖G_θ(z) − (X + Γ/ρ)‖²``;
3. dual step: ``Γ ← Γ + ρ (X − G)``.

X is exactly consistent with the data up to ρ; the network step pulls G towards it and G pulls X back
through ρ. Stopping without ground truth: with held-out k-space, the outer iterate whose X predicts the
held-out samples best is delivered and the loop ends after ``patience`` outer iterations without
improvement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import ConfigError
from ..fit import FitConfig, FitState, fit
from ..fit.stopping import Holdout
from ..operators.base import LinearOperator
from ..params import Parameterization, render
from .operators import ChannelsToComplex
from .recon import cg


@dataclass
class ADMMResult:
    x: Tensor  # delivered image (complex, (T, H, W))
    g: Tensor  # the network's image at the delivered iteration
    outer_run: int
    selected: int | None  # delivered outer iteration (0-based) or None = last
    val_loss: list[float] = field(default_factory=list)
    lagrangian: list[float] = field(default_factory=list)
    seconds: float = 0.0


def augmented_lagrangian(op: LinearOperator, y: Tensor, x: Tensor, g: Tensor, gam: Tensor, rho: float) -> float:
    """``½‖AX − y‖² + Re⟨Γ, X − G⟩ + ρ/2‖X − G‖²``."""
    r = op(x) - y
    d = x - g
    return float(0.5 * r.abs().square().sum() + torch.vdot(gam.flatten(), d.flatten()).real + 0.5 * rho * d.abs().square().sum())


def admm(param: Parameterization, op: LinearOperator, y: Tensor, *, rho: float = 1e-3, outer: int = 20,
         cg_iters: int = 10, net_steps: int = 500, net_lr: float = 1e-5, net_config: FitConfig | None = None,
         val: tuple[LinearOperator, Tensor] | None = None, patience: int = 3, callbacks=(),
         on_outer=None, on_state=None, start: dict | None = None) -> ADMMResult:
    """Run ADMM from the current network ``param`` (output ``(T, 2, H, W)`` = real/imag per frame) on
    the complex operator ``op`` and data ``y``. ``val = (val_op, y_val)`` enables held-out stopping.
    ``on_outer(k, X, G)`` is called after each outer iteration (e.g. to log oracle metrics);
    ``on_state(state)`` receives, after each, everything the next one needs (the network's weights, X, G, Γ, the
    selection so far), and ``start=state`` continues from it exactly (a resumed run).

    >>> import torch
    >>> from deepprior.mri import CartesianSENSE
    >>> from deepprior.params import Pixels
    >>> A = CartesianSENSE(torch.ones(2, 8, 8))
    >>> y = A(torch.ones(2, 8, 8, dtype=torch.complex64))
    >>> r = admm(Pixels(torch.zeros(2, 2, 8, 8)), A, y, rho=1e-3, outer=2, net_steps=5, net_lr=1e-2)
    >>> abs(float(r.x.real.mean()) - 1) < 0.01  # fully sampled: X is the data-consistent image
    True
    """
    if rho <= 0 or outer < 1 or cg_iters < 1 or net_steps < 1:
        raise ConfigError(f"ADMM needs rho > 0 and positive counts, got rho={rho}, outer={outer}, "
                          f"cg_iters={cg_iters}, net_steps={net_steps}")
    base = net_config or FitConfig()
    # Each network step is a fresh fit (a new Adam state per outer iteration; the reference keeps one).
    cfg = base.replace(iters=net_steps, lr=net_lr, ema=None, lr_schedule=None, backtrack=False)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = render(param, cfg.batch)
        c2c = ChannelsToComplex(frames=out.shape[0] * out.shape[1] // 2)  # never squeeze a single frame away
        g = c2c(out).detach()
    x, gam = g.clone(), torch.zeros_like(g)
    aty = op.adjoint(y)
    normal = lambda v: op.gram(v) + rho * v  # noqa: E731
    res = ADMMResult(x=x, g=g, outer_run=0, selected=None)
    # The outer loop stops by the same held-out rule as the fits: one outer iteration = one step.
    stopper = Holdout(val[0], val[1], every=1, patience=patience, count=1.0) if val is not None else None
    first = 0
    if start is not None:
        dev = g.device
        param.load_state_dict(start["param"])
        x, g, gam = start["x"].to(dev), start["g"].to(dev), start["gam"].to(dev)
        res = ADMMResult(**{k: v.to(dev) if torch.is_tensor(v) else v for k, v in start["result"].items()})
        if stopper is not None:
            stopper.load_state_dict(start["stopper"])
        first = outer if start["stopped"] else start["outer"]
    for k in range(first, outer):
        with torch.no_grad():
            x = cg(normal, aty + rho * g - gam, x0=x, iters=cg_iters, tol=0.0)
        target = (x + gam / rho).detach()
        fr = fit(param, c2c, target, cfg, callbacks=callbacks)
        g = c2c(fr.image).detach()
        gam = gam + rho * (x - g)
        res.outer_run = k + 1
        res.lagrangian.append(augmented_lagrangian(op, y, x, g, gam, rho))
        if on_outer is not None:
            on_outer(k, x, g)
        state = FitState(it=k, iters=outer, x=x)
        if stopper is None:
            res.x, res.g = x, g
        else:
            stopper.on_step_end(state)  # held-out loss ‖A_val X − y_val‖²; selects X when it is a new minimum
            res.val_loss = stopper.scores
            if state.selected_iter == k:
                res.selected, res.x, res.g = k, state.selected, g.clone()
        if on_state is not None:
            on_state({"outer": k + 1, "stopped": bool(stopper is not None and state.stop), "param": param.state_dict(),
                      "x": x, "g": g, "gam": gam,
                      "stopper": None if stopper is None else stopper.state_dict(),
                      "result": {f: getattr(res, f) for f in ("x", "g", "outer_run", "selected", "val_loss", "lagrangian")}})
        if state.stop:
            break
    res.seconds = time.perf_counter() - t0
    return res
