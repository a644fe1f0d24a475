"""Reconstructions of *measured* k-space (docs/real_data.md): the Siemens GRE phantom (fully sampled, so
retrospective undersampling has a reference) and the in-vivo brain (prospectively undersampled, no reference).

    python bench/real_data.py                     # phantom R = 2, 3, 4 and the brain; writes docs/img figures
    python bench/real_data.py --dip-iters 300     # quicker
    python bench/real_data.py --methods zerofill grappa cgsense tv "tv + dc" wavelet   # the classical rows only

Phantom: 1-D variable-density masks (seed 0, 24 fully sampled centre lines), ESPIRiT maps from the undersampled
data, reference = the fully sampled k-space combined with the same maps. PSNR over the field of view and
inside the maps' support (the object), data range = max |reference|. The classical methods' settings (CG
iterations, the TV and L1-wavelet weights) are chosen on R = 2 by PSNR and reused unchanged at R = 3 and 4.
Brain: 5 % of the acquired samples outside the calibration region are held out of every method (the maps come
from the calibration region, so no method sees them); the score is ‖A_val x − y_val‖ / ‖y_val‖.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from deepprior.fit.stopping import holdout_split
from deepprior.mri import MRIData, mri_metrics, reconstruct
from deepprior.mri.calib import calibration_region
from deepprior.mri.common import data_consistency
from deepprior.mri.raw import prepare, read_raw, undersample

METHODS = ("zerofill", "grappa", "cgsense", "tv", "tv + dc", "wavelet", "dip", "dip (network)")
RAW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mri" / "raw"
GRIDS = {"grappa": ("lam", [0.001, 0.01, 0.1, 1.0, 10.0]), "cgsense": ("iters", [1, 2, 3, 5, 8, 15]), "tv": ("weight", [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1]),
         "wavelet": ("weight", [0.0003, 0.001, 0.003, 0.01, 0.03, 0.1])}  # λ on data scaled to unit intensity (pics)


def psnr_in(x: torch.Tensor, ref: torch.Tensor, where: torch.Tensor) -> float:
    mse = float(((x.abs() - ref.abs()) ** 2)[where].mean())
    return 10 * math.log10(float(ref.abs().max()) ** 2 / mse)


def run(d: MRIData, method: str, setting: dict, dip_iters: int) -> tuple[torch.Tensor, float, dict]:
    kw = dict(setting)
    if method == "dip":
        kw.update(iters=dip_iters, stop="holdout")
    t = time.perf_counter()
    r = reconstruct(d, method, device="cpu", **kw)
    return r.image, time.perf_counter() - t, {**r.info, "selected": r.selected_iter, "iters": r.iters}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dip-iters", type=int, default=1500)
    ap.add_argument("--brain-dip-iters", type=int, default=4000,
                    help="the brain's DIP budget (at 1500 its held-out rule had not fired yet)")
    ap.add_argument("--accels", type=float, nargs="+", default=[2, 3, 4])
    ap.add_argument("--no-brain", action="store_true", help="the phantom only")
    ap.add_argument("--figures", default="docs/img")
    ap.add_argument("--json", default="bench/results/real_data.json")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                    help="rows to run ('tv + dc' needs tv before it, 'dip (network)' needs dip); figures need all")
    a = ap.parse_args()
    methods = [m for m in METHODS if m in a.methods]
    out: dict = {"phantom": [], "brain": []}
    raw = read_raw(RAW / "siemens_gre_2ch_phantom.dat")
    tuned: dict[str, dict] = {"zerofill": {}, "dip": {}, "dip (network)": {}}
    print("| R | method | setting | PSNR FOV [dB] | PSNR object [dB] | SSIM | time [s] |\n|---|---|---|---|---|---|---|")
    images = {}
    for accel in a.accels:
        d = undersample(raw, pattern="vd", accel=accel, center=24, seed=0)
        support = d.maps.abs().square().sum(0) > 0
        if not tuned.get("cgsense"):  # the first (lowest) acceleration tunes the classical settings
            for m, (name, grid) in GRIDS.items():
                scores = {v: psnr_in(run(d, m, {name: v}, 0)[0][0], d.gt[0], support) for v in grid}
                best = max(scores, key=scores.get)
                tuned[m] = {name: best}
                print(f"<!-- tuned {m} at R={accel}: {name}={best} ({', '.join(f'{k}: {v:.2f}' for k, v in scores.items())}) -->")
            tuned["tv + dc"] = tuned["tv"]
        info: dict = {}  # "tv + dc" and "dip (network)" reuse the row before them (METHODS' order)
        for m in methods:
            if m == "dip (network)":  # the same fit, before its data-consistency step
                x = info["network_image"]
            elif m == "tv + dc":  # the TV image through DIP's data-consistency step: the same post-processing
                x = data_consistency(x, d.operator, d.kspace, d.maps)
            else:
                x, sec, info = run(d, m, tuned[m], a.dip_iters)
            mm = mri_metrics(x, d.gt)
            row = {"R": accel, "method": m, "setting": tuned[m], "psnr": mm["psnr"], "psnr_object": psnr_in(x[0], d.gt[0], support),
                   "ssim": mm["ssim"], "seconds": sec}
            if m.startswith("dip"):
                row["setting"] = {"iters": info["iters"], "stop": "holdout", "selected": info["selected"], "dc": info.get("dc")}
            out["phantom"].append(row)
            images[(accel, m)] = x[0].abs().numpy()
            print(f"| {accel:g} | {m} | {row['setting']} | {row['psnr']:.2f} | {row['psnr_object']:.2f} | {row['ssim']:.4f} | {sec:.1f} |",
                  flush=True)
        images[(accel, "reference")] = d.gt[0].abs().numpy()

    if a.no_brain:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))
        return
    # in-vivo brain: held-out k-space error
    rawb = read_raw(RAW / "brain_8coil_poisson8x_ksp.npy")
    d = prepare(rawb)
    sampled = d.mask[0].bool()
    cy, cx = calibration_region(sampled)
    outside = sampled.clone()
    outside[cy, cx] = False
    tr, va = holdout_split(outside.float(), 0.05 * float(sampled.sum()) / float(outside.sum()), seed=0)
    tr = (sampled.float() - va)[None]
    dt = MRIData(d.kspace * tr[:, None], tr, d.maps, None, d.meta)
    dv = MRIData(d.kspace * va[None, None], va[None], d.maps, None, {})
    print("\n| brain method | setting | held-out NRMSE | time [s] |\n|---|---|---|---|")
    brain = {}
    for m in methods:
        if m == "dip (network)":
            x = info["network_image"]
        elif m == "tv + dc":
            x = data_consistency(x, dt.operator, dt.kspace, dt.maps)
        else:
            x, sec, info = run(dt, m, tuned[m], a.brain_dip_iters)
        err = float((dv.operator(x) - dv.kspace).norm() / dv.kspace.norm())
        out["brain"].append({"method": m, "setting": tuned[m], "heldout_nrmse": err, "seconds": sec,
                             "selected": info["selected"]})
        brain[m] = x[0].abs().numpy()
        setting = tuned[m] if not m.startswith("dip") else {"iters": info["iters"], "stop": "holdout", "selected": info["selected"]}
        print(f"| {m} | {setting} | {err:.4f} | {sec:.1f} |",
              flush=True)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(out, indent=1, default=str))
    if methods == list(METHODS):
        _figures(images, brain, Path(a.figures), a.accels)


def _figures(images, brain, folder: Path, accels) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    cols = ["reference", "zerofill", "grappa", "cgsense", "tv", "wavelet", "dip"]
    fig, axes = plt.subplots(len(accels), len(cols), figsize=(2.2 * len(cols), 2.3 * len(accels)), squeeze=False)
    for i, acc in enumerate(accels):
        for j, c in enumerate(cols):
            ax = axes[i, j]
            ax.imshow(images[(acc, c)], cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"R={acc:g} {c}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(folder / "real_phantom.png", dpi=110)
    names = [m for m in brain if m not in ("dip (network)", "tv + dc")]
    fig, axes = plt.subplots(2, len(names), figsize=(2.6 * len(names), 5.2), squeeze=False)
    for j, m in enumerate(names):
        im = brain[m] / np.percentile(brain[m], 99.5)
        axes[0, j].imshow(im, cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(m, fontsize=9)
        axes[1, j].imshow(im[60:140, 50:130], cmap="gray", vmin=0, vmax=1)  # zoom
        axes[1, j].set_title(f"{m} (zoom)", fontsize=8)
        for ax in axes[:, j]:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(folder / "real_brain.png", dpi=110)


if __name__ == "__main__":
    main()
