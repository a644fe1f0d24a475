"""The one fit loop: θ* = argmin_θ loss(A P_θ(), y) + λ R(P_θ()).

Everything — DIP, deep decoders, classical TV/wavelet baselines, and the MRI methods — is a (operator,
parameterization, loss, callbacks) tuple handed to :func:`fit`. Its types live in :mod:`.config`, the state
it carries between iterations (and writes to checkpoints) in :mod:`.checkpoint`.
"""

from __future__ import annotations

import copy
import signal
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..errors import ConfigError, DivergenceError
from ..metrics import psnr, ssim
from ..operators.base import Operator
from ..params import Parameterization
from .checkpoint import RunState, atomic_save, fingerprint, load_checkpoint, snapshot
from .config import Callback, FitConfig, FitInterrupted, FitResult, FitState
from .schedule import BudgetAnneal


def _loss_fn(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    if name == "mse":
        return lambda a, b: torch.mean(torch.abs(a - b) ** 2) if a.is_complex() else torch.mean((a - b) ** 2)
    return lambda a, b: torch.mean(torch.abs(a - b))


def fit(param: Parameterization, operator: Operator, y: Tensor, config: FitConfig | None = None, *,
        regularizer: nn.Module | None = None, gt: Tensor | None = None,
        callbacks: Sequence[Callback] = (), checkpoint: str | Path | None = None, checkpoint_every: int = 0,
        resume: str | Path | dict | None = None) -> FitResult:
    """Fit ``param`` so that ``operator(param())`` matches the measurement ``y``.

    Parameters
    ----------
    param : the parameterization (:class:`~deepprior.params.DIP` or :class:`~deepprior.params.Pixels`),
        already on the device of ``y``.
    operator : forward model A.
    y : measurement, same device.
    config : optimisation settings.
    regularizer : optional R(x), weighted by ``config.reg_weight``.
    gt : optional ground truth in [0, 1] for PSNR tracking (never used by the optimisation).
    callbacks : hooks called after every step.
    checkpoint, checkpoint_every : write the whole fit state (parameters, optimizer, scheduler, EMA,
        RNG states, backtracking snapshot, callbacks' states, history) to ``checkpoint`` every
        ``checkpoint_every`` steps, atomically (temp file + rename), and on Ctrl-C.
    resume : a checkpoint (path or :func:`load_checkpoint` dict) of the same run to continue; on CPU the
        result is bit-identical to an uninterrupted run.

    Ctrl-C (SIGINT, main thread) ends the fit after the current step: the checkpoint is written (when
    ``checkpoint`` is set) and :class:`FitInterrupted` carries the result so far; a second Ctrl-C
    interrupts at once.

    Examples
    --------
    >>> import torch
    >>> from deepprior.operators import Identity
    >>> from deepprior.params import Pixels
    >>> y = torch.full((1, 1, 8, 8), 0.5)
    >>> r = fit(Pixels(torch.zeros_like(y)), Identity(), y, FitConfig(iters=200, lr=0.05, ema=None))
    >>> abs(r.image.mean().item() - 0.5) < 1e-2
    True
    """
    cfg = config or FitConfig()
    if regularizer is not None and not cfg.reg_weight:
        raise ConfigError("a regularizer was given with reg_weight 0, so it would have no effect; "
                          "set reg_weight > 0 or pass no regularizer")
    loss_fn = _loss_fn(cfg.loss)
    # An operator may evaluate the squared misfit itself, against data of its own form (the radial Toeplitz data term,
    # deepprior.mri.gramloss): the loop then asks it for the loss instead of comparing operator(x) with y.
    own_misfit = callable(getattr(operator, "misfit", None))
    if own_misfit and cfg.loss != "mse":
        raise ConfigError(f"this operator computes a squared-error misfit itself; loss {cfg.loss!r} needs an operator "
                          "without one")
    params = [p for p in param.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the parameterization has no trainable parameters")
    # A parameterization with several kinds of parameters (a generator and motion parameters) may give each
    # group its own learning rate as a multiple of cfg.lr: param_groups() → [(parameters, lr_scale), ...].
    groups = [{"params": [p for p in ps if p.requires_grad], "lr": cfg.lr * s}
              for ps, s in param.param_groups()] if hasattr(param, "param_groups") else [{"params": params}]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "adam":
        # The fused kernel updates all tensors in one pass: on 2 CPU cores 0.5 against 2.2 ms per step for TDDIP's
        # 35 tensors (0.37 M weights), its sweeps 2–3 % faster. Same update, rounded in a different order.
        fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
        opt = torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas), fused=fused or None)
    elif len(groups) > 1:
        raise ConfigError("L-BFGS takes one learning rate; use Adam for parameter groups with their own rates")
    else:
        # The loop decides when to stop: L-BFGS's absolute tolerances (1e-7 on the gradient) would end a fit whose
        # mean-squared loss is small in absolute terms (a k-space misfit averaged over 10⁶ samples) at once.
        opt = torch.optim.LBFGS(params, lr=cfg.lr, max_iter=1, history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=0.0, tolerance_change=0.0)
    sched = None
    if cfg.lr_schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, cfg.lr_step, cfg.lr_gamma)
    elif cfg.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.iters)
    elif cfg.lr_schedule == "anneal":
        # t0 is read when the clock is called: set below, and moved back on resume
        sched = BudgetAnneal(opt, cfg.iters, cfg.anneal_frac, cfg.time_budget, clock=lambda: time.perf_counter() - t0)

    hist: dict[str, list] = {k: [] for k in ("loss", "data", "reg", "lr", "time")}
    if gt is not None:
        hist["psnr"], hist["psnr_ema"] = [], []
        if cfg.ssim_every:
            hist["ssim_iter"], hist["ssim"] = [], []
    state = FitState(it=0, iters=cfg.iters, history=hist, param=param, optimizer=opt, gt=gt, time_limit=cfg.time_budget)
    for cb in callbacks:
        cb.on_fit_start(state)
    if checkpoint_every and checkpoint is None:
        raise ConfigError("checkpoint_every needs a checkpoint path")

    n_items = getattr(param, "n_items", None)
    batched = cfg.batch is not None and n_items is not None and cfg.batch < n_items
    if cfg.batch is not None and not batched and n_items is None:
        raise ConfigError("batch is set but the parameterization has a single item; drop batch")
    run = RunState(param, opt, sched, state, torch.Generator().manual_seed(cfg.batch_seed), callbacks,
                   fingerprint(cfg, param), hist, cfg.backtrack)
    out = run.out
    t0 = time.perf_counter()

    if cfg.channels_last_on(y.device, param):
        param.to(memory_format=torch.channels_last)
    # The compiled module shares param's tensors: checkpoints, snapshots and restores act on `param`.
    call = torch.compile(param) if cfg.compile else param
    state.bf16 = cfg.bf16_on(y.device)
    amp = torch.autocast(y.device.type, dtype=torch.bfloat16, enabled=state.bf16)
    # N independent images fitted in one run (BatchedDIP) sum their mean losses, so that each image's
    # gradient is exactly the one its own fit would see (a mean over the stack would divide it by N).
    n_independent = getattr(param, "independent", 1)

    def forward_backward(idx: Tensor | None = None):
        """Loss of all items (``idx=None``) or of the items ``idx``, and its gradient."""
        opt.zero_grad(set_to_none=True)
        with amp:
            x = call() if idx is None else call(index=idx)
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()  # the loss and the operators run in float32 (complex outputs pass untouched)
        op, target = (operator, y) if idx is None else (operator.select(idx), y[idx.to(y.device)])
        data = op.misfit(x, target) if own_misfit else loss_fn(op(x), target)
        reg = cfg.reg_weight * regularizer(x) if regularizer is not None else data.new_zeros(())  # real, as data
        total = data + reg
        (total * n_independent if n_independent != 1 else total).backward()
        return x.detach(), data.detach(), reg.detach(), total

    def closure():
        x, data, reg, total = forward_backward()
        out.update(x=x, data=data, reg=reg, total=total.detach())
        return total

    if resume is not None:
        run.load_state_dict(resume if isinstance(resume, dict) else load_checkpoint(resume), y.device)
        t0 = time.perf_counter() - (hist["time"][-1] if hist["time"] else 0.0)

    interrupted = {"flag": False}
    old_handler = None
    if threading.current_thread() is threading.main_thread():
        def _on_sigint(signum, frame):
            if interrupted["flag"]:
                raise KeyboardInterrupt  # a second Ctrl-C: stop now
            interrupted["flag"] = True

        old_handler = signal.signal(signal.SIGINT, _on_sigint)

    def sweep():
        """One pass over all items in mini-batches; the iterate is assembled from the batches' outputs."""
        x_all, data_sum, reg_sum = None, 0.0, 0.0
        for idx in torch.randperm(n_items, generator=run.order_gen).split(cfg.batch):
            idx = idx.sort().values
            xb, data, reg, _ = forward_backward(idx)
            if not (torch.isfinite(data) and torch.isfinite(reg)):
                x_all, data_sum, reg_sum = None, float("nan"), float("nan")
                break
            opt.step()
            data_sum += float(data) * idx.numel() / n_items
            reg_sum += float(reg) * idx.numel() / n_items
            if x_all is None:
                x_all = xb.new_empty((n_items, *xb.shape[1:]))
            x_all[idx.to(xb.device)] = xb
        out.update(x=x_all, data=torch.tensor(data_sum), reg=torch.tensor(reg_sum),
                   total=torch.tensor(data_sum + reg_sum))

    def result_now() -> FitResult:
        return FitResult(image=out["x"], ema=run.ema, history=hist, iters_run=run.it,
                         seconds=time.perf_counter() - t0, backtracks=state.backtracks, best=run.best,
                         best_iter=run.best_iter, selected=state.selected, selected_iter=state.selected_iter)

    try:
        while run.it < cfg.iters:
            it = run.it
            if batched:
                sweep()
                finite = bool(torch.isfinite(out["total"]))
            elif cfg.optimizer == "adam":
                closure()
                finite = bool(torch.isfinite(out["total"]))
                if finite:
                    opt.step()
            else:
                opt.step(closure)
                finite = bool(torch.isfinite(out["total"]))
            total = float(out["total"])

            diverged = not finite
            if cfg.backtrack and finite and (it + 1) % cfg.backtrack_every == 0:
                # A data-fit PSNR drop of more than backtrack_db dB since the last check = divergence.
                if total > run.last_check_loss * 10 ** (cfg.backtrack_db / 10):
                    diverged = True
                else:
                    run.good = snapshot(param, opt, sched, run.ema)
                    run.last_check_loss = total
                    run.restores_since_good = 0
            if diverged:
                if not cfg.backtrack:
                    raise DivergenceError(f"loss became {total} at iteration {it}; enable backtracking or lower the learning rate")
                state.backtracks += 1
                if state.backtracks > cfg.max_backtracks:
                    raise DivergenceError(
                        f"the fit diverged {state.backtracks - 1} times (last at iteration {it}); lower the learning rate")
                p_sd, o_sd, s_sd, e = copy.deepcopy(run.good)
                param.load_state_dict(p_sd)
                opt.load_state_dict(o_sd)
                if sched is not None and s_sd is not None:
                    sched.load_state_dict(s_sd)
                run.restores_since_good += 1
                for g in opt.param_groups:
                    g["lr"] *= cfg.backtrack_lr_factor ** run.restores_since_good
                run.ema = e
                for cb in callbacks:
                    cb.on_backtrack(state)
                continue  # redo this iteration from the restored state; the bad output is not recorded
            if sched is not None:
                sched.step()

            x = out["x"]
            if cfg.ema is not None:
                wt = min(cfg.ema, (1 + it) / (10 + it)) if cfg.ema_warmup else cfg.ema
                run.ema = x.clone() if run.ema is None else run.ema.mul_(wt).add_(x, alpha=1 - wt)
            ema = run.ema
            hist["loss"].append(total)
            hist["data"].append(float(out["data"]))
            hist["reg"].append(float(out["reg"]))
            hist["lr"].append(opt.param_groups[0]["lr"])
            hist["time"].append(time.perf_counter() - t0)
            if gt is not None:
                p = psnr(x, gt)
                hist["psnr"].append(p)
                hist["psnr_ema"].append(psnr(ema, gt) if ema is not None else p)
                if p > run.best_psnr:
                    run.best_psnr, run.best, run.best_iter = p, x.clone(), it
                if cfg.ssim_every and (it + 1) % cfg.ssim_every == 0:
                    hist["ssim_iter"].append(it)
                    hist["ssim"].append(ssim(ema if ema is not None else x, gt))

            state.it, state.x, state.ema, state.loss = it, x, ema, total
            state.elapsed = hist["time"][-1]
            for cb in callbacks:
                cb.on_step_end(state)
            run.it += 1
            if checkpoint_every and run.it % checkpoint_every == 0:
                atomic_save(run.state_dict(), checkpoint)
            if interrupted["flag"]:
                if checkpoint is not None:
                    atomic_save(run.state_dict(), checkpoint)
                raise FitInterrupted(result_now(), None if checkpoint is None else str(checkpoint))
            if state.stop:
                break

    finally:
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)

    for cb in callbacks:
        cb.on_fit_end(state)
    return result_now()
