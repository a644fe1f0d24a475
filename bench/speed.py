"""Time per DIP iteration, FLOPs, achieved GFLOP/s and peak memory, side by side in one run.

    python bench/speed.py                                   # CPU: denoise + denoise-fast + fast at 128² and 256²
    python bench/speed.py --sizes 128 256 512 --variants eager reference channels_last compile
    python bench/speed.py --device cuda --sizes 256 512 --variants eager reference bf16 compile compile+bf16 \\
        --batch 1 8 32                                      # what bench/gpu.sh runs

With ``--rounds N`` every variant runs N times, interleaved, and the median round is reported.

One *iteration* is what the fit loop does per step: forward, backward, Adam, the EMA and the PSNR
bookkeeping. Variants (each in a fresh subprocess, so peak memory and compile caches are its own):

* ``eager``      deepprior's fit loop, float32, contiguous (NCHW) layout (the loop's CPU default is channels-last);
* ``reference``  ``bench/reference_dip.py``: a plain eager implementation of the reference recipe
                 (same network, same weights; its loop computes NumPy PSNRs every step, as the notebook);
* ``channels_last`` / ``compile`` / ``bf16`` / ``compile+bf16``: deepprior's loop with that lever
                 (``FitConfig.channels_last``, ``compile`` = ``torch.compile`` inductor, ``amp='bf16'``);
* ``--batch N``  N independent images in one run (``solve_many``): time per run and per image.

FLOPs are counted by ``torch.utils.flop_counter`` for one forward + backward of the generator (convs and
matmuls; BatchNorm, activations and the optimizer are not FLOP-counted). The machine's conv2d peak is
measured in the same run (the best of a few large 3×3 convolutions), so "% of peak" says how close to
the achievable limit an iteration runs. Peak memory: CUDA's ``max_memory_allocated``, or on a CPU the
subprocess's peak resident set size (what the operating system sees, Python and PyTorch included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def machine_line(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    s = f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    if device == "cuda":
        s += f", GPU {torch.cuda.get_device_name()}"
    return s


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def conv_peak(device: str) -> float:
    """Best achieved GFLOP/s of a few large 3×3 conv2d forward passes (float32)."""
    best = 0.0
    shapes = [(128, 64), (256, 32)] if device == "cpu" else [(256, 128), (512, 64)]
    for c, n in shapes:
        x = torch.randn(1, c, n, n, device=device)
        conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False).to(device)
        with torch.no_grad():
            for _ in range(2):
                conv(x)
            _sync(device)
            reps = 5
            t = time.perf_counter()
            for _ in range(reps):
                conv(x)
            _sync(device)
            dt = (time.perf_counter() - t) / reps
        best = max(best, 2 * c * c * 9 * n * n / dt / 1e9)
    return best


def _preset_net(preset: str):
    from deepprior.presets import get_preset

    p = get_preset(preset)
    return p, {k: v for k, v in p["net"].items() if k != "name"}


def flops_per_iter(preset: str, size: int, device: str) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    from deepprior.nets import build_net

    p, spec = _preset_net(preset)
    net = build_net(p["net"]["name"], p["code"]["channels"], 3, **spec).to(device)
    z = torch.rand(1, p["code"]["channels"], *net.code_size(size, size), device=device)
    with FlopCounterMode(display=False) as fc:
        net(z).square().mean().backward()
    return float(fc.get_total_flops())


def one(cfg: dict) -> dict:
    """Run one configuration (in its own process) and return its timings."""
    from deepprior.tasks import add_noise, build_dip, denoise_problem, solve_many
    from deepprior.fit import FitConfig, fit
    from deepprior.operators import Identity

    device, size, steps, warm = cfg["device"], cfg["size"], cfg["steps"], cfg["warmup"]
    torch.manual_seed(0)
    clean = torch.rand(1, 3, size, size, device="cpu")
    noisy = add_noise(clean, 25 / 255, seed=0)
    prob = denoise_problem(noisy, clean)
    p, _ = _preset_net(cfg["preset"])
    variant = cfg["variant"]
    out = dict(cfg)
    t_start = time.perf_counter()
    if variant == "reference":
        import reference_dip

        dip = build_dip(prob, p, seed=0)
        net = reference_dip.reference_skip(32, 3, p["net"]["channels_down"], p["net"]["channels_up"],
                                           p["net"]["channels_skip"], p["net"]["upsample_mode"])
        reference_dip.copy_weights(dip.net, net)
        times, _ = reference_dip.run(prob.y.to(device), clean.to(device), iters=warm + steps, net=net, code=dip.code)
    elif variant.startswith("batch"):
        n = int(variant[5:])
        probs = [denoise_problem(add_noise(clean, 25 / 255, seed=i), clean) for i in range(n)]
        r = solve_many(probs, preset=cfg["preset"], device=device, iters=warm + steps)
        times = r[0].fit.history["time"]
        out["images"] = n
    else:
        fitcfg = FitConfig(**{**p["fit"], "iters": warm + steps, "compile": "compile" in variant,
                              "amp": "bf16" if "bf16" in variant else None,
                              "channels_last": variant == "channels_last"})
        dip = build_dip(prob, p, seed=0, device=device)
        r = fit(dip, Identity().to(device), prob.y.to(device), fitcfg, gt=clean.to(device))
        times = r.history["time"]
    per = [b - a for a, b in zip(times[warm - 1:-1], times[warm:])]
    out["s_per_iter"] = statistics.median(per)
    out["first_iters_s"] = times[warm - 1]  # warm-up, compile time included
    out["wall_s"] = time.perf_counter() - t_start
    if device == "cuda":
        out["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
    else:
        out["peak_mem_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["denoise", "denoise-fast", "fast"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--variants", nargs="+", default=["eager", "reference", "channels_last"])
    ap.add_argument("--batch", type=int, nargs="*", default=[], help="also N images per run (solve_many)")
    ap.add_argument("--batch-sizes", type=int, nargs="*", default=None,
                    help="image sizes at which --batch runs (default: the smallest of --sizes)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=5, help="timed iterations (median reported)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the variants this many times, interleaved, and report the median (a shared machine "
                         "drifts over minutes; interleaving keeps the ratios fair)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--csv", default=None)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(json.loads(a.one))))
        return
    print(f"# {machine_line(a.device)}")
    peak = conv_peak(a.device)
    print(f"# measured conv2d peak: {peak:.1f} GFLOP/s (float32, best large 3×3 conv forward)\n")
    print("| preset | size | variant | s / iteration | vs reference | GFLOP / it | GFLOP/s | % of conv peak "
          "| peak memory [GiB] | first iterations [s] |\n|---|---|---|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for preset in a.presets:
        for size in a.sizes:
            flops = flops_per_iter(preset, size, a.device)
            # the reference first: every other row is reported as a ratio to it
            bsizes = a.batch_sizes if a.batch_sizes is not None else [min(a.sizes)]
            variants = sorted(a.variants, key=lambda v: v != "reference") + (
                [f"batch{n}" for n in a.batch] if size in bsizes else [])
            ref = None
            runs: dict[str, list] = {v: [] for v in variants}
            for _ in range(a.rounds):
                for v in variants:
                    cfg = dict(preset=preset, size=size, variant=v, device=a.device, steps=a.steps, warmup=a.warmup)
                    proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(cfg)], capture_output=True,
                                          text=True)
                    if proc.returncode:
                        err = (proc.stderr.strip().splitlines() or ["?"])[-1]
                        print(f"| {preset} | {size}² | {v} | failed: {err[:120]} |||||||", flush=True)
                        continue
                    runs[v].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            for v in variants:
                if not runs[v]:
                    continue
                r = sorted(runs[v], key=lambda q: q["s_per_iter"])[len(runs[v]) // 2]  # the median round
                r["all_s_per_iter"] = [q["s_per_iter"] for q in runs[v]]
                n = r.get("images", 1)
                r["gflop_per_iter"] = flops * n / 1e9
                r["gflops"] = flops * n / r["s_per_iter"] / 1e9
                r["pct_peak"] = 100 * r["gflops"] / peak
                if v == "reference":
                    ref = r["s_per_iter"]
                base = ref if ref is not None else None
                r["speedup_vs_reference"] = base / (r["s_per_iter"] / n) if base else None
                rows.append(r)
                per = f"{r['s_per_iter']:.3f}" + (f" ({r['s_per_iter'] / n:.3f} per image)" if n > 1 else "")
                if len(r["all_s_per_iter"]) > 1:
                    per += f" [{min(r['all_s_per_iter']):.3f}–{max(r['all_s_per_iter']):.3f}]"
                sp = f"{r['speedup_vs_reference']:.2f}×" if r["speedup_vs_reference"] else "–"
                print(f"| {preset} | {size}² | {v} | {per} | {sp} | {r['gflop_per_iter']:.1f} | {r['gflops']:.1f} | "
                      f"{r['pct_peak']:.0f} % | {r['peak_mem_gib']:.2f} | {r['first_iters_s']:.1f} |", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"machine": machine_line(a.device), "conv_peak_gflops": peak,
                                            "rows": rows}, indent=1))
    if a.csv:
        import csv

        keys = sorted({k for r in rows for k in r})
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, keys)
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
