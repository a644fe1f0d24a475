"""The first line of a reconstruction: which method and preset run, on what device, and about how long.

A network fit is timed on its own first iterations (:class:`~deepprior.fit.Announce`), so the estimate holds
on whatever machine runs it; a classical solver is estimated before it starts, from timed applications of the
normal operator AᴴA, which is what its iterations spend their time on.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from ..fit import Announce, format_seconds, resolve_device
from ..presets import DEFAULTS, get_preset
from .common import weighted
from .data import MRIData

GROUPS = {"dip": "mri-dip", "tddip": "tddip", "gip": "gip", "dip-moco": "moco"}
# AᴴA applications per iteration and the default iteration count (methods.reconstruct's); ADMM runs 5 CG steps
# per iteration plus one A for its objective.
CLASSICAL = {"cgsense": ("CG-SENSE", 1, 15), "tv": ("ADMM", 6, 100), "wavelet": ("ADMM", 6, 100),
             "lps": ("L+S", 1, 500)}


def _stops(method: str, name: str | None, options: dict) -> bool:
    if options.get("stop"):
        return options["stop"] != "none"
    if method == "dip-moco":
        return isinstance(name, str) and get_preset(name, "moco").get("stop", {}).get("rule", "none") != "none"
    return method in ("tddip", "gip")  # dip runs its steps unless asked to stop on held-out samples


def gram_seconds(data: MRIData, repeats: int = 2) -> float:
    """Seconds of one AᴴA on ``data``'s operator (after one untimed call).

    >>> import torch
    >>> from deepprior.mri.data import simulate
    >>> gram_seconds(simulate(torch.rand(2, 16, 16), coils=2, accel=2, center=4, seed=0)) > 0
    True
    """
    op, y = weighted(data)
    with torch.no_grad():
        x = op.adjoint(y)
        op.gram(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            op.gram(x)
    return (time.perf_counter() - t0) / repeats


def announcer(data: MRIData, method: str, iters: int | None, device, options: dict,
              emit: Callable[[str], None]) -> Announce | None:
    """The callback that says what a network ``method`` runs (pass it to ``reconstruct(callbacks=…)``); for a
    classical method ``emit`` gets its line at once and None is returned.

    >>> import torch
    >>> from deepprior.mri.data import simulate
    >>> d = simulate(torch.rand(2, 16, 16), coils=2, accel=2, center=4, seed=0)
    >>> lines = []
    >>> announcer(d, "cgsense", None, "cpu", {}, lines.append) is None, lines[0].startswith("mri cgsense: CG-SENSE")
    (True, True)
    >>> isinstance(announcer(d, "tddip", None, "cpu", {}, lines.append), Announce)
    True
    """
    dev = resolve_device(device)
    if method in GROUPS:
        p = options.get("preset")
        name = p if isinstance(p, str) else (DEFAULTS[GROUPS[method]] if p is None else None)
        what = f"mri {method}: preset {name}" if name else f"mri {method}: a custom preset"
        return Announce(emit, what, device=dev.type, stops=_stops(method, name, options),
                        unit="sweep" if method == "tddip" else "step",
                        detail=f" of {data.frames} frames" if method == "tddip" else "")
    if method in CLASSICAL:
        algo, grams, default = CLASSICAL[method]
        n = iters or default
        est = gram_seconds(data.to(dev)) * grams * n
        bound = "at most" if method in ("tv", "wavelet", "lps") else "about"  # they stop at a tolerance
        emit(f"mri {method}: {algo} on {dev.type}, {'up to ' if bound == 'at most' else ''}{n} iterations: {bound} "
             f"{format_seconds(est)}")
    elif method not in ("zerofill", "grappa"):  # those two take a second
        emit(f"mri {method} on {dev.type}")
    return None
