"""DIP's CPU default (`fast`, stopping by itself) against CBM3D on the same noisy images, side by side (issue #15).

    pip install bm3d                                  # the peer (not a deepprior dependency)
    python bench/natural_vs_cbm3d.py f16              # F16 256² centre crop, σ = 25: PSNR and time ratio
    python bench/natural_vs_cbm3d.py set5             # Set5 at native size, σ = 25: mean PSNR vs CBM3D
    python bench/natural_vs_cbm3d.py set5 --patience 150   # the same run, stopped later; it also reports where
                                                      # patience 50 and 100 would have cut it
    python bench/natural_vs_cbm3d.py crops            # F16, baboon, kodim05 256² crops
    python bench/natural_vs_cbm3d.py crops --pad reflection --amp off   # the same with the former `fast`
                                                      # (reflection padding, float32); --channels-up 32 32 32 32 32
                                                      # widens its full-resolution decoder level as before that

Noise is seeded (seed 0); CBM3D gets the true σ (its best case); `fast` gets σ only through nothing — it stops by
ES-WMV without ground truth. Each image runs CBM3D first, then DIP, one after the other, alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from deepprior.fit.stopping import replay
from deepprior.io import load_image
from deepprior.metrics import psnr, ssim
from deepprior.presets import get_preset
from deepprior.tasks import add_noise, denoise_problem, solve, to_numpy, to_tensor

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"


def crop(x, n):
    h, w = x.shape[-2:]
    return x[..., (h - n) // 2:(h - n) // 2 + n, (w - n) // 2:(w - n) // 2 + n]


def one(clean, sigma, seed, preset, channels_up=None, pad=None, amp=None, patience=None):
    import bm3d

    noisy = add_noise(clean, sigma / 255, seed=seed)
    z = to_numpy(noisy).astype(np.float64)
    t = time.perf_counter()
    est = bm3d.bm3d_rgb(z, sigma / 255) if z.ndim == 3 and z.shape[-1] == 3 else bm3d.bm3d(z, sigma / 255)
    t_bm3d = time.perf_counter() - t
    ref = torch.from_numpy(np.clip(est, 0, 1).astype(np.float32)).permute(2, 0, 1)[None]
    p = get_preset(preset)
    if channels_up:
        p["net"]["channels_up"] = channels_up
    if pad:
        p["net"]["pad"] = pad
    if amp:
        p["fit"]["amp"] = amp
    if patience:
        p["stop"]["patience"] = patience
    r = solve(denoise_problem(noisy, clean, sigma=sigma / 255), preset=p, seed=seed, device="cpu")
    h = r.fit.history
    return {"patience": {str(k): v for k, v in patience_cut(r.stopper.scores, r.stopper.iters, h).items()},
            "noisy": psnr(noisy, clean), "cbm3d": psnr(ref, clean), "cbm3d_ssim": ssim(ref, clean), "cbm3d_s": t_bm3d,
            "dip": r.metrics["psnr"], "dip_ssim": r.metrics["ssim"], "dip_s": r.fit.seconds, "iters": r.fit.iters_run,
            "selected": r.fit.selected_iter, "oracle_best": r.metrics.get("psnr_oracle_best")}


def patience_cut(scores, iters, hist, patiences=(50, 100, 150)):
    """What ES-WMV would have delivered with a shorter patience: the same run, cut where that rule fires
    (:func:`deepprior.fit.stopping.replay`). PSNR of the EMA at the selected step; seconds at the stop."""
    out = {}
    for pat in patiences:
        at, fired = replay(scores, iters, pat)
        if fired is not None:
            out[pat] = {"selected": at, "stopped": fired, "psnr": hist["psnr_ema"][at], "s": hist["time"][fired]}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("f16", "set5", "crops"))
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--channels-up", type=int, nargs="+", default=None, help="override the preset's decoder widths")
    ap.add_argument("--pad", choices=("reflection", "zero"), default=None, help="override the preset's padding")
    ap.add_argument("--amp", choices=("off", "bf16", "auto"), default=None, help="override the preset's autocast")
    ap.add_argument("--patience", type=int, default=None,
                    help="override the preset's ES-WMV patience (the run also reports every shorter one: 50, 100, 150)")
    ap.add_argument("--sigma", type=float, default=25)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.what == "f16":
        todo = [("F16 256²", crop(to_tensor(load_image(IMAGES / "denoising_F16_GT.png").data), 256))]
    elif a.what == "crops":
        todo = [(f"{Path(n).stem} 256²", crop(to_tensor(load_image(IMAGES / n).data), 256))
                for n in ("denoising_F16_GT.png", "set14/baboon.png", "kodak/kodim05.png")]
    else:
        todo = [(p.stem, to_tensor(load_image(p).data)) for p in sorted((IMAGES / "set5").glob("*.png"))]
    print("| image | size | noisy | CBM3D [dB] | CBM3D [s] | DIP fast [dB] | DIP [s] | time ratio | stopped at |\n"
          "|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name, clean in todo:
        m = one(clean, a.sigma, a.seed, a.preset, a.channels_up, a.pad, a.amp, a.patience)
        rows.append({"image": name, **m})
        print(f"| {name} | {clean.shape[-1]}×{clean.shape[-2]} | {m['noisy']:.2f} | {m['cbm3d']:.2f} | {m['cbm3d_s']:.1f} | "
              f"{m['dip']:.2f} | {m['dip_s']:.1f} | {m['dip_s'] / m['cbm3d_s']:.1f}× | "
              f"{(m['selected'] or 0) + 1} of {m['iters']} |", flush=True)
    for row in rows:
        print(f"{row['image']}: " + ", ".join(f"patience {k}: {v['psnr']:.2f} dB in {v['s']:.1f} s (it {v['selected'] + 1})"
                                              for k, v in row["patience"].items()))
    if len(rows) > 1:
        mean = lambda k: statistics.mean(r[k] for r in rows)  # noqa: E731
        print(f"| mean | | {mean('noisy'):.2f} | {mean('cbm3d'):.2f} | {mean('cbm3d_s'):.1f} | {mean('dip'):.2f} | "
              f"{mean('dip_s'):.1f} | {mean('dip_s') / mean('cbm3d_s'):.1f}× | |")
    tag = a.what + ("_up" + "-".join(map(str, a.channels_up)) if a.channels_up else "") + \
        (f"_pad-{a.pad}" if a.pad else "") + (f"_amp-{a.amp}" if a.amp else "") + \
        (f"_patience-{a.patience}" if a.patience else "")
    out = Path(__file__).parent / "results" / f"natural_vs_cbm3d_{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)  # results/ is not in a fresh clone
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
