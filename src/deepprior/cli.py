"""Command-line interface: ``deepprior denoise|inpaint|superres|deblur|jpeg|flash|demo|presets``.

Every command runs the task's reference preset unless told otherwise, shows a live progress bar,
and ends with one summary line (PSNR/SSIM when a ground truth is known). Bad input gives one
``error:`` line and exit code 2; existing outputs are never replaced without ``--overwrite``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .errors import DeeppriorError, InputError
from .presets import METHODS, PRESETS

NET_CHOICES = ("skip", "unet", "resnet", "deep_decoder", "conv_decoder")


def _common(f):
    """Options every restoration command shares."""
    opts = [
        click.option("-o", "--output", required=True, type=click.Path(dir_okay=True), help="Restored image (.png/.tif/.jpg)."),
        click.option("--method", type=click.Choice(METHODS), default="dip", show_default=True,
                     help="dip, or a classical prior through the same solver."),
        click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None, help="DIP recipe (default: the task's)."),
        click.option("--iters", type=click.IntRange(min=1), default=None, help="Number of iterations."),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Learning rate."),
        click.option("--net", type=click.Choice(NET_CHOICES), default=None, help="Generator architecture."),
        click.option("--code", type=click.Choice(("noise", "gaussian", "meshgrid")), default=None, help="Input code z."),
        click.option("--reg-noise", "reg_noise_std", type=click.FloatRange(min=0), default=None,
                     help="Std of the noise added to z at every step."),
        click.option("--weight", "reg_weight", type=click.FloatRange(min=0), default=None,
                     help="Regularizer weight λ (classical methods)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for weights, code, noise and masks."),
        click.option("--device", type=click.Choice(("auto", "cpu", "cuda")), default="auto", show_default=True),
        click.option("--compile", "compile_", is_flag=True,
                     help="torch.compile the forward pass (a GPU speed lever; on small CPUs it is slower)."),
        click.option("--amp", type=click.Choice(("bf16",)), default=None,
                     help="Autocast the network to bfloat16 (GPU tensor cores; the loss stays float32). "
                          "CPUs without bf16 units emulate it and run far slower."),
        click.option("--deterministic", is_flag=True,
                     help="Bit-reproducible on CUDA too (deterministic kernels; an op without one stops with an error)."),
        click.option("--gt", type=click.Path(), default=None, help="Ground-truth image: PSNR/SSIM tracking and summary."),
        click.option("--plot", type=click.Path(), default=None, help="Write the loss/PSNR curves here (.png)."),
        click.option("--figure", type=click.Path(), default=None, help="Write degraded | restored | reference (.png)."),
        click.option("--save-every", type=click.IntRange(min=1), default=None, help="Also save the image every N steps."),
        click.option("--stop", type=click.Choice(("none", "wmv", "wmv-ema", "emv", "holdout")), default=None,
                     help="Stop without ground truth: variance of the outputs (wmv, emv) or of the EMA (wmv-ema), "
                          "or held-out measurements; none runs all iterations. Default: the preset's rule "
                          "(`deepprior presets`)."),
        click.option("--refit", is_flag=True,
                     help="With --stop holdout: fit again on all measurements for the chosen number of iterations."),
        click.option("--patience", type=click.IntRange(min=1), default=None, help="Steps without improvement before stopping."),
        click.option("--add-noise", type=click.FloatRange(min=0), default=None,
                     help="Synthesise: add Gaussian noise of this std (0–255 scale) to the measurement."),
        click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
                     help="Write the whole fit state to OUTPUT.ckpt every N steps (atomically); Ctrl-C also writes it."),
        click.option("--resume", is_flag=True, help="Continue the run saved in OUTPUT.ckpt (same command and options)."),
        click.option("--overwrite", is_flag=True, help="Replace existing output files."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _echo(msg: str, err: bool = False) -> None:
    click.echo(msg, err=err)


def _ckpt_path(o: dict) -> Path:
    out = Path(o["output"])
    return out.with_name(out.name + ".ckpt")


def _check_outputs(o: dict, iters_hint: int | None = None) -> None:
    from .io import check_output

    # --resume continues the run whose checkpoint sits next to the output: the partial image an
    # interrupted run wrote there is that run's own and is replaced.
    ck = _ckpt_path(o)
    check_output(o["output"], o["overwrite"] or (o.get("resume") and ck.is_file()))
    if o.get("resume") and not ck.is_file():
        raise InputError(f"--resume: no checkpoint {ck} (a run writes one with --checkpoint-every N or on Ctrl-C)")
    if not o.get("resume") and ck.exists() and not o["overwrite"] and o.get("checkpoint_every"):
        raise InputError(f"{ck} holds an earlier run: pass --resume to continue it or --overwrite to start over")
    for k in ("plot", "figure"):
        if o.get(k):
            check_output(o[k], o["overwrite"], exts=(".png", ".pdf", ".svg", ".jpg"))
    if len({str(Path(p).resolve()) for p in (o["output"], o.get("plot"), o.get("figure")) if p}) < \
            len([p for p in (o["output"], o.get("plot"), o.get("figure")) if p]):
        raise InputError("--output, --plot and --figure must be different files")


def _load(path, what="image"):
    from .io import load_image
    from .tasks import to_tensor

    img = load_image(path)
    return img, to_tensor(img.data, what)


def _load_gt(o, hw=None):
    if not o.get("gt"):
        return None
    return _load(o["gt"], "ground truth")[1]


def _maybe_noise(x, o):
    from .tasks import add_noise

    if o.get("add_noise") is None:
        return x
    return add_noise(x, o["add_noise"] / 255.0, seed=o["seed"])


def _execute(problem, o: dict, *, alpha=None, bit_depth: int = 8, title: str = "") -> None:
    import torch.nn.functional as F

    from .fit import ProgressBar, SaveEvery
    from .fit.callbacks import numbered_path
    from .io import save_image
    from .plotting import save_comparison, save_curves
    from .tasks import solve, to_numpy

    out = Path(o["output"])
    callbacks = []
    if not o["quiet"]:
        from rich.console import Console

        callbacks.append(ProgressBar(f"{problem.task} [{o['method']}]", console=Console(stderr=True)))
    if o.get("save_every"):
        callbacks.append(SaveEvery(o["save_every"], lambda img, it: save_image(numbered_path(out, it), to_numpy(img),
                                                                             bit_depth=bit_depth)))
    overrides = {k: o[k] for k in ("iters", "lr", "net", "code", "reg_noise_std", "amp") if o.get(k) is not None}
    if o.get("compile_"):
        overrides["compile"] = True
    from .fit import FitInterrupted

    ck = _ckpt_path(o)
    if o.get("deterministic"):
        from .fit import set_deterministic

        set_deterministic(True)
    try:
        r = solve(problem, method=o["method"], preset=o.get("preset"), seed=o["seed"], device=o["device"],
                  callbacks=callbacks, reg_weight=o.get("reg_weight"), stop=o.get("stop"),
                  patience=o.get("patience"), refit=o.get("refit", False), checkpoint=ck, checkpoint_every=o.get("checkpoint_every") or 0,
                  resume=ck if o.get("resume") else None, **overrides)
    except RuntimeError as e:
        if "deterministic" not in str(e):
            raise
        op = str(e).split(" does not have")[0].strip().split()[-1]
        raise InputError(f"--deterministic: {op} has no deterministic implementation on this device; "
                         "use a preset with nearest upsampling, --device cpu, or drop --deterministic") from None
    except FitInterrupted as e:
        img = to_numpy(e.result.output)
        save_image(out, img, alpha if alpha is not None and alpha.shape == img.shape[:2] else None, bit_depth)
        _echo(f"interrupted after {e.result.iters_run} iterations: wrote {out} and {ck}; continue with --resume",
              err=True)
        raise
    if alpha is not None and alpha.shape != r.image.shape[:2]:
        import torch

        a = torch.from_numpy(alpha)[None, None]
        alpha = F.interpolate(a, size=r.image.shape[:2], mode="bilinear", align_corners=False)[0, 0].clamp(0, 1).numpy()
    save_image(out, r.image, alpha, bit_depth)
    if o.get("figure"):
        panels = [("degraded", to_numpy(problem.degraded)), (f"restored ({o['method']})", r.image)]
        if problem.gt is not None:
            panels[0] = (f"degraded  {_psnr_str(problem.degraded, problem.gt)}", panels[0][1])
            panels[1] = (f"restored ({o['method']})  {r.metrics['psnr']:.2f} dB", r.image)
            panels.append(("reference", to_numpy(problem.gt)))
        save_comparison(o["figure"], panels)
    if o.get("plot"):
        marks = {"oracle peak": r.fit.best_iter} if r.fit.best_iter is not None else {}
        if r.fit.selected_iter is not None:
            marks[f"selected ({r.stop})"] = r.fit.selected_iter
        save_curves(o["plot"], r.fit.history, title or f"{problem.task} ({o['method']}, {r.preset or 'classical'})", marks)
    f = r.fit
    line = (f"{out}: {problem.task} with {o['method']}{' (' + r.preset + ')' if r.preset else ''}, "
            f"{f.iters_run} iterations in {f.seconds:.1f} s ({1000 * f.seconds / max(f.iters_run, 1):.0f} ms/it)")
    if f.backtracks:
        line += f", {f.backtracks} divergence restore(s)"
    if f.selected_iter is not None:
        line += f", {r.stop} selected it {f.selected_iter + 1}"
    if "psnr" in r.metrics:  # metrics may hold only the stopping rule's selection (no ground truth)
        line += f" | PSNR {r.metrics['psnr']:.2f} dB  SSIM {r.metrics['ssim']:.4f}"
        if "psnr_oracle_best" in r.metrics:
            line += f"  (oracle best {r.metrics['psnr_oracle_best']:.2f} dB at it {r.metrics['oracle_best_iter'] + 1})"
    _echo(line)


def _psnr_str(x, gt) -> str:
    from .metrics import psnr

    return f"{psnr(x, gt):.2f} dB" if x.shape == gt.shape else ""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deepprior")
def cli():
    """Image reconstruction with untrained networks (Deep Image Prior)."""


@cli.command()
@click.argument("input", type=click.Path())
@click.option("--sigma", type=click.FloatRange(min=0), default=None,
              help="Noise std of the input (0–255 scale) if known: picks the recipe, sets classical weights.")
@_common
def denoise(input, sigma, **o):
    """Remove noise from INPUT (use --add-noise SIGMA to add it to a clean image first)."""
    _check_outputs(o)
    img, x = _load(input)
    gt = _load_gt(o)
    if o.get("add_noise") is not None:
        gt = x if gt is None else gt
        x = _maybe_noise(x, o)
        sigma = o["add_noise"] if sigma is None else sigma
    from .tasks import denoise_problem

    _execute(denoise_problem(x, gt, sigma=None if sigma is None else sigma / 255.0), o, alpha=img.alpha,
             bit_depth=img.bit_depth)


@cli.command()
@click.argument("input", type=click.Path())
@click.option("--mask", "mask_path", type=click.Path(), default=None, help="Mask image or .npy (1/white = known).")
@click.option("--mask-ratio", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Synthesise: drop this fraction of pixels at random from a clean INPUT.")
@_common
def inpaint(input, mask_path, mask_ratio, **o):
    """Fill in missing pixels of INPUT given a mask."""
    from .io import load_mask
    from .tasks import inpaint_problem, random_mask

    if (mask_path is None) == (mask_ratio is None):
        raise InputError("give exactly one of --mask FILE or --mask-ratio P")
    _check_outputs(o)
    img, x = _load(input)
    gt = _load_gt(o)
    hw = tuple(x.shape[-2:])
    if mask_path:
        mask = load_mask(mask_path, hw)
    else:
        mask = random_mask(hw, mask_ratio, seed=o["seed"]).numpy()
        gt = x if gt is None else gt
    x = _maybe_noise(x, o)
    p = inpaint_problem(x, mask, gt)
    p.info["preset"] = "inpaint" if mask_path else "restoration"
    _execute(p, o, alpha=img.alpha, bit_depth=img.bit_depth)


@cli.command()
@click.argument("input", type=click.Path())
@click.option("--factor", type=click.IntRange(min=2), default=None, help="Upscaling factor (default 4).")
@click.option("--downscale", type=click.IntRange(min=2), default=None,
              help="Synthesise: INPUT is high-resolution; downscale it by this factor (Lanczos) first.")
@click.option("--kernel", type=click.Choice(("lanczos2", "lanczos3", "box", "bicubic")), default="lanczos2",
              show_default=True, help="Downsampling model of the data term.")
@_common
def superres(input, factor, downscale, kernel, **o):
    """Super-resolve INPUT by --factor."""
    from .tasks import downscale as _down, superres_problem

    if factor and downscale and factor != downscale:
        raise InputError(f"--factor {factor} and --downscale {downscale} disagree; give one")
    f = factor or downscale or 4
    _check_outputs(o)
    img, x = _load(input)
    gt = _load_gt(o)
    if downscale:
        gt = x if gt is None else gt
        x = _down(x, f)
    x = _maybe_noise(x, o)
    _execute(superres_problem(x, f, gt, kernel=kernel), o, alpha=img.alpha, bit_depth=img.bit_depth)


@cli.command()
@click.argument("input", type=click.Path())
@click.option("--kernel", "kernel_path", type=click.Path(), default=None, help="Blur kernel (.npy or grayscale image).")
@click.option("--blur-sigma", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Gaussian blur std in pixels (instead of --kernel).")
@click.option("--apply-blur", is_flag=True, help="Synthesise: INPUT is sharp; blur it first.")
@click.option("--boundary", type=click.Choice(("reflect", "replicate", "circular")), default="reflect", show_default=True)
@_common
def deblur(input, kernel_path, blur_sigma, apply_blur, boundary, **o):
    """Remove a known blur from INPUT."""
    from .io import load_kernel
    from .operators import Blur, gaussian_kernel
    from .tasks import deblur_problem

    if (kernel_path is None) == (blur_sigma is None):
        raise InputError("give exactly one of --kernel FILE or --blur-sigma S")
    _check_outputs(o)
    img, x = _load(input)
    gt = _load_gt(o)
    k = load_kernel(kernel_path) if kernel_path else gaussian_kernel(blur_sigma)
    if apply_blur:
        gt = x if gt is None else gt
        x = Blur(k, boundary)(x)
    x = _maybe_noise(x, o)
    _execute(deblur_problem(x, k, gt, boundary=boundary), o, alpha=img.alpha, bit_depth=img.bit_depth)


@cli.command()
@click.argument("input", type=click.Path())
@click.option("--quality", type=click.IntRange(1, 100), default=None,
              help="Synthesise: compress the clean INPUT as JPEG at this quality first.")
@_common
def jpeg(input, quality, **o):
    """Remove JPEG compression artifacts from INPUT."""
    from .tasks import jpeg_compress, jpeg_problem

    _check_outputs(o)
    img, x = _load(input)
    gt = _load_gt(o)
    if quality:
        gt = x if gt is None else gt
        x = jpeg_compress(x, quality)
    x = _maybe_noise(x, o)
    _execute(jpeg_problem(x, gt), o, alpha=img.alpha, bit_depth=img.bit_depth)


@cli.command()
@click.argument("flash", type=click.Path())
@click.argument("noflash", type=click.Path())
@_common
def flash(flash, noflash, **o):
    """Flash/no-flash: reconstruct NOFLASH with FLASH as the network input."""
    from .tasks import flash_problem

    if o["method"] != "dip":
        raise InputError("flash/no-flash is defined for --method dip only")
    _check_outputs(o)
    _, f = _load(flash, "flash image")
    img, n = _load(noflash, "no-flash image")
    _execute(flash_problem(f, n, _load_gt(o)), o, alpha=img.alpha, bit_depth=img.bit_depth)


@cli.command()
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False), default="deepprior-demo", show_default=True,
              help="Folder for restored.png, noisy.png, comparison.png and psnr.png.")
@click.option("--iters", type=click.IntRange(min=1), default=None, help="Iterations (default: the demo preset's).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(("auto", "cpu", "cuda")), default="auto", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace files in an existing demo folder.")
@click.option("-q", "--quiet", is_flag=True)
def demo(outdir, iters, seed, device, overwrite, quiet):
    """Denoise a built-in photo (scikit-image's astronaut, σ = 25) and write the figures."""
    from .demo import run_demo

    run_demo(Path(outdir), iters=iters, seed=seed, device=device, overwrite=overwrite, quiet=quiet)


@cli.group()
def mri():
    """MRI: simulate undersampled multi-coil k-space, reconstruct it."""


@mri.command("simulate")
@click.argument("series", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="k-space file (.h5).")
@click.option("--key", default=None, help="Variable name in a .mat/.npz holding several arrays.")
@click.option("--coils", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--pattern", type=click.Choice(("kt-random", "kt-shifted", "vista", "poisson", "poisson2d", "random", "vd",
                                              "equispaced", "radial-cartesian", "radial")), default="kt-random",
              show_default=True)
@click.option("--accel", type=click.FloatRange(min=1), default=8, show_default=True)
@click.option("--center", type=click.IntRange(min=0), default=8, show_default=True, help="Fully sampled centre lines.")
@click.option("--spokes", type=click.IntRange(min=1), default=None, help="Golden-angle radial: spokes per frame.")
@click.option("--snr", type=float, default=40.0, show_default=True, help="SNR in dB of the sampled k-space.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True)
def mri_simulate(series, output, key, coils, pattern, accel, center, spokes, snr, seed, overwrite):
    """Simulate k-space from a magnitude SERIES (.mat/.npy/.npz/.nii): phase, coils, sampling, noise."""
    from .io import check_output
    from .mri.data import simulate
    from .mri.io import load_series, save_data

    check_output(output, overwrite, exts=(".h5",))
    s = load_series(series, key)
    if pattern == "radial" and spokes is None:
        spokes = 13
    d = simulate(abs(s), coils=coils, pattern=pattern, accel=accel, center=center, snr_db=snr, seed=seed,
                 spokes=spokes if pattern == "radial" else None)
    save_data(output, d, overwrite)
    what = f"{spokes} golden-angle spokes/frame" if d.radial else f"{pattern} R={d.acceleration:.1f}"
    _echo(f"{output}: {d.frames} frame(s) {d.shape[0]}×{d.shape[1]}, {coils} coil(s), {what}, SNR {snr} dB, seed {seed}")


@mri.command("recon")
@click.argument("data", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="Result: .h5/.npy (complex), .nii(.gz), .dcm, .png, .gif.")
@click.option("--method", type=click.Choice(("zerofill", "cgsense", "tv", "lps", "dip", "tddip", "gip")), default="cgsense",
              show_default=True)
@click.option("--iters", type=click.IntRange(min=1), default=None,
              help="Iterations (tddip: optimizer steps of --batch frames, as the reference counts them; gip: network "
                   "steps of the whole schedule, stages and ADMM scaled in proportion).")
@click.option("--preset", default=None, help="tddip: tddip (reference, GPU) or tddip-cpu (default); "
                                               "gip: gip (reference, GPU) or gip-cpu (default).")
@click.option("--manifold", "manifold_kind", type=click.Choice(("helix", "circle", "line")), default=None,
              help="tddip: time manifold (default: the preset's).")
@click.option("--cycles", type=click.FloatRange(min=0, min_open=True), default=None, help="tddip: turns of the helix/circle.")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="tddip: frames per optimizer step (default 1).")
@click.option("--stop", type=click.Choice(("holdout", "wmv", "none")), default="holdout", show_default=True,
              help="tddip/gip: stop on held-out k-space loss, on ES-WMV (tddip), or run all iterations.")
@click.option("--holdout", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="tddip/gip: fraction of acquired samples held out for --stop holdout.")
@click.option("--patience", type=click.IntRange(min=1), default=None, help="tddip: sweeps without improvement before stopping.")
@click.option("--plot", type=click.Path(), default=None, help="tddip/gip: loss and per-frame PSNR curves (.png).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="tddip: write the fit state to OUTPUT.ckpt every N sweeps (and on Ctrl-C).")
@click.option("--resume", is_flag=True, help="tddip: continue the run saved in OUTPUT.ckpt.")
@click.option("--lambda-l", type=click.FloatRange(min=0), default=0.01, show_default=True, help="L+S: low-rank threshold.")
@click.option("--lambda-s", type=click.FloatRange(min=0), default=0.01, show_default=True, help="L+S: sparse threshold.")
@click.option("--weight", type=click.FloatRange(min=0), default=None, help="k-t TV weight.")
@click.option("--gt", type=click.Path(), default=None, help="Reference series (default: the one stored by simulate).")
@click.option("--key", default=None, help="Variable of --gt in a .mat/.npz.")
@click.option("--gif", type=click.Path(), default=None, help="Also write a cine GIF of |x|.")
@click.option("--montage", type=click.Path(), default=None, help="Also write a frame montage PNG.")
@click.option("--slice", "slice_index", type=int, default=None, help="fastMRI files: slice index (default: middle).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
def mri_recon(data, output, method, iters, preset, manifold_kind, cycles, batch, stop, holdout, patience, plot,
              checkpoint_every, resume, lambda_l, lambda_s, weight, gt, key, gif, montage, slice_index, seed,
              overwrite, quiet):
    """Reconstruct DATA (.h5 from `mri simulate`, fastMRI or Cartesian ISMRMRD) and report PSNR/SSIM/NRMSE
    when a reference exists."""
    import numpy as np
    import torch

    from .io import check_output
    from .mri.io import load_data, load_series, save_recon
    from .mri.methods import reconstruct
    from .mri.metrics import mri_metrics

    outs = [(output, (".h5", ".npy", ".nii", ".gz", ".dcm", ".png", ".gif")), (gif, (".gif",)), (montage, (".png",)),
            (plot, (".png",))]
    tdd = {"preset": preset, "manifold_kind": manifold_kind, "cycles": cycles, "batch": batch, "patience": patience}
    given = [f"--{k.replace('_kind', '').replace('_', '-')}" for k, v in tdd.items() if v is not None]
    if method not in ("tddip", "gip") and (given or plot):
        raise InputError(f"{', '.join(given + (['--plot'] if plot else []))} only apply to --method tddip or gip")
    tdd_only = [g for g in given if g != "--preset"]
    if method == "gip" and tdd_only:
        raise InputError(f"{', '.join(tdd_only)} only apply to --method tddip")
    if method == "gip" and stop == "wmv":
        raise InputError("--stop wmv is not available for gip; use holdout or none")
    ck = _ckpt_path({"output": output})
    if (checkpoint_every or resume) and method != "tddip":
        raise InputError("--checkpoint-every and --resume apply to --method tddip")
    if resume and not ck.is_file():
        raise InputError(f"--resume: no checkpoint {ck} (a run writes one with --checkpoint-every N or on Ctrl-C)")
    if checkpoint_every and not resume and ck.exists() and not overwrite:
        raise InputError(f"{ck} holds an earlier run: pass --resume to continue it or --overwrite to start over")
    for p, exts in outs:
        if p:
            check_output(p, overwrite, exts=exts)
    d = load_data(data, slice_index=slice_index)
    ref = d.gt
    if gt:
        g = load_series(gt, key)
        ref = torch.from_numpy(np.abs(g) / np.abs(g).max()).to(torch.complex64)
        if tuple(ref.shape) != (d.frames, *d.shape):
            raise InputError(f"--gt is {tuple(ref.shape)} but the data reconstruct to {(d.frames, *d.shape)}")
    cbs = []
    if not quiet and method in ("tv", "dip", "tddip", "gip"):
        from rich.console import Console

        from .fit import ProgressBar

        cbs.append(ProgressBar(f"mri {method}", console=Console(stderr=True)))
    opts = {}
    if method == "tddip":
        opts = {k: v for k, v in tdd.items() if v is not None}
        opts.update(stop=stop, holdout=holdout, ref=ref, preset=preset or "tddip-cpu", checkpoint=ck,
                    checkpoint_every=checkpoint_every or 0, resume=ck if resume else None)
    elif method == "gip":
        opts = dict(stop=stop, holdout=holdout, ref=ref, preset=preset or "gip-cpu")
    from .fit import FitInterrupted

    try:
        x, info = reconstruct(d, method, iters=iters, lambda_l=lambda_l, lambda_s=lambda_s, weight=weight, seed=seed,
                              callbacks=cbs, **opts)
    except FitInterrupted as e:
        _echo(f"interrupted after {e.result.iters_run} sweeps: wrote {e.checkpoint}; continue with --resume", err=True)
        raise
    save_recon(output, x, overwrite)
    if gif:
        save_recon(gif, x, overwrite)
    if montage:
        save_recon(montage, x, overwrite)
    line = f"{output}: {method}, {d.frames} frame(s), {info['seconds']:.1f} s"
    if method == "gip":
        line += ", " + " + ".join(f"{s['stage']} {s['steps']}" for s in info["stages"]) + " steps"
        if ref is not None:
            line += f" | after pretraining PSNR {mri_metrics(info['pretrained'], ref)['psnr']:.2f} dB"
    if method == "tddip":
        line += f", {info['steps']} steps ({info['sweeps']} sweeps)"
        if info.get("selected_sweep") is not None:
            line += f", delivered sweep {info['selected_sweep'] + 1} ({stop})"
    m = mri_metrics(x, ref) if ref is not None else None
    if m is not None:
        line += f" | PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.4f}  NRMSE {m['nrmse']:.4f}"
        if info.get("oracle_best_sweep") is not None:
            line += f" (oracle best sweep {info['oracle_best_sweep'] + 1}: {info['oracle_best_psnr']:.2f} dB)"
    if plot and method == "tddip":
        from .plotting import save_dynamic_report

        save_dynamic_report(plot, info, m)
    elif plot:
        from .plotting import save_stages_report

        save_stages_report(plot, info, m)
    _echo(line)


@cli.command("presets")
def presets_cmd():
    """List the DIP presets (the reference recipes)."""
    for name, p in PRESETS.items():
        net = p["net"]
        desc = f"{net['name']} down={net.get('channels_down')} skip={net.get('channels_skip')}"
        _echo(f"{name:14s} {desc}; code {p['code']['kind']}; reg_noise {p['reg_noise_std']:.4g}; "
              f"lr {p['fit']['lr']}; iters {p['fit']['iters']}; ema {p['fit']['ema']}; "
              f"stop {_stop_str(p)}")


def _stop_str(p: dict) -> str:
    st = p.get("stop") or {}
    return f"{st['rule']} (patience {st['patience']})" if st.get("rule", "none") != "none" else "none"


def main(argv: list[str] | None = None) -> int:
    """Entry point: click in non-standalone mode so every error is one line and exit code 2."""
    try:
        rv = cli.main(args=argv, prog_name="deepprior", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Abort:
        _echo("interrupted", err=True)
        return 130
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        _echo(f"error: {e.format_message()}" + (f" (see 'deepprior {e.ctx.info_name} --help')" if getattr(e, 'ctx', None) and e.ctx.info_name != 'deepprior' else ""), err=True)
        return 2
    except DeeppriorError as e:
        _echo(f"error: {e}", err=True)
        return 2
    except KeyboardInterrupt:
        _echo("interrupted", err=True)
        return 130


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
