"""Graph Image Prior (GIP; Zhongsen Li et al., arXiv 2403.15770) for dynamic cine MRI, vectorised.

Two stages make the parameterization f_θ (nothing is pre-trained on other data):

1. **Per-frame generators**: ``T`` independent CNNs on one shared fixed random code recover each
   frame's features. All branches run as *one* grouped convolution network (``groups = T``), so a
   forward pass has no Python loop over frames.
2. **Graph neural network over frames**: node = frame; a graph of ``K`` nearest neighbours (self
   included) in a feature space of (frame − temporal mean); an aggregate layer (a 3×3 conv per
   (node, neighbour slot), mean over neighbours, ELU, BatchNorm), an update layer, two residual conv
   blocks per frame and a shared 1×1 conv to (real, imag). The per-(node, slot) convolutions and the
   mean over slots are one grouped convolution over the gathered neighbour features: the sum of K
   convolutions is the convolution of their channel-concatenated inputs.

The reference's frame-and-neighbour Python loops are kept as :meth:`GIPNet.forward_loop` (same
weights, same outputs) for verification and the speed comparison.

The fit runs the reference schedule through the shared fit loop — per-frame CNNs alone, then the
GNN with the CNNs frozen, then everything jointly with the graph frozen part-way — and then
:func:`~deepprior.mri.admm.admm` (network prior + exact data consistency).
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

from ..errors import ConfigError
from ..fit import Callback, FitConfig, FitState, fit, resolve_device
from ..fit.stopping import Holdout
from ..nets.gip import GIPNet
from ..params import Parameterization
from ..presets import resolve
from .admm import admm
from .common import MRIOracle, check_network_memory, image_on_interrupt, kspace_scale, split_kspace, support
from .data import MRIData
from .gramloss import data_term
from .metrics import mri_psnr
from .operators import ChannelsToComplex

STOPS = ("holdout", "none")  # the rules GIP can stop by


class GIP(Parameterization):
    """``x = GIPNet(z)`` with the fixed shared code ``z``; ``stage`` = ``'cnn'`` (per-frame heads) or
    ``'gnn'`` (the full network). Output ``(T, 2, H, W)``."""

    def __init__(self, net: GIPNet, z: Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("z", z)
        self.out_hw = net.hw
        self.stage = "gnn"

    def forward(self, perturb: bool = True) -> Tensor:
        return self.net(self.z, stage=self.stage)

    def freeze_graph(self) -> None:
        with torch.no_grad():
            self.net.nn_idx = self.net.graph(self.net.features(self.z).reshape(self.net.frames, self.net.ch, *self.net.hw))


def scaled_schedule(p: dict, iters: int | None) -> tuple[list[tuple[str, int, float]], dict]:
    """Scale the stages and ADMM's network steps in proportion so that they total ``iters`` (ADMM keeps its
    outer-iteration count; every count stays ≥ 1)."""
    stages = [(s, int(n), float(lr)) for s, n, lr in p["stages"]]
    a = dict(p["admm"])
    total = sum(n for _, n, _ in stages) + a["outer"] * a["net_steps"]
    n = iters if iters is not None else p.get("iters", total)
    if n < 1:
        raise ConfigError(f"iters must be ≥ 1, got {n}")
    f = n / total
    stages = [(s, max(1, round(k * f)), lr) for s, k, lr in stages]
    a["net_steps"] = max(1, round(a["net_steps"] * f))
    return stages, a


def _phase(callbacks, name: str | None, total: int = 0) -> None:
    """Tell progress bars that a named phase of ``total`` steps begins (``name=None``: it ended)."""
    for cb in callbacks:
        if name is None and hasattr(cb, "end_phase"):
            cb.end_phase()
        elif name is not None and hasattr(cb, "begin_phase"):
            cb.begin_phase(name, total)


class _FreezeGraph(Callback):
    def __init__(self, param: GIP, at: int):
        self.param, self.at = param, at

    def on_step_end(self, state: FitState) -> None:
        if state.it + 1 == self.at and self.param.net.nn_idx is None:
            self.param.freeze_graph()


def gip(data: MRIData, *, preset: str | dict | None = None, iters: int | None = None, stop: str = "holdout",
        holdout: float = 0.05, seed: int = 0, ref: Tensor | None = None, callbacks=(), device="auto",
        admm_stage: bool = True, log=None, checkpoint=None, checkpoint_every: int = 0,
        resume=None, gram: bool = True) -> tuple[Tensor, dict]:
    """Reconstruct a dynamic Cartesian or radial series with GIP: the staged pretraining, then ADMM.

    Returns the complex series ``(T, H, W)`` (ADMM's data-consistent X; the pretrained network's output
    when ``admm_stage=False``) and an info dict with per-stage times and, with ``ref``, oracle metrics
    (diagnostics only; ``pretrained`` holds the network output after pretraining). Most users call
    :func:`deepprior.mri.reconstruct` (``method='gip'``).
    ``preset``: ``'gip-cpu'`` (default, as on the command line), ``'gip'`` (the reference schedule, a GPU
    setting) or a dict. ``stop='holdout'`` holds out ``holdout`` of the acquired samples: the joint stage
    delivers its best held-out iterate and ADMM its best outer iteration. ``iters`` scales the whole schedule.
    ``checkpoint``: write the run's state there (atomically) at the end of each stage and of each ADMM outer
    iteration, at least ``checkpoint_every`` network steps apart; ``resume``: continue such a run from its last
    boundary — ending, on CPU, with the same image as an uninterrupted run (a stage cut short is redone).
    ``gram``: radial data's term in the network stages through the Toeplitz gram
    (:class:`~deepprior.mri.gramloss.GramMisfit`, no NUFFT per step); False: through the NUFFT pair.

    >>> from deepprior.mri.data import simulate
    >>> from deepprior.presets import get_preset
    >>> d = simulate(torch.rand(3, 16, 16), coils=2, accel=2, center=4, seed=0)
    >>> p = {**get_preset("gip-cpu", "gip"), "ch": 4, "k": 2}
    >>> x, info = gip(d, preset=p, iters=40, stop="none", device="cpu")  # 40k reference steps scaled by 1/1000
    >>> tuple(x.shape), [s["steps"] for s in info["stages"]]
    ((3, 16, 16), [10, 5, 15, 20])
    """
    if stop not in STOPS:
        raise ConfigError(f"unknown stop rule {stop!r} for GIP; choose one of {', '.join(STOPS)}")
    p = resolve(preset, "gip")[1]
    stages, a = scaled_schedule(p, iters)
    dev = resolve_device(device)
    data = data.to(dev)
    t = data.frames
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = GIPNet(t, data.shape, ch=p["ch"], ch_z=p["ch_z"], z_size=p["z_size"], k=p["k"])
        z = torch.rand(1, p["ch_z"], p["z_size"], p["z_size"]) * 0.1
    param = GIP(net, z).to(dev)
    check_network_memory(param, data, dev, what="GIP")
    c2c = ChannelsToComplex(frames=t)
    if stop == "holdout":
        tr_op, y_tr, va_op, y_va, count = split_kspace(data, holdout, seed=seed + 11)
    else:
        tr_op, y_tr = data.operator, data.kspace
    with torch.no_grad():
        param.stage = "cnn"
        scale = kspace_scale(param(), data)
    y = y_tr * scale
    # radial: through the Toeplitz gram — every network step fits all frames, where the NUFFT pair costs most
    op, target = data_term(tr_op, y, c2c, gram)
    where = support(data)  # the maps' null space stays 0 (see common.support)
    to_image = lambda x: c2c(x) / scale * where  # noqa: E731
    info: dict = {"method": "gip", "stages": [], "scale": scale, "params": sum(q.numel() for q in param.parameters())}
    t0 = time.perf_counter()
    fp = {"preset": p, "iters": iters, "stop": stop, "holdout": holdout, "seed": seed, "shape": [t, *data.shape],
          "admm_stage": admm_stage}
    ck = _resume_state(resume, fp, param) if resume is not None else {"stages_done": 0}
    info["stages"] = list(ck.get("stages", []))
    selected = ck.get("selected")
    saver = _Saver(checkpoint, checkpoint_every, fp)
    for i, (name, steps, lr) in enumerate(stages):
        if i < ck["stages_done"]:
            continue
        param.stage = "cnn" if name == "cnn" else "gnn"
        for q in net.parameters():
            q.requires_grad_(True)
        if name == "gnn":  # the per-frame CNNs are frozen while the graph network learns
            for m in (net.stem, net.blocks, net.head):
                for q in m.parameters():
                    q.requires_grad_(False)
        cbs = list(callbacks)
        stopper = None
        if name == "joint":
            cbs.append(_FreezeGraph(param, max(1, round(p["freeze_graph_at"] * steps))))
            if stop == "holdout":
                stopper = Holdout(va_op @ c2c, y_va * scale, every=max(1, steps // 50),
                                  patience=max(1, steps // 5), count=count)
                cbs.insert(0, stopper)
        oracle = MRIOracle(ref.to(dev), to_image, every=max(1, steps // 50)) if ref is not None else None
        if oracle is not None:
            cbs.append(oracle)
        _phase(callbacks, f"gip {name}", steps)
        cfg = FitConfig(iters=steps, lr=lr, betas=tuple(p["betas"]), ema=None, backtrack=True,
                        backtrack_every=max(1, min(100, steps // 10)))
        s0 = time.perf_counter()
        with image_on_interrupt(to_image):
            res = fit(param, op, target, cfg, callbacks=cbs)
        rec = {"stage": name, "steps": res.iters_run, "lr": lr, "seconds": time.perf_counter() - s0}
        if stopper is not None:
            rec.update(selected=res.selected_iter, fired_at=stopper.fired_at)
        if oracle is not None:
            rec.update(oracle_best_iter=oracle.best_iter, oracle_best_psnr=oracle.best_psnr)
        info["stages"].append(rec)
        if log:
            log(rec)
        selected = res.selected
        saver.step(res.iters_run, lambda i=i, sel=selected: {"stages_done": i + 1, "param": param.state_dict(),
                                                             "nn_idx": net.nn_idx, "stages": info["stages"],
                                                             "selected": sel})
    param.stage = "cnn" if stages[-1][0] == "cnn" else "gnn"  # as the last stage left it (a resume may skip all)
    if net.nn_idx is None:
        param.freeze_graph()
    with torch.no_grad():
        # after pretraining: the held-out-selected iterate of the joint stage, else the network's output
        pre = ck["pre"] if "pre" in ck else to_image(selected if selected is not None else param()).detach().cpu()
    info["pretrained"] = pre
    info["graph"] = net.nn_idx.cpu().tolist()
    info["pretrain_seconds"] = time.perf_counter() - t0
    x = pre
    if admm_stage:
        admm_log: list[float] = list(ck.get("admm_log", []))
        pretrain = {"stages_done": len(stages), "nn_idx": net.nn_idx, "stages": info["stages"], "pre": pre}

        def on_outer(k, xk, gk):
            if ref is not None:
                admm_log.append(mri_psnr(xk / scale, ref))

        def on_state(st):
            saver.step(a["net_steps"], lambda: {**pretrain, "admm": st, "admm_log": admm_log})

        cfg, val = FitConfig(betas=tuple(p["betas"])), (va_op, y_va * scale) if stop == "holdout" else None
        _phase(callbacks, "gip admm", a["outer"] * a["net_steps"])
        s0 = time.perf_counter()
        with image_on_interrupt(to_image):
            r = admm(param, tr_op, y, rho=a["rho"], outer=a["outer"], cg_iters=a["cg_iters"], net_steps=a["net_steps"],
                     net_lr=a["net_lr"], net_config=cfg, val=val, on_outer=on_outer, callbacks=callbacks,
                     on_state=on_state if checkpoint is not None else None, start=ck.get("admm"))
        _phase(callbacks, None)  # close the ADMM bar (held-out stopping may end it early)
        x = (r.x / scale * where).detach().cpu()
        rec = {"stage": "admm", "steps": r.outer_run * a["net_steps"], "outer": r.outer_run, "selected": r.selected,
               "seconds": time.perf_counter() - s0, "val_loss": r.val_loss, "oracle_psnr": admm_log}
        info["stages"].append(rec)
        if log:
            log(rec)
    info["seconds"] = time.perf_counter() - t0
    return x, info


class _Saver:
    """Writes GIP's checkpoint at phase boundaries, at least ``every`` network steps apart."""

    def __init__(self, path, every: int, fingerprint: dict):
        self.path, self.every, self.fp, self.since = path, max(0, int(every or 0)), fingerprint, 0

    def step(self, steps: int, state) -> None:
        self.since += steps
        if self.path is None or self.since < self.every:
            return
        from ..fit.checkpoint import atomic_save

        atomic_save({"format": GIP_FORMAT, "fingerprint": self.fp, "rng": torch.get_rng_state(), **state()}, self.path)
        self.since = 0


GIP_FORMAT = "deepprior-gip-1"


def _resume_state(path, fp: dict, param: GIP) -> dict:
    """Read a GIP checkpoint of the same run and put the network back as it was at that boundary."""
    from ..fit.checkpoint import load_checkpoint

    ck = load_checkpoint(path, GIP_FORMAT)
    if ck["fingerprint"] != fp:
        raise ConfigError("the checkpoint belongs to a different run (other settings or data); resume with the same "
                          "command and options")
    dev = param.z.device
    if ck.get("nn_idx") is not None:
        param.net.nn_idx = ck["nn_idx"].to(dev)  # a buffer that is None until the graph freezes
    if "param" in ck:
        param.load_state_dict(ck["param"])
    torch.set_rng_state(ck["rng"])
    return ck
