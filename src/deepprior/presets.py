"""Presets are data, all in this one registry: the reference DIP recipes (Ulyanov et al., CVPR 2018,
and the notebooks of the reference code), the classical baselines, and the MRI recipes (static DIP /
ConvDecoder, TDDIP, GIP). Nothing here runs; ``deepprior.tasks`` and ``deepprior.mri`` read these
dictionaries through :func:`get_preset` (one resolver, one error for an unknown name).

Groups (:data:`GROUPS`): ``image`` (:data:`PRESETS`), ``mri-dip`` (:data:`MRI_PRESETS`), ``tddip``
(:data:`TDDIP_PRESETS`) and ``gip`` (:data:`GIP_PRESETS`).

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
    # quick CPU runs (docs/presets.md compares it with "denoise").
    "denoise-fast": {"net": {**_SKIP_DENOISE, "channels_down": [64] * 5, "channels_up": [64] * 5},
                     "code": {"kind": "noise", "channels": 32, "scale": 0.1},
                     "reg_noise_std": 1 / 30, "fit": {"iters": 1200, "lr": 0.01, "ema": 0.99, "backtrack": True},
                     # ES-WMV (W = 100) with the patience of bench/early_stopping.py's table
                     "stop": {"rule": "wmv", "patience": 500}},
    # Not a reference recipe: the fastest way to a DIP-quality denoise on a CPU (issue #7; docs/benchmarks.md).
    # A quarter of the reference width (14× fewer FLOPs), a tenth of the code jitter (the reference's 1/30
    # slows the fit ~2× in iterations; none at all costs 0.7 dB of peak), an EMA that warms up instead of
    # dragging the first outputs along, and ES-WMV on the outputs with a short patience to end the run.
    # The full-resolution decoder level is 16 wide: its 3×3 conv held half of the forward pass's
    # convolution multiply-adds; halving it makes a step ~20 % cheaper at the same PSNR (F16 +0.12, baboon
    # +0.15, kodim05 −0.11 dB; docs/benchmarks.md). Zero padding (the conv pads; no reflection copies) and
    # bfloat16 where the device has bf16 units cut another ~25 % of the time on three crops at the same mean
    # PSNR (F16 +0.23, baboon −0.23, kodim05 ±0 dB; docs/benchmarks.md). Patience 100, not 150: on Set5 and F16
    # only butterfly found a later minimum (−0.09 dB), for 5–6 % less time on all six.
    "fast": {"net": {**_SKIP_DENOISE, "channels_down": [32] * 5, "channels_up": [16] + [32] * 4, "pad": "zero"},
             "code": {"kind": "noise", "channels": 32, "scale": 0.1},
             "reg_noise_std": 0.01, "fit": {"iters": 1500, "lr": 0.01, "ema": 0.99, "ema_warmup": True,
                                            "backtrack": True, "amp": "auto"},
             "stop": {"rule": "wmv", "patience": 100}},
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

# The natural-image methods: DIP and the classical priors through the same solver.
IMAGE_METHODS = ("dip", "tv", "tv-aniso", "wavelet")

# Static MRI: one generator per frame, outputs (real, imag); all frames of a series fitted together.
MRI_PRESETS: dict[str, dict] = {
    # ConvDecoder (Darestani & Heckel 2021) at a CPU-friendly width; outputs real/imag, no sigmoid.
    # ``dc_weight``: the final data-consistency step (deepprior.mri.dip). "auto" chooses per frame on held-out
    # samples between the network image, the exact step at a grid of μ and "replace", ConvDecoder's own step
    # (measured samples put back coil by coil), by the estimated error against a fully sampled acquisition. On
    # OCMR frame 0 (8 coils, R = 4) it chose μ = 1e-3: 39.06 dB against 35.91 with "replace"; on the measured
    # 2-coil phantom (R = 2) it chose "replace" (docs/mri.md "Static").
    "convdecoder": {"net": {"name": "conv_decoder", "channels": 64, "layers": 6, "need_sigmoid": False},
                    "code": {"kind": "noise", "scale": 0.1}, "reg_noise_std": 0.0, "dc_weight": "auto",
                    "fit": {"iters": 1500, "lr": 0.008, "ema": 0.99, "backtrack": True}},
    # The DIP skip net with 2 linear output channels.
    "skip": {"net": {"name": "skip", "channels_down": [64] * 5, "channels_up": [64] * 5, "channels_skip": [4] * 5,
                     "upsample_mode": "bilinear", "need_sigmoid": False},
             "code": {"kind": "noise", "channels": 32, "scale": 0.1}, "reg_noise_std": 0.0, "dc_weight": "auto",
             "fit": {"iters": 1500, "lr": 0.005, "ema": 0.99, "backtrack": True}},
}

# TDDIP (Yoo et al., IEEE TMI 2021). ``steps`` and ``lr_step`` count optimizer steps as the reference does
# (one step = ``batch`` frames); the fit loop counts sweeps over all frames, converted at run time.
TDDIP_PRESETS: dict[str, dict] = {
    # The reference (jaejun-yoo/TDDIP, basicnet): helix 3-D, MapNet 3→512→64 (1×8×8), decoder 128
    # channels; Adam 1e-3, StepLR(2000, 0.5), 1 random frame per step, 10k steps. A GPU setting.
    "tddip": {"manifold": "helix", "cycles": 13, "mapnet": {"hidden": [512]}, "code_channels": 1,
              "net": {"name": "tddip", "channels": 128, "blocks": 1},
              "fit": {"steps": 10000, "batch": 1, "lr": 1e-3, "lr_step": 2000, "lr_gamma": 0.5, "ema": 0.9}},
    # The CPU setting: the same design at 64 channels (4× fewer FLOPs); a circle manifold because a binned cine is
    # one periodic cardiac cycle. Up to 36000 steps at a constant learning rate, in bf16 where that is faster (``amp:
    # auto``; 1.8× faster steps with AMX), else in float32, where the budget below ends the fit sooner. The float32 fallback
    # of 6000 steps with the reference's StepLR(2000) (``fit_fp32``, dropped in a later stop) ran 231 sweeps in
    # ~455 s on a CPU without AMX and delivered 43.00 dB on OCMR k-t 8× seed 0; the constant rate, cut by the budget
    # after 296 sweeps, 43.47 (k-t TV 42.92). ``channels_last``: the decoder in NHWC layout, which spares mkldnn's bf16 convolutions a layout copy
    # per layer (41 → 30 ms per step at 128² on this CPU; float32 1.1× faster); the 12000 steps of the previous
    # default became 18000 in about the same time (496 s against 466 s), +0.73 dB on OCMR k-t 8× seed 0 (the
    # curve still rises at the budget).
    # ``fine_channels`` 32: the image's level (4× the pixels of the one before, ~3/4 of the decoder's work at 64
    # channels) runs at half the width. 1.6× faster per step in float32 on a CPU without AMX; chosen on the tuning
    # setting OCMR k-t 4× seed 0 (network image 44.38 → 45.46 dB in the same 580 s, against 45.40 for 128 channels on
    # the coarse levels), then +0.14 dB on the 3-seed mean at k-t 8×, neutral on 8 radial spokes (docs/mri.md "A
    # narrower image level").
    # 8-9 min for 26 × 128² Cartesian on 2 cores (issue #15's 10 min). On OCMR k-t 8× the constant rate
    # beat StepLR(4000, ½) by 0.56, 0.91 and 0.60 dB (seeds 0-2); with seed 0, decays of 0.85, 0.7, 0.5, 0.3 per
    # 4000 steps gave 0.14, 0.32, 0.56, 0.89 dB less than none, a constant 1.5e-3 1.28 dB less (docs/mri.md "Does it
    # win?"). 12000 bf16 steps had gained 1.5 dB over 6000 float32 ones in about the same time.
    # ``patience``: sweeps of the held-out rule. 15 would have stopped the 4-coil SNR 30 dB fit at sweep 92 of 462,
    # 3.5 dB below where 60 selected (sweep 449), and OCMR k-t 8× (seeds 1, 2) and 13 radial spokes 1.4-1.5 dB early;
    # elsewhere 15 and 60 selected the same sweep (replayed on each run's held-out curve, bench/hybrid.py). Where a
    # schedule drops the rate, the patience counts only after the last drop has run that long (tddip's not_before).
    # ``dc``: end with exact data consistency, its weight μ chosen per series on the held-out samples
    # (``dc_weight: "auto"``, deepprior.mri.dcweight). It gained 0.3-0.9 dB over the network image on every OCMR
    # setting and 5.5 dB on PINCAT. The former fixed μ = 3e-3 (tuned on noiseless OCMR R = 4) was 1.2-1.3 dB below it
    # at SNR 30 dB and with measured maps (docs/mri.md "Does it win?"). A number instead of "auto" fixes μ.
    # ``dc_regs``: that final step is k-t TV (the ``tv`` method's R = 4-tuned weights) pulled towards the network image
    # at μ' = ``dc_pull`` × the held-out μ, ``dc_iters`` ADMM iterations from the network image (40 reach 100's PSNR
    # within 0.01 dB). The network and k-t TV err in different places: on OCMR k-t R = 4 (the tuning setting) the
    # pull gave 48.67 / 48.63 / 48.23 dB at 0.1 / 0.33 / 1 × μ against 47.81 for the plain step and 47.63 for k-t TV
    # (docs/mri.md "Does it win?"). ``dc_regs: {}`` is the plain step. The temporal Fourier L1 beside k-t TV (``tv``'s
    # ``fourier``, tuned on R = 4 without the network: 47.63 → 48.23 dB) also lifts the pull there (48.01 → 48.32 on
    # a later stop's network image) and on OCMR R = 8 by 0.26 ± 0.05 dB on the same three network images.
    # ``budget`` (seconds for the whole reconstruction): the fit ends with the held-out choice so far early enough
    # for the final step (~10-15 s for μ, ~20-30 s for the TV pull on 26 × 128² × 8 coils; timed before the fit,
    # so a larger series or a slower machine fits for less), so that a series stays within issue #15's 10 minutes
    # with I/O. It replaced a fixed 520 s of fitting, which left 37-44 s of the 600 unused on radial data.
    # ``steps`` 36000: a cap, not a tuned count — the rate is constant, so nothing else depends on it, and the budget
    # (or the held-out rule) is meant to end the fit. It was 18000, which the earlier AMX machines reached at 466-546 s
    # with 64 channels at every level; the narrower image level makes a step ~1.6x cheaper, and with 32 channels one
    # level lower too a fit on this CPU reached 18000 steps after ~551 s of its 580 s; the default itself ran 701
    # sweeps (18226 steps) on 4 coils, seed 1 (docs/mri.md).
    # ``patience`` 120 sweeps: on OCMR radial 8 spokes the held-out score went 60 sweeps without a new best while the
    # image still improved; the delivered sweep is the best-scored one whatever the patience.
    "tddip-cpu": {"manifold": "circle", "cycles": 1, "mapnet": {"hidden": [512]}, "code_channels": 1,
                  "net": {"name": "tddip", "channels": 64, "fine_channels": 32, "blocks": 1}, "dc": True, "dc_weight": "auto",
                  "patience": 120,
                  "dc_regs": {"tv": 3e-5, "tv-t": 3e-4, "fourier-t": 1e-4}, "dc_pull": 0.1, "dc_iters": 50,
                  "budget": 580,
                  "fit": {"steps": 36000, "batch": 1, "lr": 1e-3, "lr_schedule": None, "ema": 0.9, "amp": "auto",
                          "channels_last": True}},
}

# GIP (graph image prior; lizs17/GIP_Cardiac_MRI): stages [name, steps, lr] of the reference schedule, then ADMM.
GIP_PRESETS: dict[str, dict] = {
    # The reference schedule: 40k network steps in all. A GPU setting (the authors report 2–3 h of
    # pretraining plus ~1 h of ADMM per slice on an RTX 4090).
    "gip": {"ch": 24, "ch_z": 8, "z_size": 8, "k": 7, "betas": (0.5, 0.98),
            "stages": [["cnn", 10000, 5e-4], ["gnn", 5000, 5e-4], ["joint", 15000, 5e-5]], "freeze_graph_at": 10000 / 15000,
            "admm": {"rho": 1e-3, "outer": 20, "cg_iters": 10, "net_steps": 500, "net_lr": 1e-5}},
    # The CPU reduced setting of the benchmarks: the same design at 8 feature channels and K = 4, the
    # schedule scaled to --iters (default 800 network steps).
    "gip-cpu": {"ch": 8, "ch_z": 8, "z_size": 8, "k": 4, "betas": (0.5, 0.98), "iters": 800,
                "stages": [["cnn", 10000, 5e-4], ["gnn", 5000, 5e-4], ["joint", 15000, 5e-5]], "freeze_graph_at": 10000 / 15000,
                "admm": {"rho": 1e-3, "outer": 20, "cg_iters": 10, "net_steps": 500, "net_lr": 1e-5}},
}

# Parameter mapping (deepprior.mri.mapping): the generator outputs the maps (M0 real/imag + one raw channel per
# model parameter), the signal model makes the contrasts; held-out k-space stops it.
MAP_PRESETS: dict[str, dict] = {
    "map-skip": {"net": {"name": "skip", "channels_down": [64] * 4, "channels_up": [64] * 4, "channels_skip": [4] * 4,
                         "upsample_mode": "bilinear", "need_sigmoid": False},
                 "code": {"kind": "noise", "channels": 32, "scale": 0.1}, "reg_noise_std": 0.0,
                 "fit": {"iters": 3000, "lr": 0.01, "ema": 0.99, "backtrack": True},
                 "stop": {"rule": "holdout", "patience": 300}},
}

# Motion correction (deepprior.mri.motion): one static generator for the image, fitted with every shot's rigid
# motion (its own Adam group at lr_scale × the network's rate, in px and degrees per step).
MOCO_PRESETS: dict[str, dict] = {
    "moco-convdecoder": {"net": {"name": "conv_decoder", "channels": 64, "layers": 6, "need_sigmoid": False},
                         "code": {"kind": "noise", "scale": 0.1}, "reg_noise_std": 0.0,
                         "fit": {"iters": 2000, "lr": 0.008, "ema": 0.99, "backtrack": True},
                         "motion": {"lr_scale": 2.5, "init": "zero", "coarse_outer": 4}, "dc_iters": 10,
                         "stop": {"rule": "holdout", "patience": 300}},
}

GROUPS: dict[str, dict[str, dict]] = {"image": PRESETS, "mri-dip": MRI_PRESETS, "tddip": TDDIP_PRESETS,
                                      "gip": GIP_PRESETS, "mapping": MAP_PRESETS, "moco": MOCO_PRESETS}
# The default of each MRI group: the CPU settings, in Python as on the command line.
DEFAULTS = {"mri-dip": "convdecoder", "tddip": "tddip-cpu", "gip": "gip-cpu", "mapping": "map-skip",
            "moco": "moco-convdecoder"}

# The image tasks' defaults on a CPU, where the reference recipe would run for hours (denoise at 512²: ~8 s per
# iteration × 3000). A task not named here runs its reference recipe if that is estimated to take under
# CPU_BUDGET_S; otherwise the command asks for an explicit --preset or --iters (deepprior.tasks.solve).
CPU_DEFAULTS = {"denoise": "fast"}
CPU_BUDGET_S = 30 * 60


def get_preset(name: str | None = None, group: str = "image") -> dict:
    """A deep copy of preset ``name`` of ``group`` (safe to modify); ``name=None`` is the group's default.

    >>> get_preset("denoise")["fit"]["iters"], get_preset(group="tddip")["fit"]["steps"]
    (3000, 36000)
    """
    if group not in GROUPS:
        raise ConfigError(f"unknown preset group {group!r}; choose one of {', '.join(GROUPS)}")
    if name is None:
        if group not in DEFAULTS:
            raise ConfigError(f"the {group} presets have no default; choose one of {', '.join(GROUPS[group])}")
        name = DEFAULTS[group]
    table = GROUPS[group]
    if name not in table:
        other = [g for g, t in GROUPS.items() if name in t]
        hint = f" ({name!r} is a {other[0]} preset)" if other else ""
        raise ConfigError(f"unknown {group} preset {name!r}{hint}; choose one of {', '.join(table)}")
    return deepcopy(table[name])


def resolve(preset: str | dict | None, group: str) -> tuple[str | None, dict]:
    """``(name, copy)`` of a preset given by name (``None`` = the group's default) or as a dict (name None).

    >>> resolve(None, "gip")[0], resolve({"a": 1}, "gip")
    ('gip-cpu', (None, {'a': 1}))
    """
    if isinstance(preset, dict):
        return None, deepcopy(preset)
    name = preset if preset is not None else DEFAULTS.get(group)
    return name, get_preset(name, group)


def iterations(group: str, p: dict) -> int:
    """The number of optimizer steps a preset runs (for listings)."""
    if group == "tddip":
        return p["fit"]["steps"]
    if group == "gip":
        return p.get("iters") or (sum(n for _, n, _ in p["stages"]) + p["admm"]["outer"] * p["admm"]["net_steps"])
    return p["fit"]["iters"]
