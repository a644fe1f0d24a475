"""Untrained priors against the tuned classical baselines on OCMR k-t (issue #15's levers), side by side.

    python bench/hybrid.py                                  # tv and tddip (the CPU default), seeds 0-2
    python bench/hybrid.py --seeds 0 --methods tv "tddip --dc-weight 3e-3" "tddip --tv-weight 3e-5" "tddip --steps 3000"
    python bench/hybrid.py --seeds 0 --methods "tddip --amp off --steps 6000 --lr-schedule step --lr-step 2000 --patience 15"
    python bench/hybrid.py --seeds 0 --methods "tddip --lr-schedule step --lr-step 4000"   # the previous default
    python bench/hybrid.py --accel 4 --seeds 0 --methods "tddip --channels 32 --steps 15000"   # tuning setting
    python bench/hybrid.py --accel 4 --seeds 0 --methods tddip --dc-sweep   # score a grid of dc weights μ
    python bench/hybrid.py --seeds 0 --methods tddip --blend --dc-sweep     # TDDIP blended with / pulling k-t TV
    python bench/hybrid.py --seeds 0 --setting "4 coils"    # a setting of bench/classical_tuned.py (PINCAT, measured maps…)
    python bench/hybrid.py --seeds 0 --setting "13 spokes" --methods tv tddip   # radial
    python bench/hybrid.py --seeds 0 1 2 --methods tv "tv --fourier 1e-4" lps   # the classical methods alone
    python bench/hybrid.py --seeds 0 --setting "21 spokes" --methods tddip --save-net n.pt   # radial tuning setting;
                                                                  # then bench/pull_sweep.py n.pt --setting "21 spokes"

A method is ``tv`` (``tv --fourier λ``: with a temporal Fourier L1, ``tv --fourier 1e-4`` the tuned one), another
classical method of :func:`~deepprior.mri.methods.reconstruct`, or ``tddip`` followed by options: ``--steps N`` (optimizer steps, in float32 too),
``--channels C`` (decoder width; ``C0,C1,…`` one per level, from the seed to the image), ``--fine-channels C`` (the
width at the image's level; ``--fine-channels 64`` is the decoder before the preset narrowed that level),
``--amp off|bf16|auto`` (bfloat16 network), ``--dc`` (end with the exact data-consistency step, the preset's default;
the network image is reported beside it), ``--dc-weight μ|auto`` (its weight; ``auto``, the default, chooses μ on
the held-out samples), ``--patience N`` (sweeps of the held-out rule), ``--tv-weight λ`` (DIP-TV), ``--init tv``
(start at the k-t TV image), ``--lr`` (learning rate), ``--lr-schedule step|none`` with ``--lr-step N`` /
``--lr-gamma g`` (StepLR: steps between drops, factor per drop; the preset runs at a constant rate),
``--manifold`` (helix, circle, line), ``--batch N`` (frames per step), ``--dc-regs tvf|tv|off`` (the final step's
terms: k-t TV with the temporal Fourier term, the preset's default; k-t TV alone, the default before; or the plain
step) with ``--dc-pull r`` (the pull towards the network image, r × the held-out μ), ``--time-limit s``
(seconds of fitting). With the TV terms on, the row also gives the plain step at the same μ on the same network image.
Every row is scored in the whole FOV and in the fixed cardiac region of interest
(:func:`deepprior.mri.metrics.motion_roi`); the simulation's noise and mask and the network's weights follow the
seed. TDDIP's held-out rule chooses the iterate without ground truth; the oracle PSNR per sweep is recorded only
to draw the curves (``--plot``: PSNR against seconds, TDDIP's network image per sweep beside k-t TV's result).
Each TDDIP row gives the network image's PSNR, the μ chosen and (Cartesian) the former fixed μ = 3·10⁻³ applied to
the same network image; and which sweep the held-out rule would have selected with patience 15, 30 and 60 on its
own score curve, each not before the last learning-rate drop + its patience as in ``tddip()`` (``*``: the rule had
not fired by the end of the run), with the network's oracle PSNR there — the rule only decides when to stop, so a
run with a long patience answers for every shorter one.
``--dc-sweep`` scores, on each TDDIP row's network image, the final data-consistency step at several weights μ, and
the hybrid "k-t TV pulled towards the network image" (``pics(..., prior=(x_net, μ))`` with the ``tv`` weights).
``--blend`` scores α·x_net + (1 − α)·x_tv over α and says which α the held-out samples choose.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
from pathlib import Path

import torch

from deepprior.mri.data import simulate
from deepprior.fit.stopping import replay
from deepprior.mri.dcweight import dc_step
from deepprior.mri.io import load_series
from deepprior.mri.methods import reconstruct
from deepprior.mri.metrics import motion_roi, mri_metrics
from deepprior.mri.common import weighted
from deepprior.mri.pics import KT_FOURIER, kt_tv_terms, pics
from deepprior.presets import get_preset

FIXED_DC = 3e-3  # the tddip-cpu preset's former dc_weight, tuned on OCMR k-t R = 4 (noiseless model)
OCMR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mri" / "ocmr0004_cine_mag_26x128x128_tddip.mat"


def method_options(spec: str) -> tuple[str, dict]:
    """``"tddip --steps 6000 --dc"`` → ("tddip", reconstruct() options)."""
    words = shlex.split(spec)
    ap = argparse.ArgumentParser(prog=words[0], add_help=False)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--channels", type=lambda v: [int(c) for c in v.split(",")] if "," in v else int(v),
                    help="decoder width, or one width per level from the seed to the image (64,64,64,64,32)")
    ap.add_argument("--fine-channels", type=int, help="decoder width at the image's level (the preset's 32)")
    ap.add_argument("--dc", action="store_true")
    ap.add_argument("--amp", choices=("off", "bf16", "auto"), help="bfloat16 autocast of the network (FitConfig.amp)")
    ap.add_argument("--dc-weight", help="μ of --dc: a number, or auto (chosen on the held-out samples)")
    ap.add_argument("--tv-weight", type=float)
    ap.add_argument("--init")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--lr-schedule", choices=("step", "anneal", "none"),
                    help="StepLR (--lr-step, --lr-gamma), constant then annealed over the last --anneal-frac of the "
                         "steps or the time limit, or a constant rate")
    ap.add_argument("--anneal-frac", type=float, help="share of the budget the anneal schedule decays over")
    ap.add_argument("--lr-step", type=int, help="optimizer steps between learning-rate drops")
    ap.add_argument("--lr-gamma", type=float, help="factor of each learning-rate drop")
    ap.add_argument("--patience", type=int, help="sweeps of the held-out rule (a long one runs to the budget and "
                                                  "replays shorter ones)")
    ap.add_argument("--manifold", choices=("helix", "circle", "line"))
    ap.add_argument("--dc-regs", choices=("tvf", "tv", "off"),
                    help="the final data-consistency step's terms: k-t TV with its temporal Fourier term (the preset's), "
                         "k-t TV alone (the preset's before), or none")
    ap.add_argument("--dc-pull", type=float, help="its pull towards the network image, as a factor of the chosen μ")
    ap.add_argument("--time-limit", type=float, help="seconds of fitting (instead of the preset's budget)")
    ap.add_argument("--batch", type=int, help="frames per optimizer step (the preset's 1, as the reference)")
    ap.add_argument("--fourier", type=float, help="tv: λ of a temporal Fourier L1 beside k-t TV (KT_FOURIER is tuned)")
    o = ap.parse_args(words[1:])
    if words[0] == "tv" and o.fourier is not None:
        return "tv", {"fourier": o.fourier}
    if words[0] != "tddip":
        return words[0], {}
    p = get_preset("tddip-cpu", "tddip")
    if o.steps:
        p.pop("fit_fp32", None)  # the steps asked for hold in float32 too
        p["fit"] = {**p["fit"], "steps": o.steps}
    if o.lr_schedule:
        p["fit"] = {**p["fit"], "lr_schedule": None if o.lr_schedule == "none" else o.lr_schedule}
    if o.anneal_frac:
        p["fit"] = {**p["fit"], "anneal_frac": o.anneal_frac}
    for key in ("lr_step", "lr_gamma"):
        if getattr(o, key):
            p["fit"] = {**p["fit"], key: getattr(o, key)}
    if o.channels:
        p["net"] = {**p["net"], "channels": o.channels}
        if not isinstance(o.channels, int):
            p["net"].pop("fine_channels", None)  # the list names every level
    if o.fine_channels:
        p["net"] = {**p["net"], "fine_channels": o.fine_channels}
    if o.amp:
        p["fit"] = {**p["fit"], "amp": o.amp}
    if o.dc_weight:
        p["dc_weight"] = o.dc_weight if o.dc_weight == "auto" else float(o.dc_weight)
    if o.dc_regs:
        p["dc_regs"] = {"tvf": kt_tv_terms(fourier=KT_FOURIER), "tv": kt_tv_terms(), "off": {}}[o.dc_regs]
    if o.dc_pull:
        p["dc_pull"] = o.dc_pull
    if o.time_limit is not None:  # seconds of fitting, instead of the preset's budget for the whole call
        p["time_limit"] = o.time_limit
        p.pop("budget", None)
    if o.batch:
        p["fit"] = {**p["fit"], "batch": o.batch}
    opts = {"preset": p, "dc": o.dc or None, "patience": o.patience, "tv_weight": o.tv_weight or 0.0, "init": o.init, "lr": o.lr,
            "manifold_kind": o.manifold}
    return "tddip", {k: v for k, v in opts.items() if v is not None}


def dc_sweep(d, net, roi) -> None:
    """PSNR (FOV / ROI) of ``min ½‖Ax − y‖² + μ/2‖x − x_net‖²`` (+ the tv method's terms) over a μ grid."""
    tv = kt_tv_terms()
    for regs, grid in (({}, (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)), (tv, (0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0))):
        for mu in grid:
            # the dc rows start at the network image, as tddip() does (CG stops at a relative tolerance)
            x = pics(d.operator, d.kspace, regs, prior=(net, mu) if mu else None, x0=None if regs else net).image
            print(f"    {'tv + ' if regs else ''}dc μ {mu:g}: {mri_metrics(x, d.gt)['psnr']:.2f} / "
                  f"{mri_metrics(x, d.gt, roi)['psnr']:.2f} dB", flush=True)


def blend(d, net, roi, seed: int) -> None:
    """PSNR (FOV / ROI) of α·x_net + (1 − α)·x_tv over α, and the α the held-out samples choose: k-t TV solved on
    TDDIP's training samples (the same seeded split) is blended with the network image and scored on the held-out
    ones; the chosen α is then applied to k-t TV on all samples. Do the two priors' errors cancel?"""
    from deepprior.mri.common import split_kspace

    regs = kt_tv_terms()
    op, y = weighted(d)
    tv = pics(op, y, regs).image
    tr_op, y_tr, va_op, y_va, _ = split_kspace(d, 0.05, seed=seed + 11, dcf=True)  # tddip()'s split
    tv_tr = pics(tr_op, y_tr, regs).image
    norm = float(torch.linalg.vector_norm(y_va)) ** 2
    scores = {}
    for a in [i / 10 for i in range(11)]:
        scores[a] = float(torch.linalg.vector_norm(va_op(a * net + (1 - a) * tv_tr) - y_va)) ** 2 / norm
        x = a * net + (1 - a) * tv
        print(f"    blend α {a:.1f}: held-out {scores[a]:.3e}, {mri_metrics(x, d.gt)['psnr']:.2f} / "
              f"{mri_metrics(x, d.gt, roi)['psnr']:.2f} dB", flush=True)
    print(f"    held-out choice: α {min(scores, key=scores.get):.1f}", flush=True)


def replays(row: dict, patiences=(15, 30, 60)) -> str:
    """What the held-out rule would have delivered with shorter patiences on this run's score curve: the
    selected sweep and the network image's oracle PSNR there (the curve is the EMA, which is what is delivered)."""
    out = []
    psnr = dict(zip(row["oracle_iters"], row["curve"][1]))
    for pat in patiences:  # each with tddip()'s rule: not before the last learning-rate drop + the patience
        drop = row.get("last_lr_drop", 0)
        sel, fired = replay(row["stop_scores"], row["stop_iters"], pat, drop + pat if drop else 0)
        if sel is not None:
            out.append(f"p{pat}: {sel}{'' if fired is not None else '*'} {psnr[sel]:.2f}")
    best = max(psnr, key=psnr.get)
    return f"; replay {', '.join(out)}; oracle {best} {psnr[best]:.2f}"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, r in enumerate(x for x in rows if x.get("curve")):
        t, p = r["curve"]
        ax.plot(t, p, lw=1.2, color=f"C{i}", label=f"{r['method']} network (seed {r['seed']})")
        ax.plot([r["seconds"]], [r["psnr"]], "o", color=f"C{i}", ms=5)
    for r in (x for x in rows if x["method"] == "tv"):
        ax.axhline(r["psnr"], color="k", ls="--", lw=1)
        ax.plot([r["seconds"]], [r["psnr"]], "kx", ms=8)
    ax.plot([], [], "k--x", label="k-t TV (ADMM, tuned on R = 4) — the result")
    ax.plot([], [], "ko", ms=5, label="delivered (held-out choice; + data consistency with --dc)")
    ax.axvline(600, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="seconds (2-core CPU)", ylabel="PSNR [dB]", title="TDDIP against k-t TV")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def setting_loader(series, setting: str | None, accel: int, error):
    """(label, seeded loader, file tag) of OCMR k-t ``accel`` or of the first setting of bench/classical_tuned.py (or
    of its two tuning settings) whose label contains ``setting``; ``error(message)`` for none."""
    if not setting:
        return (f"OCMR k-t R={accel}", lambda seed: simulate(series, coils=8, seed=seed, pattern="kt-random", accel=accel,
                                                             center=8), f"R{accel}")
    from classical_tuned import settings  # bench/ is the script's directory, so on sys.path

    tests, tuning = settings(False)
    tuning = [("OCMR k-t R=4 (Cartesian tuning setting)", tuning["cartesian"], ""),
              ("OCMR radial 21 spokes (radial tuning setting)", tuning["radial"], "")]
    found = [(label, f) for label, f, _ in tests + tuning if setting.lower() in label.lower()]
    if not found:
        error(f"no setting matches {setting!r}")
    return (*found[0], "".join(c for c in setting if c.isalnum()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--accel", type=int, default=8)
    ap.add_argument("--setting", default=None,
                    help="instead of OCMR k-t --accel: the first setting of bench/classical_tuned.py whose label "
                         "contains this text (e.g. PINCAT, '4 coils', 'measured maps', 'R=16', '13 spokes'), or a "
                         "tuning setting ('21 spokes', 'R=4')")
    ap.add_argument("--methods", nargs="+", default=["tv", "tddip"])
    ap.add_argument("--json", default=None, help="rows (default bench/results/hybrid_R<accel>.json)")
    ap.add_argument("--plot", default=None, help="write the PSNR-against-seconds figure here (.png)")
    ap.add_argument("--dc-sweep", action="store_true", help="score dc weights and TV pulled to the network image")
    ap.add_argument("--blend", action="store_true", help="score blends of the network image with k-t TV's")
    ap.add_argument("--save-net", default=None,
                    help="torch.save {seed: {network_image, mu, method}} of the TDDIP rows here, to study the final "
                         "step without refitting")
    a = ap.parse_args()
    torch.set_num_threads(2)
    s = torch.from_numpy(abs(load_series(str(OCMR))))
    specs = [(m, *method_options(m)) for m in a.methods]
    rows, nets = [], {}
    label, load, tag = setting_loader(s, a.setting, a.accel, ap.error)
    print(f"setting: {label}")
    print("| seed | method | PSNR [dB] | ROI PSNR [dB] | SSIM | network PSNR [dB] (dc: chosen μ; fixed μ) | time [s] "
          "| delivered |\n"
          "|---|---|---|---|---|---|---|---|")
    for seed in a.seeds:
        d = load(seed)
        roi = motion_roi(d.gt)
        for spec, name, opts in specs:
            r = reconstruct(d, name, seed=seed, device="cpu", **opts)
            mr = mri_metrics(r.image, d.gt, roi)
            row = dict(seed=seed, method=spec, psnr=r.metrics["psnr"], roi_psnr=mr["psnr"], ssim=r.metrics["ssim"],
                       seconds=r.seconds, selected=r.selected_iter, iters=r.iters)
            net = ""
            if name == "tddip":
                row["network_psnr"] = mri_metrics(r.info["network_image"], d.gt)["psnr"]
                net = f"{row['network_psnr']:.2f}"
                row["dc_mu"] = r.info["dc"]
                if r.info.get("dc_scores"):
                    net += f", μ {r.info['dc'] or '∞'}"
                if r.info.get("dc_regs"):  # the same μ without the TV terms: the lever, side by side on one fit
                    x = dc_step(r.info["network_image"], *weighted(d), r.info["dc"])
                    row["plain_dc_psnr"], row["plain_dc_roi"] = mri_metrics(x, d.gt)["psnr"], mri_metrics(x, d.gt, roi)["psnr"]
                    row["dc_pull"] = r.info["dc_pull"]
                    net += f", tv + pull {r.info['dc_pull']:g} (without tv: {row['plain_dc_psnr']:.2f} / {row['plain_dc_roi']:.2f})"
                if not d.radial:  # the former fixed-weight step on the same network image, for comparison
                    x = dc_step(r.info["network_image"], d.operator, d.kspace, FIXED_DC)
                    row["fixed_dc_psnr"] = mri_metrics(x, d.gt)["psnr"]
                    net += f", μ {FIXED_DC:g}: {row['fixed_dc_psnr']:.2f}"
                times = r.history["time"]
                row["curve"] = [[times[i] for i in r.info["oracle_iters"]], r.info["oracle_psnr"]]
                where = f"sweep {r.info['selected_sweep']} of {r.info['sweeps']}"
                if r.info.get("time_limited") is not None:
                    where += f" (time limit {r.info['time_limit']:.0f} s)"
                if r.info.get("final_step_estimate") is not None:
                    where += (f", set-up {r.info['setup_seconds']:.0f} s, final step {r.info['final_step_seconds']:.0f} s "
                              f"(estimated {r.info['final_step_estimate']:.0f})")
                    row.update({k: r.info[k] for k in ("final_step_estimate", "final_step_seconds", "setup_seconds")})
                row.update(stop_scores=r.info["stop_scores"], stop_iters=r.info["stop_iters"],
                           oracle_iters=r.info["oracle_iters"], last_lr_drop=r.info["last_lr_drop"],
                           fit_seconds=r.history["time"][-1], time_limited=r.info.get("time_limited"),
                           dc_scores={str(k): v for k, v in (r.info.get("dc_scores") or {}).items()})
                where += replays(row)
            else:
                where = f"{r.iters} ADMM iterations"
            rows.append(row)
            if name == "tddip" and a.save_net:
                nets[seed] = {"network_image": r.info["network_image"], "mu": r.info["dc"], "method": spec}
                torch.save(nets, a.save_net)
            if name == "tddip" and a.dc_sweep:
                dc_sweep(d, r.info["network_image"], roi)
            if name == "tddip" and a.blend:
                blend(d, r.info["network_image"], roi, seed)
            print(f"| {seed} | {spec} | {row['psnr']:.2f} | {mr['psnr']:.2f} | {row['ssim']:.4f} | {net} | "
                  f"{r.seconds:.0f} | {where} |", flush=True)
    print("\n| method | PSNR mean ± sd | ROI PSNR mean ± sd | margin over tv, mean ± sd (per seed) |\n|---|---|---|---|")
    tv = {r["seed"]: r for r in rows if r["method"] == "tv"}
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
    for spec, _, _ in specs:
        mine = [r for r in rows if r["method"] == spec]
        p, q = [r["psnr"] for r in mine], [r["roi_psnr"] for r in mine]
        m = [r["psnr"] - tv[r["seed"]]["psnr"] for r in mine if r["seed"] in tv]
        mq = [r["roi_psnr"] - tv[r["seed"]]["roi_psnr"] for r in mine if r["seed"] in tv]
        margin = f"{statistics.mean(m):+.2f} ± {sd(m):.2f} (ROI {statistics.mean(mq):+.2f} ± {sd(mq):.2f})" if m else "—"
        print(f"| {spec} | {statistics.mean(p):.2f} ± {sd(p):.2f} | {statistics.mean(q):.2f} ± {sd(q):.2f} | {margin} |")
    out = Path(a.json or Path(__file__).parent / "results" / f"hybrid_{tag}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    if a.plot:
        plot(rows, Path(a.plot))


if __name__ == "__main__":
    main()
