"""Wall time to 26 / 28 / 30 dB and the delivered PSNR, denoising σ = 25, side by side in one run.

    python bench/time_to_quality.py                                  # F16 256², all methods, 240 s each
    python bench/time_to_quality.py --images f16 set5 --methods fast denoise-fast --budget 180
    python bench/time_to_quality.py --deepinv-python /path/to/venv/bin/python --plot docs/img/psnr_vs_time.png

Methods (one after another in this process, so they share the machine's state; run it alone):

* a deepprior preset name (``fast``, ``denoise-fast``, ``denoise``): ``solve`` with the preset's own
  stopping rule (``--no-stop`` to run to the budget), through the fit loop; the curve is the PSNR of
  what the fit delivers (the EMA) per iteration;
* ``reference``: ``bench/reference_dip.py``, a plain eager implementation of the reference recipe
  (the ``denoise`` network, loop and averaging), the curve its averaged output;
* ``deepinv``: deepinv's ``DeepImagePrior`` unchanged (``bench/deepinv_dip.py``), run by
  ``--deepinv-python`` (default: this Python if it imports deepinv); skipped with a message if absent.

Every run ends at its stopping rule or at ``--budget`` seconds. A method that never reaches a level
within its run shows ``>`` its run time, and ratios with it are lower bounds. Noise is seeded (seed 0).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from deepprior.fit import Callback  # noqa: E402
from deepprior.io import load_image  # noqa: E402
from deepprior.presets import PRESETS, get_preset  # noqa: E402
from deepprior.tasks import add_noise, denoise_problem, solve, to_tensor  # noqa: E402

IMAGES = HERE.parents[1] / "shared" / "data" / "images"
LEVELS = (26.0, 28.0, 30.0)


class Budget(Callback):
    def __init__(self, seconds):
        self.seconds = seconds

    def on_step_end(self, state):
        if state.elapsed >= self.seconds:
            state.stop = True


def crop(x, n):
    h, w = x.shape[-2:]
    n = min(n, h, w)
    return x[..., (h - n) // 2:(h - n) // 2 + n, (w - n) // 2:(w - n) // 2 + n]


def first_time(times, psnrs, level):
    for t, p in zip(times, psnrs):
        if p >= level:
            return t
    return None


def run_deepprior(preset, noisy, clean, budget, stop, device):
    p = denoise_problem(noisy, clean, sigma=25 / 255)
    rule = get_preset(preset).get("stop", {}).get("rule", "none") if stop else "none"
    r = solve(p, preset=preset, device=device, stop=rule, callbacks=[Budget(budget)], iters=10 ** 6)
    h = r.fit.history
    return {"times": h["time"], "psnrs": h["psnr_ema"], "final": r.metrics["psnr"], "iters": r.fit.iters_run,
            "stopped_by_rule": r.fit.selected_iter is not None and h["time"][-1] < budget, "rule": rule,
            "delivered_iter": (r.fit.selected_iter + 1) if r.fit.selected_iter is not None else r.fit.iters_run}


def run_reference(noisy, clean, budget):
    import reference_dip

    times, psnrs = reference_dip.run(noisy, clean, iters=10 ** 6, time_budget=budget)
    return {"times": times, "psnrs": psnrs, "final": psnrs[-1], "iters": len(times), "stopped_by_rule": False,
            "rule": "none (fixed budget)", "delivered_iter": len(times)}


def run_deepinv(python, noisy, clean, budget):
    with tempfile.TemporaryDirectory() as d:
        np.save(f"{d}/n.npy", noisy.numpy())
        np.save(f"{d}/c.npy", clean.numpy())
        env = dict(os.environ)
        proc = subprocess.run([python, str(HERE / "deepinv_dip.py"), f"{d}/n.npy", f"{d}/c.npy", str(25 / 255),
                               str(budget), f"{d}/o.json"], capture_output=True, text=True, env=env)
        if proc.returncode:
            raise RuntimeError((proc.stderr.strip().splitlines() or ["?"])[-1])
        o = json.load(open(f"{d}/o.json"))
    return {"times": o["times"], "psnrs": o["psnrs"], "final": o["psnrs"][-1], "iters": len(o["times"]),
            "stopped_by_rule": False, "rule": "none (fixed budget)", "delivered_iter": len(o["times"]),
            "note": f"deepinv {o['version']}, torch {o['torch']}, ConvDecoder {o['params']} parameters"}


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--replot":
        return plot(json.loads(Path(sys.argv[2]).read_text()), sys.argv[3], 256)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", nargs="+", default=["f16"], help="f16 and/or set5 (each Set5 image)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--methods", nargs="+", default=["fast", "denoise-fast", "denoise", "reference", "deepinv"])
    ap.add_argument("--budget", type=float, default=240.0, help="seconds per run at most")
    ap.add_argument("--no-stop", action="store_true", help="deepprior presets run to the budget")
    ap.add_argument("--deepinv-python", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None, help="PSNR vs wall time figure (first image)")
    a = ap.parse_args()
    dinv_py = a.deepinv_python or (sys.executable if importlib.util.find_spec("deepinv") else None)
    files = []
    for name in a.images:
        if name == "f16":
            files.append(IMAGES / "denoising_F16_GT.png")
        elif name == "set5":
            files += sorted((IMAGES / "set5").glob("*.png"))
        else:
            files.append(Path(name))
    print(f"# {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch "
          f"{torch.__version__}; σ = 25, {a.size}² centre crops, budget {a.budget:.0f} s per run")
    results = {}
    for f in files:
        clean = crop(to_tensor(load_image(f).data), a.size)
        noisy = add_noise(clean, 25 / 255, seed=0)
        print(f"\n## {f.stem} ({clean.shape[-1]}², noisy {10 * np.log10(1 / float(((noisy - clean) ** 2).mean())):.2f} dB)\n")
        print("| method | s / it | iterations | to 26 dB [s] | to 28 dB [s] | to 30 dB [s] | delivered PSNR [dB] | "
              "ended by |\n|---|---|---|---|---|---|---|---|", flush=True)
        res = {}
        for m in a.methods:
            try:
                if m == "reference":
                    r = run_reference(noisy, clean, a.budget)
                elif m == "deepinv":
                    if dinv_py is None:
                        print("| deepinv | skipped: deepinv is not installed here (pip install deepinv, or pass "
                              "--deepinv-python) |||||||", flush=True)
                        continue
                    r = run_deepinv(dinv_py, noisy, clean, a.budget)
                elif m in PRESETS:
                    r = run_deepprior(m, noisy, clean, a.budget, not a.no_stop, a.device)
                else:
                    raise SystemExit(f"unknown method {m!r}")
            except RuntimeError as e:
                print(f"| {m} | failed: {e} |||||||", flush=True)
                continue
            r["to"] = {lv: first_time(r["times"], r["psnrs"], lv) for lv in LEVELS}
            r["s_per_iter"] = r["times"][-1] / max(1, r["iters"])
            res[m] = r
            cells = [f"{t:.0f}" if t is not None else f"> {r['times'][-1]:.0f}" for t in r["to"].values()]
            ended = f"{r['rule']} at it {r['delivered_iter']}" if r["stopped_by_rule"] else f"budget ({r['times'][-1]:.0f} s)"
            print(f"| {m} | {r['s_per_iter']:.3f} | {r['iters']} | " + " | ".join(cells)
                  + f" | {r['final']:.2f} | {ended} |", flush=True)
        for base in ("reference", "deepinv"):
            if base not in res:
                continue
            for m, r in res.items():
                if m == base:
                    continue
                parts = []
                for lv in LEVELS:
                    tb, tm = res[base]["to"][lv], r["to"][lv]
                    if tm is None:
                        continue
                    parts.append(f"{lv:.0f} dB: {tb / tm:.1f}×" if tb is not None
                                 else f"{lv:.0f} dB: > {res[base]['times'][-1] / tm:.1f}×")
                if parts:
                    print(f"- {m} vs {base}, time-to-level ratio: " + ", ".join(parts))
        results[f.stem] = res
    if a.json:
        Path(a.json).write_text(json.dumps(results))
    if a.plot and results:
        plot(results, a.plot, a.size)


def plot(results: dict, path: str, size: int) -> None:
    """PSNR vs wall time of the first image's methods (also: ``--replot RESULTS.json PNG``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem, res = next(iter(results.items()))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for m, r in res.items():
        ax.plot(r["times"], r["psnrs"], label=m + (" (stopped by its rule)" if r["stopped_by_rule"] else ""))
        if r["stopped_by_rule"]:
            ax.plot(r["times"][-1], r["final"], "o", color=ax.lines[-1].get_color())
    for lv in LEVELS:
        ax.axhline(lv, color="0.85", lw=0.8, zorder=0)
    ax.set_xlabel("wall time [s]")
    ax.set_ylabel("PSNR [dB]")
    ax.set_ylim(10, None)
    ax.set_title(f"{stem} {size}², σ = 25, {platform.machine()} {os.cpu_count()} cores")
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
