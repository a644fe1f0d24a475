"""The natural-image commands: ``denoise``, ``inpaint``, ``superres``, ``deblur``, ``jpeg``, ``flash``.

Every command runs the task's reference preset unless told otherwise, shows a live progress bar,
and ends with one summary line (PSNR/SSIM when a ground truth is known).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import click

from ..errors import InputError
from ..fit.stopping import STOP_RULES
from ..nets import CODES, NETS
from ..presets import IMAGE_METHODS, PRESETS
from .common import check_outputs, ckpt_path, device_option, echo

# The generators a 3-channel image task can use (the TDDIP decoder is a dynamic-MRI part).
NET_CHOICES = tuple(n for n in NETS if n != "tddip")


def _common(f):
    """Options every restoration command shares."""
    opts = [
        click.option("-o", "--output", required=True, type=click.Path(dir_okay=True), help="Restored image (.png/.tif/.jpg)."),
        click.option("--method", type=click.Choice(IMAGE_METHODS), default="dip", show_default=True,
                     help="dip, or a classical prior through the same solver."),
        click.option("--preset", type=click.Choice(sorted(PRESETS)), default=None, help="DIP recipe (default: the task's)."),
        click.option("--iters", type=click.IntRange(min=1), default=None, help="Number of iterations."),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Learning rate."),
        click.option("--net", type=click.Choice(NET_CHOICES), default=None, help="Generator architecture."),
        click.option("--code", type=click.Choice(CODES), default=None, help="Input code z."),
        click.option("--reg-noise", "reg_noise_std", type=click.FloatRange(min=0), default=None,
                     help="Std of the noise added to z at every step."),
        click.option("--weight", "reg_weight", type=click.FloatRange(min=0), default=None,
                     help="Regularizer weight λ (classical methods)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed for weights, code, noise and masks."),
        device_option,
        click.option("--compile", "compile_", is_flag=True,
                     help="torch.compile the forward pass (a GPU speed lever; on small CPUs it is slower)."),
        click.option("--amp", type=click.Choice(("off", "bf16", "auto")), default=None,
                     help="Autocast the network to bfloat16 (the loss stays float32): auto = where bf16 is faster: "
                          "a GPU with bf16, a CPU with AMX, an AMD CPU with AVX512-BF16 (on Intel without AMX bf16 was slower). "
                          "Default: the preset's (`deepprior presets`)."),
        click.option("--deterministic", is_flag=True,
                     help="Bit-reproducible on CUDA too (deterministic kernels; an op without one stops with an error)."),
        click.option("--gt", type=click.Path(), default=None, help="Ground-truth image: PSNR/SSIM tracking and summary."),
        click.option("--plot", type=click.Path(), default=None, help="Write the loss/PSNR curves here (.png)."),
        click.option("--figure", type=click.Path(), default=None, help="Write degraded | restored | reference (.png)."),
        click.option("--save-every", type=click.IntRange(min=1), default=None, help="Also save the image every N steps."),
        click.option("--stop", type=click.Choice(STOP_RULES), default=None,
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


def _load(path, what="image"):
    from ..io import load_image
    from ..tasks import to_tensor

    img = load_image(path)
    return img, to_tensor(img.data, what)


def _load_gt(o, hw=None):
    if not o.get("gt"):
        return None
    return _load(o["gt"], "ground truth")[1]


def _read(input, o: dict, degrade=None):
    """Check the outputs, read INPUT and --gt. ``degrade`` (clean → measurement) synthesises the measurement
    from a clean INPUT, which then is the reference unless --gt names one; --add-noise comes last."""
    check_outputs(o)
    img, x = _load(input)
    gt = _load_gt(o)
    if degrade is not None:
        gt = x if gt is None else gt
        x = degrade(x)
    return img, _maybe_noise(x, o), gt


def _maybe_noise(x, o):
    from ..tasks import add_noise

    if o.get("add_noise") is None:
        return x
    return add_noise(x, o["add_noise"] / 255.0, seed=o["seed"])


@dataclass
class Prepared:
    """What a command builds before it fits: the problem, the parsed options and how to save the result."""

    problem: object
    options: dict
    alpha: object = None
    bit_depth: int = 8


# Set by prepare(): the command builds its problem and hands it back instead of fitting (the batch layer's
# grouped fits use the commands' own option parsing and loading).
_PREPARE_ONLY: ContextVar[bool] = ContextVar("prepare_only", default=False)


def prepare(command: click.Command, argv: list[str]) -> Prepared:
    """Parse ``argv`` with a restoration ``command`` and build its problem without fitting it.

    >>> import numpy as np, tempfile, os
    >>> from deepprior.io import save_image
    >>> d = tempfile.mkdtemp(); f = os.path.join(d, "x.png"); save_image(f, np.full((8, 8, 1), 0.5))
    >>> prepare(denoise, [f, "-o", os.path.join(d, "y.png")]).problem.out_hw
    (8, 8)
    """
    token = _PREPARE_ONLY.set(True)
    try:
        return command.main(args=list(argv), standalone_mode=False)
    finally:
        _PREPARE_ONLY.reset(token)


def save_restored(out, image, alpha=None, bit_depth: int = 8) -> None:
    """Write a restored (H, W, C) image with the input's alpha channel (resized to it) and bit depth."""
    from ..io import save_image

    if alpha is not None and alpha.shape != image.shape[:2]:
        import torch
        import torch.nn.functional as F

        a = torch.from_numpy(alpha)[None, None]
        alpha = F.interpolate(a, size=image.shape[:2], mode="bilinear", align_corners=False)[0, 0].clamp(0, 1).numpy()
    save_image(out, image, alpha, bit_depth)


def _execute(problem, o: dict, *, alpha=None, bit_depth: int = 8, title: str = ""):
    """Fit, save, print the summary line; returns the summary (iterations, seconds, metrics) for the batch layer."""
    if _PREPARE_ONLY.get():
        return Prepared(problem, o, alpha, bit_depth)
    from ..fit import ProgressBar, SaveEvery
    from ..fit.callbacks import numbered_path
    from ..io import save_image
    from ..plotting import save_comparison, save_curves
    from ..tasks import solve, to_numpy

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
    from ..fit import FitInterrupted

    ck = ckpt_path(o)
    if o.get("deterministic"):
        from ..fit import set_deterministic

        set_deterministic(True)
    try:
        r = solve(problem, method=o["method"], preset=o.get("preset"), seed=o["seed"], device=o["device"],
                  callbacks=callbacks, reg_weight=o.get("reg_weight"), stop=o.get("stop"),
                  patience=o.get("patience"), refit=o.get("refit", False), checkpoint=ck, checkpoint_every=o.get("checkpoint_every") or 0,
                  resume=ck if o.get("resume") else None, announce=lambda line: echo(line, err=True), **overrides)
    except RuntimeError as e:
        if "deterministic" not in str(e):
            raise
        op = str(e).split(" does not have")[0].strip().split()[-1]
        raise InputError(f"--deterministic: {op} has no deterministic implementation on this device; "
                         "use a preset with nearest upsampling, --device cpu, or drop --deterministic") from None
    except FitInterrupted as e:
        img = to_numpy(e.result.output)
        save_image(out, img, alpha if alpha is not None and alpha.shape == img.shape[:2] else None, bit_depth)
        echo(f"interrupted after {e.result.iters_run} iterations: wrote {out} and {ck}; continue with --resume",
              err=True)
        raise
    save_restored(out, r.image, alpha, bit_depth)
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
    echo(line)
    return {"iterations": f.iters_run, "selected_iter": f.selected_iter, "seconds": round(f.seconds, 3),
            "preset": r.preset, "stop": r.stop, **{k: round(float(r.metrics[k]), 4) for k in ("psnr", "ssim")
                                                   if k in r.metrics}}


def _psnr_str(x, gt) -> str:
    from ..metrics import psnr

    return f"{psnr(x, gt):.2f} dB" if x.shape == gt.shape else ""


@click.command()
@click.argument("input", type=click.Path())
@click.option("--sigma", type=click.FloatRange(min=0), default=None,
              help="Noise std of the input (0–255 scale) if known: picks the recipe, sets classical weights.")
@_common
def denoise(input, sigma, **o):
    """Remove noise from INPUT (use --add-noise SIGMA to add it to a clean image first)."""
    synthesise = o.get("add_noise") is not None
    img, x, gt = _read(input, o, (lambda v: v) if synthesise else None)
    if synthesise and sigma is None:
        sigma = o["add_noise"]
    from ..tasks import denoise_problem

    return _execute(denoise_problem(x, gt, sigma=None if sigma is None else sigma / 255.0), o, alpha=img.alpha,
             bit_depth=img.bit_depth)


@click.command()
@click.argument("input", type=click.Path())
@click.option("--mask", "mask_path", type=click.Path(), default=None, help="Mask image or .npy (1/white = known).")
@click.option("--mask-ratio", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Synthesise: drop this fraction of pixels at random from a clean INPUT.")
@_common
def inpaint(input, mask_path, mask_ratio, **o):
    """Fill in missing pixels of INPUT given a mask."""
    from ..io import load_mask
    from ..tasks import inpaint_problem, random_mask

    if (mask_path is None) == (mask_ratio is None):
        raise InputError("give exactly one of --mask FILE or --mask-ratio P")
    img, x, gt = _read(input, o, None if mask_path else (lambda v: v))
    hw = tuple(x.shape[-2:])
    mask = load_mask(mask_path, hw) if mask_path else random_mask(hw, mask_ratio, seed=o["seed"]).numpy()
    p = inpaint_problem(x, mask, gt)
    p.info["preset"] = "inpaint" if mask_path else "restoration"
    return _execute(p, o, alpha=img.alpha, bit_depth=img.bit_depth)


@click.command()
@click.argument("input", type=click.Path())
@click.option("--factor", type=click.IntRange(min=2), default=None, help="Upscaling factor (default 4).")
@click.option("--downscale", type=click.IntRange(min=2), default=None,
              help="Synthesise: INPUT is high-resolution; downscale it by this factor (Lanczos) first.")
@click.option("--kernel", type=click.Choice(("lanczos2", "lanczos3", "box", "bicubic")), default="lanczos2",
              show_default=True, help="Downsampling model of the data term.")
@_common
def superres(input, factor, downscale, kernel, **o):
    """Super-resolve INPUT by --factor."""
    from ..tasks import downscale as synth_downscale, superres_problem

    if factor and downscale and factor != downscale:
        raise InputError(f"--factor {factor} and --downscale {downscale} disagree; give one")
    f = factor or downscale or 4
    img, x, gt = _read(input, o, (lambda v: synth_downscale(v, f)) if downscale else None)
    return _execute(superres_problem(x, f, gt, kernel=kernel), o, alpha=img.alpha, bit_depth=img.bit_depth)


@click.command()
@click.argument("input", type=click.Path())
@click.option("--kernel", "kernel_path", type=click.Path(), default=None, help="Blur kernel (.npy or grayscale image).")
@click.option("--blur-sigma", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Gaussian blur std in pixels (instead of --kernel).")
@click.option("--apply-blur", is_flag=True, help="Synthesise: INPUT is sharp; blur it first.")
@click.option("--boundary", type=click.Choice(("reflect", "replicate", "circular")), default="reflect", show_default=True)
@_common
def deblur(input, kernel_path, blur_sigma, apply_blur, boundary, **o):
    """Remove a known blur from INPUT."""
    from ..io import load_kernel
    from ..operators import Blur, gaussian_kernel
    from ..tasks import deblur_problem

    if (kernel_path is None) == (blur_sigma is None):
        raise InputError("give exactly one of --kernel FILE or --blur-sigma S")
    check_outputs(o)  # before reading the kernel, so that a refused output costs nothing
    k = load_kernel(kernel_path) if kernel_path else gaussian_kernel(blur_sigma)
    img, x, gt = _read(input, o, Blur(k, boundary) if apply_blur else None)
    return _execute(deblur_problem(x, k, gt, boundary=boundary), o, alpha=img.alpha, bit_depth=img.bit_depth)


@click.command()
@click.argument("input", type=click.Path())
@click.option("--quality", type=click.IntRange(1, 100), default=None,
              help="Synthesise: compress the clean INPUT as JPEG at this quality first.")
@_common
def jpeg(input, quality, **o):
    """Remove JPEG compression artifacts from INPUT."""
    from ..tasks import jpeg_compress, jpeg_problem

    img, x, gt = _read(input, o, (lambda v: jpeg_compress(v, quality)) if quality else None)
    return _execute(jpeg_problem(x, gt), o, alpha=img.alpha, bit_depth=img.bit_depth)


@click.command()
@click.argument("flash", type=click.Path())
@click.argument("noflash", type=click.Path())
@_common
def flash(flash, noflash, **o):
    """Flash/no-flash: reconstruct NOFLASH with FLASH as the network input."""
    from ..tasks import flash_problem

    if o["method"] != "dip":
        raise InputError("flash/no-flash is defined for --method dip only")
    check_outputs(o)
    _, f = _load(flash, "flash image")
    img, n = _load(noflash, "no-flash image")
    return _execute(flash_problem(f, n, _load_gt(o)), o, alpha=img.alpha, bit_depth=img.bit_depth)
