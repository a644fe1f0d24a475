"""Seconds per iteration of TDDIP and GIP on OCMR cine (26×128², 8 simulated coils), Cartesian and radial.

    python bench/mri_speed.py                       # CPU: reduced presets (tddip-cpu, gip-cpu) + full TDDIP
    python bench/mri_speed.py --gip-full            # also GIP at the reference width (≈ 14 s per step here)
    python bench/mri_speed.py --device cuda --gip-full
    python bench/mri_speed.py --no-gip              # TDDIP only (the CPU preset in both memory layouts)

Rows: the forward model alone (Aᴴ A x for the whole series, the cost every data-consistency step pays
at least once), TDDIP per optimizer step (one frame per step, as the reference) and per sweep (every
frame once), on the fit's own clock (the whole call with its set-up in the notes) — the CPU preset also with 64
channels at the image's level as at the others (its former decoder), with each upsampling and the convolution
after it computed apart (``fold_upsample: false``), with the decoder in the NCHW memory layout instead of its
channels-last one and, on radial data, with the data term through the NUFFT pair instead of the Toeplitz gram (GIP
too), timed in the same process —, and each GIP stage per step (cnn / gnn / joint: the whole 26-frame network; admm:
one outer iteration = a CG X-step plus its network steps). Everything runs with ``stop='none'`` and a few
steps per stage, so a row is a rate, not a result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from deepprior.mri.data import simulate
from deepprior.mri.io import load_series
from deepprior.mri.methods import reconstruct
from deepprior.presets import get_preset

OCMR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mri" / "ocmr0004_cine_mag_26x128x128_tddip.mat"
SAMPLINGS = {"cartesian": dict(pattern="kt-random", accel=8, center=8), "radial": dict(spokes=13)}


def op_time(d, device, reps=5):
    op = d.operator.to(device)
    x = op.adjoint(d.kspace.to(device))
    ts = []
    for _ in range(reps + 1):
        t = time.perf_counter()
        op.gram(x)
        if device == "cuda":
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts[1:])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", default=str(OCMR))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tddip-steps", type=int, default=52, help="optimizer steps timed per TDDIP preset (2 sweeps)")
    ap.add_argument("--gip-iters", type=int, default=80, help="GIP schedule scaled to this many reference-40k steps")
    ap.add_argument("--gip-full", action="store_true", help="also GIP at the reference width (CH 24, K 7)")
    ap.add_argument("--no-gip", action="store_true", help="time TDDIP and the forward model only")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    s = torch.from_numpy(abs(load_series(a.series)))
    print(f"# {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, device {a.device}; series {tuple(s.shape)}, 8 coils\n")
    print("| sampling | what | s / step | steps timed | notes |\n|---|---|---|---|---|", flush=True)
    rows = []

    def row(sampling, what, per, n, note=""):
        rows.append({"sampling": sampling, "what": what, "s_per_step": per, "steps": n, "note": note})
        print(f"| {sampling} | {what} | {per:.3f} | {n} | {note} |", flush=True)

    for key, kw in SAMPLINGS.items():
        d = simulate(s, coils=8, seed=0, **kw)
        row(key, "AᴴA on all 26 frames", op_time(d, a.device), 5, type(d.operator).__name__)
        cpu = get_preset("tddip-cpu", "tddip")
        nchw = {**cpu, "fit": {**cpu["fit"], "channels_last": False}}
        unfolded = {**cpu, "net": {**cpu["net"], "fold_upsample": False}}
        uniform = {**cpu, "net": {**cpu["net"], "fine_channels": None}}  # the former decoder: 64 at every level
        reconstruct(d, "tddip", iters=26, stop="none", device=a.device)  # warm-up: kernels, primitive caches
        variants = [("tddip-cpu", "tddip-cpu", {}), ("tddip-cpu, 64 channels at every level", uniform, {}),
                    ("tddip-cpu, upsampling not folded", unfolded, {}),
                    ("tddip-cpu, NCHW layout", nchw, {}), ("tddip", "tddip", {})]
        if d.radial:  # the data term through the NUFFT pair instead of the Toeplitz gram
            variants.insert(2, ("tddip-cpu, NUFFT data term", "tddip-cpu", {"gram": False}))
        for name, preset, opts in variants:
            r = reconstruct(d, "tddip", iters=a.tddip_steps, preset=preset, stop="none", device=a.device, **opts)
            info = r.info
            per = r.history["time"][-1] / info["steps"]  # the fit's own clock: a full run amortises the set-up
            row(key, f"TDDIP {name}, per step (1 frame)", per, info["steps"],
                f"{per * 26:.2f} s per sweep of 26 frames; {info['sweeps']} sweeps; "
                f"{'bf16' if info['bf16'] else 'float32'}; whole call {info['seconds']:.1f} s")
        gips = [] if a.no_gip else [("gip-cpu", {})] + ([("gip", {})] if a.gip_full else [])
        if d.radial and not a.no_gip:
            gips.insert(1, ("gip-cpu", {"gram": False}))
        for preset, opts in gips:
            iters = a.gip_iters if preset == "gip-cpu" else max(8, a.gip_iters // 5)  # full width: ≈ 14 s/step on a CPU
            r = reconstruct(d, "gip", iters=iters, preset=preset, stop="none", device=a.device, **opts)
            info = r.info
            label = preset + (", NUFFT data term" if opts else "")
            for st in info["stages"]:
                n = st.get("outer", st["steps"])
                unit = "outer iteration" if st["stage"] == "admm" else "step"
                row(key, f"GIP {label} {st['stage']}, per {unit}", st["seconds"] / max(1, n), n,
                    f"{st['steps']} network steps" if st["stage"] == "admm" else "")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
