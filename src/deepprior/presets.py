"""Presets are data: the reference DIP recipes (Ulyanov et al., CVPR 2018, and the notebooks
of the reference code) plus the classical baselines. Nothing here runs; ``deepprior.tasks``
reads these dictionaries.

Keys: ``net`` (name + options of :func:`deepprior.nets.build_net`), ``code`` (input code kind,
channels, scale; ``kind='image'`` feeds an image such as the flash photo), ``reg_noise_std``,
``fit`` (:class:`deepprior.fit.FitConfig` fields), ``stop`` (the default stopping rule and its patience;
absent = run all iterations). The reference recipes keep their fixed iteration counts (reproducing them
is their purpose; ``--stop`` opts in); the CPU presets ``denoise-fast`` and ``fast`` stop by ES-WMV
(measured in docs/early_stopping.md).
"""

from __future__ import annotations

from copy import deepcopy

from .errors import ConfigError

_SKIP_DENOISE = {"name": "skip", "channels_down": [128] * 5, "channels_up": [128] * 5, "channels_skip": [4] * 5,
                 "upsample_mode": "bilinear"}

PRESETS: dict[str, dict] = {
    # denoising.ipynb, F16 (σ = 25): skip 128×5 / 4×5 bilinear, 32-channel noise, EMA 0.99, backtracking.
    "denoise": {"net": _SKIP_DENOISE, "code": {"kind": "noise", "channels": 32, "scale": 0.1},
                "reg_noise_std": 1 / 30, "fit": {"iters": 3000, "lr": 0.01, "ema": 0.99, "backtrack": True}},
    # The same for σ = 50: more input jitter.
    "denoise-s50": {"net": _SKIP_DENOISE, "code": {"kind": "noise", "channels": 32, "scale": 0.1},
                    "reg_noise_std": 1 / 20, "fit": {"iters": 3000, "lr": 0.01, "ema": 0.99, "backtrack": True}},
    # Not a reference recipe: the denoising net at half width (4× fewer FLOPs), for the demo and
    # quick CPU runs. Measured against "denoise" in the issue note.
    "denoise-fast": {"net": {**_SKIP_DENOISE, "channels_down": [64] * 5, "channels_up": [64] * 5},
                     "code": {"kind": "noise", "channels": 32, "scale": 0.1},
                     "reg_noise_std": 1 / 30, "fit": {"iters": 1200, "lr": 0.01, "ema": 0.99, "backtrack": True},
                     # ES-WMV (W = 100) with the patience of bench/early_stopping.py's table
                     "stop": {"rule": "wmv", "patience": 500}},
    # Not a reference recipe: the fastest way to a DIP-quality denoise on a CPU (issue #7; docs/benchmarks.md).
    # A quarter of the reference width (14× fewer FLOPs), a tenth of the code jitter (the reference's 1/30
    # slows the fit ~2× in iterations; none at all costs 0.7 dB of peak), an EMA that warms up instead of
    # dragging the first outputs along, and ES-WMV on the outputs with a short patience to end the run.
    "fast": {"net": {**_SKIP_DENOISE, "channels_down": [32] * 5, "channels_up": [32] * 5},
             "code": {"kind": "noise", "channels": 32, "scale": 0.1},
             "reg_noise_std": 0.01, "fit": {"iters": 1500, "lr": 0.01, "ema": 0.99, "ema_warmup": True,
                                            "backtrack": True},
             "stop": {"rule": "wmv", "patience": 150}},
    # denoising.ipynb, snail.jpg: a lighter net, 3-channel code.
    "jpeg": {"net": {"name": "skip", "channels_down": [8, 16, 32, 64, 128], "channels_up": [8, 16, 32, 64, 128],
                     "channels_skip": [0, 0, 0, 4, 4], "upsample_mode": "bilinear"},
             "code": {"kind": "noise", "channels": 3, "scale": 0.1},
             "reg_noise_std": 1 / 30, "fit": {"iters": 2400, "lr": 0.01, "ema": 0.99, "backtrack": True}},
    # super-resolution.ipynb: the denoising net, Lanczos-2 downsampler.
    "sr4": {"net": _SKIP_DENOISE, "code": {"kind": "noise", "channels": 32, "scale": 0.1},
            "reg_noise_std": 0.03, "fit": {"iters": 2000, "lr": 0.01, "ema": None, "backtrack": True}},
    "sr8": {"net": _SKIP_DENOISE, "code": {"kind": "noise", "channels": 32, "scale": 0.1},
            "reg_noise_std": 0.05, "fit": {"iters": 4000, "lr": 0.01, "ema": None, "backtrack": True}},
    # inpainting.ipynb, kate.png (text mask): 128-channel skips, nearest upsampling.
    "inpaint": {"net": {"name": "skip", "channels_down": [128] * 5, "channels_up": [128] * 5,
                        "channels_skip": [128] * 5, "upsample_mode": "nearest"},
                "code": {"kind": "noise", "channels": 32, "scale": 0.1},
                "reg_noise_std": 0.03, "fit": {"iters": 6001, "lr": 0.01, "ema": None, "backtrack": True}},
    # inpainting.ipynb, vase.png (large holes): no skips, meshgrid code.
    "inpaint-holes": {"net": {"name": "skip", "channels_down": [128] * 5, "channels_up": [128] * 5,
                              "channels_skip": [0] * 5, "upsample_mode": "nearest"},
                      "code": {"kind": "meshgrid", "channels": 2},
                      "reg_noise_std": 0.03, "fit": {"iters": 5001, "lr": 0.01, "ema": None, "backtrack": True}},
    # restoration.py, barbara (50 % of pixels kept): the denoising net, small lr, many steps.
    "restoration": {"net": _SKIP_DENOISE, "code": {"kind": "noise", "channels": 32, "scale": 0.1},
                    "reg_noise_std": 0.03, "fit": {"iters": 11000, "lr": 0.001, "ema": None, "backtrack": True}},
    # flash-no-flash.ipynb: the flash photo is the code, the no-flash photo the target.
    "flash": {"net": {"name": "skip", "channels_down": [128] * 5, "channels_up": [128] * 5, "channels_skip": [4] * 5,
                      "upsample_mode": ["nearest", "nearest", "bilinear", "bilinear", "bilinear"]},
              "code": {"kind": "image", "channels": 3},
              "reg_noise_std": 0.0, "fit": {"iters": 601, "lr": 0.1, "ema": None, "backtrack": True}},
    # No reference recipe: the denoising recipe through a blur operator. Blur makes the data term
    # ill-conditioned, so noise is fitted later than in denoising; 3000 steps with EMA keep the
    # output stable (see docs/presets.md).
    "deblur": {"net": _SKIP_DENOISE, "code": {"kind": "noise", "channels": 32, "scale": 0.1},
               "reg_noise_std": 1 / 30, "fit": {"iters": 3000, "lr": 0.01, "ema": 0.99, "backtrack": True}},
}

# Classical R(x) baselines through the same loop: pixels as parameters, Adam, and a weight λ
# per task (data term = mean squared error on the pixel scale [0, 1]). Denoising weights are
# per unit of noise σ (on the [0, 1] scale), tuned by bench/classical.py on seeded 96² Set5 crops
# at σ = 15/25/50 (λ = 2σ is ROF's λ ≈ σ for the ½‖x − y‖² data term). The other tasks' weights
# are hand-set defaults, not tuned: pass --weight for a study.
CLASSICAL: dict[str, dict] = {
    "denoise": {"fit": {"iters": 400, "lr": 0.01, "ema": None, "backtrack": False},
                "weight_per_sigma": {"tv": 2.0, "tv-aniso": 1.5, "wavelet": 3.0}},
    "inpaint": {"fit": {"iters": 1500, "lr": 0.02, "ema": None, "backtrack": False},
                "weight": {"tv": 0.01, "tv-aniso": 0.01, "wavelet": 0.01}},
    "superres": {"fit": {"iters": 1000, "lr": 0.01, "ema": None, "backtrack": False},
                 "weight": {"tv": 0.002, "tv-aniso": 0.002, "wavelet": 0.002}},
    "deblur": {"fit": {"iters": 1000, "lr": 0.01, "ema": None, "backtrack": False},
               "weight": {"tv": 0.005, "tv-aniso": 0.005, "wavelet": 0.005}},
    "jpeg": {"fit": {"iters": 400, "lr": 0.01, "ema": None, "backtrack": False},
             "weight": {"tv": 0.05, "tv-aniso": 0.04, "wavelet": 0.07}},
}

METHODS = ("dip", "tv", "tv-aniso", "wavelet")


def get_preset(name: str) -> dict:
    """A deep copy of preset ``name`` (safe to modify).

    >>> get_preset("denoise")["fit"]["iters"]
    3000
    """
    try:
        return deepcopy(PRESETS[name])
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
