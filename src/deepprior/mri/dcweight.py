"""Data consistency towards a network image, with its weight chosen on held-out k-space samples.

A network method delivers ``x_net``; the exact data-consistency step keeps the scanner's samples and lets
the network fill the rest::

    x_μ = argmin_x ½‖Ax − y‖² + μ/2 ‖x − x_net‖²

Small μ trusts the samples (right when they are clean: +0.6 dB on noiseless OCMR), large μ trusts the
network (right when the samples carry noise or model error the network left out: a fixed μ cost 1.1-1.3 dB
at SNR 30 dB and with measured maps on a finer object). No single μ suits both, and the noise level is not
known. The network methods already hold out a seeded part of the acquired samples to stop the fit, so
those samples were never fitted: solve the step on the training samples for each μ of a grid (and μ = ∞,
the network image itself) and keep the μ whose image predicts the held-out samples best. The held-out
residual is the image error at acquired k-space positions plus the noise, which does not depend on μ —
cross-validation of the one weight, with no noise estimate and no reference.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import ConfigError
from .pics import pics

DC_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)  # μ on data scaled to unit image intensity


def dc_step(x: Tensor, op, y: Tensor, mu: float, *, x0: Tensor | None = None, iters: int = 200) -> Tensor:
    """``argmin ½‖op(v) − y‖² + μ/2 ‖v − x‖²`` by conjugate gradients from ``x0`` (default ``x``); μ on data
    scaled to unit image intensity, as :func:`~deepprior.mri.pics.pics` scales its weights.

    >>> import torch
    >>> from deepprior.mri import CartesianSENSE
    >>> A = CartesianSENSE(torch.ones(1, 4, 4))
    >>> x = torch.ones(1, 4, 4, dtype=torch.complex64)
    >>> v = dc_step(torch.zeros_like(x), A, A(x), 1e-6)  # a tiny μ: the samples win
    >>> bool((v - x).abs().max() < 1e-3)
    True
    """
    if not mu > 0:
        raise ConfigError(f"the data-consistency weight must be > 0, got {mu}")
    return pics(op, y, {}, prior=(x, mu), x0=x if x0 is None else x0, iters=iters, cg_iters=1, tol=1e-5).image


def choose_dc_weight(x: Tensor, train_op, y_train: Tensor, val_op, y_val: Tensor,
                     grid=DC_GRID, patience: int | None = 2) -> tuple[float | None, dict]:
    """The μ of ``grid`` (or ``None`` = ∞, the network image unchanged) whose data-consistency step on the
    training samples best predicts the held-out samples ``y_val`` (relative residual). ``x`` must come from a
    fit that never saw ``y_val``. Returns ``(μ, {μ or inf: score})``; ties go to the larger μ.

    The grid is scanned from the stiffest μ down and the scan ends once ``patience`` weights in a row have scored
    worse than the best so far (None: the whole grid). The small weights are the costly ones (the system's
    condition number grows as 1/μ): on 13 radial spokes (26 × 128², 8 coils) μ ≤ 3·10⁻³ took 68 of the whole
    grid's 80 s. Every full score curve printed in docs/mri.md's runs fell, then rose, once over the grid.

    >>> import torch
    >>> from deepprior.mri.data import simulate
    >>> from deepprior.mri.common import split_kspace, zero_filled
    >>> d = simulate(torch.rand(2, 16, 16), coils=4, accel=2, center=4, seed=0)
    >>> tr, ytr, va, yva, _ = split_kspace(d, 0.2, seed=1)
    >>> mu, scores = choose_dc_weight(zero_filled(d) * 0, tr, ytr, va, yva, grid=(1e-3, 1.0))
    >>> mu, sorted(scores) == [1e-3, 1.0, float("inf")]  # from a blank image, the samples win
    (0.001, True)
    """
    y_norm = float(torch.linalg.vector_norm(y_val)) or 1.0

    def score(v: Tensor) -> float:
        return float(torch.linalg.vector_norm(val_op(v) - y_val)) ** 2 / y_norm ** 2

    prev = {"v": x}  # each solve starts where the stiffer one ended

    def solve(mu: float) -> float:
        prev["v"] = dc_step(x, train_op, y_train, mu, x0=prev["v"])
        return score(prev["v"])

    with torch.no_grad():
        scores = _scan({math.inf: score(x)}, grid, patience, solve)
    best = min(scores, key=lambda m: (scores[m], -m))
    return (None if best == math.inf else best), scores


def choose_dc_for_acquisition(x: Tensor, split, op, y: Tensor, unseen: float, grid=DC_GRID, extra=None,
                              patience: int | None = 2) -> tuple[object, dict, Tensor]:
    """The data-consistency step that minimises the estimated error against a *fully sampled acquisition* — what
    a reconstruction of measured data is scored against — and its image. Each candidate (μ = ∞: the network image;
    each μ of ``grid``; each ``extra`` step, ``name → f(op, y) → image``) is estimated as::

        ‖A x_c − y‖² (its residual on the acquired samples, solved with all of them)
        + unseen · ‖A_val x_c' − y_val‖² (x_c' solved without the held-out samples: their error, scaled to the
          ``unseen`` = unacquired / held-out positions)

    The held-out term alone (:func:`choose_dc_weight`) ignores that the step also moves the image at the acquired
    positions, where a fully sampled reference holds the measured values, noise included: on the measured 2-coil
    phantom it kept the network image (26.87 dB) where ConvDecoder's sample replacement reached 29.40 dB, which this
    estimate picks; on simulated OCMR it picks μ = 10⁻³ as the held-out term does (docs/mri.md). ``split``:
    ``(train_op, y_train, val_op, y_val)``, samples the fit never saw held out. Returns ``(choice, {choice:
    estimate / ‖y‖²}, image)``, choice None for ∞, μ or an ``extra`` name; the grid scan stops as in
    :func:`choose_dc_weight`.

    >>> import torch
    >>> from deepprior.mri.data import simulate
    >>> from deepprior.mri.common import split_kspace
    >>> d = simulate(torch.rand(1, 16, 16), coils=4, accel=2, center=4, seed=0)
    >>> split = split_kspace(d, 0.2, seed=1)[:4]
    >>> unseen = float((1 - d.mask).sum() / split[2].mask.sum())
    >>> c, est, img = choose_dc_for_acquisition(torch.zeros(1, 16, 16, dtype=torch.complex64), split, d.operator,
    ...                                         d.kspace, unseen, grid=(1e-3, 1.0))
    >>> c, sorted(est, key=str)  # from a blank image, the samples win
    (0.001, [0.001, 1.0, inf])
    """
    train_op, y_train, val_op, y_val = split
    norm = float(torch.linalg.vector_norm(y)) ** 2 or 1.0

    def estimate(full: Tensor, held: Tensor) -> float:
        acq = float(torch.linalg.vector_norm(op(full) - y)) ** 2
        return (acq + unseen * float(torch.linalg.vector_norm(val_op(held) - y_val)) ** 2) / norm

    with torch.no_grad():
        est, images = {math.inf: estimate(x, x)}, {math.inf: x}
        for name, step in (extra or {}).items():
            images[name] = step(op, y)
            est[name] = estimate(images[name], step(train_op, y_train))
        prev = {"all": x, "held": x}  # each solve starts where the stiffer one ended

        def solve(mu: float) -> float:
            prev["all"] = images[mu] = dc_step(x, op, y, mu, x0=prev["all"])
            prev["held"] = dc_step(x, train_op, y_train, mu, x0=prev["held"])
            return estimate(prev["all"], prev["held"])

        est = _scan(est, grid, patience, solve)
    best = min(est, key=est.get)
    return (None if best == math.inf else best), est, images[best]


def _scan(scores: dict, grid, patience: int | None, solve) -> dict:
    """Add ``solve(μ)`` to ``scores`` for μ of ``grid`` from the stiffest down, until ``patience`` weights in a row
    have scored worse than the best so far (None: the whole grid)."""
    if not grid or any(not m > 0 for m in grid):
        raise ConfigError(f"the dc grid must hold weights > 0, got {grid}")
    worse = 0
    for mu in sorted(grid, reverse=True):
        best_so_far = min(scores.values())
        scores[mu] = solve(mu)
        worse = worse + 1 if scores[mu] > best_so_far else 0
        if patience and worse >= patience:
            break
    return scores


# The μ choice's cost in iterations of the final step, measured on OCMR 26 × 128² × 8 coils (2 cores): 9.9 / 8.9 /
# 7.8 s on radial 8 / 13 spokes and Cartesian k-t R = 8, i.e. 21-23 ADMM iterations of the TV pull; 109-322
# applications of the gram, i.e. at most ~300 iterations of the plain step's CG.
CHOOSE_ADMM_ITERS = 25
CHOOSE_CG_ITERS = 300
# Inside TDDIP runs on a CPU without AMX (bench/hybrid.py prints both) the step took 37 s against the probe's 33 on
# OCMR k-t R = 8, and 41 and 35 s against 48 and 50 on 8 radial spokes: the estimate is stretched to err long, since a
# run past the budget is worse than a fit a few seconds shorter.
FINAL_STEP_MARGIN = 1.2


def final_step_seconds(op, y: Tensor, x: Tensor, regs: dict[str, float], iters: int) -> float:
    """An estimate of the seconds that :func:`choose_dc_weight` and the final step towards an image shaped as ``x``
    take on ``op``/``y`` on this machine now: a few of the step's own iterations are timed and scaled to the count
    it runs — ``iters`` ADMM iterations of the pull with ``regs`` (k-t TV), or, without ``regs``,
    :func:`dc_step`'s CG (200 at most) — plus twice the probe's set-up (the step scales the data, then forms Aᴴy),
    all × :data:`FINAL_STEP_MARGIN`. A fit with a budget for the whole reconstruction ends early enough to leave this
    much (TDDIP's ``budget``).

    >>> import torch
    >>> from deepprior.mri import CartesianSENSE
    >>> A = CartesianSENSE(torch.ones(2, 8, 8))
    >>> x = torch.ones(2, 8, 8, dtype=torch.complex64)
    >>> final_step_seconds(A, A(x), x, {"tv": 1e-3}, 50) > 0
    True
    """
    probe = 4
    with torch.no_grad():
        if regs:
            r = pics(op, y, regs, prior=(x, 1e-3), x0=x, scale=1.0, iters=probe, tol=0.0, adapt=False)
            per = sorted(r.seconds[1:])[1]  # the median of three: the first iteration pays for allocations
            return FINAL_STEP_MARGIN * (2 * r.setup_seconds + per * (iters + CHOOSE_ADMM_ITERS))
        r = pics(op, y, {}, prior=(x, 1e-3), x0=x, scale=1.0, iters=probe, cg_iters=1, tol=0.0)
        return FINAL_STEP_MARGIN * (2 * r.setup_seconds + r.seconds[0] / probe * (200 + CHOOSE_CG_ITERS))
