"""Quality and speed of the reference denoising preset on F16 (docs/presets.md's denoising rows).

    python bench/denoise_f16.py --size 128 --iters 1000          # PSNR raw / EMA after N iterations
    python bench/denoise_f16.py --timing 128 256 --steps 20       # seconds per iteration

Needs ../shared/data/images/denoising_F16_GT.png (the DIP reference image). Noise is seeded
(torch.Generator seed = --seed); the crop is the centre crop.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from deepprior.io import load_image
from deepprior.metrics import psnr, ssim
from deepprior.tasks import add_noise, build_dip, denoise_problem, resolve_preset, solve, to_tensor

F16 = Path(__file__).resolve().parents[2] / "shared" / "data" / "images" / "denoising_F16_GT.png"


def center_crop(x, n):
    h, w = x.shape[-2:]
    return x[..., (h - n) // 2:(h - n) // 2 + n, (w - n) // 2:(w - n) // 2 + n]


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def quality(args):
    clean = center_crop(to_tensor(load_image(args.image).data), args.size)
    noisy = add_noise(clean, args.sigma / 255, seed=args.seed)
    p = denoise_problem(noisy, clean, sigma=args.sigma / 255)
    r = solve(p, preset=args.preset, iters=args.iters, seed=args.seed, device="cpu", stop="none")  # the fixed recipe
    h = r.fit.history
    out = {"image": Path(args.image).name, "crop": args.size, "sigma": args.sigma, "preset": r.preset,
           "iters": r.fit.iters_run, "psnr_noisy": psnr(noisy, clean), "psnr_last": psnr(r.fit.image, clean),
           "psnr_ema": psnr(r.fit.ema, clean), "ssim_ema": ssim(r.fit.ema, clean),
           "oracle_best_psnr_last": max(h["psnr"]), "oracle_best_iter": r.fit.best_iter + 1,
           "oracle_best_psnr_ema": max(h["psnr_ema"]), "seconds": r.fit.seconds,
           "ms_per_iter": 1000 * r.fit.seconds / r.fit.iters_run, "backtracks": r.fit.backtracks, "machine": machine()}
    for k in (100, 250, 500, 750, 1000, 2000, 3000):
        if k <= len(h["psnr"]):
            out[f"psnr_ema@{k}"] = h["psnr_ema"][k - 1]
    print(json.dumps(out, indent=1))


def timing(args):
    rows = []
    for n in args.timing:
        clean = torch.rand(1, 3, n, n, generator=torch.Generator().manual_seed(0))
        p = denoise_problem(clean, None, sigma=25 / 255)
        _, preset = resolve_preset(p, args.preset)
        param = build_dip(p, preset, seed=0)
        opt = torch.optim.Adam(param.parameters(), lr=0.01)
        ts = []
        for _ in range(args.steps + 2):
            t = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = torch.mean((param() - p.y) ** 2)
            loss.backward()
            opt.step()
            ts.append(time.perf_counter() - t)
        ts = ts[2:]  # first steps allocate
        rows.append({"size": n, "preset": args.preset, "median_s_per_iter": statistics.median(ts),
                     "min_s": min(ts), "max_s": max(ts), "steps": args.steps})
    for r in rows:
        print(json.dumps(r))
    print(machine())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default=str(F16))
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--sigma", type=float, default=25)
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="denoise")
    ap.add_argument("--timing", type=int, nargs="*", default=None, help="sizes to time instead of a quality run")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    if args.timing:
        timing(args)
    else:
        if not Path(args.image).exists():
            sys.exit(f"error: {args.image} not found (needs ../shared/data/images)")
        quality(args)


if __name__ == "__main__":
    main()
