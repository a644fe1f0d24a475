"""Throughput of `deepprior batch` against the same items run as sequential single commands (issue #16).

    python bench/batch.py                 # 8 Kodak crops at 128², σ = 25, the `fast` preset (stops by itself)
    python bench/batch.py --n 4 --size 96 # a quicker look

Four ways over the same 8 noisy images, one after the other, alone on the machine:
  1. sequential: 8 × `deepprior denoise IMG -o OUT --preset fast --add-noise 25 --seed S` (torch's 2 threads each);
  2. batch, 1 worker × 2 CPUs: the same compute layout under Ray — the difference to 1. is Ray's overhead;
  3. batch, 2 workers × 1 CPU (the default on 2 cores);
  4. fixed 300 iterations without stopping, per item (2 workers) vs `--group` (one batched fit of 8, 2 threads),
     since a grouped fit cannot stop per item.
Seeds are the manifest's; PSNR means show the runs did the same work. Writes docs/batch_bench.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from deepprior.io import load_image, save_image

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "images" / "kodak"
CLI = [sys.executable, "-m", "deepprior"]


def make_inputs(d: Path, n: int, size: int) -> list[Path]:
    files = sorted(KODAK.glob("*.png"))[:n]
    out = []
    for f in files:
        a = load_image(f).data
        h, w = a.shape[:2]
        crop = a[(h - size) // 2:(h - size) // 2 + size, (w - size) // 2:(w - size) // 2 + size]
        p = d / f"{f.stem}.png"
        save_image(p, crop)
        out.append(p)
    return out


def manifest(outdir: Path) -> list[dict]:
    return [json.loads(x) for x in (outdir / "manifest.jsonl").read_text().splitlines()]


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--fixed-iters", type=int, default=300)
    args = ap.parse_args()
    task = ["--preset", "fast", "--add-noise", "25"]
    res = {"n": args.n, "size": args.size}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        files = make_inputs(d, args.n, args.size)
        # 3. first: it records the per-item seeds that 1. reuses
        res["batch_2x1"] = timed([*CLI, "batch", "denoise", *map(str, files), "-o", str(d / "b2"), "-q", *task])
        rows = {r["name"]: r for r in manifest(d / "b2")}
        res["batch_1x2"] = timed([*CLI, "batch", "denoise", *map(str, files), "-o", str(d / "b1"), "-q", "--workers", "1",
                                  "--cpus-per-task", "2", *task])
        (d / "seq").mkdir()
        t = time.perf_counter()
        for f in files:
            subprocess.run([*CLI, "denoise", str(f), "-o", str(d / "seq" / f.name), "-q", "--seed",
                            str(rows[f.stem]["seed"]), *task], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        res["sequential"] = time.perf_counter() - t
        fixed = [*task, "--stop", "none", "--iters", str(args.fixed_iters)]
        res["fixed_per_item"] = timed([*CLI, "batch", "denoise", *map(str, files), "-o", str(d / "f1"), "-q", *fixed])
        res["fixed_group"] = timed([*CLI, "batch", "denoise", *map(str, files), "-o", str(d / "fg"), "-q", "--workers",
                                    "1", "--cpus-per-task", "2", "--group", "--group-size", str(args.n), *fixed])
        for k in ("b2", "b1", "f1", "fg"):
            m = manifest(d / k)
            res[f"psnr_{k}"] = statistics.mean(r["psnr"] for r in m)
            res[f"iters_{k}"] = statistics.mean(r["iterations"] for r in m)
        same = [np.array_equal(load_image(d / "b1" / f.name).data, load_image(d / "seq" / f.name).data) for f in files]
        res["b1_equals_sequential"] = sum(same)
    per_hour = {k: 3600 * args.n / res[k] for k in ("sequential", "batch_1x2", "batch_2x1", "fixed_per_item", "fixed_group")}
    res["items_per_hour"] = per_hour
    print(json.dumps(res, indent=1))
    (ROOT / "docs" / "batch_bench.json").write_text(json.dumps(res, indent=1) + "\n")
    print("| run | wall (s) | items/hour | mean PSNR (dB) | mean iterations |\n|---|---|---|---|---|")
    for k, m in (("sequential", "b1"), ("batch_1x2", "b1"), ("batch_2x1", "b2"), ("fixed_per_item", "f1"),
                 ("fixed_group", "fg")):
        print(f"| {k} | {res[k]:.1f} | {per_hour[k]:.0f} | {res['psnr_' + m]:.2f} | {res['iters_' + m]:.0f} |")


if __name__ == "__main__":
    main()
