"""Untrained priors against the tuned classical baselines on OCMR k-t R = 8 (issue #15's levers), side by side.

    python bench/hybrid.py                 # about 25 min on 2 cores
    python bench/hybrid.py --steps 1500    # TDDIP budget (optimizer steps; held-out stopping may end it earlier)

Rows: k-t TV (temporal, λ_t and λ_xy as tuned in bench/classical_tuned.py, i.e. the ``tv`` defaults), TDDIP
(``tddip-cpu`` defaults, held-out stop), and the hybrid ``tddip --init tv``: the generator starts exactly at the
k-t TV image and fits only the changes (held-out stop, so it can also keep the start). Every row is scored in the
whole FOV and in the fixed cardiac region of interest (:func:`deepprior.mri.metrics.motion_roi`), for seeds 0–2
(the simulation's noise and mask, and the network's weights, all follow the seed).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from deepprior.mri.data import simulate
from deepprior.mri.io import load_series
from deepprior.mri.methods import reconstruct
from deepprior.mri.metrics import motion_roi, mri_metrics

OCMR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mri" / "ocmr0004_cine_mag_26x128x128_tddip.mat"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=None, help="TDDIP optimizer steps (default: the preset's)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--init-lr", type=float, default=None, help="learning rate of the --init tv hybrid (default: the preset's)")
    ap.add_argument("--methods", nargs="+", default=["tv", "tddip", "tddip --init tv"])
    ap.add_argument("--json", default=str(Path(__file__).parent / "results" / "hybrid.json"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    s = torch.from_numpy(abs(load_series(str(OCMR))))
    rows = []
    print("| seed | method | PSNR [dB] | ROI PSNR [dB] | SSIM | time [s] | stopped at |\n|---|---|---|---|---|---|---|")
    for seed in a.seeds:
        d = simulate(s, coils=8, seed=seed, pattern="kt-random", accel=8, center=8)
        roi = motion_roi(d.gt)
        for m in a.methods:
            opts = {"init": "tv", "lr": a.init_lr} if m.endswith("--init tv") else {}
            name = m.split()[0]
            r = reconstruct(d, name, seed=seed, device="cpu", iters=a.steps if name == "tddip" else None, **opts)
            mr = mri_metrics(r.image, d.gt, roi)
            rows.append(dict(seed=seed, method=m, psnr=r.metrics["psnr"], roi_psnr=mr["psnr"], ssim=r.metrics["ssim"],
                             seconds=r.seconds, selected=r.selected_iter, iters=r.iters))
            print(f"| {seed} | {m} | {r.metrics['psnr']:.2f} | {mr['psnr']:.2f} | {r.metrics['ssim']:.4f} | "
                  f"{r.seconds:.0f} | {r.selected_iter} of {r.iters} |", flush=True)
    print("\n| method | PSNR mean ± sd | ROI PSNR mean ± sd | margin over tv (mean ± sd) |\n|---|---|---|---|")
    for m in a.methods:
        mine = [r for r in rows if r["method"] == m]
        tv = {r["seed"]: r["psnr"] for r in rows if r["method"] == "tv"}
        p, q = [r["psnr"] for r in mine], [r["roi_psnr"] for r in mine]
        margin = [r["psnr"] - tv[r["seed"]] for r in mine if r["seed"] in tv]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        print(f"| {m} | {statistics.mean(p):.2f} ± {sd(p):.2f} | {statistics.mean(q):.2f} ± {sd(q):.2f} | "
              f"{statistics.mean(margin):+.2f} ± {sd(margin):.2f} |" if margin else f"| {m} | … |")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
