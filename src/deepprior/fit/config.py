"""The fit loop's types: its settings (:class:`FitConfig`), what callbacks see (:class:`FitState`), what it
returns (:class:`FitResult`), the callback interface and the device helpers."""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field, fields

import torch
from torch import Tensor

from ..errors import ConfigError
from ..params import Parameterization

LOSSES = ("mse", "l1")
AMP_MODES = (None, "off", "bf16", "auto")  # None = "off"
# Channels-last (NHWC) on a CPU pays where the vectors are wide enough for it. With AVX-512 (bench/layout_speed.py,
# docs/benchmarks.md "Memory layout on a CPU") every preset's network ran 1.03-1.25x faster per step in it, a skip
# net 8 channels wide 1.2x slower and 12 wide level; on an earlier AMD EPYC with AVX2 only, `denoise` and
# `denoise-fast` ran 0.73-0.81x as fast in it (bench/speed.py). So: AVX-512 and networks 16 channels wide or more.
NHWC_MIN_CHANNELS = 16


def native_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` computes bfloat16 convolutions faster than float32: a CUDA GPU that supports bf16, a CPU
    with AMX tiles, or an AMD CPU with AVX512-BF16. Decided by the instruction set and the vendor alone, so that the
    same command on the same machine always computes in the same precision and gives the same bytes. A timed probe
    of two convolutions decided until it was found to flip under load: on a CPU where it reads 0.6–0.75, four and
    six processes sharing 2 cores made it read ≥ 1.1 (take bf16) in 1 of 48 and 1 of 90 probes (a median of paired
    ratios: 2 of 90) — enough for one item of a Ray batch to compute in another precision than the rest. With AMX a
    TDDIP step was 1.8× faster in bf16; with AVX512-BF16 alone an Intel CPU made a TDDIP step 1.3–1.4× and a ``fast``
    step 1.02–1.05× *slower*, an AMD EPYC a ``fast`` step 1.24× faster (``bench/amp_speed.py``). Without bf16
    instructions bf16 is emulated, and slower still. ``amp="bf16"`` / ``"off"`` (``--amp``) overrides the choice.

    >>> isinstance(native_bf16("cpu"), bool)
    True
    """
    d = torch.device(device)
    if d.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if d.type == "cpu":
        # torch exposes these probes only under private names; a torch without them counts as "no".
        amx, avx_bf16 = (getattr(torch.cpu, n, None) for n in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
        if amx is not None and amx():
            return True
        return avx_bf16 is not None and bool(avx_bf16()) and cpu_vendor() == "AuthenticAMD"
    return False


@functools.lru_cache(maxsize=None)
def cpu_vendor() -> str:
    """The CPU's vendor as Linux reports it (``GenuineIntel``, ``AuthenticAMD``), or "" where it cannot tell.

    >>> isinstance(cpu_vendor(), str)
    True
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


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
    lr_schedule: str | None = None  # None | "step" | "cosine" | "anneal"
    lr_step: int = 2000
    lr_gamma: float = 0.5
    # "anneal": constant, then a half cosine to 1 % over the last anneal_frac of the budget — the iters, or
    # time_budget seconds if those run out first (:class:`~deepprior.fit.schedule.BudgetAnneal`)
    anneal_frac: float = 0.25
    time_budget: float | None = None
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
    # None/"off" | "bf16" | "auto": autocast the forward pass to bfloat16 (the loss stays float32); "auto" only where
    # bf16 is the faster (:func:`native_bf16`: a CUDA GPU with bf16, a CPU with AMX, an AMD CPU with AVX512-BF16).
    amp: str | None = None
    # NHWC memory layout for the generator. None: on an AVX-512 CPU for networks NHWC_MIN_CHANNELS wide or more (there
    # every preset's network ran 1.03-1.25x faster per step in it: bench/layout_speed.py); not on a GPU (channels_last_on).
    channels_last: bool | None = None

    def __post_init__(self):
        if not (isinstance(self.iters, int) and self.iters >= 1):
            raise ConfigError(f"iters must be a positive integer, got {self.iters}")
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {self.lr}")
        if self.optimizer not in ("adam", "lbfgs"):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose adam or lbfgs")
        if self.lr_schedule not in (None, "step", "cosine", "anneal"):
            raise ConfigError(f"unknown lr schedule {self.lr_schedule!r}; choose step, cosine, anneal or none")
        if not 0 < self.anneal_frac <= 1:
            raise ConfigError(f"anneal_frac must be in (0, 1], got {self.anneal_frac}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ConfigError(f"time_budget must be > 0 seconds or None, got {self.time_budget}")
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
        if self.amp not in AMP_MODES:
            raise ConfigError(f"amp must be 'off', 'bf16' or 'auto', got {self.amp!r} (bf16 needs no loss scaling; "
                              "fp16 would)")
        if self.channels_last not in (None, True, False):
            raise ConfigError(f"channels_last must be true, false or null (channels-last on a CPU), got {self.channels_last!r}")
        if self.batch is not None and self.optimizer == "lbfgs":
            raise ConfigError("mini-batches of frames need a stochastic optimizer; use adam with batch, or no batch")

    def bf16_on(self, device: str | torch.device) -> bool:
        """Whether the forward pass runs in bfloat16 on ``device``.

        >>> FitConfig(amp=None).bf16_on("cpu"), FitConfig(amp="bf16").bf16_on("cpu")
        (False, True)
        """
        return self.amp == "bf16" or (self.amp == "auto" and native_bf16(device))

    def channels_last_on(self, device: str | torch.device, param: torch.nn.Module | None = None) -> bool:
        """Whether the generator runs in channels-last layout on ``device``: as asked, or (None) on a CPU with AVX-512
        where its widest convolution has at least :data:`NHWC_MIN_CHANNELS` output channels. Never for a
        parameterization holding 5-D tensors (:class:`~deepprior.params.BatchedDIP` stacks its weights), which that
        layout does not describe.

        >>> net = torch.nn.Conv2d(3, 32, 3)
        >>> FitConfig(channels_last=True).channels_last_on("cpu", net), FitConfig(channels_last=False).channels_last_on("cpu", net)
        (True, False)
        >>> FitConfig().channels_last_on("cpu", torch.nn.Conv2d(3, 8, 3))  # too narrow to gain
        False
        """
        if param is not None and any(t.dim() > 4 for t in param.state_dict().values()):
            return False
        if self.channels_last is not None:
            return self.channels_last
        widest = max((m.out_channels for m in (param.modules() if param is not None else ())
                      if isinstance(m, torch.nn.Conv2d)), default=0)
        isa = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()  # not in every torch build
        return torch.device(device).type == "cpu" and isa == "AVX512" and widest >= NHWC_MIN_CHANNELS

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
    bf16: bool = False  # the network runs under bfloat16 autocast (FitConfig.amp on this device)
    time_limit: float | None = None  # seconds the fit may run (FitConfig.time_budget), for what announces it


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
