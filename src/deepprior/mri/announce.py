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
# An iteration's cost in AᴴA applications, and the default iteration count (methods.reconstruct's). Measured on
# OCMR 26 × 128², 8 coils, 2 CPU cores (iteration time / AᴴA time): ADMM's 5 CG steps are half of a TV
# iteration, its finite differences and shrinkage the rest; db4 wavelets cost twice that; L+S adds an SVD.
CLASSICAL = {"cgsense": ("CG-SENSE", 1, 15), "tv": ("ADMM", 10, 100), "wavelet": ("ADMM", 21, 100),
             "lps": ("L+S", 2, 500)}


def _stops(data: MRIData, method: str, name: str | None, options: dict) -> bool:
    if options.get("stop"):
        return options["stop"] != "none"
    if method == "dip-moco":  # its held-out lines are Cartesian: radial data run every step
        return not data.radial and isinstance(name, str) and \
            get_preset(name, "moco").get("stop", {}).get("rule", "none") != "none"
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
    """The callback that says what a network ``method`` runs (pass it to ``reconstruct(callbacks=…)``); for an
    iterative classical method ``emit`` gets its line at once and None is returned. The direct methods (a second)
    and the motion-corrected ones (another operator, and their own report) get no line.

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
        # TDDIP's time limit (its budget's share for the fit) is the fit's own: Announce reads it from the fit
        return Announce(emit, what, device=dev.type, stops=_stops(data, method, name, options),
                        unit="sweep" if method == "tddip" else "step",
                        detail=f" of {data.frames} frames" if method == "tddip" else "")
    if method in CLASSICAL and options.get("motion") is None:  # a motion model is another operator: not estimated
        algo, grams, default = CLASSICAL[method]
        n = iters or default
        est = gram_seconds(data.to(dev)) * grams * n
        upto = "up to " if method in ("tv", "wavelet", "lps") else ""  # they may stop earlier, at a tolerance
        emit(f"mri {method}: {algo} on {dev.type}, {upto}{n} iterations: about {format_seconds(est)}")
    return None
