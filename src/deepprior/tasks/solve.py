"""One :func:`solve` turns any :class:`~deepprior.tasks.Problem` plus a preset/method into a fit of the one
loop; :func:`solve_many` fits N problems of one size in one batched run."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from ..fit import Callback, FitConfig, FitResult, fit, format_seconds, resolve_device
from ..fit.stopping import STOP_RULES
from ..metrics import psnr, ssim
from ..nets import build_net, make_code
from ..operators import Mask, PerImage
from ..params import DIP, Pixels
from ..presets import CLASSICAL, IMAGE_METHODS, get_preset
from ..regularizers import build_regularizer
from .convert import to_numpy
from .problems import Problem, default_preset


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
    stopper: Callback | None = None  # its callback (scores per step in .scores/.iters, for plots), when one ran


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
        net = build_net(name, in_ch, problem.channels, out_hw=problem.out_hw, **spec)
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


def _memory_guard(prob: Problem, param, preset: dict, name: str | None, dev: torch.device, window: int = 0) -> None:
    """Stop before a fit that cannot fit in memory, naming a lighter preset or a crop size that does.
    ``window``: images an ES-WMV ring buffer keeps (counted on top of the fit's own copies)."""
    from dataclasses import replace

    from ..resources import check_memory, estimate_fit_bytes

    h, w = prob.out_hw
    img = prob.channels * h * w * 4

    def alternatives():
        out = []
        for alt in ("denoise-fast", "fast"):
            if alt != name:
                out.append((f"--preset {alt}", estimate_fit_bytes(build_dip(prob, get_preset(alt), device="cpu"), img)))
        return out

    def at_side(s: int) -> int:  # the same preset on an s×s crop
        crop = replace(prob, out_hw=(s, s))
        return estimate_fit_bytes(build_dip(crop, preset, device="cpu"), prob.channels * s * s * 4,
                                  extra_images=4 + window)

    check_memory(estimate_fit_bytes(param, img, extra_images=4 + window), dev,
                 what=f"DIP ({name or 'custom preset'}) at {h}×{w}", alternatives=alternatives,
                 side=min(h, w), at_side=None if preset["code"]["kind"] == "image" else at_side)


def resolve_preset(problem: Problem, preset: str | dict | None = None, *, net: str | None = None,
                   code: str | None = None, reg_noise_std: float | None = None, **fit_overrides) -> tuple[str | None, dict]:
    """Preset by name (default: the task's reference recipe) with overrides applied."""
    name = None
    if isinstance(preset, dict):
        p = deepcopy(preset)  # a preset is data: using it must never change it
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


def make_stopper(problem: Problem, stop: str, *, seed: int = 0, patience: int | None = None,
                 window: int = 100, holdout: float = 0.1) -> tuple[Callback | None, Problem]:
    """The early-stopping callback ``stop`` names, and the problem to fit (for ``'holdout'`` the
    measurements minus a seeded ``holdout`` fraction of measured pixels, which the callback scores)."""
    from ..fit.stopping import ExponentialVariance, Holdout, WindowedVariance, holdout_split

    if stop not in STOP_RULES:
        raise ConfigError(f"unknown stopping rule {stop!r}; choose one of {', '.join(STOP_RULES)}")
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


def _announce(announce, prob: Problem, param, cfg: FitConfig, what: str, dev, stop: str, check: bool = False) -> None:
    """Tell the user what runs and for how long (one timed step × iterations); refuse a default recipe that would
    run past the CPU budget."""
    from ..presets import CPU_BUDGET_S
    from ..resources import step_seconds

    if announce is None and not (check and dev.type == "cpu"):
        return
    bf16 = cfg.bf16_on(dev)
    per = step_seconds(param, prob.operator, prob.y, bf16=bf16)
    total = per * cfg.iters
    if check and dev.type == "cpu" and total > CPU_BUDGET_S:
        raise ConfigError(f"{prob.task}: the default recipe ({what}) would take about {format_seconds(total)} on this CPU "
                          f"({cfg.iters} iterations at {per:.2f} s); pass --preset to run it anyway, --iters N for a "
                          "shorter run, or --device cuda on a GPU")
    if announce is not None:
        bound = f"up to {cfg.iters} iterations, stops by itself ({stop}): at most" if stop != "none" else \
            f"{cfg.iters} iterations: about"
        announce(f"{prob.task}: {what} on {dev.type}{' in bfloat16' if bf16 else ''}, {bound} {format_seconds(total)} ({per:.3f} s/iteration)")


def solve(problem: Problem, *, method: str = "dip", preset: str | dict | None = None, seed: int = 0,
          device: str = "auto", callbacks: tuple[Callback, ...] | list = (), reg_weight: float | None = None,
          stop: str | None = None, patience: int | None = None, refit: bool = False, checkpoint=None,
          checkpoint_every: int = 0, resume=None, announce=None, **overrides) -> Restoration:
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

    Without a ``preset``, a CPU gets the task's quick preset (``presets.CPU_DEFAULTS``: ``fast`` for denoising)
    and a GPU the reference recipe; a reference recipe estimated (one timed step) to run longer than
    ``presets.CPU_BUDGET_S`` with neither ``preset`` nor ``iters`` given raises a :class:`ConfigError` that names
    the choices. ``announce(line)`` receives, before the fit, what runs: method, preset, device, iterations and
    the estimated time.
    """
    if method not in IMAGE_METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(IMAGE_METHODS)}")
    dev = resolve_device(device)
    chosen_for_device = method == "dip" and preset is None
    if chosen_for_device:
        preset = default_preset(problem, dev)
    # The preset's rule (and its patience) fills in what the caller left open.
    rule = (resolve_preset(problem, preset, **overrides)[1].get("stop") or {}) if method == "dip" else {}
    if stop is None:
        stop = rule.get("rule", "none")
    if patience is None and stop == rule.get("rule"):
        patience = rule.get("patience")
    if refit and stop != "holdout":
        raise ConfigError("refit re-runs a fit for the iteration count the held-out loss chose; use it with stop holdout")
    stopper, prob = make_stopper(problem, stop, seed=seed, patience=patience)
    prob = prob.to(dev)
    user_callbacks = list(callbacks)  # the refit gets these, never this run's stopper
    callbacks = user_callbacks
    if stopper is not None:
        callbacks = [stopper, *user_callbacks]
        if hasattr(stopper, "val_op"):
            stopper.val_op, stopper.y_val = stopper.val_op.to(dev), stopper.y_val.to(dev)
    gt = prob.gt
    if method == "dip":
        if reg_weight is not None:
            raise ConfigError("a regularizer weight applies to the classical methods (tv, tv-aniso, wavelet), not dip")
        name, p = resolve_preset(prob, preset, **overrides)
        param = build_dip(prob, p, seed=seed, device=dev)
        _memory_guard(prob, param, p, name, dev, window=getattr(stopper, "window", 0))
        cfg = FitConfig(**p["fit"])
        _announce(announce, prob, param, cfg, f"dip, preset {name}", dev, stop,
                  check=chosen_for_device and overrides.get("iters") is None)
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
        reg = build_regularizer(method).to(dev) if reg_weight > 0 else None  # weight 0 = the plain data fit
        _announce(announce, prob, param, cfg, f"classical {method} (λ {reg_weight:.3g})", dev, stop)
        result = fit(param, prob.operator, prob.y, cfg, regularizer=reg, gt=gt,
                     callbacks=callbacks, checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume)
    if refit and result.selected_iter is not None:
        # The selection was made on 90 % of the samples; the chosen iteration count carries over to all.
        chosen = result.selected_iter + 1
        r = solve(problem, method=method, preset=preset, seed=seed, device=device, callbacks=user_callbacks,
                  reg_weight=reg_weight, stop="none", **{**overrides, "iters": chosen})
        r.stop, r.metrics["selected_iter"] = "holdout+refit", chosen - 1
        r.metrics["holdout_run_seconds"] = result.seconds
        return r
    out = result.output
    r = Restoration(to_numpy(out), result, problem, method, name, stop=stop, stopper=stopper)
    if gt is not None:
        r.metrics = {"psnr": psnr(out, gt), "ssim": ssim(out, gt)}
        if result.ema is not None:
            r.metrics["psnr_last"] = psnr(result.image, gt)
        if result.best is not None:
            r.metrics.update(psnr_oracle_best=max(result.history["psnr"]), oracle_best_iter=result.best_iter)
    if result.selected_iter is not None:
        r.metrics["selected_iter"] = result.selected_iter
    return r


def solve_many(problems: list[Problem], *, preset: str | dict | None = None, seeds=None, device: str = "auto",
               callbacks=(), **overrides) -> list[Restoration]:
    """Fit N independent problems of one task and size with DIP in one batched run
    (:class:`~deepprior.params.BatchedDIP`): image ``i`` gets the result ``solve(problems[i],
    seed=seeds[i])`` would give, up to float rounding, at the cost of one fit of N-times-wider layers —
    what keeps a GPU busy. Seeds default to 0…N−1. Stopping rules and backtracking would act on the
    whole stack (one image's divergence would restore every image), so they are off here: a preset's
    ``stop`` rule is ignored and the fit runs its ``iters``.

    >>> import torch
    >>> from deepprior.tasks import add_noise, denoise_problem
    >>> ps = [denoise_problem(add_noise(torch.full((1, 1, 16, 16), v), 0.1, seed=0)) for v in (0.3, 0.7)]
    >>> tiny = {"net": {"name": "skip", "channels_down": [4] * 2, "channels_up": [4] * 2, "channels_skip": [1] * 2},
    ...         "code": {"kind": "noise", "channels": 4, "scale": 0.1}, "reg_noise_std": 0.0,
    ...         "fit": {"iters": 5, "ema": None, "backtrack": False}}
    >>> [r.image.shape for r in solve_many(ps, preset=tiny, device="cpu")]
    [(16, 16, 1), (16, 16, 1)]
    """
    from ..params import BatchedDIP

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
    param = BatchedDIP([build_dip(p, pre, seed=s, device=dev) for p, s in zip(probs, seeds, strict=True)])
    cfg = FitConfig(**{**pre["fit"], "backtrack": False})
    gts = [p.gt for p in probs]
    gt = torch.cat(gts) if all(g is not None for g in gts) else None
    result = fit(param, PerImage([p.operator for p in probs]), torch.cat([p.y for p in probs]), cfg, gt=gt,
                 callbacks=callbacks)
    out = []
    for i, (p, orig) in enumerate(zip(probs, problems, strict=True)):
        img = result.output[i:i + 1]
        r = Restoration(to_numpy(img), result, orig, "dip", name)
        if p.gt is not None:
            r.metrics = {"psnr": psnr(img, p.gt), "ssim": ssim(img, p.gt)}
        out.append(r)
    return out
