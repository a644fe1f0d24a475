"""One-call API: ``deepprior.denoise(img)`` and friends.

Images are NumPy arrays ``(H, W)`` or ``(H, W, C)`` (uint8, uint16, or floats in [0, 1]) or
tensors; results are :class:`~deepprior.tasks.Restoration` objects whose ``.image`` is a float
``(H, W, C)`` array in [0, 1].
"""

from __future__ import annotations

from .fit import ProgressBar
from .tasks import (Restoration, deblur_problem, denoise_problem, flash_problem, inpaint_problem, jpeg_problem, solve,
                    superres_problem, to_tensor)


def _run(problem, *, method, preset, seed, device, progress, callbacks, **kw) -> Restoration:
    cbs = list(callbacks)
    if progress:
        cbs.append(ProgressBar(problem.task))
    return solve(problem, method=method, preset=preset, seed=seed, device=device, callbacks=cbs, **kw)


def _gt(gt):
    return None if gt is None else to_tensor(gt, "ground truth")


def denoise(img, sigma: float | None = None, *, method: str = "dip", preset: str | None = None, gt=None,
            seed: int = 0, device: str = "auto", progress: bool = False, callbacks=(), **overrides) -> Restoration:
    """Denoise ``img``. ``sigma`` (noise std on the [0, 1] scale, e.g. 25/255) picks the recipe
    (σ ≥ 37.5/255 → the σ = 50 preset) and sets the weight of the classical methods.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> noisy = np.clip(0.5 + 0.1 * rng.standard_normal((16, 16)), 0, 1)
    >>> r = denoise(noisy, sigma=0.1, iters=5, device="cpu")
    >>> r.image.shape
    (16, 16, 1)
    """
    p = denoise_problem(to_tensor(img), _gt(gt), sigma=sigma)
    return _run(p, method=method, preset=preset, seed=seed, device=device, progress=progress, callbacks=callbacks,
                **overrides)


def inpaint(img, mask, *, method: str = "dip", preset: str | None = None, gt=None, seed: int = 0,
            device: str = "auto", progress: bool = False, callbacks=(), **overrides) -> Restoration:
    """Fill the pixels where ``mask`` is 0 (``mask``: (H, W), 1 = known). Default recipe: the
    reference text-inpainting one; ``preset='inpaint-holes'`` for large holes,
    ``'restoration'`` for random pixel masks."""
    p = inpaint_problem(to_tensor(img), mask, _gt(gt))
    return _run(p, method=method, preset=preset, seed=seed, device=device, progress=progress, callbacks=callbacks,
                **overrides)


def super_resolve(low, factor: int = 4, *, kernel: str = "lanczos2", method: str = "dip", preset: str | None = None,
                  gt=None, seed: int = 0, device: str = "auto", progress: bool = False, callbacks=(),
                  **overrides) -> Restoration:
    """Upscale ``low`` by ``factor`` (the result is ``factor`` times larger)."""
    p = superres_problem(to_tensor(low), factor, _gt(gt), kernel=kernel)
    return _run(p, method=method, preset=preset, seed=seed, device=device, progress=progress, callbacks=callbacks,
                **overrides)


def deblur(img, kernel=None, *, sigma_blur: float | None = None, boundary: str = "reflect", method: str = "dip",
           preset: str | None = None, gt=None, seed: int = 0, device: str = "auto", progress: bool = False,
           callbacks=(), **overrides) -> Restoration:
    """Deblur ``img`` blurred by ``kernel`` (2-D array) or a Gaussian of std ``sigma_blur`` pixels."""
    p = deblur_problem(to_tensor(img), kernel, _gt(gt), sigma_blur=sigma_blur, boundary=boundary)
    return _run(p, method=method, preset=preset, seed=seed, device=device, progress=progress, callbacks=callbacks,
                **overrides)


def jpeg_restore(img, *, method: str = "dip", preset: str | None = None, gt=None, seed: int = 0,
                 device: str = "auto", progress: bool = False, callbacks=(), **overrides) -> Restoration:
    """Remove JPEG artifacts from a decoded JPEG image."""
    p = jpeg_problem(to_tensor(img), _gt(gt))
    return _run(p, method=method, preset=preset, seed=seed, device=device, progress=progress, callbacks=callbacks,
                **overrides)


def flash_no_flash(flash, noflash, *, preset: str | None = None, gt=None, seed: int = 0, device: str = "auto",
                   progress: bool = False, callbacks=(), **overrides) -> Restoration:
    """Reconstruct the no-flash photo with the flash photo as the network input."""
    p = flash_problem(to_tensor(flash, "flash image"), to_tensor(noflash, "no-flash image"), _gt(gt))
    return _run(p, method="dip", preset=preset, seed=seed, device=device, progress=progress, callbacks=callbacks,
                **overrides)
