"""Early stopping without ground truth: oracle peak vs detected iterate (issue #6's tables).

    python bench/early_stopping.py denoise --sets set5 set14 --sigmas 15 25 50 --size 128     # CPU subset
    python bench/early_stopping.py denoise --sets set5 set14 --sigmas 15 25 50 --size 0 --preset denoise \\
        --max-iters 6000 --patience 1000 --device cuda                                          # full size, GPU
    python bench/early_stopping.py superres --sets set5 --size 128        # hold-out on the low-res pixels
    python bench/early_stopping.py inpaint --sets set5 --size 128 --sigmas 25   # 50 % pixels, noisy
    python bench/early_stopping.py --summarize bench/results/es/*.json          # one table from saved runs

Every rule runs in the *same* fit without stopping it (each freezes its selection where it fires), so the
rules are compared on identical iterates and the oracle (peak PSNR of what the fit delivers: the EMA when
the preset keeps one) is taken over the whole run. To save CPU time, the run ends once every rule has
fired and the delivered PSNR has fallen ``--drop`` dB below its running peak, or once it has fallen
``--give-up`` dB below it whether or not every rule fired (a rule still silent then has failed), or at
``--max-iters``: past that point DIP only fits more noise, so the running peak is the oracle peak. Per rule and image
it prints the PSNR at the detected iterate, the gap to the oracle peak, the firing iteration and the
wall time to it (what a user's run costs with that rule). ``--json`` keeps every row.

Rules: ``wmv`` (ES-WMV on the raw outputs, the paper's), ``wmv-ema`` (the same score on the EMA, ours),
``emv`` (ES-EMV), ``holdout`` (self-validation: a seeded 10 % of the measured pixels is left out of the
data term; superres/inpaint only — for denoising it would just shrink the data).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

import torch

from deepprior.fit import Callback
from deepprior.fit.stopping import ExponentialVariance, WindowedVariance
from deepprior.io import load_image
from deepprior.presets import get_preset
from deepprior.tasks import (add_noise, denoise_problem, downscale, inpaint_problem, make_stopper, random_mask,
                             solve, superres_problem, to_tensor)

IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "images"


class OracleCutoff(Callback):
    """Bench economy only (uses the ground truth): end the run once all rules fired and the delivered
    PSNR is ``drop`` dB under its running peak, or once it is ``give_up`` dB under it (a rule that has
    not fired by then has failed to stop in time; its selection so far is reported)."""

    def __init__(self, rules, drop: float, give_up: float):
        self.rules, self.drop, self.give_up = rules, drop, give_up

    def on_step_end(self, state):
        h = state.history.get("psnr_ema")
        if not h:
            return
        fall = max(h) - h[-1]
        if fall >= self.give_up or (fall >= self.drop and all(r.fired_at is not None for r in self.rules.values())):
            state.stop = True


def crop(x, size):
    h, w = x.shape[-2:]
    if not size:
        return x
    n = min(size, h, w)
    return x[..., (h - n) // 2:(h - n) // 2 + n, (w - n) // 2:(w - n) // 2 + n]


def preset_for(task: str, name: str | None, width: int | None) -> dict:
    p = get_preset(name or {"denoise": "denoise-fast", "superres": "sr4", "inpaint": "denoise-fast"}[task])
    if width:
        n = len(p["net"]["channels_down"])
        p["net"]["channels_down"] = p["net"]["channels_up"] = [width] * n
    return p


def summarize(paths) -> None:
    """One table and per-rule statistics from the JSON files of earlier runs (``--json``)."""
    rows = [r for p in paths for r in json.loads(Path(p).read_text())]
    names = [n for n in ("wmv", "wmv-ema", "emv", "holdout") if any(n in r for r in rows)]
    print("| image | σ | oracle peak dB (it) | " + " | ".join(f"{n}: dB (it), gap, fired at it / s" for n in names)
          + " | run |\n|---|---|---|" + "---|" * len(names) + "---|")
    for r in rows:
        cells = []
        for n in names:
            d = r.get(n)
            cells.append("–" if d is None else f"{d['detected']:.2f} ({d['detected_iter']}), **{d['gap']:.2f}**, "
                         + (f"{d['fired_iter']} / {d['seconds']:.0f}" if d["fired_iter"] else "not fired"))
        print(f"| {r['image']} | {r['sigma']:.0f} | {r['oracle_peak']:.2f} ({r['oracle_iter']}) | " + " | ".join(cells)
              + f" | {r['iters_run']} it / {r['seconds_run']:.0f} s |")
    print()
    for n in names:
        sub = [r for r in rows if n in r]
        gaps = [r[n]["gap"] for r in sub]
        fired = [r for r in sub if r[n]["fired_iter"]]
        print(f"- {n}: gap median {statistics.median(gaps):.2f} dB, mean {statistics.fmean(gaps):.2f}, max "
              f"{max(gaps):.2f}; ≤ 1 dB in {sum(g <= 1 for g in gaps)}/{len(gaps)}; fired in {len(fired)}/{len(sub)}"
              + (f"; fired after {statistics.median(r[n]['fired_iter'] for r in fired):.0f} it (median)" if fired else ""))


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--summarize":
        return summarize(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=["denoise", "superres", "inpaint"])
    ap.add_argument("--sets", nargs="+", default=["set5"])
    ap.add_argument("--sigmas", type=float, nargs="+", default=None,
                    help="noise std (0–255); default 15 25 50 for denoise, 0 for superres, 25 for inpaint")
    ap.add_argument("--size", type=int, default=128, help="centre crop (0 = full image)")
    ap.add_argument("--preset", default=None, help="default: denoise-fast (denoise, inpaint), sr4 (superres)")
    ap.add_argument("--width", type=int, default=None,
                    help="skip-net channels per level (default: the preset's; 64 for superres on a CPU)")
    ap.add_argument("--factor", type=int, default=4)
    ap.add_argument("--drop-ratio", type=float, default=0.5, help="inpaint: fraction of pixels missing")
    ap.add_argument("--images", nargs="*", default=None, help="only these image stems")
    ap.add_argument("--limit", type=int, default=0, help="at most this many images per set (0 = all)")
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--patience", type=int, default=500)
    ap.add_argument("--max-iters", type=int, default=3000)
    ap.add_argument("--drop", type=float, default=1.0, help="oracle cutoff, see above")
    ap.add_argument("--give-up", type=float, default=3.0,
                    help="end the run when the delivered PSNR is this far under its peak, fired or not")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    sigmas = a.sigmas or {"denoise": [15, 25, 50], "superres": [0], "inpaint": [25]}[a.task]
    names = ["wmv", "wmv-ema", "emv"] + (["holdout"] if a.task != "denoise" else [])
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"task {a.task}, crop {a.size or 'full'}, window {a.window}, patience {a.patience}")
    print("| image | σ | oracle peak [dB] (it) | " + " | ".join(f"{n}: dB (it) / gap / fired it, s" for n in names)
          + " | ran |\n|---|---|---|" + "---|" * len(names) + "---|", flush=True)
    rows = []
    for s in a.sets:
        files = sorted((IMAGES / s).glob("*.png"))[: a.limit or None]
        if a.images:
            files = [f for f in files if f.stem in a.images]
        for f in files:
            clean = crop(to_tensor(load_image(f).data), a.size)
            for sigma in sigmas:
                sd = sigma / 255
                if a.task == "denoise":
                    p = denoise_problem(add_noise(clean, sd, seed=0), clean, sigma=sd)
                elif a.task == "superres":
                    p = superres_problem(add_noise(downscale(clean, a.factor), sd, seed=0), a.factor, clean)
                else:
                    m = random_mask(tuple(clean.shape[-2:]), a.drop_ratio, seed=0)
                    p = inpaint_problem(add_noise(clean, sd, seed=0), m, clean)
                rules = {}
                if "holdout" in names:
                    rules["holdout"], p = make_stopper(p, "holdout", patience=a.patience)
                    rules["holdout"].every = 1
                rules["wmv"] = WindowedVariance(a.window, a.patience, stop=False)
                rules["wmv-ema"] = WindowedVariance(a.window, a.patience, stop=False, source="ema")
                rules["emv"] = ExponentialVariance(patience=a.patience, stop=False)
                for r in rules.values():
                    r.stop = False
                preset = preset_for(a.task, a.preset, a.width or (64 if a.task == "superres" and not a.preset else None))
                res = solve(p, preset=preset, iters=a.max_iters, device=a.device,
                            callbacks=[*rules.values(), OracleCutoff(rules, a.drop, a.give_up)])
                hist, times = res.fit.history["psnr_ema"], res.fit.history["time"]
                peak = max(hist)
                row = {"image": f"{s}/{f.stem}", "sigma": sigma, "oracle_peak": peak, "psnr_curve": hist[::10],
                       "oracle_iter": hist.index(peak) + 1, "iters_run": len(hist), "seconds_run": times[-1]}
                cells = []
                for n in names:
                    r = rules[n]
                    if r.best_iter is None:
                        cells.append("–")
                        continue
                    fired = r.fired_at
                    end = fired if fired is not None else len(hist) - 1
                    d = {"detected": hist[r.best_iter], "detected_iter": r.best_iter + 1,
                         "gap": peak - hist[r.best_iter], "fired_iter": None if fired is None else fired + 1,
                         "seconds": times[end]}
                    d["scores"], d["score_iters"] = r.scores[::10], r.iters[::10]  # every 10th, for later study
                    row[n] = d
                    cells.append(f"{d['detected']:.2f} ({d['detected_iter']}) / {d['gap']:.2f} / "
                                 f"{d['fired_iter'] or 'not fired'}, {d['seconds']:.0f}")
                rows.append(row)
                print(f"| {row['image']} | {sigma:.0f} | {peak:.2f} ({row['oracle_iter']}) | " + " | ".join(cells)
                      + f" | {row['iters_run']} it, {row['seconds_run']:.0f} s |", flush=True)
                if a.json:
                    Path(a.json).write_text(json.dumps(rows, indent=1))
    for n in names:
        gaps = [r[n]["gap"] for r in rows if n in r]
        if gaps:
            print(f"{n}: median gap {statistics.median(gaps):.2f} dB, mean {statistics.fmean(gaps):.2f}, "
                  f"≤ 1 dB in {sum(g <= 1 for g in gaps)}/{len(gaps)}, fired in "
                  f"{sum(r[n]['fired_iter'] is not None for r in rows if n in r)}/{len(gaps)}")


if __name__ == "__main__":
    main()
