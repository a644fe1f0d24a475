"""GIP vs TDDIP vs L+S vs zero-filled on OCMR cine (issue #5's table), and the speed of the vectorised
GIP network against a frame-by-frame loop over the same weights.

26 frames 128², 8 simulated coils (SNR 40 dB), seed 0, per-frame 2-D variable-density Poisson-disc
masks: R = 8 with a 10×10 centre and R = 16 with a 6×6 centre (the GIP reference's settings).

    python bench/gip.py                        # CPU reduced setting: gip-cpu 800 steps, tddip-cpu 1500 steps
    python bench/gip.py --speed-only           # only the vectorised-vs-loop timing (reference width)
    python bench/gip.py --preset gip --iters 40000 --tddip-preset tddip --tddip-steps 10000 --device cuda  # GPU

Prints Markdown tables and writes JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from deepprior.mri.data import simulate
from deepprior.nets.gip import GIPNet
from deepprior.mri.io import load_series
from deepprior.mri.methods import reconstruct
from deepprior.mri.metrics import mri_metrics

OCMR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mri" / "ocmr0004_cine_mag_26x128x128_tddip.mat"
SETTINGS = {"R8": dict(accel=8, center=10), "R16": dict(accel=16, center=6)}


def speed(frames=26, hw=(128, 128), ch=24, k=7, repeats=3, device="cpu"):
    """Seconds per pretraining iteration (forward + backward of the full network + Adam step)."""
    torch.manual_seed(0)
    net = GIPNet(frames, hw, ch=ch, k=k).to(device)
    z = torch.rand(1, 8, 8, 8, device=device)
    with torch.no_grad():
        net.nn_idx = net.graph(net.features(z).reshape(frames, ch, *hw))
        a, b = net(z), net.forward_loop(z)
    err = float((a - b).abs().max() / b.abs().max())
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    out = {}
    for name, f in (("vectorised", lambda: net(z)), ("frame loop", lambda: net.forward_loop(z))):
        ts = []
        for _ in range(repeats + 1):
            t = time.perf_counter()
            opt.zero_grad()
            f().square().mean().backward()
            opt.step()
            if device != "cpu":
                torch.cuda.synchronize()
            ts.append(time.perf_counter() - t)
        out[name] = statistics.median(ts[1:])  # the first call warms up
    return out, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", default=str(OCMR))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="gip-cpu")
    ap.add_argument("--iters", type=int, default=None, help="GIP network steps (default: the preset's)")
    ap.add_argument("--tddip-preset", default="tddip-cpu")
    ap.add_argument("--tddip-steps", type=int, default=1500)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", choices=tuple(SETTINGS), default=None)
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--out", default="bench/results/gip")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {a.device}")
    result = {}
    if not a.no_speed:
        sp, err = speed(device=a.device)
        result["speed"] = {**sp, "max_rel_diff": err}
        print("\n| GIP pretraining iteration, 26 frames 128², CH=24, K=7 | s/iteration |\n|---|---|")
        for k, v in sp.items():
            print(f"| {k} | {v:.2f} |")
        print(f"speed-up {sp['frame loop'] / sp['vectorised']:.2f}×; outputs agree to {err:.1e} (max relative)\n", flush=True)
    if a.speed_only:
        (out / "gip.json").write_text(json.dumps(result, indent=1))
        return
    s = torch.from_numpy(abs(load_series(a.series)))
    rows = []
    print("| mask | method | PSNR [dB] | SSIM | NRMSE | time [s] | network steps |\n|---|---|---|---|---|---|---|")

    def row(key, name, x, d, sec, its):
        m = mri_metrics(x, d.gt)
        print(f"| {key} | {name} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['nrmse']:.4f} | {sec:.1f} | {its} |", flush=True)
        rows.append({"mask": key, "method": name, **{k: m[k] for k in ("psnr", "ssim", "nrmse")}, "seconds": sec,
                     "iterations": its})

    for key in ([a.only] if a.only else SETTINGS):
        d = simulate(s, coils=8, pattern="poisson2d", seed=a.seed, **SETTINGS[key])
        key = f"{key} (measured {d.acceleration:.1f})"
        for method in ("zerofill", "cgsense", "lps"):
            r = reconstruct(d, method)
            x, info = r.image, r.info
            row(key, method, x, d, info["seconds"], "–")
        r = reconstruct(d, "tddip", iters=a.tddip_steps, seed=a.seed, preset=a.tddip_preset, ref=d.gt,
                        device=a.device)
        x, info = r.image, r.info
        row(key, f"tddip ({a.tddip_preset}, holdout)", x, d, info["seconds"], info["steps"])
        r = reconstruct(d, "gip", iters=a.iters, seed=a.seed, preset=a.preset, ref=d.gt, device=a.device,
                        log=lambda rec: print("   ", {k: v for k, v in rec.items()
                                                     if k not in ("val_loss", "oracle_psnr")}, flush=True))
        x, info = r.image, r.info
        pre_steps = sum(st["steps"] for st in info["stages"] if st["stage"] != "admm")
        row(key, f"gip ({a.preset}) after pretraining", info["pretrained"], d, info["pretrain_seconds"], pre_steps)
        admm = info["stages"][-1]
        row(key, f"gip ({a.preset}) after ADMM (outer {admm['selected'] + 1}/{admm['outer']} by held-out loss)", x, d,
            info["seconds"], pre_steps + admm["steps"])
        rows[-1]["admm_oracle_psnr"] = admm["oracle_psnr"]
        rows[-1]["admm_val_loss"] = admm["val_loss"]
    result["rows"] = rows
    (out / "gip.json").write_text(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
