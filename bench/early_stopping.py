"""Early stopping without ground truth: oracle peak vs detected iterate (issue #6's table).

    python bench/early_stopping.py --sets set5 --sigmas 25 --size 128 --preset denoise-fast --stop wmv
    python bench/early_stopping.py --sets set5 set14 --sigmas 15 25 50 --size 0 --preset denoise   # full size, GPU

For each image (centre crop of --size, 0 = full) and σ (seeded noise) it fits with the stopping rule and
prints: oracle peak PSNR of the delivered image over the whole run, PSNR at the detected iterate, the
gap, both iterations and the wall time. The run ends when the rule fires (or at --max-iters).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from deepprior.io import load_image
from deepprior.tasks import add_noise, denoise_problem, make_stopper, solve, to_tensor

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["set5"])
    ap.add_argument("--sigmas", type=float, nargs="+", default=[25])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--preset", default="denoise-fast")
    ap.add_argument("--stop", default="wmv", choices=["wmv", "wmv-ema", "emv"])
    ap.add_argument("--images", nargs="*", default=None, help="only these image stems")
    ap.add_argument("--patience", type=int, default=500)
    ap.add_argument("--max-iters", type=int, default=2500)
    ap.add_argument("--limit", type=int, default=0, help="at most this many images per set (0 = all)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    rows = []
    print("| image | σ | oracle peak [dB] (it) | detected [dB] (it) | gap [dB] | iters to fire | time to fire [s] |\n"
          "|---|---|---|---|---|---|---|")
    for s in a.sets:
        files = sorted((IMAGES / s).glob("*.png"))[: a.limit or None]
        if a.images:
            files = [f for f in files if f.stem in a.images]
        for f in files:
            x = to_tensor(load_image(f).data)
            h, w = x.shape[-2:]
            n = min(a.size or max(h, w), h, w)
            clean = x[..., (h - n) // 2:(h - n) // 2 + n, (w - n) // 2:(w - n) // 2 + n] if a.size else x
            for sigma in a.sigmas:
                noisy = add_noise(clean, sigma / 255, seed=0)
                p = denoise_problem(noisy, clean, sigma=sigma / 255)
                # The rule runs without stopping the fit, so the oracle peak is taken over all --max-iters
                # steps (stopping early would also cut the oracle short); its selection freezes when it fires.
                det_cb, p = make_stopper(p, a.stop, patience=a.patience)
                det_cb.stop = False
                r = solve(p, preset=a.preset, iters=a.max_iters, device="auto", callbacks=[det_cb])
                hist = r.fit.history["psnr_ema"]
                peak = max(hist)
                peak_it = hist.index(peak)
                det_it = det_cb.best_iter
                if det_it is None:
                    print(f"| {s}/{f.stem} | {sigma:.0f} | (no score yet: run longer than the window) |")
                    continue
                det = hist[det_it]
                fired = det_cb.fired_at if det_cb.fired_at is not None else r.fit.iters_run - 1
                row = {"image": f"{s}/{f.stem}", "sigma": sigma, "oracle_peak": peak, "oracle_iter": peak_it + 1,
                       "detected": det, "detected_iter": det_it + 1, "gap": peak - det, "iters_run": fired + 1,
                       "seconds": r.fit.history["time"][fired], "fired": det_cb.fired_at is not None}
                rows.append(row)
                print(f"| {row['image']} | {sigma:.0f} | {peak:.2f} ({peak_it + 1}) | {det:.2f} ({det_it + 1}) | "
                      f"{peak - det:.2f} | {row['iters_run']}{'' if row['fired'] else ' (not fired)'} | {row['seconds']:.0f} |",
                      flush=True)
    if rows:
        print(f"\nmedian gap {statistics.median(r['gap'] for r in rows):.2f} dB over {len(rows)} runs; "
              f"gap ≤ 1 dB in {sum(r['gap'] <= 1 for r in rows)}/{len(rows)}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
