"""``deepprior mri simulate|recon``: the command line over :mod:`deepprior.mri` (same defaults, same checks).

The last line ``mri recon`` prints on stdout is the delivered image's summary, ending in
``| PSNR <x> dB SSIM <y> NRMSE <z>`` when a reference exists; scripts parse it. Oracle diagnostics, if
any, come on earlier lines that start with ``oracle:``.
"""

from __future__ import annotations

import click

from ..errors import ConfigError, InputError
from ..mri.methods import METHODS, OPTIONS
from ..mri.pics import KT_FOURIER, KT_TV_TEMPORAL, KT_TV_WEIGHT, TV_STATIC_WEIGHT, WAVELET_WEIGHT, kt_tv_terms
from ..mri.recon import LPS_LAMBDA_L, LPS_LAMBDA_S
from ..mri.sampling import PATTERNS
from ..mri.shots import ORDERS as SHOT_ORDERS
from ..mri.tddip import MANIFOLDS
from ..mri.tddip import STOPS as MRI_STOPS
from ..presets import GIP_PRESETS, MOCO_PRESETS, MRI_PRESETS, TDDIP_PRESETS
from .common import ckpt_path, device_option, echo

RECON_EXTS = (".h5", ".npy", ".nii", ".gz", ".dcm", ".png", ".gif")


@click.group()
def mri():
    """MRI: simulate undersampled multi-coil k-space, reconstruct it, map T2/T1 from it."""


@mri.command("simulate")
@click.argument("series", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="k-space file (.h5).")
@click.option("--key", default=None, help="Variable name in a .mat/.npz holding several arrays.")
@click.option("--coils", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--pattern", type=click.Choice((*PATTERNS, "radial")), default=None, help="[default: kt-random]")
@click.option("--accel", type=click.FloatRange(min=1), default=None, help="[default: 8; with --motion 1, fully sampled]")
@click.option("--center", type=click.IntRange(min=0), default=None,
              help="Fully sampled centre lines (default 8; 24 for measured k-space, whose coil maps come from it).")
@click.option("--spokes", type=click.IntRange(min=1), default=None, help="Golden-angle radial: spokes per frame.")
@click.option("--snr", type=float, default=40.0, show_default=True, help="SNR in dB of the sampled k-space.")
@click.option("--maps", "maps_path", type=click.Path(), default=None,
              help="Measured coil maps instead of birdcage ones: complex .npy (coils, H, W) or BART .cfl (ecalib).")
@click.option("--oversample", type=click.IntRange(min=1), default=1, show_default=True,
              help="Simulate the object on an N× finer grid and keep the central k-space (no inverse crime).")
@click.option("--motion", default=None, metavar="none|jumps|walk|FILE",
              help="Multi-shot k-space of one image under per-shot rigid motion (seeded), or a given (shots, 3) "
                   "motion (.csv/.npy: dx px, dy px, rotation °).")
@click.option("--max-shift", type=click.FloatRange(min=0), default=None, help="--motion: peak shift in px [default: 4].")
@click.option("--max-rot", type=click.FloatRange(min=0, max=45), default=None,
              help="--motion: peak rotation in degrees [default: 4].")
@click.option("--shots", type=click.IntRange(min=1), default=None, help="--motion: shots [default: 16].")
@click.option("--shot-order", type=click.Choice(SHOT_ORDERS), default=None,
              help="--motion: which lines each shot acquires [default: interleaved].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True)
def mri_simulate(series, output, key, coils, pattern, accel, center, spokes, snr, maps_path, oversample, motion,
                 max_shift, max_rot, shots, shot_order, seed, overwrite):
    """Simulate k-space from a magnitude SERIES (.mat/.npy/.npz/.nii): phase, coils, sampling, noise — or
    undersample *fully sampled measured* k-space (Siemens .dat, BART .cfl, complex .npy/.npz) with --pattern
    at --accel, keeping the fully sampled reconstruction as the reference. With --motion: one image (or measured
    k-space) acquired in --shots shots, each seeing it rigidly moved; truth image and motion kept."""
    from ..io import check_output
    from ..mri.data import simulate
    from ..mri.io import load_series, save_data

    check_output(output, overwrite, exts=(".h5",))
    from ..mri.raw import is_raw, read_raw, undersample

    raw = is_raw(series) and not _is_series_npy(series, key)
    moco = {"--max-shift": max_shift, "--max-rot": max_rot, "--shots": shots, "--shot-order": shot_order}
    if motion is None and any(v is not None for v in moco.values()):
        raise InputError(f"{', '.join(k for k, v in moco.items() if v is not None)} apply only with --motion")
    if motion is not None:
        from .motion import simulate_cmd

        simulate_cmd(series, output, key, raw=raw, motion=motion, max_shift=4.0 if max_shift is None else max_shift,
                     max_rot=4.0 if max_rot is None else max_rot, shots=shots or 16,
                     order=shot_order or "interleaved", coils=coils, accel=1 if accel is None else accel, center=center,
                     spokes=spokes,
                     snr=snr, maps=_load_maps(maps_path) if maps_path else None, oversample=oversample, seed=seed,
                     overwrite=overwrite, pattern_given=pattern is not None)
        return
    pattern = pattern or "kt-random"
    accel = 8 if accel is None else accel

    if raw:
        if pattern == "radial":
            raise InputError("retrospective sampling of measured Cartesian k-space takes the Cartesian patterns, "
                             "not radial")
        d = undersample(read_raw(series, key), pattern=pattern, accel=accel, center=24 if center is None else center,
                        seed=seed)
        save_data(output, d, overwrite)
        echo(f"{output}: measured k-space {d.shape[0]}×{d.shape[1]}, {d.kspace.shape[1]} coil(s), retrospective "
             f"{pattern} R={d.acceleration:.1f}, ESPIRiT maps, fully sampled reference kept, seed {seed}")
        return
    s = load_series(series, key)
    center = 8 if center is None else center
    if pattern == "radial" and spokes is None:
        spokes = 13
    maps = _load_maps(maps_path) if maps_path else None
    d = simulate(abs(s), coils=coils, pattern=pattern, accel=accel, center=center, snr_db=snr, seed=seed,
                 spokes=spokes if pattern == "radial" else None, maps=maps, oversample=oversample)
    coils = d.kspace.shape[1]
    save_data(output, d, overwrite)
    what = f"{spokes} golden-angle spokes/frame" if d.radial else f"{pattern} R={d.acceleration:.1f}"
    if maps_path:
        what += f", measured maps from {maps_path}"
    if oversample > 1:
        what += f", {oversample}× finer object grid"
    echo(f"{output}: {d.frames} frame(s) {d.shape[0]}×{d.shape[1]}, {coils} coil(s), {what}, SNR {snr} dB, seed {seed}")


def _load_maps(path):
    """Coil maps from a complex .npy ``(coils, H, W)`` or a BART .cfl/.hdr (``bart ecalib``: the first set)."""
    from pathlib import Path

    import numpy as np
    import torch

    from ..io import check_readable
    from ..mri.raw import read_cfl

    p = Path(path)
    if p.suffix.lower() in (".cfl", ".hdr"):
        a = read_cfl(p)
        a = a.reshape(*a.shape[:4], -1, order="F")[:, :, 0, :, 0].transpose(2, 0, 1) if a.ndim >= 4 else None
    elif p.suffix.lower() == ".npy":
        check_readable(p, "coil maps")
        try:
            a = np.load(p, allow_pickle=False)
        except Exception as e:  # noqa: BLE001
            raise InputError(f"cannot read coil maps {p}: {e}") from None
    else:
        raise InputError(f"{p}: coil maps must be a complex .npy (coils, H, W) or a BART .cfl")
    if a is None or a.ndim != 3 or not np.iscomplexobj(a) or not np.isfinite(a).all():
        raise InputError(f"{p}: coil maps must be finite complex (coils, H, W)")
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.complex64))


def _is_series_npy(path, key) -> bool:
    """A real-valued .npy/.npz is a magnitude series to simulate from; a complex one is measured k-space
    (``(coils, H, W)`` or ``(slices, coils, H, W)``)."""
    import numpy as np

    if not str(path).lower().endswith((".npy", ".npz")):
        return False
    try:
        if str(path).lower().endswith(".npy"):
            return not np.iscomplexobj(np.load(path, mmap_mode="r", allow_pickle=False))
        with np.load(path, allow_pickle=False) as z:
            return not any(np.iscomplexobj(z[n]) for n in ([key] if key in z.files else z.files))
    except Exception:  # noqa: BLE001 - unreadable: let the series reader give its one-line error
        return True


# CLI option name → reconstruct() option name, for the options only some methods take.
_FLAGS = {"motion-lr": "motion_lr", "preset": "preset", "manifold": "manifold_kind", "cycles": "cycles", "batch": "batch",
          "patience": "patience",
          "lambda-l": "lambda_l", "lambda-s": "lambda_s", "weight": "weight", "checkpoint-every": "checkpoint_every",
          "lam": "lam", "temporal": "temporal", "fourier": "fourier", "tv-weight": "tv_weight", "dc": "dc",
          "dc-tv": "dc_regs"}


@mri.command("recon")
@click.argument("data", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="Result: .h5/.npy (complex), .nii(.gz), .dcm, .png, .gif.")
@click.option("--method", type=click.Choice(METHODS), default="cgsense", show_default=True)
@click.option("--iters", type=click.IntRange(min=1), default=None,
              help="Iterations (tddip: optimizer steps of --batch frames, as the reference counts them; gip: network "
                   "steps of the whole schedule, stages and ADMM scaled in proportion; cg-moco: the final CG-SENSE "
                   "iterations).")
@click.option("--preset", type=click.Choice((*MRI_PRESETS, *TDDIP_PRESETS, *GIP_PRESETS, *MOCO_PRESETS)), default=None,
              help="dip: convdecoder (default) or skip; tddip: tddip-cpu (default) or tddip (reference, GPU); "
                   "gip: gip-cpu (default) or gip (reference, GPU); dip-moco: moco-convdecoder.")
@click.option("--manifold", "manifold_kind", type=click.Choice(tuple(m for m in MANIFOLDS if m != "custom")),
              default=None, help="tddip: time manifold (default: the preset's).")
@click.option("--cycles", type=click.FloatRange(min=0, min_open=True), default=None, help="tddip: turns of the helix/circle.")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="tddip: frames per optimizer step (default 1).")
@click.option("--stop", type=click.Choice(MRI_STOPS), default=None,
              help="tddip/gip: stop on held-out k-space loss (default), on ES-WMV (tddip), or run all iterations; "
                   "dip: holdout or none (default).")
@click.option("--holdout", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="tddip/gip/dip: fraction of acquired samples held out for --stop holdout (default 0.05).")
@click.option("--patience", type=click.IntRange(min=1), default=None, help="tddip: sweeps (dip: steps) without improvement before stopping (tddip default: the preset's, 120 for tddip-cpu).")
@click.option("--plot", type=click.Path(), default=None, help="tddip/gip: loss and per-frame PSNR curves (.png).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
              help="dip, tddip: write the fit state to OUTPUT.ckpt every N steps (tddip: sweeps; and on Ctrl-C); "
                   "gip: at the end of each stage and ADMM outer iteration, at least N network steps apart.")
@click.option("--resume", is_flag=True, help="dip, tddip, gip: continue the run saved in OUTPUT.ckpt.")
@click.option("--lambda-l", type=click.FloatRange(min=0), default=None, help=f"L+S: low-rank threshold (default {LPS_LAMBDA_L}).")
@click.option("--lambda-s", type=click.FloatRange(min=0), default=None, help=f"L+S: sparse threshold (default {LPS_LAMBDA_S}).")
@click.option("--weight", type=click.FloatRange(min=0), default=None,
              help=f"tv: spatial TV λ (default {KT_TV_WEIGHT} for a series, {TV_STATIC_WEIGHT} for one frame); wavelet: "
                   f"L1-wavelet λ (default {WAVELET_WEIGHT}); on data scaled to unit image intensity, as BART's pics.")
@click.option("--temporal", type=click.FloatRange(min=0), default=None,
              help=f"tv: temporal TV λ (default {KT_TV_TEMPORAL}; series only).")
@click.option("--fourier", type=click.FloatRange(min=0), default=None,
              help=f"tv: add a temporal Fourier L1 with this λ (default 0 = k-t TV alone, BART pics -R T's objective; "
                   f"{KT_FOURIER}, tuned on OCMR, is the strongest classical setting measured; series only).")
@click.option("--lam", type=click.FloatRange(min=0), default=None,
              help="grappa: Tikhonov weight of the kernel fit (default 0.01); cgsense: Tikhonov weight (default 0).")
@click.option("--tv-weight", type=click.FloatRange(min=0), default=None,
              help="dip, tddip: DIP-TV, a TV penalty on the network output (the tv method's scale; default 0 = none).")
@click.option("--dc/--no-dc", default=None,
              help="dip, tddip: end with exact data consistency towards the network image, its weight chosen on "
                   "held-out samples (default: the preset's, on).")
@click.option("--dc-tv/--no-dc-tv", "dc_regs", default=None,
              help="tddip: make that final step k-t TV with its temporal Fourier term (the tv method's weights, "
                   f"--fourier {KT_FOURIER}) pulled towards the network image (default: the preset's, on for tddip-cpu).")
@click.option("--motion", "motion_path", type=click.Path(), default=None,
              help="Multi-shot data: a (shots, 3) motion file (.csv/.npy: dx px, dy px, rotation °) — the known motion "
                   "for cgsense, the start for cg-moco/dip-moco.")
@click.option("--motion-out", type=click.Path(), default=None, help="cg-moco/dip-moco: write the estimated motion (.csv/.npy).")
@click.option("--motion-lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="dip-moco: the motion's learning rate as a multiple of the network's (default: the preset's).")
@click.option("--estimate-maps", is_flag=True,
              help="Replace the stored coil maps by ESPIRiT maps of the data's own centre (motion-corrupted as it is).")
@click.option("--gt", type=click.Path(), default=None, help="Reference series (default: the one stored by simulate).")
@click.option("--key", default=None, help="Variable of --gt in a .mat/.npz.")
@click.option("--gif", type=click.Path(), default=None, help="Also write a cine GIF of |x|.")
@click.option("--montage", type=click.Path(), default=None, help="Also write a frame montage PNG.")
@click.option("--slice", "slice_index", type=int, default=None,
              help="Multi-slice files (fastMRI, raw): reconstruct only this slice (default: every slice, stacked).")
@click.option("--compress", type=click.IntRange(min=1), default=None,
              help="Measured k-space: SVD-compress to N virtual coils first (reports the energy kept).")
@click.option("--seed", type=int, default=0, show_default=True)
@device_option
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
def mri_recon(data, output, method, iters, plot, resume, gt, key, gif, montage, slice_index, compress, seed, device,
              overwrite, quiet, motion_path, motion_out, estimate_maps, **flags):
    """Reconstruct DATA (.h5 from `mri simulate`, fastMRI, Cartesian ISMRMRD, or measured k-space: Siemens
    .dat, BART .cfl, complex .npy/.npz — whitened, ESPIRiT maps, scaled) and report PSNR/SSIM/NRMSE when a
    reference exists."""
    from ..io import check_output
    from ..mri.methods import check_options
    from ..mri.metrics import mri_metrics

    ck = ckpt_path({"output": output})
    opts = {k: v for k, v in flags.items() if v is not None}
    if "dc_regs" in opts:  # the flag's on/off as the terms the final step takes
        opts["dc_regs"] = kt_tv_terms(fourier=KT_FOURIER) if opts["dc_regs"] else {}
    if resume:
        opts["resume"] = ck
    if "checkpoint_every" in opts or resume:
        opts["checkpoint"] = ck
    try:
        check_options(method, opts)
    except ConfigError:
        # the same rule as reconstruct(), worded with the command's option names
        names = {v: k for k, v in _FLAGS.items()} | {"stop": "stop", "holdout": "holdout", "resume": "resume",
                                                    "checkpoint": "checkpoint-every"}
        bad = sorted({f"--{names[k]}" for k in opts if k not in OPTIONS[method]})
        raise InputError(f"{', '.join(bad)} do(es) not apply to --method {method}") from None
    if plot and method not in ("tddip", "gip", "cg-moco", "dip-moco"):
        raise InputError("--plot only applies to --method tddip, gip (loss curves), cg-moco or dip-moco (motion curves)")
    if motion_out and method not in ("cg-moco", "dip-moco"):
        raise InputError("--motion-out applies to --method cg-moco or dip-moco (the methods that estimate motion)")
    if motion_path:
        if "motion" not in OPTIONS[method]:
            raise InputError(f"--motion applies to --method {', '.join(m for m, o in OPTIONS.items() if 'motion' in o)}")
        from .motion import load_motion

        opts["motion"] = load_motion(motion_path)
    if resume and not ck.is_file():
        raise InputError(f"--resume: no checkpoint {ck} (a run writes one with --checkpoint-every N or on Ctrl-C)")
    if opts.get("checkpoint_every") and not resume and ck.exists() and not overwrite:
        raise InputError(f"{ck} holds an earlier run: pass --resume to continue it or --overwrite to start over")
    for p, exts in ((output, RECON_EXTS), (gif, (".gif",)), (montage, (".png",)), (plot, (".png",)),
                    (motion_out, (".csv", ".npy"))):
        if p:  # --resume replaces the image its interrupted run wrote
            check_output(p, overwrite or (p == output and resume), exts=exts)
    from ..mri.io import load_data, open_slices, save_recon

    if slice_index is None:
        n_slices, load = open_slices(data, compress=compress)  # a raw file is read once, whatever its slices
    else:
        n_slices, load = 1, lambda s: load_data(data, slice_index=slice_index, compress=compress)
    if n_slices > 1:
        if gt or plot or resume or opts.get("checkpoint_every"):
            raise InputError("--gt, --plot, --checkpoint-every and --resume take one slice: add --slice N")
        r, d, ref = _all_slices(load, n_slices, method, iters, seed, device, quiet, output, opts)
    else:
        d = load(0)
        if estimate_maps:
            d = _espirit(d)
        ref = _reference(d, gt, key)
        r = _run(d, method, iters, seed, device, quiet, ref, output, opts)
    for p in (output, gif, montage):
        if p:
            save_recon(p, r.image, overwrite or (p == output and resume), voxel_mm=d.meta.get("voxel_mm"))
    m = r.metrics or None
    if method in ("cg-moco", "dip-moco") or "motion" in r.info:
        from .motion import report

        report(r, output, motion_out, plot, overwrite, d)
    elif plot and method == "tddip":
        from ..plotting import save_dynamic_report

        save_dynamic_report(plot, r.info, m)
    elif plot:
        from ..plotting import save_stages_report

        save_stages_report(plot, r.info, m)
    info = r.info
    if method == "gip" and ref is not None:
        echo(f"oracle: after pretraining PSNR {mri_metrics(info['pretrained'], ref)['psnr']:.2f} dB")
    if info.get("oracle_best_sweep") is not None:
        echo(f"oracle: best sweep {info['oracle_best_sweep'] + 1}: {info['oracle_best_psnr']:.2f} dB")
    what = f"{n_slices} slices" if n_slices > 1 else f"{d.frames} frame(s)"
    line = f"{output}: {method}, {what}, {r.seconds:.1f} s"
    if d.meta.get("compressed_to"):
        line += f", {d.meta['compressed_to']} virtual coils ({100 * d.meta['energy_kept']:.2f} % energy)"
    if method == "gip":
        line += ", " + " + ".join(f"{s['stage']} {s['steps']}" for s in info["stages"]) + " steps"
    if method == "tddip":
        line += f", {info['steps']} steps ({info['sweeps']} sweeps)"
        if r.selected_iter is not None:
            line += f", delivered sweep {r.selected_iter + 1} ({info['stop']})"
    if r.metrics:
        line += " | " + r.summary()
    echo(line)
    # for the batch layer: what the manifest records, and the scale that stacks slices into one volume
    return {"seconds": round(r.seconds, 3), "selected_iter": r.selected_iter, "scale": float(d.meta.get("scale", 1.0)),
            "iterations": info.get("steps"), **{k: round(float(v), 4) for k, v in (r.metrics or {}).items()
                                                if k in ("psnr", "ssim", "nrmse")}}


def _all_slices(load, n, method, iters, seed, device, quiet, output, opts):
    """Every slice of a multi-slice file, one after another, stacked into one result (slices as frames)."""
    import dataclasses

    import torch

    from ..mri.metrics import mri_metrics

    results, refs, scales = [], [], []
    for s in range(n):
        if not quiet:
            echo(f"slice {s + 1}/{n}", err=True)
        d = load(s)
        results.append(_run(d, method, iters, seed, device, quiet, d.gt, output, opts))
        refs.append(d.gt)
        scales.append(float(d.meta.get("scale", 1.0)))  # what its k-space was divided by
    # Each slice is reconstructed at its own scale; the volume gets one scale, the largest, so that
    # slice-to-slice intensities are the scanner's.
    rel = [v / max(scales) for v in scales]
    image = torch.cat([r.image * f for r, f in zip(results, rel)])
    ref = torch.cat([g * f for g, f in zip(refs, rel)]) if all(g is not None for g in refs) else None
    r = dataclasses.replace(results[0], image=image, seconds=sum(x.seconds for x in results),
                            metrics=mri_metrics(image, ref) if ref is not None else {},
                            info={**results[0].info, "slices": [x.info for x in results]})
    return r, d, ref


def _espirit(d):
    """``d`` with ESPIRiT maps of its own calibration region instead of the stored ones (the realistic setting of a
    simulation: the maps come from the data, motion-corrupted as they are)."""
    import dataclasses

    from ..mri.calib import espirit_maps

    if d.radial or d.frames != 1:
        raise InputError("--estimate-maps takes one Cartesian image (maps from its fully sampled centre)")
    # a moving object visits pixels outside its shot-0 support: multi-shot data keep the maps everywhere (no crop)
    crop = 0.0 if d.shots is not None else 0.95
    return dataclasses.replace(d, maps=espirit_maps(d.kspace[0], crop=crop), meta=dict(d.meta, maps="espirit"))


def _reference(d, gt, key):
    """The reference to score against: --gt (scaled to max 1), else the one stored with the data, if any."""
    import numpy as np
    import torch

    from ..mri.io import load_series

    if not gt:
        return d.gt
    g = load_series(gt, key)
    ref = torch.from_numpy(np.abs(g) / np.abs(g).max()).to(torch.complex64)
    if tuple(ref.shape) != (d.frames, *d.shape):
        raise InputError(f"--gt is {tuple(ref.shape)} but the data reconstruct to {(d.frames, *d.shape)}")
    return ref


def _run(d, method, iters, seed, device, quiet, ref, output, opts):
    """Run reconstruct() with a progress bar; on Ctrl-C write the image reached so far, then exit 130."""
    from ..fit import FitInterrupted
    from ..mri.announce import announcer
    from ..mri.io import save_recon
    from ..mri.methods import reconstruct

    cbs = []
    if not quiet:  # the first line: what runs, where, for about how long
        cbs = [a for a in [announcer(d, method, iters, device, opts, lambda line: echo(line, err=True))] if a]
    if not quiet and method in ("dip", "tddip", "gip", "dip-moco"):
        from rich.console import Console

        from ..fit import ProgressBar

        cbs.append(ProgressBar(f"mri {method}", console=Console(stderr=True)))
    try:
        return reconstruct(d, method, iters=iters, seed=seed, device=device, callbacks=cbs, ref=ref, **opts)
    except FitInterrupted as e:
        img = getattr(e, "image", None)
        msg = f"interrupted after {e.result.iters_run} iterations"
        if img is not None:
            save_recon(output, img, overwrite=True)  # checked above: new, or --overwrite
            msg += f"; wrote the image so far to {output}"
        if e.checkpoint:
            msg += f" and the fit state to {e.checkpoint}; continue with --resume"
        echo(msg, err=True)
        raise
