"""MRI reconstruction methods by name — the plug-in table behind ``deepprior mri recon``."""

from __future__ import annotations

import time

import torch

from ..errors import ConfigError
from .data import MRIData
from .recon import cg_sense, kt_tv, low_rank_plus_sparse

METHODS = ("zerofill", "cgsense", "tv", "lps", "dip", "tddip", "gip")


def _weighted(data: MRIData):
    """Operator and data to use in iterative solvers: density-compensated for radial data."""
    op = data.operator
    if not data.radial:
        return op, data.kspace
    from .nufft import Weighted, pipe_dcf

    w = pipe_dcf(data.traj, data.shape)
    wop = Weighted(op, w)
    return wop, wop.sw * data.kspace


def reconstruct(data: MRIData, method: str, *, iters: int | None = None, lambda_l: float = 0.01,
                lambda_s: float = 0.01, weight: float | None = None, seed: int = 0, callbacks=(),
                **options) -> tuple[torch.Tensor, dict]:
    """Reconstruct ``data`` with ``method``; returns the complex image ``(T, H, W)`` and info (time, settings).

    ``options`` go to the network methods (``tddip``: preset, manifold_kind, cycles, batch, stop,
    holdout, patience, ref, device — see :func:`deepprior.mri.tddip.tddip`; ``gip``: preset, stop,
    holdout, ref, device, admm_stage — see :func:`deepprior.mri.gip.gip`)."""
    if method not in METHODS:
        raise ConfigError(f"unknown MRI method {method!r}; choose one of {', '.join(METHODS)}")
    if options and method not in ("tddip", "gip"):
        raise ConfigError(f"option(s) {', '.join(sorted(options))} apply to tddip and gip, not to {method}")
    t0 = time.perf_counter()
    info: dict = {"method": method}
    if method == "zerofill":
        op, y = _weighted(data)
        x = op.adjoint(y)
    elif method == "cgsense":
        info["iters"] = iters or 15
        x = cg_sense(data.operator, data.kspace, iters=info["iters"])
    elif method == "lps":
        op, y = _weighted(data)
        info.update(iters=iters or 50, lambda_l=lambda_l, lambda_s=lambda_s)
        lo, sp = low_rank_plus_sparse(op, y, lambda_l=lambda_l, lambda_s=lambda_s, iters=info["iters"])
        x = lo + sp
    elif method == "tv":
        op, y = _weighted(data)
        info.update(iters=iters or 300, weight=0.001 if weight is None else weight)
        x = kt_tv(op, y, weight=info["weight"], iters=info["iters"], callbacks=callbacks)
    elif method == "tddip":
        from .tddip import tddip

        x, tinfo = tddip(data, steps=iters, seed=seed, callbacks=callbacks, **options)
        info.update(tinfo)
        info["iters"] = tinfo["steps"]
    elif method == "gip":
        from .gip import gip

        x, ginfo = gip(data, iters=iters, seed=seed, callbacks=callbacks, **options)
        info.update(ginfo)
        info["iters"] = sum(s["steps"] for s in ginfo["stages"])
    else:
        from .dip import dip_static

        x, r = dip_static(data, seed=seed, callbacks=callbacks, iters=iters)
        info["iters"] = r.iters_run
    info["seconds"] = time.perf_counter() - t0  # the whole call, set-up included
    return x.detach(), info
