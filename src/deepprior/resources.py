"""Memory guard: estimate what a fit needs before it starts, and refuse with a setting that fits.

The estimate runs the parameterization once on PyTorch's ``meta`` device (shapes only, nothing is
allocated) and adds up every layer's output — what autograd keeps for the backward pass — plus the
parameters with their gradients and Adam's two moments, and the fit's images (EMA, best iterate,
stopping windows). Measured against the peak RSS of real fits it errs on the high side (see
``tests/test_reliability.py`` and ``docs/reliability.md``).
"""

from __future__ import annotations

import copy
import os

import torch
from torch import nn

from .errors import ResourceError

GIB = 1024**3


def _copy(param: nn.Module) -> nn.Module:
    """A deep copy of ``param`` without its random generator (a torch.Generator neither deep-copies nor lives on
    meta), so that measuring never touches the fit's weights, statistics or random stream."""
    gen = getattr(param, "generator", None)
    if gen is not None:
        param.generator = None
    try:
        return copy.deepcopy(param)
    finally:
        if gen is not None:
            param.generator = gen


def activation_bytes(param: nn.Module) -> int:
    """Bytes of all leaf-module outputs of one forward pass, measured on the meta device."""
    meta = _copy(param).to("meta")
    total = 0

    def hook(_m, _i, out):
        nonlocal total
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if torch.is_tensor(t):
                total += t.numel() * t.element_size()

    hooks = [m.register_forward_hook(hook) for m in meta.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            meta(perturb=False)
    finally:
        for h in hooks:
            h.remove()
    return total


# What a fit allocates whatever its size: kernel workspaces and primitive caches, allocator slack. Measured
# peaks of the same 256² denoise-fast fit vary by ±60 MiB from run to run (0.41–0.53 GiB), which once went
# 2 % over an estimate that had no such allowance.
RUNTIME_OVERHEAD = 128 * 2**20


def estimate_fit_bytes(param: nn.Module, image_bytes: int, extra_images: int = 4, rendered: float = 1.0) -> int:
    """Peak memory of a fit: activations (kept for backward, as much again for their gradients, and a
    quarter more for what functional ops inside ``forward`` — concatenations, resizes — allocate
    outside any module), parameters + gradients + Adam moments, ``extra_images`` copies of the
    output (EMA, best, …) and a fixed :data:`RUNTIME_OVERHEAD`. ``rendered``: the fraction of the output one
    step renders (a dynamic fit of B of T frames per step: B/T)."""
    return int(2.5 * rendered * activation_bytes(param) + extra_images * image_bytes + fixed_fit_bytes(param))


def fixed_fit_bytes(param: nn.Module) -> int:
    """The part of :func:`estimate_fit_bytes` that does not grow with the image: parameters, their gradients
    and Adam's two moments, and the runtime overhead."""
    return 4 * sum(p.numel() * p.element_size() for p in param.parameters()) + RUNTIME_OVERHEAD


def available_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` (CUDA: free device memory; CPU: MemAvailable or the cgroup limit)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        return None
    for cg in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(cg) as f:
                v = f.read().strip()
            if v.isdigit() and int(v) < (avail or 1 << 62):
                avail = int(v)
        except OSError:
            continue
    return avail


def check_memory(need: int, device: torch.device, *, what: str, alternatives=(), side: int | None = None,
                 at_side=None, margin: float = 0.9, available: int | None = None) -> None:
    """Raise :class:`ResourceError` when ``need`` bytes exceed ``margin`` × the free memory, naming the
    first of ``alternatives`` — ``(label, bytes)`` pairs, or a callable returning them, evaluated only
    when needed — that fits, or else the largest square crop (a multiple of 16 up to ``side``) whose
    estimate ``at_side(s)`` fits. (Weights, optimizer state, the runtime overhead and the networks' minimum
    code size do not shrink with the image, so the crop is found by evaluating the estimate, not by scaling.)"""
    if os.environ.get("DEEPPRIOR_NO_MEMORY_GUARD"):
        return
    avail = available if available is not None else available_bytes(device)
    if avail is None or need <= margin * avail:
        return
    if callable(alternatives):
        alternatives = alternatives()
    msg = f"{what} needs about {need / GIB:.1f} GiB but {avail / GIB:.1f} GiB are free on {device.type}"
    fits = [label for label, b in alternatives if b <= margin * avail]
    if fits:
        msg += f"; {fits[0]} fits (about {dict(alternatives)[fits[0]] / GIB:.1f} GiB)"
    elif side and at_side is not None:
        lo, hi = 0, side // 16  # the largest k with at_side(16 k) within budget (the estimate grows with k)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if at_side(16 * mid) <= margin * avail else (lo, mid - 1)
        msg += (f"; crop or downscale the image to about {16 * lo}×{16 * lo} pixels" if lo else
                "; not even a 16×16 crop fits: free some memory")
    raise ResourceError(msg + " (set DEEPPRIOR_NO_MEMORY_GUARD=1 to try anyway)")


def step_seconds(param: nn.Module, operator, y: torch.Tensor, bf16: bool = False) -> float:
    """Seconds of one optimizer step (forward, data term, backward) of ``param`` on this device, timed on a copy
    so that the fit's weights, BatchNorm statistics and random streams are untouched; the faster of two steps
    when the first is short (its one-off kernel set-up would dominate). ``bf16``: the forward pass autocast to
    bfloat16, as the fit runs it."""
    import time

    twin = _copy(param)
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        with torch.autocast(y.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = twin(perturb=False)
        if out.dtype == torch.bfloat16:
            out = out.float()
        (operator(out) - y).abs().square().mean().backward()
        if out.device.type == "cuda":
            torch.cuda.synchronize(out.device)
        best = min(best, time.perf_counter() - t)
        if best > 1.0:
            break
    return best
