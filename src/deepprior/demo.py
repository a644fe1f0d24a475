"""``deepprior demo``: denoise a photo that ships with scikit-image, no data download needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError

# The CPU default: a quarter-width net that stops by itself (ES-WMV) — DIP at its best within the demo's
# budget (docs/benchmarks.md); the half-width denoise-fast stopped at a fixed 700 steps while still rising.
DEMO_PRESET = "fast"
DEMO_SIGMA = 25


def demo_image() -> np.ndarray:
    """A 128×128 RGB crop of scikit-image's ``astronaut`` (face and helmet), 2×2-averaged."""
    from skimage import data

    a = data.astronaut()[0:256, 128:384].astype(np.float32) / 255.0
    return a.reshape(128, 2, 128, 2, 3).mean(axis=(1, 3))


def run_demo(outdir: Path, *, iters: int | None = None, seed: int = 0, device: str = "auto", overwrite: bool = False,
             quiet: bool = False) -> dict:
    import click

    from .fit import ProgressBar
    from .io import check_output, save_image
    from .plotting import save_comparison, save_curves
    from .tasks import add_noise, denoise_problem, solve, to_numpy, to_tensor

    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"{outdir} exists and is not a folder")
    outdir.mkdir(parents=True, exist_ok=True)
    names = {k: outdir / f"{k}.png" for k in ("noisy", "restored", "comparison", "psnr")}
    for p in names.values():
        check_output(p, overwrite)
    clean = to_tensor(demo_image())
    noisy = add_noise(clean, DEMO_SIGMA / 255.0, seed=seed)
    problem = denoise_problem(noisy, clean, sigma=DEMO_SIGMA / 255.0)
    from rich.console import Console

    cbs = [] if quiet else [ProgressBar(f"demo: denoising σ={DEMO_SIGMA}", console=Console(stderr=True))]
    r = solve(problem, preset=DEMO_PRESET, seed=seed, device=device, callbacks=cbs, iters=iters,
              announce=None if quiet else (lambda line: click.echo("demo: " + line, err=True)))
    tv = solve(problem, method="tv", seed=seed, device=device)  # the classical baseline, weight tuned on Set5
    save_image(names["noisy"], to_numpy(noisy))
    save_image(names["restored"], r.image)
    from .metrics import psnr

    save_comparison(names["comparison"], [(f"noisy σ={DEMO_SIGMA}  {psnr(noisy, clean):.2f} dB", to_numpy(noisy)),
                                          (f"TV (classical)  {tv.metrics['psnr']:.2f} dB", tv.image),
                                          (f"DIP ({DEMO_PRESET})  {r.metrics['psnr']:.2f} dB", r.image),
                                          ("reference", to_numpy(clean))])
    save_curves(names["psnr"], r.fit.history, f"DIP denoising, {DEMO_PRESET}, σ={DEMO_SIGMA}",
                {"oracle peak": r.fit.best_iter})
    sel = f", stopped by {r.stop} at it {r.fit.selected_iter + 1}" if r.fit.selected_iter is not None else ""
    click.echo(f"demo: PSNR {psnr(noisy, clean):.2f} dB (noisy) -> {r.metrics['psnr']:.2f} dB (DIP, SSIM "
               f"{r.metrics['ssim']:.4f}, {r.fit.iters_run} iterations in {r.fit.seconds:.1f} s{sel}); classical TV "
               f"{tv.metrics['psnr']:.2f} dB; wrote " + ", ".join(str(p) for p in names.values()))
    return r.metrics
