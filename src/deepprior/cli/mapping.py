"""``deepprior mri simulate-map`` and ``deepprior mri map``: parameter mapping on the command line.

The last line ``mri map`` prints on stdout is the result's summary, ending in ``| T2 NRMSE <x> M0 PSNR <y> dB``
(or T1) when the data carry the true maps; scripts parse it.
"""

from __future__ import annotations

import click

from ..errors import InputError
from ..mri.mapping.models import MODELS, check_times
from ..mri.mapping.recon import FITS, METHODS, MODEL_TV_WEIGHT
from ..mri.sampling import PATTERNS
from ..presets import MAP_PRESETS
from .common import device_option, echo


def _floats(ctx, param, value):
    if value is None:
        return None
    try:
        out = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers (ms or degrees), got {value!r}") from None
    return out


def _protocol(model, echoes, te, esp, tes, tis, fas, tr):
    """The contrast values the options describe, checked (one clear line for a bad protocol)."""
    from ..mri.mapping.data import signal_axis

    given = {"t2": tes, "ir": tis, "vfa": fas}
    for name, v in given.items():
        if v is not None and name != model:
            flag = {"t2": "--tes", "ir": "--tis", "vfa": "--fas"}[name]
            raise InputError(f"{flag} belongs to --model {name}, not --model {model}")
    if model == "t2" and tes is not None and echoes is not None and len(tes) != echoes:
        raise InputError(f"--echoes {echoes} but --tes lists {len(tes)} echo times; give one TE per echo")
    if model == "t2" and tes is None and (te <= 0 or esp <= 0):
        raise InputError(f"--te and --esp must be positive (ms), got {te} and {esp}")
    if model == "vfa" and tr is None:
        tr = 15.0
    what = {"t2": "echo times (--tes)", "ir": "inversion times (--tis)", "vfa": "flip angles (--fas)"}[model]
    if given[model] is not None:
        check_times(given[model], what)
    return signal_axis(model, echoes=echoes or 8, te=te, esp=esp, tes=tes, tis=tis, fas=fas), tr


def protocol_options(f):
    for opt in reversed((
        click.option("--model", type=click.Choice(MODELS), default=None,
                     help="Signal model: t2 (multi-echo spin echo), ir (inversion recovery), vfa (variable flip angle)."),
        click.option("--echoes", type=click.IntRange(min=2), default=None, help="t2: number of echoes (default 8)."),
        click.option("--te", type=float, default=10.0, show_default=True, help="t2: first echo time (ms)."),
        click.option("--esp", type=float, default=10.0, show_default=True, help="t2: echo spacing (ms)."),
        click.option("--tes", callback=_floats, default=None, help="t2: echo times, e.g. 10,20,30 (ms)."),
        click.option("--tis", callback=_floats, default=None, help="ir: inversion times (ms; default 100…3000, 8 values)."),
        click.option("--fas", callback=_floats, default=None, help="vfa: flip angles (degrees; default 2,5,10,15,20)."),
        click.option("--tr", type=float, default=None, help="vfa: repetition time (ms; default 15)."),
    )):
        f = opt(f)
    return f


@click.command("simulate-map")
@click.option("-o", "--output", required=True, type=click.Path(), help="k-space file (.h5) with the true maps.")
@protocol_options
@click.option("--phantom", default="brain", show_default=True,
              help="brain (built-in analytic slice), mrphantom (needs deepprior[phantom]), or a maps file "
                   "(.npz/.h5/.mat with pd and t2/t1 in ms).")
@click.option("--size", type=click.IntRange(min=16), default=128, show_default=True, help="Matrix size (built-in phantoms).")
@click.option("--coils", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--pattern", type=click.Choice((*PATTERNS, "radial")), default="kt-random", show_default=True,
              help="Sampling, drawn anew for every contrast.")
@click.option("--accel", type=click.FloatRange(min=1), default=8, show_default=True)
@click.option("--center", type=click.IntRange(min=0), default=8, show_default=True, help="Fully sampled central lines.")
@click.option("--spokes", type=click.IntRange(min=1), default=None, help="Golden-angle radial: spokes per contrast.")
@click.option("--snr", type=float, default=30.0, show_default=True, help="SNR in dB of the sampled k-space.")
@click.option("--oversample", type=click.IntRange(min=1), default=1, show_default=True,
              help="Render the object on an N× finer grid (no inverse crime; Cartesian, analytic phantoms).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True)
def simulate_map_cmd(output, model, echoes, te, esp, tes, tis, fas, tr, phantom, size, coils, pattern, accel, center,
                     spokes, snr, oversample, seed, overwrite):
    """Simulate multi-contrast multi-coil k-space from known parameter maps (T2 echoes, IR or VFA series)."""
    from ..io import check_output
    from ..mri.mapping.data import save_map_data, simulate_map
    from ..mri.mapping.models import build_model
    from ..mri.mapping.phantom import brain_phantom, load_maps, mrphantom_maps

    check_output(output, overwrite, exts=(".h5",))
    model = model or "t2"
    axis, tr = _protocol(model, echoes, te, esp, tes, tis, fas, tr)
    render = None
    if phantom == "brain":
        ph = brain_phantom(size, seed=seed)
        render = lambda h, w: brain_phantom(h, w, seed=seed)  # noqa: E731
    elif phantom == "mrphantom":
        ph = mrphantom_maps(size)
        render = lambda h, w: mrphantom_maps(h, w)  # noqa: E731
    else:
        ph = load_maps(phantom)
    mdl = build_model(model, axis, tr=tr, b1=ph.b1 if model == "vfa" else None)
    if pattern == "radial" and spokes is None:
        spokes = 13
    md = simulate_map(mdl, ph, coils=coils, pattern=pattern, accel=accel, center=center, snr_db=snr, seed=seed,
                      spokes=spokes if pattern == "radial" else None, oversample=oversample, render=render)
    save_map_data(output, md, overwrite)
    d = md.data
    what = f"{spokes} golden-angle spokes/contrast" if d.radial else f"{pattern} R={d.acceleration:.1f}"
    if oversample > 1:
        what += f", {oversample}× finer object grid"
    echo(f"{output}: {model} model, {mdl.axis_name} = {', '.join(f'{v:g}' for v in axis)} {mdl.axis_unit}, "
         f"{d.shape[0]}×{d.shape[1]}, {d.kspace.shape[1]} coil(s), {what}, SNR {snr} dB, seed {seed}")


@click.command("map")
@click.argument("data", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="Maps: .nii/.nii.gz (4-D, a map per volume), .npz or .h5.")
@protocol_options
@click.option("--method", type=click.Choice(METHODS), default="fit", show_default=True,
              help="fit = CG-SENSE per contrast + pixel fit; zf-fit, lps-fit likewise; model-tv = maps with TV; "
                   "dip = a generator outputs the maps.")
@click.option("--fit", "fit_kind", type=click.Choice(FITS), default="nlls", show_default=True,
              help="Pixel fit of the *-fit methods: nonlinear least squares or log-linear (t2) / DESPOT1 (vfa).")
@click.option("--iters", type=click.IntRange(min=1), default=None, help="Iterations of model-tv / dip.")
@click.option("--weight", type=click.FloatRange(min=0), default=None, help=f"model-tv: TV weight (default {MODEL_TV_WEIGHT}).")
@click.option("--tv-weight", type=click.FloatRange(min=0), default=0.0, help="dip: add TV on the maps (DIP-TV), model-tv's scale.")
@click.option("--preset", type=click.Choice(tuple(MAP_PRESETS)), default=None, help="dip: generator preset (map-skip (default)).")
@click.option("--stop", type=click.Choice(("holdout", "none")), default=None, help="dip: stopping rule (default holdout).")
@click.option("--init", type=click.Choice(("fit", "model-tv")), default=None,
              help="dip: first fit the generator to this method's maps, then to the k-space.")
@click.option("--sigma", type=click.FloatRange(min=0), default=None,
              help="Magnitude images: complex noise std (default: estimated from the image border).")
@click.option("--key", default=None, help="Variable name in a .mat/.npz of magnitude images.")
@click.option("--png", type=click.Path(), default=None, help="Also write a figure of the maps (with the error against the truth).")
@click.option("--seed", type=int, default=0, show_default=True)
@device_option
@click.option("--overwrite", is_flag=True)
@click.option("-q", "--quiet", is_flag=True)
def map_cmd(data, output, model, echoes, te, esp, tes, tis, fas, tr, method, fit_kind, iters, weight, tv_weight, preset,
            stop, init, sigma, key, png, seed, device, overwrite, quiet):
    """Parameter maps from DATA: multi-contrast k-space (.h5 from simulate-map, or any k-space series with --model
    and its TEs/TIs/flip angles) or magnitude images (.npy/.nii/.mat, (contrasts, H, W); --method fit or dip)."""
    from pathlib import Path

    from ..io import check_output
    from ..mri.mapping.output import MAP_EXTS, save_map_figure, save_maps

    check_output(output, overwrite, exts=MAP_EXTS)
    if png:
        check_output(png, overwrite, exts=(".png",))
        if Path(png).resolve() == Path(output).resolve():
            raise InputError("--output and --png must be different files")
    # the contrast values only when the user gave them (a simulated file carries its own protocol)
    if any(v is not None for v in (echoes, tes, tis, fas)):
        model = model or ("ir" if tis else "vfa" if fas else "t2")
        axis, tr_ms = _protocol(model, echoes, te, esp, tes, tis, fas, tr)
    else:
        axis, tr_ms = None, tr
    if method != "model-tv" and weight is not None:
        raise InputError("--weight applies to --method model-tv")
    if method != "dip" and (tv_weight or preset or stop or init):
        raise InputError("--tv-weight, --preset, --stop and --init apply to --method dip")
    cbs = []
    if not quiet and method in ("dip", "model-tv"):
        from rich.console import Console

        from ..fit import ProgressBar

        cbs.append(ProgressBar(f"map {method}", console=Console(stderr=True)))
    if _is_images(data):
        r, md = _from_images(data, key, model, axis, tr_ms, method, sigma, seed, device, preset, iters, cbs), None
        mdl = r.info["model"]
    else:
        from ..mri.mapping.data import load_map_data
        from ..mri.mapping.recon import reconstruct_map

        if sigma is not None:
            raise InputError("--sigma applies to magnitude images; k-space data carry their noise in the data term")
        from ..fit import FitInterrupted

        md = load_map_data(data, model=model, axis=axis, tr=tr_ms)
        mdl = md.model
        try:
            r = reconstruct_map(md, method, fit_kind=fit_kind, iters=iters, seed=seed, device=device, weight=weight,
                                preset=preset, stop=stop, tv_weight=tv_weight, init=init, callbacks=cbs)
        except FitInterrupted as e:
            if getattr(e, "maps", None) is not None:
                save_maps(output, e.maps, mdl, overwrite)  # checked above: new, or --overwrite
                echo(f"interrupted after {e.result.iters_run} iterations; wrote the maps so far to {output}", err=True)
            raise
    save_maps(output, r.maps, mdl, overwrite)
    if png:
        save_map_figure(png, r.maps, mdl, truth=md.truth if md else None, m0_true=md.m0 if md else None,
                        title=f"{mdl.name} maps, {method}")
    line = f"{output}: {mdl.name} maps, {method}, {mdl.contrasts} contrasts, {r.seconds:.1f} s"
    if r.iters:
        line += f", {r.iters} iterations"
    if r.selected_iter is not None and r.selected_iter + 1 != r.iters:
        line += f" (delivered {r.selected_iter + 1}, {r.info.get('stop')})"
    summary = r.summary()
    if summary:
        line += " | " + summary
    echo(line)
    return {"seconds": round(r.seconds, 3), **{k: round(float(v), 4) for k, v in r.metrics.items()
                                               if isinstance(v, float)}}


def _is_images(path) -> bool:
    """Magnitude images (a real series file) rather than k-space."""
    from pathlib import Path

    p = Path(path)
    if p.suffix in (".h5", ".hdf5", ".dat", ".cfl", ".hdr", ".mrd"):
        return False
    if p.suffix in (".npy", ".npz"):
        import numpy as np

        try:
            a = np.load(p, mmap_mode="r") if p.suffix == ".npy" else None
        except Exception:
            return True
        return a is None or not np.iscomplexobj(a)
    return True


def _from_images(path, key, model, axis, tr, method, sigma, seed, device, preset, iters, cbs):
    import torch

    from ..mri.io import load_series
    from ..mri.mapping.images import map_images
    from ..mri.mapping.models import build_model

    if model is None or axis is None:
        raise InputError(f"{path} holds images without a protocol: give --model and its --tes/--tis/--fas (and --tr)")
    imgs = torch.from_numpy(abs(load_series(path, key))).float()
    mdl = build_model(model, axis, tr=tr, magnitude=True)
    if imgs.shape[0] != mdl.contrasts:
        raise InputError(f"{path} holds {imgs.shape[0]} images but {mdl.contrasts} {mdl.axis_name} values were given; "
                         "give one value per image")
    r = map_images(imgs, mdl, method, sigma=sigma, seed=seed, device=device, preset=preset, iters=iters, callbacks=cbs)
    r.info["model"] = mdl
    return r
