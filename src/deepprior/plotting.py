"""Figures: side-by-side comparison and the PSNR / loss curves of a fit (matplotlib, Agg)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def pyplot():
    """matplotlib.pyplot on the Agg backend (no screen needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` atomically (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_comparison(path, panels: list[tuple[str, np.ndarray]]) -> None:
    """One row of images (H, W, C) in [0, 1] with titles, e.g. degraded | restored | reference."""
    plt = pyplot()
    n = len(panels)
    h, w = panels[0][1].shape[:2]
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n * max(w / h, 0.5), 3.6), squeeze=False)
    for ax, (title, img) in zip(axes[0], panels):
        img = np.clip(img, 0, 1)
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                  vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    save_figure(fig, Path(path))
    plt.close(fig)


def save_curves(path, history: dict, title: str = "", marks: dict[str, int] | None = None) -> None:
    """PSNR (raw and EMA, when a ground truth was given) and the loss against the iteration.

    ``marks`` draws vertical lines, e.g. ``{"oracle peak": 812, "stopped": 1030}``.
    """
    plt = pyplot()
    have_psnr = bool(history.get("psnr"))
    fig, axes = plt.subplots(1, 2 if have_psnr else 1, figsize=(10 if have_psnr else 5, 3.6), squeeze=False)
    its = np.arange(1, len(history["loss"]) + 1)
    ax = axes[0][0]
    ax.semilogy(its, history["loss"], lw=0.8, label="loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if have_psnr:
        ax = axes[0][1]
        ax.plot(its, history["psnr"], lw=0.8, label="PSNR (last iterate)")
        if history.get("psnr_ema") and history["psnr_ema"] != history["psnr"]:
            ax.plot(its, history["psnr_ema"], lw=1.2, label="PSNR (EMA)")
        ax.set_xlabel("iteration")
        ax.set_ylabel("PSNR [dB]")
        ax.grid(alpha=0.3)
        lo = np.nanpercentile(history["psnr"], 5)
        ax.set_ylim(bottom=lo - 1)
    for a in axes[0]:
        for i, (label, it) in enumerate((marks or {}).items()):
            a.axvline(it + 1, color=f"C{i + 2}", ls="--", lw=1, label=label)
        a.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, Path(path))
    plt.close(fig)


def _per_frame_panel(a, metrics: dict) -> None:
    """PSNR (left axis) and SSIM (right axis) per frame of a series, with their means."""
    per = metrics["per_frame"]
    frames = np.arange(1, len(per["psnr"]) + 1)
    a.plot(frames, per["psnr"], "o-", ms=3, label=f"PSNR (mean {metrics['psnr']:.2f} dB)")
    a.set_xlabel("frame")
    a.set_ylabel("PSNR [dB]")
    b = a.twinx()
    b.plot(frames, per["ssim"], "s--", ms=3, color="C1", label=f"SSIM (mean {metrics['ssim']:.3f})")
    b.set_ylabel("SSIM")
    a.legend(fontsize=8, loc="lower left")
    b.legend(fontsize=8, loc="lower right")
    a.grid(alpha=0.3)


def save_dynamic_report(path, info: dict, metrics: dict | None = None) -> None:
    """A dynamic reconstruction's curves: the data loss and the stopping score per sweep (the delivered
    and the stopping sweep marked) and, with a reference, PSNR per sweep (oracle peak marked, a
    diagnostic) and PSNR/SSIM per frame of the delivered series."""
    plt = pyplot()
    have_ref = metrics is not None
    fig, axes = plt.subplots(1, 3 if have_ref else 1, figsize=(15 if have_ref else 5, 3.6), squeeze=False)
    ax = axes[0][0]
    sweeps = np.arange(1, len(info["loss"]) + 1)
    ax.semilogy(sweeps, info["loss"], lw=1, label="data loss (fitted samples)")
    if info.get("stop_scores"):
        ax2 = ax.twinx()
        ax2.semilogy(np.asarray(info["stop_iters"]) + 1, info["stop_scores"], color="C1", lw=1,
                     label=f"{info.get('stop')} score")
        ax2.set_ylabel(f"{info.get('stop')} score")
        ax2.legend(fontsize=8, loc="center right")
    ax.set_xlabel("sweep (every frame once)")
    ax.set_ylabel("loss")
    marks = {}
    if info.get("selected_sweep") is not None:
        marks["delivered"] = info["selected_sweep"]
    if info.get("fired_at") is not None:
        marks["stopped"] = info["fired_at"]
    if have_ref and info.get("oracle_best_sweep") is not None:
        marks["oracle peak"] = info["oracle_best_sweep"]
    if have_ref and info.get("oracle_psnr"):
        a = axes[0][1]
        a.plot(np.asarray(info["oracle_iters"]) + 1, info["oracle_psnr"], lw=1, label="PSNR vs reference")
        a.set_xlabel("sweep")
        a.set_ylabel("PSNR [dB]")
        a.grid(alpha=0.3)
    for a in axes[0][:2]:
        for i, (label, it) in enumerate(marks.items()):
            a.axvline(it + 1, color=f"C{i + 2}", ls="--", lw=1, label=label)
        a.legend(fontsize=8, loc="lower right" if a is not ax else "upper right", framealpha=0.6)
    if have_ref:
        _per_frame_panel(axes[0][-1], metrics)
    save_figure(fig, Path(path))
    plt.close(fig)


def save_stages_report(path, info: dict, metrics: dict | None = None) -> None:
    """GIP's staged fit: oracle PSNR after each stage and per ADMM outer iteration (diagnostics), the
    held-out loss of the ADMM iterates (what selects the delivered one), and PSNR/SSIM per frame."""
    plt = pyplot()
    admm = next((s for s in info["stages"] if s["stage"] == "admm"), None)
    fig, axes = plt.subplots(1, 2 if metrics is not None else 1, figsize=(10 if metrics is not None else 5, 3.6),
                             squeeze=False)
    ax = axes[0][0]
    if admm is not None and admm.get("val_loss"):
        ax.semilogy(np.arange(1, len(admm["val_loss"]) + 1), admm["val_loss"], "o-", ms=3, label="held-out loss")
        if admm.get("selected") is not None:
            ax.axvline(admm["selected"] + 1, color="C2", ls="--", lw=1, label="delivered")
        ax.set_ylabel("held-out k-space loss")
    if admm is not None and admm.get("oracle_psnr"):
        b = ax.twinx()
        b.plot(np.arange(1, len(admm["oracle_psnr"]) + 1), admm["oracle_psnr"], "s--", ms=3, color="C1",
               label="PSNR of X (oracle)")
        b.set_ylabel("PSNR [dB]")
        b.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("ADMM outer iteration")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(" · ".join(f"{s['stage']} {s['steps']} steps {s['seconds']:.0f}s" for s in info["stages"]), fontsize=8)
    if metrics is not None:
        _per_frame_panel(axes[0][1], metrics)
    save_figure(fig, Path(path))
    plt.close(fig)
