"""Motion correction from multi-shot k-space (issue #18): every method on the same simulated acquisitions.

    python bench/motion.py                       # all settings → docs/motion_bench.json + docs/img/motion_*.png
    python bench/motion.py --only full-5 r2-5    # some settings (rows of other settings in the file are kept)
    python bench/motion.py --table               # the markdown table of docs/motion.md

Data: frame 0 of the OCMR cine in shared/ (128², magnitude) with the smooth phase of `mri simulate`, 8 birdcage
coils, 16 interleaved shots of whole phase-encode lines, SNR 30 dB, seed 0; sudden jumps (`--motion jumps`) with a
peak of ±2 or ±5 px and degrees. Settings: `full-2`, `full-5` (fully sampled), `r2-2`, `r2-5` (every other line +
16 centre lines, R = 1.8), and `full-5-espirit`, `r2-5-espirit`: the same data reconstructed with ESPIRiT maps
estimated from the motion-corrupted k-space itself instead of the simulator's maps.
Methods, each as `deepprior mri recon` runs it by default: cgsense (no correction), cg-moco (classical joint),
dip-moco (DIP joint), cgsense through the true motion (the classical ceiling), and dip on the motion-free
acquisition (`--motion none`, same noise: the DIP ceiling). Run alone: two torch processes on 2 cores slow each
other many times over.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from deepprior.mri.calib import espirit_maps
from deepprior.mri.methods import reconstruct
from deepprior.mri.motion import simulate_motion

ROOT = Path(__file__).resolve().parents[1]
OCMR = ROOT.parent / "shared" / "data" / "mri" / "ocmr0004_cine_mag_26x128x128_tddip.mat"
SETTINGS = ("full-2", "full-5", "r2-2", "r2-5", "full-5-espirit", "r2-5-espirit")
OUT = ROOT / "docs" / "motion_bench.json"


def frame() -> np.ndarray:
    from deepprior.mri.io import load_series

    return np.abs(load_series(OCMR))[0]


def data(name: str, motion: str = "jumps"):
    amp = 2.0 if "-2" in name else 5.0
    accel = 2 if name.startswith("r2") else 1
    d = simulate_motion(frame(), coils=8, shots=16, order="interleaved", motion=motion, max_shift=amp, max_rot=amp,
                        accel=accel, center=16, snr_db=30.0, seed=0)
    if name.endswith("espirit"):
        d = dataclasses.replace(d, maps=espirit_maps(d.kspace[0], crop=0.0))  # as `mri recon --estimate-maps`
    return d


def row(setting, method, r, extra=None):
    out = {"setting": setting, "method": method, "psnr": round(r.metrics["psnr"], 2), "ssim": round(r.metrics["ssim"], 4),
           "seconds": round(r.seconds, 1)}
    if "motion_rmse" in r.info:
        out.update(shift_rmse_px=r.info["motion_rmse"]["shift_px"], rot_rmse_deg=r.info["motion_rmse"]["rot_deg"])
    if r.iters is not None:
        out["iters"] = r.iters
    out.update(extra or {})
    print(json.dumps(out), flush=True)
    return out


def run(name: str, ceilings: dict) -> list[dict]:
    d = data(name)
    rows = [row(name, "cgsense (no correction)", reconstruct(d, "cgsense", device="cpu"))]
    rows.append(row(name, "cg-moco", reconstruct(d, "cg-moco", device="cpu")))
    r = reconstruct(d, "dip-moco", device="cpu", seed=0)
    from deepprior.mri.metrics import mri_metrics

    net = mri_metrics(r.info["network_image"], d.gt)
    rows.append(row(name, "dip-moco", r, {"network_psnr": round(net["psnr"], 2), "selected": r.selected_iter}))
    if name in ("full-5", "r2-5"):
        save_figure(name, d, r)
    rows.append(row(name, "cgsense, true motion (ceiling)", reconstruct(d, "cgsense", device="cpu", motion=d.motion)))
    key = name.split("-")[0] + ("-espirit" if name.endswith("espirit") else "")
    if key not in ceilings:
        still = data(name, motion="none")
        ceilings[key] = reconstruct(still, "dip", device="cpu", seed=0)
    rows.append(row(name, "dip, motion-free data (ceiling)", ceilings[key]))
    return rows


def save_figure(name, d, r):
    from deepprior.cli.motion import save_motion_figure
    from deepprior.plotting import pyplot, save_figure as save

    save_motion_figure(ROOT / "docs" / "img" / f"motion_{name}_curves.png", r.info["motion"], d.motion.cpu(),
                       f"dip-moco on {name}: RMSE {r.info['motion_rmse']['shift_px']:.3f} px, "
                       f"{r.info['motion_rmse']['rot_deg']:.3f}°")
    plain = reconstruct(d, "cgsense", device="cpu")
    classical = reconstruct(d, "cg-moco", device="cpu")
    plt = pyplot()
    panels = [("no correction", plain), ("cg-moco", classical), ("dip-moco", r)]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    vmax = float(d.gt.abs().max())
    for ax, (title, res) in zip(axes, panels):
        ax.imshow(res.image[0].abs().numpy(), cmap="gray", vmin=0, vmax=vmax)
        ax.set_title(f"{title}\n{res.metrics['psnr']:.2f} dB", fontsize=10)
    axes[3].imshow(d.gt[0].abs().numpy(), cmap="gray", vmin=0, vmax=vmax)
    axes[3].set_title("truth (shot 0's pose)", fontsize=10)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    save(fig, ROOT / "docs" / "img" / f"motion_{name}_images.png")
    plt.close(fig)


def table(path: Path) -> str:
    rows = json.loads(path.read_text())["rows"]
    lines = ["| setting | method | PSNR (dB) | SSIM | shift RMSE (px) | rotation RMSE (°) | time (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        sh = f"{r['shift_rmse_px']:.3f}" if "shift_rmse_px" in r else "–"
        ro = f"{r['rot_rmse_deg']:.3f}" if "rot_rmse_deg" in r else "–"
        psnr = f"{r['psnr']:.2f}" + (f" (network {r['network_psnr']:.2f})" if "network_psnr" in r else "")
        lines.append(f"| {r['setting']} | {r['method']} | {psnr} | {r['ssim']:.4f} | {sh} | {ro} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", choices=SETTINGS)
    ap.add_argument("--table", action="store_true", help="print the docs table from docs/motion_bench.json")
    a = ap.parse_args()
    if a.table:
        print(table(OUT))
        return
    torch.set_num_threads(2)
    names = a.only or SETTINGS
    old = json.loads(OUT.read_text())["rows"] if OUT.exists() else []
    rows, ceilings, t0 = [r for r in old if r["setting"] not in names], {}, time.time()
    for n in names:
        rows += run(n, ceilings)
        order = {s: i for i, s in enumerate(SETTINGS)}
        rows.sort(key=lambda r: order[r["setting"]])
        OUT.write_text(json.dumps({"command": "python bench/motion.py", "torch": torch.__version__,
                                   "threads": torch.get_num_threads(), "rows": rows}, indent=1))
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
