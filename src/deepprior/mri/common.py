"""Pieces every MRI method shares: the density-weighted operator, the zero-filled image, the k-space
scaling of the network methods, the k-space hold-out split, the oracle tracker and the image an
interrupted fit leaves behind. The methods import these; nothing here imports a method.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import Tensor

from ..fit import Callback, FitInterrupted, FitState
from ..fit.stopping import holdout_split
from .data import MRIData
from .metrics import mri_psnr
from .operators import CartesianSENSE


def radial_weights(data: MRIData, dcf: bool = True) -> Tensor:
    """Per-sample weights ``(T, K)`` of radial data: Pipe's density compensation, or ones."""
    from .nufft import pipe_dcf

    t, _, k = data.kspace.shape
    w = pipe_dcf(data.traj.cpu(), data.shape) if dcf else torch.ones(t, k)
    return w.to(data.kspace.device)


def weighted(data: MRIData, dcf: bool = True):
    """Operator and data for iterative solvers: density-compensated (``√w``) for radial data, as they are
    for Cartesian data. Returns ``(op, y)`` with ``op`` acting on complex images ``(T, H, W)``.

    >>> import torch
    >>> from deepprior.mri.data import simulate
    >>> d = simulate(torch.rand(2, 16, 16), coils=2, accel=2, center=4, seed=0)
    >>> op, y = weighted(d)
    >>> op.adjoint(y).shape
    torch.Size([2, 16, 16])
    """
    op = data.operator
    if not data.radial:
        return op, data.kspace
    from .nufft import Weighted

    wop = Weighted(op, radial_weights(data, dcf))
    return wop, wop.sw * data.kspace


def zero_filled(data: MRIData) -> Tensor:
    """``Aᴴ y`` (radial: density-compensated): the zero-filled, coil-combined image ``(T, H, W)``."""
    op, y = weighted(data)
    return op.adjoint(y)


def support(data: MRIData) -> Tensor:
    """``(H, W)`` 1 where the coil maps see anything (Σ|S|² > 0), else 0; all ones without maps. Outside it
    (ESPIRiT's crop) the SENSE operator has a null space that a generator would paint freely, so every
    network method delivers 0 there, as CG-SENSE, TV and L1-wavelet do.

    >>> import torch
    >>> from deepprior.mri.data import simulate
    >>> support(simulate(torch.rand(1, 8, 8), coils=2, accel=2, center=4, seed=0)).shape
    torch.Size([8, 8])
    """
    if data.maps is None:
        return torch.ones(data.shape, device=data.kspace.device)
    return (data.maps.abs().square().sum(0) > 0).to(torch.float32)


def data_consistency(x: Tensor, op, y: Tensor, maps: Tensor | None) -> Tensor:
    """Put the measured Cartesian samples back into every coil's k-space of the image ``x`` ``(T, H, W)`` and
    recombine the coils: ``x + Aᴴ(y − Ax) / Σ|S|²`` (0 where the maps are). ``op`` is the Cartesian SENSE
    operator of the samples ``y`` to keep (e.g. only the training samples when some are held out).

    >>> import torch
    >>> from deepprior.mri.data import simulate
    >>> d = simulate(torch.rand(1, 16, 16), coils=1, accel=2, center=4, seed=0)
    >>> x = data_consistency(torch.zeros(1, 16, 16, dtype=torch.complex64), d.operator, d.kspace, None)
    >>> bool(torch.allclose(d.operator(x), d.kspace, atol=1e-6))
    True
    """
    if maps is None:
        return x + op.adjoint(y - op(x))
    norm = maps.abs().square().sum(0)
    return torch.where(norm > 0, x + op.adjoint(y - op(x)) / norm.clamp(min=1e-12), torch.zeros_like(x))


def kspace_scale(untrained: Tensor, data: MRIData) -> float:
    """ConvDecoder's scaling: the factor that brings the k-space to the untrained network's output scale,
    ``‖f(z)‖ / ‖zero-filled‖`` (density-compensated for radial data, whose plain adjoint overweights the
    centre). The network fits ``scale · y`` and its output is divided by ``scale``."""
    return float(torch.linalg.vector_norm(untrained) / torch.linalg.vector_norm(zero_filled(data)))


def split_kspace(data: MRIData, fraction: float, seed: int = 0, dcf: bool = False, per_frame: bool = False):
    """Hold out a seeded ``fraction`` of the acquired k-space samples for self-validation.

    Returns ``(train_op, y_train, val_op, y_val, count)``: complex-image operators on the training
    and held-out samples, their data, and the number of held-out samples. Cartesian: points of the
    mask; radial: samples of the trajectory (0/1 sample weights; ``dcf`` density-compensates both, so
    that the held-out loss weighs all spatial frequencies as the image error does, not mostly the
    over-sampled centre). ``per_frame``: each frame's samples are split as if it were alone (the same seed per
    frame), so that a frame's split does not depend on the others (independent per-frame fits).

    >>> import torch
    >>> from deepprior.mri.data import simulate
    >>> d = simulate(torch.rand(2, 16, 16), coils=2, accel=2, center=4, seed=0)
    >>> *_, count = split_kspace(d, 0.1)
    >>> count == round(0.1 * float(d.mask.sum())) * 2  # held-out points × coils
    True
    """
    if data.radial:
        from .nufft import Weighted

        op = data.operator
        t, c, k = data.kspace.shape
        tr, va = _holdout(torch.ones(t, k), fraction, seed, per_frame)
        w = radial_weights(data, dcf)
        tr, va = tr.to(w.device), va.to(w.device)
        tr_op, va_op = Weighted(op, tr * w), Weighted(op, va * w)
        return tr_op, tr_op.sw * data.kspace, va_op, va_op.sw * data.kspace, float(va.sum()) * c
    tr, va = _holdout(data.mask.cpu(), fraction, seed, per_frame)
    tr, va = tr.to(data.mask.device), va.to(data.mask.device)
    tr_op, va_op = CartesianSENSE(tr, data.maps), CartesianSENSE(va, data.maps)
    return tr_op, data.kspace * tr[:, None], va_op, data.kspace * va[:, None], float(va.sum()) * data.kspace.shape[1]


def _holdout(sampled: Tensor, fraction: float, seed: int, per_frame: bool) -> tuple[Tensor, Tensor]:
    if not per_frame:
        return holdout_split(sampled, fraction, seed=seed)
    parts = [holdout_split(f, fraction, seed=seed) for f in sampled]
    return torch.stack([tr for tr, _ in parts]), torch.stack([va for _, va in parts])


class MRIOracle(Callback):
    """Diagnostic only (never steers the fit): magnitude PSNR of the iterate (and its EMA) against a
    reference every ``every`` iterations, as :func:`~deepprior.mri.metrics.mri_metrics` computes it
    (data range = max |reference|). ``to_image`` maps the fit's output to the complex series."""

    def __init__(self, ref: Tensor, to_image, every: int = 1):
        self.ref, self.to_image, self.every = ref.detach(), to_image, every
        self.iters: list[int] = []
        self.psnr: list[float] = []
        self.psnr_ema: list[float] = []
        self.best_psnr, self.best_iter, self.best = -math.inf, None, None

    def _psnr(self, x: Tensor) -> float:
        return mri_psnr(self.to_image(x), self.ref)

    def on_step_end(self, state: FitState) -> None:
        if (state.it + 1) % self.every:
            return
        with torch.no_grad():
            p = self._psnr(state.x)
            pe = self._psnr(state.ema) if state.ema is not None else p
        self.iters.append(state.it)
        self.psnr.append(p)
        self.psnr_ema.append(pe)
        delivered = pe if state.ema is not None else p
        if delivered > self.best_psnr:
            self.best_psnr, self.best_iter = delivered, state.it
            self.best = (state.ema if state.ema is not None else state.x).clone()


@contextmanager
def image_on_interrupt(to_image):
    """Ctrl-C in a fit raises :class:`~deepprior.fit.FitInterrupted`; give it ``image``, the complex series
    ``(T, H, W)`` reached so far (``to_image`` of the fit's output), so that the caller can save it."""
    try:
        yield
    except FitInterrupted as e:
        if getattr(e, "image", None) is None:
            with torch.no_grad():
                e.image = to_image(e.result.output).detach().cpu()
        raise


def check_network_memory(param, data: MRIData, device, *, what: str, frames_per_step: int | None = None) -> None:
    """Refuse, before it starts, a network fit of ``data`` that cannot fit in ``device``'s free memory (a batch
    worker must not be killed by the OOM killer half-way), naming coil compression when it would fit.

    Counted: the network's activations for the frames one step renders (kept for backward, with gradients), its
    weights with Adam's state, the k-space, coil maps and the per-coil images the operator makes (data, forward,
    residual and their gradients)."""
    from ..resources import check_memory, estimate_fit_bytes

    t, (h, w) = data.frames, data.shape
    per_step = min(frames_per_step or t, t)
    network = estimate_fit_bytes(param, t * 2 * h * w * 4, extra_images=6, rendered=per_step / t)
    coils = data.kspace.shape[1]

    def need(c: int) -> int:
        ksp = data.kspace[:, :1].numel() * 8 * c
        coil_images = 4 * per_step * c * h * w * 8
        maps = 0 if data.maps is None else h * w * 8 * c
        return network + 3 * ksp + coil_images + maps

    alts = lambda: [(f"--compress {c} (virtual coils)", need(c)) for c in (8, 4) if c < coils]  # noqa: E731
    check_memory(need(coils), torch.device(device), what=f"{what} ({t}×{h}×{w}, {coils} coils)", alternatives=alts)
