"""Tasks: each builds a :class:`Problem` (operator + measurement) from the user's images; one
:func:`solve` turns any problem plus a preset/method into a fit. Tasks are plug-ins — a new task
is a new ``*_problem`` function and a preset entry, never a new loop.
"""

from __future__ import annotations

import io as _io
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ConfigError, InputError
from .fit import Callback, FitConfig, FitResult, fit, resolve_device
from .metrics import psnr, ssim
from .nets import build_net, make_code
from .nets.common import center_crop
from .operators import Blur, Downsample, Identity, Mask, Operator, gaussian_kernel
from .params import DIP, Pixels
from .presets import CLASSICAL, METHODS, get_preset
from .regularizers import build_regularizer

TASKS = ("denoise", "inpaint", "superres", "deblur", "jpeg", "flash")


@dataclass
class Problem:
    """A reconstruction problem: find x (``out_hw``, ``channels``) with ``operator(x) ≈ y``.

    ``degraded`` is the measurement shown at the output size (for figures and as the classical
    initialisation); ``code_image`` is an image used as the network input (flash/no-flash).
    """

    task: str
    operator: Operator
    y: Tensor
    out_hw: tuple[int, int]
    channels: int
    degraded: Tensor
    gt: Tensor | None = None
    code_image: Tensor | None = None
    info: dict = field(default_factory=dict)

    def to(self, device) -> "Problem":
        mv = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Problem(self.task, self.operator.to(device), self.y.to(device), self.out_hw, self.channels,
                       mv(self.degraded), mv(self.gt), mv(self.code_image), self.info)


@dataclass
class Restoration:
    """What the high-level API returns: the image (H, W, C) in [0, 1], the fit and metrics."""

    image: np.ndarray
    fit: FitResult
    problem: Problem
    method: str
    preset: str | None
    metrics: dict = field(default_factory=dict)
    stop: str = "none"  # the stopping rule that ran (the preset's default when none was asked for)


# ------------------------------------------------------------------------------ helpers


def to_tensor(img, name: str = "image") -> Tensor:
    """(H, W) / (H, W, C) array (uint8, uint16, bool or float in [0, 1]) → float32 (1, C, H, W)."""
    if isinstance(img, Tensor):
        a = img.detach().cpu().float().numpy()
    else:
        a = np.asarray(img)
        if a.dtype == np.uint8:
            a = a / 255.0
        elif a.dtype == np.uint16:
            a = a / 65535.0
        elif not (np.issubdtype(a.dtype, np.floating) or a.dtype == np.bool_):
            raise InputError(f"{name} has unsupported dtype {a.dtype}; use uint8, uint16 or floats in [0, 1]")
        a = a.astype(np.float32)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3):
        raise InputError(f"{name} has shape {a.shape}; expected (H, W) or (H, W, C) with C = 1 or 3")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"{name} is empty ({a.shape[0]}×{a.shape[1]})")
    if not np.isfinite(a).all():
        raise InputError(f"{name} contains NaN or Inf values")
    if a.min() < -1e-6 or a.max() > 1 + 1e-6:
        raise InputError(f"{name} has values outside [0, 1] ({a.min():.3g}..{a.max():.3g}); scale it to [0, 1]")
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 0)))[None]


def to_numpy(x: Tensor) -> np.ndarray:
    """(1, C, H, W) tensor → (H, W, C) float array clipped to [0, 1]."""
    return np.moveaxis(x.detach().clamp(0, 1).cpu().numpy()[0], 0, -1)


def _check_gt(gt: Tensor | None, hw, channels) -> Tensor | None:
    if gt is None:
        return None
    if tuple(gt.shape[-2:]) != tuple(hw):
        raise InputError(f"ground truth is {gt.shape[-2]}×{gt.shape[-1]} but the result will be {hw[0]}×{hw[1]}")
    if gt.shape[1] != channels:
        raise InputError(f"ground truth has {gt.shape[1]} channel(s), the image {channels}; convert one of them")
    return gt


# ------------------------------------------------------------------------------ degradations (synthesis)


def add_noise(img: Tensor, sigma: float, seed: int = 0) -> Tensor:
    """Additive white Gaussian noise of std ``sigma`` (on the [0, 1] scale), seeded; not clipped."""
    if sigma < 0:
        raise InputError(f"noise sigma must be ≥ 0, got {sigma}")
    g = torch.Generator().manual_seed(seed)
    return img + sigma * torch.randn(img.shape, generator=g)


def random_mask(hw: tuple[int, int], drop: float, seed: int = 0) -> Tensor:
    """Bernoulli pixel mask (1 = kept) that drops a fraction ``drop`` of the pixels, seeded."""
    if not 0 <= drop < 1:
        raise InputError(f"mask ratio must be in [0, 1) (fraction of pixels removed), got {drop}")
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(hw, generator=g) >= drop).float()


def downscale(img: Tensor, factor: int) -> Tensor:
    """Lanczos (PIL ``LANCZOS``, as the reference) downscaling by an integer factor, per channel in float."""
    from PIL import Image

    _, c, h, w = img.shape
    if h % factor or w % factor:
        raise InputError(f"image size {h}×{w} is not divisible by {factor}; crop it to a multiple of the factor")
    if h // factor < 1 or w // factor < 1:
        raise InputError(f"image {h}×{w} is too small to downscale by {factor}")
    chans = [np.asarray(Image.fromarray(img[0, i].numpy(), mode="F").resize((w // factor, h // factor), Image.LANCZOS))
             for i in range(c)]
    return torch.from_numpy(np.stack(chans))[None].clamp(0, 1)


def jpeg_compress(img: Tensor, quality: int) -> Tensor:
    """Encode and decode with Pillow at ``quality`` (1–95)."""
    from PIL import Image

    if not 1 <= quality <= 100:
        raise InputError(f"JPEG quality must be in 1..100, got {quality}")
    a = np.round(to_numpy(img) * 255).astype(np.uint8)
    pil = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
    buf = _io.BytesIO()
    pil.save(buf, format="JPEG", quality=quality)
    dec = np.asarray(Image.open(buf)).astype(np.float32) / 255
    return to_tensor(dec)


# ------------------------------------------------------------------------------ problems


def denoise_problem(noisy: Tensor, gt: Tensor | None = None, *, sigma: float | None = None) -> Problem:
    """Denoising: ``A = I``, y = the noisy image."""
    hw, c = tuple(noisy.shape[-2:]), noisy.shape[1]
    return Problem("denoise", Identity(), noisy, hw, c, noisy, _check_gt(gt, hw, c), info={"sigma": sigma})


def jpeg_problem(decoded: Tensor, gt: Tensor | None = None) -> Problem:
    """JPEG artifact removal: the data term is on the decoded image (``A = I``)."""
    hw, c = tuple(decoded.shape[-2:]), decoded.shape[1]
    return Problem("jpeg", Identity(), decoded, hw, c, decoded, _check_gt(gt, hw, c))


def inpaint_problem(img: Tensor, mask, gt: Tensor | None = None) -> Problem:
    """Inpainting: ``A x = m ⊙ x`` with m = 1 on known pixels."""
    hw, c = tuple(img.shape[-2:]), img.shape[1]
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32)) if not isinstance(mask, Tensor) else mask.float()
    while m.ndim > 2 and m.shape[0] == 1:
        m = m[0]
    if tuple(m.shape[-2:]) != hw:
        raise InputError(f"mask is {m.shape[-2]}×{m.shape[-1]} but the image is {hw[0]}×{hw[1]}; they must match")
    op = Mask(m)
    if op.mask.sum() == 0:
        raise InputError("the mask marks no pixel as known; 1 = known, 0 = missing")
    y = op(img)
    return Problem("inpaint", op, y, hw, c, y, _check_gt(gt, hw, c), info={"known": float(op.mask.mean())})


def superres_problem(low: Tensor, factor: int, gt: Tensor | None = None, *, kernel: str = "lanczos2") -> Problem:
    """Super-resolution: ``A`` = anti-aliased downsampling by ``factor``; x is ``factor`` times larger."""
    if int(factor) != factor or factor < 2:
        raise InputError(f"scale factor must be an integer ≥ 2, got {factor}")
    hw, c = (low.shape[-2] * factor, low.shape[-1] * factor), low.shape[1]
    op = Downsample(int(factor), kernel)
    shown = F.interpolate(low, size=hw, mode="bicubic", align_corners=False).clamp(0, 1)
    return Problem("superres", op, low, hw, c, shown, _check_gt(gt, hw, c), info={"factor": int(factor)})


def deblur_problem(blurred: Tensor, kernel=None, gt: Tensor | None = None, *, sigma_blur: float | None = None,
                   boundary: str = "reflect") -> Problem:
    """Deblurring: ``A`` = convolution with ``kernel`` (or a Gaussian of std ``sigma_blur``)."""
    if kernel is None:
        if sigma_blur is None:
            raise InputError("deblurring needs the blur: give a kernel file or a Gaussian blur sigma")
        kernel = gaussian_kernel(sigma_blur)
    hw, c = tuple(blurred.shape[-2:]), blurred.shape[1]
    op = Blur(kernel, boundary)
    if op.kernel.shape[0] > hw[0] or op.kernel.shape[1] > hw[1]:
        raise InputError(f"blur kernel {tuple(op.kernel.shape)} is larger than the image {hw}")
    return Problem("deblur", op, blurred, hw, c, blurred, _check_gt(gt, hw, c))


def flash_problem(flash: Tensor, noflash: Tensor, gt: Tensor | None = None) -> Problem:
    """Flash/no-flash: the flash photo is the network input, the no-flash photo the target."""
    if flash.shape != noflash.shape:
        raise InputError(f"flash {tuple(flash.shape[-2:])} and no-flash {tuple(noflash.shape[-2:])} images differ in size")
    hw, c = tuple(noflash.shape[-2:]), noflash.shape[1]
    return Problem("flash", Identity(), noflash, hw, c, noflash, _check_gt(gt, hw, c), code_image=flash)


def default_preset(problem: Problem) -> str:
    """The reference recipe that fits the problem."""
    if problem.task == "denoise":
        s = problem.info.get("sigma")
        return "denoise-s50" if s is not None and s >= 37.5 / 255 else "denoise"
    if problem.task == "superres":
        return "sr4" if problem.info["factor"] <= 4 else "sr8"
    if problem.task == "inpaint":
        return problem.info.get("preset", "inpaint")
    return problem.task


# ------------------------------------------------------------------------------ solve


def _pad_image_code(img: Tensor, size: tuple[int, int]) -> Tensor:
    h, w = img.shape[-2:]
    ph, pw = size[0] - h, size[1] - w
    pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    mode = "reflect" if max(pad) < min(h, w) else "replicate"
    return F.pad(img, pad, mode=mode) if any(pad) else img


def build_dip(problem: Problem, preset: dict, *, seed: int = 0, device="cpu") -> DIP:
    """The DIP parameterization a preset describes, seeded (net weights, code, jitter noise)."""
    spec = dict(preset["net"])
    name = spec.pop("name")
    code = preset["code"]
    in_ch = problem.code_image.shape[1] if code["kind"] == "image" else code.get("channels")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_net(name, in_ch, problem.channels, **spec)
    code_hw = net.code_size(*problem.out_hw)
    g = torch.Generator().manual_seed(seed + 1)
    if code["kind"] == "image":
        z = _pad_image_code(problem.code_image, code_hw)
    else:
        channels = net.in_channels if in_ch is None else in_ch
        z = make_code(code["kind"], channels, code_hw, scale=code.get("scale", 0.1), generator=g)
    dev = torch.device(device)
    jitter = torch.Generator(device=dev).manual_seed(seed + 2)
    return DIP(net, z, problem.out_hw, preset.get("reg_noise_std", 0.0), generator=jitter).to(dev)


def _memory_guard(prob: Problem, param, name: str | None, dev: torch.device, window: int = 0) -> None:
    """Stop before a fit that cannot fit in memory, naming a lighter preset or a crop size that does.
    ``window``: images an ES-WMV ring buffer keeps (counted on top of the fit's own copies)."""
    from .resources import check_memory, estimate_fit_bytes

    h, w = prob.out_hw
    img = prob.channels * h * w * 4

    def alternatives():
        out = []
        for alt in ("denoise-fast", "fast"):
            if alt != name:
                out.append((f"--preset {alt}", estimate_fit_bytes(build_dip(prob, get_preset(alt), device="cpu"), img)))
        return out

    check_memory(estimate_fit_bytes(param, img, extra_images=4 + window), dev,
                 what=f"DIP ({name or 'custom preset'}) at {h}×{w}",
                 alternatives=alternatives, pixels=h * w)


def resolve_preset(problem: Problem, preset: str | dict | None = None, *, net: str | None = None,
                   code: str | None = None, reg_noise_std: float | None = None, **fit_overrides) -> tuple[str | None, dict]:
    """Preset by name (default: the task's reference recipe) with overrides applied."""
    name = None
    if isinstance(preset, dict):
        p = preset
    else:
        name = preset or default_preset(problem)
        p = get_preset(name)
    if net is not None and net != p["net"]["name"]:
        p["net"] = {"name": net}  # another architecture: its own defaults, not the skip options
        if code is None and p["code"]["kind"] == "meshgrid":
            p["code"] = {"kind": "noise", "channels": 32, "scale": 0.1}
        if net in ("deep_decoder", "conv_decoder") and p["code"]["kind"] != "image":
            p["code"] = {"kind": p["code"]["kind"] if code is None else code, "channels": None, "scale": 0.1}
    if code is not None:
        p["code"] = {**p["code"], "kind": code}
        if code == "meshgrid":
            p["code"]["channels"] = 2
    if reg_noise_std is not None:
        if reg_noise_std < 0:
            raise ConfigError(f"reg_noise_std must be ≥ 0, got {reg_noise_std}")
        p["reg_noise_std"] = reg_noise_std
    p["fit"] = {**p["fit"], **{k: v for k, v in fit_overrides.items() if v is not None}}
    FitConfig().replace(**p["fit"])  # validates names and values now, with a ConfigError
    return name, p


STOPS = ("none", "wmv", "wmv-ema", "emv", "holdout")


def make_stopper(problem: Problem, stop: str, *, seed: int = 0, patience: int | None = None,
                 window: int = 100, holdout: float = 0.1) -> tuple[Callback | None, Problem]:
    """The early-stopping callback ``stop`` names, and the problem to fit (for ``'holdout'`` the
    measurements minus a seeded ``holdout`` fraction of measured pixels, which the callback scores)."""
    from .fit.stopping import ExponentialVariance, Holdout, WindowedVariance, holdout_split

    if stop not in STOPS:
        raise ConfigError(f"unknown stopping rule {stop!r}; choose one of {', '.join(STOPS)}")
    if stop == "none":
        return None, problem
    if stop in ("wmv", "wmv-ema"):
        source = "ema" if stop == "wmv-ema" else "x"
        return WindowedVariance(window=window, patience=patience or 1000, source=source), problem
    if stop == "emv":
        return ExponentialVariance(patience=patience or 1000), problem
    y = problem.y
    sampled = torch.ones((1, 1, *y.shape[-2:]))
    if isinstance(problem.operator, Mask):
        sampled = problem.operator.mask.amax(dim=1, keepdim=True).expand(1, 1, *y.shape[-2:])
    train, val = holdout_split(sampled, holdout, seed=seed + 3)
    tr_op, va_op = Mask(train) @ problem.operator, Mask(val) @ problem.operator
    shown = problem.degraded
    if tuple(shown.shape[-2:]) == tuple(train.shape[-2:]):
        # The classical methods start from `degraded`: keep the held-out pixels out of it too.
        # (For super-resolution the bicubic start still sees them; it only affects the start point.)
        shown = Mask(train)(shown)
    fit_problem = Problem(problem.task, tr_op, Mask(train)(y), problem.out_hw, problem.channels, shown,
                          problem.gt, problem.code_image, dict(problem.info, holdout=holdout))
    count = float(val.sum()) * y.shape[1]
    # Score what the fit delivers: the EMA when the preset keeps one. The raw outputs carry the code's
    # jitter; their held-out minimum is noisier and comes earlier than the EMA's (docs/early_stopping.md).
    return Holdout(va_op, Mask(val)(y), patience=patience or 500, count=count, source="ema"), fit_problem


def solve(problem: Problem, *, method: str = "dip", preset: str | dict | None = None, seed: int = 0,
          device: str = "auto", callbacks: tuple[Callback, ...] | list = (), reg_weight: float | None = None,
          stop: str | None = None, patience: int | None = None, refit: bool = False, checkpoint=None,
          checkpoint_every: int = 0, resume=None, **overrides) -> Restoration:
    """Reconstruct ``problem`` with DIP (``method='dip'``) or a classical prior (``'tv'``,
    ``'tv-aniso'``, ``'wavelet'``), through the one fit loop.

    ``overrides``: ``net``, ``code``, ``reg_noise_std`` and any :class:`~deepprior.fit.FitConfig`
    field (``iters``, ``lr``, ``ema``…). ``stop``: ``'wmv'``/``'wmv-ema'``/``'emv'`` (output variance) or
    ``'holdout'`` (self-validation) ends the fit without ground truth and delivers the selected iterate;
    ``None`` takes the preset's rule (``preset['stop']``, see docs/early_stopping.md), ``'none'`` runs all
    iterations. ``refit`` (with ``'holdout'``): fit again on *all* measurements for the number of
    iterations the held-out loss chose, and deliver that (twice the time, no sample left out).
    ``checkpoint``/``checkpoint_every``/``resume``: see :func:`~deepprior.fit.fit`; Ctrl-C raises
    :class:`~deepprior.fit.FitInterrupted` with the result so far.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    # The preset's rule (and its patience) fills in what the caller left open.
    rule = (resolve_preset(problem, preset, **overrides)[1].get("stop") or {}) if method == "dip" else {}
    if stop is None:
        stop = rule.get("rule", "none")
    if patience is None and stop == rule.get("rule"):
        patience = rule.get("patience")
    if refit and stop != "holdout":
        raise ConfigError("refit re-runs a fit for the iteration count the held-out loss chose; use it with stop holdout")
    dev = resolve_device(device)
    stopper, prob = make_stopper(problem, stop, seed=seed, patience=patience)
    prob = prob.to(dev)
    if stopper is not None:
        callbacks = [stopper, *callbacks]
        if hasattr(stopper, "val_op"):
            stopper.val_op, stopper.y_val = stopper.val_op.to(dev), stopper.y_val.to(dev)
    gt = prob.gt
    if method == "dip":
        if reg_weight is not None:
            raise ConfigError("a regularizer weight applies to the classical methods (tv, tv-aniso, wavelet), not dip")
        name, p = resolve_preset(prob, preset, **overrides)
        param = build_dip(prob, p, seed=seed, device=dev)
        _memory_guard(prob, param, name, dev, window=getattr(stopper, "window", 0))
        cfg = FitConfig(**p["fit"])
        result = fit(param, prob.operator, prob.y, cfg, gt=gt, callbacks=callbacks, checkpoint=checkpoint,
                     checkpoint_every=checkpoint_every, resume=resume)
    else:
        if preset is not None:
            raise ConfigError("presets describe DIP recipes; the classical methods take --iters/--lr/--weight")
        if any(overrides.get(k) is not None for k in ("net", "code", "reg_noise_std")):
            raise ConfigError("net, code and reg_noise_std apply to method dip only")
        name = None
        spec = CLASSICAL.get(prob.task)
        if spec is None:
            raise ConfigError(f"no classical baseline for task {prob.task!r}; use method dip")
        if reg_weight is None:
            if "weight_per_sigma" in spec:
                sigma = prob.info.get("sigma")
                if sigma is None:
                    raise ConfigError("the classical denoisers need the noise level: pass sigma or a weight")
                reg_weight = spec["weight_per_sigma"][method] * sigma
            else:
                reg_weight = spec["weight"][method]
        fit_kw = {**spec["fit"], **{k: v for k, v in overrides.items() if v is not None}}
        cfg = FitConfig().replace(**fit_kw, reg_weight=reg_weight)
        param = Pixels(prob.degraded.clamp(0, 1)).to(dev)
        result = fit(param, prob.operator, prob.y, cfg, regularizer=build_regularizer(method).to(dev), gt=gt,
                     callbacks=callbacks, checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume)
    if refit and result.selected_iter is not None:
        # The selection was made on 90 % of the samples; the chosen iteration count carries over to all.
        chosen = result.selected_iter + 1
        r = solve(problem, method=method, preset=preset, seed=seed, device=device, callbacks=callbacks,
                  reg_weight=reg_weight, stop="none", **{**overrides, "iters": chosen})
        r.stop, r.metrics["selected_iter"] = "holdout+refit", chosen - 1
        r.metrics["holdout_run_seconds"] = result.seconds
        return r
    out = result.output
    r = Restoration(to_numpy(out), result, problem, method, name, stop=stop)
    if gt is not None:
        r.metrics = {"psnr": psnr(out, gt), "ssim": ssim(out, gt)}
        if result.ema is not None:
            r.metrics["psnr_last"] = psnr(result.image, gt)
        if result.best is not None:
            r.metrics.update(psnr_oracle_best=max(result.history["psnr"]), oracle_best_iter=result.best_iter)
    if result.selected_iter is not None:
        r.metrics["selected_iter"] = result.selected_iter
    return r


class PerImage(Operator):
    """Operator ``i`` applied to image ``i`` of an ``(N, C, H, W)`` stack (N independent problems)."""

    def __init__(self, ops):
        super().__init__()
        self.ops = nn.ModuleList(ops)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([op(x[i:i + 1]) for i, op in enumerate(self.ops)])


def solve_many(problems: list[Problem], *, preset: str | dict | None = None, seeds=None, device: str = "auto",
               callbacks=(), **overrides) -> list[Restoration]:
    """Fit N independent problems of one task and size with DIP in one batched run
    (:class:`~deepprior.params.BatchedDIP`): image ``i`` gets the result ``solve(problems[i],
    seed=seeds[i])`` would give, up to float rounding, at the cost of one fit of N-times-wider layers —
    what keeps a GPU busy. Seeds default to 0…N−1. Stopping rules and backtracking would act on the
    whole stack (one image's divergence would restore every image), so they are off here: a preset's
    ``stop`` rule is ignored and the fit runs its ``iters``.

    >>> import torch
    >>> ps = [denoise_problem(add_noise(torch.full((1, 1, 16, 16), v), 0.1, seed=0)) for v in (0.3, 0.7)]
    >>> tiny = {"net": {"name": "skip", "channels_down": [4] * 2, "channels_up": [4] * 2, "channels_skip": [1] * 2},
    ...         "code": {"kind": "noise", "channels": 4, "scale": 0.1}, "reg_noise_std": 0.0,
    ...         "fit": {"iters": 5, "ema": None, "backtrack": False}}
    >>> [r.image.shape for r in solve_many(ps, preset=tiny, device="cpu")]
    [(16, 16, 1), (16, 16, 1)]
    """
    from .params import BatchedDIP

    if not problems:
        raise ConfigError("solve_many needs at least one problem")
    first = problems[0]
    for p in problems[1:]:
        if p.task != first.task or p.out_hw != first.out_hw or p.channels != first.channels \
                or p.y.shape != first.y.shape:
            raise ConfigError("solve_many fits problems of one task, image size and channel count; "
                              f"got {first.task} {first.out_hw}×{first.channels} and {p.task} {p.out_hw}×{p.channels}")
    seeds = list(range(len(problems))) if seeds is None else list(seeds)
    if len(seeds) != len(problems):
        raise ConfigError(f"{len(problems)} problems but {len(seeds)} seeds")
    dev = resolve_device(device)
    probs = [p.to(dev) for p in problems]
    name, pre = resolve_preset(first, preset, **overrides)
    param = BatchedDIP([build_dip(p, pre, seed=s, device=dev) for p, s in zip(probs, seeds)])
    cfg = FitConfig(**{**pre["fit"], "backtrack": False})
    gts = [p.gt for p in probs]
    gt = torch.cat(gts) if all(g is not None for g in gts) else None
    result = fit(param, PerImage([p.operator for p in probs]), torch.cat([p.y for p in probs]), cfg, gt=gt,
                 callbacks=callbacks)
    out = []
    for i, (p, orig) in enumerate(zip(probs, problems)):
        img = result.output[i:i + 1]
        r = Restoration(to_numpy(img), result, orig, "dip", name)
        if p.gt is not None:
            r.metrics = {"psnr": psnr(img, p.gt), "ssim": ssim(img, p.gt)}
        out.append(r)
    return out


__all__ = ["Problem", "Restoration", "solve", "solve_many", "denoise_problem", "inpaint_problem", "superres_problem",
           "deblur_problem", "jpeg_problem", "flash_problem", "add_noise", "random_mask", "downscale",
           "jpeg_compress", "to_tensor", "to_numpy", "TASKS", "center_crop"]
