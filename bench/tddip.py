"""TDDIP vs zero-filled, CG-SENSE, k-t TV and L+S on OCMR cine (issue #4's table).

26 frames 128², 8 simulated coils (SNR 40 dB), seed 0; Cartesian k-t random with 16 lines per frame
(R = 8, 8 centre lines) and golden-angle radial with 13 spokes per frame.

    python bench/tddip.py                                   # CPU reduced setting: tddip-cpu, 3000 steps
    python bench/tddip.py --preset tddip --steps 10000 --device cuda   # full setting (reference net), GPU
    python bench/tddip.py --only radial --stop none         # one sampling, no stopping (oracle curve only)

Prints a Markdown table (PSNR/SSIM/NRMSE on magnitude, wall time, iterations; for TDDIP the delivered
sweep chosen without ground truth and the oracle-best sweep, a diagnostic) and writes JSON plus a
curves/per-frame plot per sampling to --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from deepprior.mri.data import simulate
from deepprior.mri.io import load_series, save_recon
from deepprior.mri.methods import reconstruct
from deepprior.mri.metrics import mri_metrics
from deepprior.plotting import save_dynamic_report

OCMR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mri" / "ocmr0004_cine_mag_26x128x128_tddip.mat"
SETTINGS = {"cartesian": ("Cartesian k-t random, 16 lines/frame (R=8)", dict(pattern="kt-random", accel=8, center=8)),
            "radial": ("golden-angle radial, 13 spokes/frame", dict(spokes=13))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", default=str(OCMR))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="tddip-cpu")
    ap.add_argument("--steps", type=int, default=None, help="TDDIP optimizer steps (default: the preset's)")
    ap.add_argument("--manifold", default=None)
    ap.add_argument("--stop", default="holdout", choices=("holdout", "wmv", "none"))
    ap.add_argument("--holdout", type=float, default=0.05)
    ap.add_argument("--patience", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", choices=tuple(SETTINGS), default=None)
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--out", default="bench/results/tddip")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    s = torch.from_numpy(abs(load_series(a.series)))
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {a.device}")
    print("| sampling | method | PSNR [dB] | SSIM | NRMSE | time [s] | iterations | delivered / oracle-best sweep (oracle PSNR) |")
    print("|---|---|---|---|---|---|---|---|")
    for key in ([a.only] if a.only else SETTINGS):
        label, kw = SETTINGS[key]
        d = simulate(s, coils=8, seed=a.seed, **kw)
        methods = [] if a.no_baselines else ["zerofill", "cgsense", "tv", "lps"]
        for method in methods + ["tddip"]:
            opts = {}
            if method == "tddip":
                opts = dict(preset=a.preset, stop=a.stop, holdout=a.holdout, patience=a.patience, ref=d.gt,
                            device=a.device, **({"manifold_kind": a.manifold} if a.manifold else {}))
            t = time.perf_counter()
            r = reconstruct(d, method, seed=a.seed, iters=a.steps if method == "tddip" else None, **opts)
            x, info = r.image, r.info
            sec = time.perf_counter() - t
            m = mri_metrics(x, d.gt)
            extra = ""
            if method == "tddip":
                sel = info.get("selected_sweep")
                extra = (f"{'last' if sel is None else sel + 1} / {info['oracle_best_sweep'] + 1} "
                         f"({info['oracle_best_psnr']:.2f} dB)")
                save_dynamic_report(out / f"tddip_{key}.png", info, m)
                save_recon(out / f"tddip_{key}.gif", x, overwrite=True)
                its = f"{info['steps']} steps = {info['sweeps']} sweeps"
            else:
                its = str(info.get("iters", "–"))
            name = f"tddip ({a.preset}, stop {a.stop})" if method == "tddip" else method
            print(f"| {key} | {name} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['nrmse']:.4f} | {sec:.1f} | {its} | {extra} |",
                  flush=True)
            row = {"sampling": key, "method": name, **{k: m[k] for k in ("psnr", "ssim", "nrmse")}, "seconds": sec,
                   "per_frame_psnr": m["per_frame"]["psnr"]}
            row.update({k: v for k, v in info.items() if k not in ("method", "seconds") and not torch.is_tensor(v)})
            rows.append(row)
    (out / "tddip.json").write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
