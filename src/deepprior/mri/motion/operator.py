"""The multi-shot motion forward model ``y = Σ_s M_s F S T_{θ_s} x`` and the joint (image, motion)
parameterization the fit loop optimises.

Each shot s sees the object moved rigidly by θ_s = (dx, dy, rotation) (:func:`~.rigid.rigid`), then the
scanner-fixed coil maps S, the Fourier transform F and the shot's own samples M_s. For a fixed θ the
model is linear in x (:class:`MotionSENSE` is a :class:`LinearOperator` with its exact adjoint, so CG-SENSE
runs through it); it is differentiable in θ, so a generator and the motion can be fitted together.
Shot 0 is the reference pose (θ_0 = 0): without it, moving the image and every shot's pose together
would not change the data.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...errors import InputError
from ...operators.base import LinearOperator
from ...params import Parameterization
from ..operators import CartesianSENSE
from .rigid import check_motion, rigid, rigid_adjoint


class RigidMotion(nn.Module):
    """Per-shot rigid motion ``(S, 3)`` = (dx px, dy px, rotation °), shot 0 held at zero (the reference pose).
    ``init`` (S, 3) starts it elsewhere (its row 0 is ignored).

    >>> RigidMotion(4)().shape
    torch.Size([4, 3])
    """

    def __init__(self, shots: int, init: Tensor | None = None):
        super().__init__()
        if shots < 1:
            raise InputError(f"motion needs at least one shot, got {shots}")
        start = torch.zeros(shots, 3) if init is None else check_motion(init, shots).clone()
        self.shots = shots
        self.free = nn.Parameter(start[1:].float())

    def forward(self) -> Tensor:
        return torch.cat([self.free.new_zeros(1, 3), self.free])


class MotionSENSE(LinearOperator):
    """``x`` (H, W) or (1, H, W) complex → k-space (1, C, H, W) (Cartesian) or (1, C, K) (radial): every shot's
    samples of its own moved view of ``x``. ``shots``: Cartesian ``(H, W)`` labels (−1 = not sampled), radial
    ``(K,)`` labels in contiguous, equal groups (the trajectory ``traj`` (K, 2) ordered by shot). ``motion`` is a
    :class:`RigidMotion` (read at every call, so a fit can move it) or a fixed ``(S, 3)`` tensor.

    >>> import torch
    >>> labels = torch.arange(8).remainder(2).expand(8, 8)  # 2 interleaved shots of columns
    >>> A = MotionSENSE(labels, None, torch.tensor([[0.0, 0, 0], [1.0, 0, 5]]))
    >>> A(torch.randn(8, 8, dtype=torch.complex64)).shape
    torch.Size([1, 1, 8, 8])
    """

    def __init__(self, shots: Tensor, maps: Tensor | None, motion, traj: Tensor | None = None,
                 shape: tuple[int, int] | None = None):
        super().__init__()
        labels = torch.as_tensor(shots).long()
        self.motion = motion if isinstance(motion, nn.Module) else None
        if self.motion is None:
            self.register_buffer("fixed", check_motion(motion))
        # the motion says how many shots there are: a subset of the samples (held-out ones) may miss a shot
        n = self.motion.shots if self.motion is not None else self.fixed.shape[0]
        if labels.numel() and int(labels.max()) >= n:
            raise InputError(f"the samples are labelled with {int(labels.max()) + 1} shots but the motion has {n}")
        self.n_shots = n
        self.radial = traj is not None
        if self.radial:
            from ..nufft import RadialSENSE

            k = labels.numel()
            if k % n or not torch.equal(labels, torch.arange(n).repeat_interleave(k // n).to(labels)):
                raise InputError("radial shots must be contiguous, equal groups of samples (shot 0 first)")
            self.inner = RadialSENSE(traj.reshape(n, k // n, 2), maps, shape=shape)
        else:
            masks = torch.stack([(labels == s) for s in range(n)]).float()
            self.inner = CartesianSENSE(masks, maps)

    def values(self) -> Tensor:
        return self.motion() if self.motion is not None else self.fixed

    def forward(self, x: Tensor) -> Tensor:
        k = self.inner(rigid(x, self.values()))  # (S, C, ...) — zero off each shot's samples (Cartesian)
        if self.radial:
            return k.permute(1, 0, 2).reshape(1, k.shape[1], -1)
        return k.sum(0, keepdim=True)

    def adjoint(self, y: Tensor, in_shape=None) -> Tensor:
        motion = self.values().detach()
        if self.radial:
            s = self.n_shots
            ys = y[0].reshape(y.shape[1], s, -1).permute(1, 0, 2)
        else:
            ys = y.expand(self.n_shots, *y.shape[1:])  # the masks inside pick each shot's samples
        return rigid_adjoint(self.inner.adjoint(ys), motion)[None]

    def output_shape(self, in_shape):
        c = 1 if self.inner.maps is None else self.inner.maps.shape[0]
        return (1, c, *in_shape[-2:]) if not self.radial else (1, c, self.inner.traj.shape[0] * self.inner.traj.shape[1])


class WithMotion(Parameterization):
    """An image parameterization (a generator, or pixels) and a :class:`RigidMotion` fitted together: the
    output is the image's, the motion moves the operator. ``motion_lr`` is the motion's learning rate as a
    multiple of the image's (the loop builds one Adam group each)."""

    def __init__(self, image: Parameterization, motion: RigidMotion, motion_lr: float = 1.0):
        super().__init__()
        self.image, self.motion, self.motion_lr = image, motion, float(motion_lr)
        self.out_hw = getattr(image, "out_hw", None)

    def param_groups(self):
        return [(list(self.image.parameters()), 1.0), (list(self.motion.parameters()), self.motion_lr)]

    def forward(self, perturb: bool = True) -> Tensor:
        return self.image(perturb=perturb)
