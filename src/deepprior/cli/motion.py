"""The motion-correction parts of ``deepprior mri simulate|recon``: simulating multi-shot k-space under rigid
motion, reading and writing per-shot motion files (.csv/.npy, ``dx_px, dy_px, rot_deg`` per shot), and the
figure of the estimated motion against the truth."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .common import echo

MOTION_EXTS = (".csv", ".npy")


def load_motion(path):
    """An ``(S, 3)`` motion from a .npy or a .csv/.txt (a header line is allowed): dx px, dy px, rotation °."""
    import numpy as np
    import torch

    from ..io import check_readable

    p = Path(path)
    check_readable(p, "motion file")
    try:
        if p.suffix.lower() == ".npy":
            a = np.load(p, allow_pickle=False)
        else:
            lines = p.read_text().splitlines()
            header = bool(lines) and not lines[0].lstrip()[:1] in tuple("+-.0123456789")  # e.g. dx_px,dy_px,rot_deg
            a = np.loadtxt(lines[1:] if header else lines, delimiter=",", ndmin=2)
    except Exception as e:  # noqa: BLE001 - any parse error is the file's
        raise InputError(f"cannot read motion file {p}: {e}") from None
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[1] != 3 or not np.isrealobj(a) or not np.isfinite(a).all():
        raise InputError(f"{p}: motion must be a finite (shots, 3) table (dx px, dy px, rotation °), got shape "
                         f"{a.shape}")
    return torch.from_numpy(a.astype(np.float32))


def write_motion(path, motion, overwrite: bool) -> None:
    import numpy as np

    from ..io import atomic_output, check_output

    p = check_output(path, overwrite, exts=MOTION_EXTS)
    a = np.asarray(motion, dtype=np.float64)
    with atomic_output(p) as tmp:
        if p.suffix.lower() == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, a)
        else:
            np.savetxt(tmp, a, delimiter=",", header="dx_px,dy_px,rot_deg", comments="", fmt="%.5f")


def save_motion_figure(path, motion, truth=None, title: str = "") -> None:
    """Three panels (dx, dy in px; rotation in °) against the shot: the estimate, and the truth when known."""
    import numpy as np

    from ..plotting import pyplot, save_figure

    plt = pyplot()
    est = np.asarray(motion)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.0))
    for ax, i, name in zip(axes, range(3), ("dx (px)", "dy (px)", "rotation (°)")):
        if truth is not None:
            ax.plot(np.asarray(truth)[:, i], "k-", lw=2, label="truth")
        ax.plot(est[:, i], "o--", color="tab:red", ms=4, label="estimate")
        ax.set_xlabel("shot")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, Path(path))
    plt.close(fig)


def simulate_cmd(series, output, key, *, raw: bool, motion, max_shift, max_rot, shots, order, coils, accel, center,
                 spokes, snr, maps, oversample, seed, overwrite, pattern_given: bool) -> None:
    """``mri simulate IMAGE --motion ...``: one image (a magnitude (H, W)/(1, H, W) array, or fully sampled measured
    k-space, whose ESPIRiT maps and coil-combined image are used), moved per shot, sampled shot by shot."""
    import numpy as np

    from ..mri.io import load_series, save_data
    from ..mri.motion import KINDS, simulate_motion
    from ..mri.raw import read_raw, undersample

    if pattern_given:
        raise InputError("--motion samples whole lines shot by shot: drop --pattern (use --shot-order, --accel, "
                         "or --spokes for radial spoke groups)")
    given = None if motion in KINDS else load_motion(motion)
    what = "image"
    if raw:
        ref = undersample(read_raw(series, key), pattern="equispaced", accel=1, center=24, seed=seed)
        img, maps, what = ref.gt[0], ref.maps, "measured k-space (ESPIRiT maps, coil-combined image)"
    else:
        img = np.abs(load_series(series, key))
    d = simulate_motion(img, coils=coils, shots=shots, order=order, motion=motion if given is None else given,
                        max_shift=max_shift, max_rot=max_rot, accel=accel, center=16 if center is None else center,
                        snr_db=snr, seed=seed, maps=maps, oversample=oversample, spokes=spokes)
    save_data(output, d, overwrite)
    peak = d.motion.abs().max(0).values.tolist()
    layout = f"{spokes} spokes in {shots} groups" if spokes else f"{shots} {order} shots, R={d.acceleration:.1f}"
    echo(f"{output}: {what} {d.shape[0]}×{d.shape[1]}, {d.kspace.shape[1]} coil(s), {layout}, motion "
         f"{d.meta['motion_kind']} (peak {peak[0]:.1f}/{peak[1]:.1f} px, {peak[2]:.1f}°), SNR {snr} dB, seed {seed}")


def report(r, output, motion_out, plot, overwrite, d) -> None:
    """After a motion-correcting reconstruction: the motion line (with its error against the truth), the motion
    file and the figure."""
    m = r.info.get("motion")
    if m is None:
        return
    if r.info.get("motion_rmse"):
        e = r.info["motion_rmse"]
        echo(f"motion: {m.shape[0]} shots, RMSE {e['shift_px']:.3f} px, {e['rot_deg']:.3f}° against the truth")
    if motion_out:
        write_motion(motion_out, m, overwrite)
    if plot:
        title = f"{r.method}: estimated motion" + (f" (RMSE {r.info['motion_rmse']['shift_px']:.2f} px, "
                                                   f"{r.info['motion_rmse']['rot_deg']:.2f}°)" if r.info.get("motion_rmse") else "")
        save_motion_figure(plot, m, None if d.motion is None else d.motion.cpu(), title)
