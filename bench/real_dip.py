"""Static DIP variants on the measured Siemens phantom (docs/real_data.md): how robust its margin over TV is.

    python bench/real_dip.py tv       # DIP-TV: λ ∈ {0, 0.003, 0.01, 0.03} at R = 2, then {0, best} at R = 3,
                                      # without the data-consistency step (what the penalty itself does)
    python bench/real_dip.py seeds    # seeds 0, 1, 2 at R = 2, 3, 4 with the data-consistency step (the default)

Same masks, maps and reference as bench/real_data.py (seed-0 1-D vd masks, 24 centre lines); FOV PSNR.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from real_data import RAW, psnr_in

from deepprior.mri import reconstruct
from deepprior.mri.raw import read_raw, undersample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("tv", "seeds"))
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.003, 0.01, 0.03])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--accels", type=float, nargs="+", default=[2, 3, 4])
    a = ap.parse_args()
    raw = read_raw(RAW / "siemens_gre_2ch_phantom.dat")

    def one(accel, **kw):
        d = undersample(raw, pattern="vd", accel=accel, center=24, seed=0)
        t = time.perf_counter()
        r = reconstruct(d, "dip", device="cpu", iters=a.iters, stop="holdout", **kw)
        row = {"R": accel, **kw, "psnr": r.metrics["psnr"],
               "psnr_object": psnr_in(r.image[0], d.gt[0], d.maps.abs().square().sum(0) > 0),
               "selected": r.selected_iter, "seconds": time.perf_counter() - t}
        print(json.dumps(row), flush=True)
        return row

    if a.what == "tv":
        rows = [one(2, dc=False, tv_weight=w) for w in a.weights]
        best = max(rows, key=lambda r: r["psnr_object"])["tv_weight"]
        for w in sorted({0.0, best}):
            one(3, dc=False, tv_weight=w)
        return
    for accel in a.accels:
        psnr = [one(accel, seed=s)["psnr"] for s in a.seeds]
        print(f"R={accel:g}: PSNR mean {statistics.mean(psnr):.2f} dB, sd {statistics.stdev(psnr):.2f} dB, "
              f"range {min(psnr):.2f}–{max(psnr):.2f}", flush=True)


if __name__ == "__main__":
    main()
