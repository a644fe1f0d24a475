"""The one fit loop: θ* = argmin_θ loss(A P_θ(), y) + λ R(P_θ()).

Everything — DIP, deep decoders, classical TV/wavelet baselines, and later the MRI methods —
is a (operator, parameterization, loss, callbacks) tuple handed to :func:`fit`.
"""

from __future__ import annotations

import copy
import os
import signal
import threading
import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..errors import ConfigError, DivergenceError
from ..metrics import psnr, ssim
from ..operators.base import Operator
from ..params import Parameterization

LOSSES = ("mse", "l1")


@dataclass
class FitConfig:
    """Optimisation settings of :func:`fit` (presets fill these in).

    ``batch``: for parameterizations of several items (frames of a dynamic series: ``param.n_items``),
    fit ``batch`` items per optimizer step. One iteration of the loop is then a *sweep*: every item
    once, in a seeded random order (``batch_seed``), in ``ceil(n / batch)`` optimizer steps; its
    iterate is the assembled output of the sweep. The operator must offer ``select(index)`` and the
    measurement is indexed along its first axis. LR schedules and all callbacks count sweeps.
    ``ema``: weight of the exponential moving average of the outputs (None disables it).
    ``backtrack``: every ``backtrack_every`` steps compare the data fit with the last check;
    if it got worse by more than ``backtrack_db`` dB (or any loss is non-finite), restore the
    last good parameters, optimizer state, BatchNorm statistics and EMA, scale the learning rate
    by ``backtrack_lr_factor`` (compounded over repeated restores of the same good state; 1 = the
    reference DIP's behaviour, which retries at the same rate) and go on; after ``max_backtracks`` restores raise
    :class:`~deepprior.errors.DivergenceError`.
    """

    iters: int = 3000
    lr: float = 0.01
    optimizer: str = "adam"
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's (GIP's reference uses (0.5, 0.98))
    lr_schedule: str | None = None  # None | "step" | "cosine"
    lr_step: int = 2000
    lr_gamma: float = 0.5
    ema: float | None = 0.99
    # Warm the EMA up: weight min(ema, (1 + t) / (10 + t)) at step t, so that the average does not drag
    # the first, poor outputs along for ~1/(1 − ema) steps (it reaches the full weight after ~900 steps).
    ema_warmup: bool = False
    backtrack: bool = True
    backtrack_every: int = 100
    backtrack_db: float = 5.0
    backtrack_lr_factor: float = 0.5
    max_backtracks: int = 20
    loss: str = "mse"
    reg_weight: float = 0.0
    ssim_every: int = 0  # with a ground truth: SSIM of the EMA/last image every N steps (0 = off; costs CPU)
    batch: int | None = None  # items (frames) per optimizer step; None = all items in one step
    batch_seed: int = 0
    compile: bool = False  # torch.compile the forward pass (inductor); pays off on GPUs, not on small CPUs
    amp: str | None = None  # None | "bf16": autocast the forward pass (GPU tensor cores; loss stays float32)
    channels_last: bool = False  # NHWC memory layout for the generator (GPU tensor cores prefer it)

    def __post_init__(self):
        if not (isinstance(self.iters, int) and self.iters >= 1):
            raise ConfigError(f"iters must be a positive integer, got {self.iters}")
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {self.lr}")
        if self.optimizer not in ("adam", "lbfgs"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose adam or lbfgs")
        if self.lr_schedule not in (None, "step", "cosine"):
            raise ConfigError(f"unknown lr schedule {self.lr_schedule!r}; choose step, cosine or none")
        if self.ema is not None and not 0 <= self.ema < 1:
            raise ConfigError(f"ema weight must be in [0, 1), got {self.ema}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.ssim_every < 0:
            raise ConfigError(f"ssim_every must be ≥ 0, got {self.ssim_every}")
        if self.reg_weight < 0:
            raise ConfigError(f"regularizer weight must be ≥ 0, got {self.reg_weight}")
        if self.batch is not None and not (isinstance(self.batch, int) and self.batch >= 1):
            raise ConfigError(f"batch must be a positive integer (frames per step) or None, got {self.batch}")
        if self.amp not in (None, "bf16"):
            raise ConfigError(f"amp must be None or 'bf16', got {self.amp!r} (bf16 needs no loss scaling; "
                              "fp16 would)")
        if self.batch is not None and self.optimizer == "lbfgs":
            raise ConfigError("mini-batches of frames need a stochastic optimizer; use adam with batch, or no batch")

    def replace(self, **changes) -> "FitConfig":
        known = {f.name for f in fields(self)}
        bad = set(changes) - known
        if bad:
            raise ConfigError(f"unknown fit option(s) {', '.join(sorted(bad))}")
        return FitConfig(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})


@dataclass
class FitState:
    """What callbacks see after each step. Setting ``stop = True`` ends the fit."""

    it: int
    iters: int
    x: Tensor | None = None
    ema: Tensor | None = None
    loss: float = math.nan
    history: dict[str, list] = field(default_factory=dict)
    param: Parameterization | None = None
    optimizer: torch.optim.Optimizer | None = None
    elapsed: float = 0.0
    stop: bool = False
    backtracks: int = 0
    gt: Tensor | None = None
    selected: Tensor | None = None  # an iterate chosen by a callback (e.g. early stopping)
    selected_iter: int | None = None


@dataclass
class FitResult:
    """Outcome of :func:`fit`.

    ``image``: the last iterate; ``ema``: the moving average of the outputs; ``best``/
    ``best_iter``: the iterate with the highest PSNR against ``gt`` (an oracle, for diagnostics
    only — None without ground truth); ``selected``: the iterate a callback picked without
    ground truth, if any. ``history`` holds per-iteration lists (``loss``, ``data``, ``reg``,
    ``lr``, ``time`` and, with ``gt``, ``psnr``/``psnr_ema``; with ``ssim_every``, ``ssim`` at the
    iterations ``ssim_iter``).
    """

    image: Tensor
    ema: Tensor | None
    history: dict[str, list]
    iters_run: int
    seconds: float
    backtracks: int = 0
    best: Tensor | None = None
    best_iter: int | None = None
    selected: Tensor | None = None
    selected_iter: int | None = None

    @property
    def output(self) -> Tensor:
        """The image to deliver: a callback's selection, else the EMA, else the last iterate."""
        if self.selected is not None:
            return self.selected
        return self.ema if self.ema is not None else self.image


class Callback:
    """Hooks into :func:`fit`; override what you need."""

    def on_fit_start(self, state: FitState) -> None: ...

    def on_step_end(self, state: FitState) -> None: ...

    def on_backtrack(self, state: FitState) -> None: ...

    def on_fit_end(self, state: FitState) -> None: ...

    def state_dict(self) -> dict | None:
        """What a checkpoint must keep for a resumed run to behave as an uninterrupted one (None: nothing)."""
        return None

    def load_state_dict(self, state: dict) -> None: ...


class FitInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`fit`: the fit stopped cleanly after the current step. ``result`` holds what
    was reached (its ``output`` is the image to save); ``checkpoint`` the file written, if any."""

    def __init__(self, result: "FitResult", checkpoint: str | None):
        super().__init__("interrupted")
        self.result, self.checkpoint = result, checkpoint


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` → CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    d = torch.device(device)
    if d.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu or auto")
    return d


def set_deterministic(on: bool = True) -> None:
    """Bit-reproducible runs on CUDA as well: PyTorch's deterministic algorithms (an operation without
    one then raises instead of silently varying), no cuDNN autotuning, a fixed cuBLAS workspace.
    On CPU deepprior's fits are already deterministic for a given seed and thread count."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.benchmark = not on
    torch.backends.cudnn.deterministic = on


def _loss_fn(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    if name == "mse":
        return lambda a, b: torch.mean(torch.abs(a - b) ** 2) if a.is_complex() else torch.mean((a - b) ** 2)
    return lambda a, b: torch.mean(torch.abs(a - b))


def _snapshot(param: nn.Module, opt, sched, ema):
    return (copy.deepcopy(param.state_dict()), copy.deepcopy(opt.state_dict()),
            None if sched is None else copy.deepcopy(sched.state_dict()), None if ema is None else ema.clone())


def _rng_states(param, order_gen: torch.Generator) -> dict:
    gen = getattr(param, "generator", None)
    gens = getattr(param, "generators", None)  # BatchedDIP: one noise generator per image
    state = gen.get_state() if isinstance(gen, torch.Generator) else None
    if gens is not None:
        state = [g.get_state() for g in gens]
    return {"torch": torch.get_rng_state(), "order": order_gen.get_state(), "param": state}


def _atomic_torch_save(obj, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)  # atomic: a kill at any moment leaves the old or the new file, never half of one
    finally:
        if tmp.exists():
            tmp.unlink()


def _fingerprint(cfg: FitConfig, param: nn.Module) -> dict:
    conf = {f.name: (list(v) if isinstance(v, tuple) else v) for f in fields(cfg) for v in [getattr(cfg, f.name)]}
    return {"config": conf, "shapes": [list(t.shape) for t in param.state_dict().values()]}


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`fit` — tensors and plain containers only
    (``torch.load(weights_only=True)``: nothing in the file is executed)."""
    from ..errors import InputError

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no checkpoint to resume from (write one with --checkpoint-every N)")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
        raise InputError(f"{p}: not a readable deepprior checkpoint ({type(e).__name__})") from None
    if not isinstance(ck, dict) or ck.get("format") != "deepprior-fit-1":
        raise InputError(f"{p}: not a deepprior checkpoint")
    return ck


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
    loss_fn = _loss_fn(cfg.loss)
    params = [p for p in param.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the parameterization has no trainable parameters")
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas))
    else:
        opt = torch.optim.LBFGS(params, lr=cfg.lr, max_iter=1, history_size=20, line_search_fn="strong_wolfe")
    sched = None
    if cfg.lr_schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, cfg.lr_step, cfg.lr_gamma)
    elif cfg.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.iters)

    hist: dict[str, list] = {k: [] for k in ("loss", "data", "reg", "lr", "time")}
    if gt is not None:
        hist["psnr"], hist["psnr_ema"] = [], []
        if cfg.ssim_every:
            hist["ssim_iter"], hist["ssim"] = [], []
    state = FitState(it=0, iters=cfg.iters, history=hist, param=param, optimizer=opt, gt=gt)
    for cb in callbacks:
        cb.on_fit_start(state)

    ema: Tensor | None = None
    best, best_iter, best_psnr = None, None, -math.inf
    good = _snapshot(param, opt, sched, ema) if cfg.backtrack else None
    last_check_loss = math.inf
    restores_since_good = 0
    t0 = time.perf_counter()
    out: dict[str, Tensor] = {}
    if checkpoint_every and checkpoint is None:
        raise ConfigError("checkpoint_every needs a checkpoint path")

    if cfg.channels_last:
        param.to(memory_format=torch.channels_last)
    # The compiled module shares param's tensors: checkpoints, snapshots and restores act on `param`.
    call = torch.compile(param) if cfg.compile else param
    amp = torch.autocast(y.device.type, dtype=torch.bfloat16, enabled=cfg.amp == "bf16")
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
        if idx is None:
            data = loss_fn(operator(x), y)
        else:
            data = loss_fn(operator.select(idx)(x), y[idx.to(y.device)])
        reg = cfg.reg_weight * regularizer(x) if regularizer is not None and cfg.reg_weight else x.new_zeros(())
        total = data + reg
        (total * n_independent if n_independent != 1 else total).backward()
        return x.detach(), data.detach(), reg.detach(), total

    def closure():
        x, data, reg, total = forward_backward()
        out.update(x=x, data=data, reg=reg, total=total.detach())
        return total

    n_items = getattr(param, "n_items", None)
    batched = cfg.batch is not None and n_items is not None and cfg.batch < n_items
    if cfg.batch is not None and not batched and n_items is None:
        raise ConfigError("batch is set but the parameterization has a single item; drop batch")
    order_gen = torch.Generator().manual_seed(cfg.batch_seed)
    it = 0
    fingerprint = _fingerprint(cfg, param)

    def snapshot_all() -> dict:
        return {"format": "deepprior-fit-1", "fingerprint": fingerprint, "it": it,
                "param": param.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": None if sched is None else sched.state_dict(), "ema": ema, "hist": hist,
                "best": best, "best_iter": best_iter, "best_psnr": best_psnr, "good": good,
                "last_check_loss": last_check_loss, "restores_since_good": restores_since_good,
                "backtracks": state.backtracks, "selected": state.selected,
                "selected_iter": state.selected_iter, "rng": _rng_states(param, order_gen),
                "last_x": out.get("x"), "callbacks": [cb.state_dict() for cb in callbacks]}

    if resume is not None:
        ck = resume if isinstance(resume, dict) else load_checkpoint(resume)
        if ck["fingerprint"] != fingerprint:
            raise ConfigError("the checkpoint belongs to a different run (other settings or network); "
                              "resume with the same command and options")
        dev = y.device
        mv = lambda v: v.to(dev) if torch.is_tensor(v) else v  # noqa: E731
        param.load_state_dict(ck["param"])
        opt.load_state_dict(ck["optimizer"])
        if sched is not None:
            sched.load_state_dict(ck["scheduler"])
        ema, best, best_iter, best_psnr = mv(ck["ema"]), mv(ck["best"]), ck["best_iter"], ck["best_psnr"]
        good, last_check_loss, restores_since_good = ck["good"], ck["last_check_loss"], ck["restores_since_good"]
        if good is not None:
            good = (*good[:3], mv(good[3]))
        hist.clear()
        hist.update(ck["hist"])
        state.backtracks, state.selected, state.selected_iter = ck["backtracks"], mv(ck["selected"]), ck["selected_iter"]
        torch.set_rng_state(ck["rng"]["torch"])
        order_gen.set_state(ck["rng"]["order"])
        if isinstance(ck["rng"]["param"], list):
            for g, st in zip(param.generators, ck["rng"]["param"]):
                g.set_state(st)
        elif ck["rng"]["param"] is not None:
            param.generator.set_state(ck["rng"]["param"])
        for cb, cs in zip(callbacks, ck["callbacks"]):
            if cs is not None:
                cb.load_state_dict({k: mv(v) for k, v in cs.items()} if isinstance(cs, dict) else cs)
        if ck["last_x"] is not None:
            out["x"] = mv(ck["last_x"])
        it = ck["it"]
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
        for idx in torch.randperm(n_items, generator=order_gen).split(cfg.batch):
            idx = idx.sort().values
            xb, data, reg, _ = forward_backward(idx)
            if not (torch.isfinite(data) and torch.isfinite(reg)):
                x_all, data_sum, reg_sum = None, math.nan, math.nan
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
        return FitResult(image=out["x"], ema=ema, history=hist, iters_run=it, seconds=time.perf_counter() - t0,
                         backtracks=state.backtracks, best=best, best_iter=best_iter, selected=state.selected,
                         selected_iter=state.selected_iter)

    try:
        while it < cfg.iters:
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
                if total > last_check_loss * 10 ** (cfg.backtrack_db / 10):
                    diverged = True
                else:
                    good = _snapshot(param, opt, sched, ema)
                    last_check_loss = total
                    restores_since_good = 0
            if diverged:
                if not cfg.backtrack:
                    raise DivergenceError(f"loss became {total} at iteration {it}; enable backtracking or lower the learning rate")
                state.backtracks += 1
                if state.backtracks > cfg.max_backtracks:
                    raise DivergenceError(
                        f"the fit diverged {state.backtracks - 1} times (last at iteration {it}); lower the learning rate")
                p_sd, o_sd, s_sd, e = copy.deepcopy(good)
                param.load_state_dict(p_sd)
                opt.load_state_dict(o_sd)
                if sched is not None and s_sd is not None:
                    sched.load_state_dict(s_sd)
                restores_since_good += 1
                for g in opt.param_groups:
                    g["lr"] *= cfg.backtrack_lr_factor ** restores_since_good
                ema = e
                for cb in callbacks:
                    cb.on_backtrack(state)
                continue  # redo this iteration from the restored state; the bad output is not recorded
            if sched is not None:
                sched.step()

            x = out["x"]
            if cfg.ema is not None:
                wt = min(cfg.ema, (1 + it) / (10 + it)) if cfg.ema_warmup else cfg.ema
                ema = x.clone() if ema is None else ema.mul_(wt).add_(x, alpha=1 - wt)
            hist["loss"].append(total)
            hist["data"].append(float(out["data"]))
            hist["reg"].append(float(out["reg"]))
            hist["lr"].append(opt.param_groups[0]["lr"])
            hist["time"].append(time.perf_counter() - t0)
            if gt is not None:
                p = psnr(x, gt)
                hist["psnr"].append(p)
                hist["psnr_ema"].append(psnr(ema, gt) if ema is not None else p)
                if p > best_psnr:
                    best_psnr, best, best_iter = p, x.clone(), it
                if cfg.ssim_every and (it + 1) % cfg.ssim_every == 0:
                    hist["ssim_iter"].append(it)
                    hist["ssim"].append(ssim(ema if ema is not None else x, gt))

            state.it, state.x, state.ema, state.loss = it, x, ema, total
            state.elapsed = hist["time"][-1]
            for cb in callbacks:
                cb.on_step_end(state)
            it += 1
            if checkpoint_every and it % checkpoint_every == 0:
                _atomic_torch_save(snapshot_all(), checkpoint)
            if interrupted["flag"]:
                if checkpoint is not None:
                    _atomic_torch_save(snapshot_all(), checkpoint)
                raise FitInterrupted(result_now(), None if checkpoint is None else str(checkpoint))
            if state.stop:
                break

    finally:
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)

    for cb in callbacks:
        cb.on_fit_end(state)
    return result_now()
