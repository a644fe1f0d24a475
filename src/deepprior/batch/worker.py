"""What runs on a worker: one item through the task's own command (same options, same loading, same output), or a
group of same-size items through one batched fit. Nothing here knows about Ray, so a job runs the same in a Ray
worker, in a test or in a debugger.

Outputs are written under ``OUTDIR/.partial`` and renamed into ``OUTDIR`` when complete (one filesystem: the
rename is atomic). A checkpoint next to the partial output survives a killed worker; the retry resumes from it.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import click

from ..errors import DeeppriorError, InputError
from .items import Item

PARTIAL = ".partial"


@dataclass
class Job:
    """An item and everything needed to run it: the task, the task options shared by all items, where to write."""

    task: str
    item: Item
    argv: list[str]  # shared task options (command-line form), device pinned by the driver
    outdir: str
    ext: str
    checkpoint_every: int | None = None

    @property
    def partial(self) -> Path:
        return Path(self.outdir) / PARTIAL / f"{self.item.name}{self.ext}"

    @property
    def final(self) -> Path:
        return self.item.output(Path(self.outdir), self.ext)


def command_for(task: str) -> click.Command:
    """The click command a batch task runs (``mri-recon`` → ``deepprior mri recon``)."""
    from ..cli import images
    from ..cli.mri import mri_recon

    table = {"denoise": images.denoise, "inpaint": images.inpaint, "superres": images.superres,
             "deblur": images.deblur, "jpeg": images.jpeg, "mri-recon": mri_recon}
    if task not in table:
        raise InputError(f"unknown batch task {task!r}; choose one of {', '.join(table)}")
    return table[task]


def one_line(e: BaseException) -> str:
    """An error as the one line the manifest records."""
    msg = e.format_message() if isinstance(e, click.ClickException) else str(e)
    first = (msg.strip().splitlines() or [""])[0]
    return first if isinstance(e, (DeeppriorError, click.ClickException)) else f"{type(e).__name__}: {first}"


def _set_threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(max(1, int(threads)))


def _marker(job: Job) -> tuple[Path, int]:
    """Record that this process runs the item (pid, host, attempt): a retry after a killed worker counts up."""
    m = job.partial.with_name(job.item.name + ".running")
    attempt = 1
    if m.exists():
        try:
            attempt = int(json.loads(m.read_text()).get("attempt", 0)) + 1
        except (ValueError, OSError):
            attempt = 2
    m.parent.mkdir(parents=True, exist_ok=True)
    m.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "attempt": attempt}))
    return m, attempt


def item_argv(job: Job, params: dict) -> tuple[list[str], bool]:
    """The command line that runs ``job`` (without the program name), and whether it resumes a checkpoint."""
    from .items import option_argv

    it = job.item
    argv = [it.input, *job.argv, *option_argv(it.options, params), "-o", str(job.partial), "--seed", str(it.seed), "-q"]
    if it.slice is not None:
        argv += ["--slice", str(it.slice)]
    ck = job.partial.with_name(job.partial.name + ".ckpt")
    resume = bool(job.checkpoint_every) and ck.is_file()
    if job.checkpoint_every:
        argv += ["--checkpoint-every", str(job.checkpoint_every)]
    argv += ["--resume"] if resume else ["--overwrite"]
    return argv, resume


def command_params(cmd: click.Command) -> dict:
    """Option name → (its long flag, is_flag) for a command: how manifest columns become arguments."""
    out = {}
    for p in cmd.params:
        if isinstance(p, click.Option):
            flag = max(p.opts, key=len)
            out[flag.lstrip("-")] = (flag, bool(p.is_flag))
    return out


def run_job(job: Job, threads: int | None = None) -> dict:
    """Run one item; return its manifest row (status ``ok`` or ``failed`` with a one-line error). Never raises for
    a bad item: the batch goes on."""
    import time

    _set_threads(threads)
    row = {"name": job.item.name, "input": job.item.input, "output": str(job.final), "seed": job.item.seed,
           "host": socket.gethostname(), **({"slice": job.item.slice} if job.item.slice is not None else {})}
    t0 = time.perf_counter()
    marker, attempt = _marker(job)
    row["attempt"] = attempt
    try:
        cmd = command_for(job.task)
        argv, row["resumed"] = item_argv(job, command_params(cmd))
        summary = cmd.main(args=argv, standalone_mode=False)
        os.replace(job.partial, job.final)
        ck = job.partial.with_name(job.partial.name + ".ckpt")
        ck.unlink(missing_ok=True)
        row.update(status="ok", **(summary if isinstance(summary, dict) else {}))
    except Exception as e:  # noqa: BLE001 - recorded, the batch goes on (click's Exit/Abort are Exceptions too)
        job.partial.unlink(missing_ok=True)
        row.update(status="failed", error=one_line(e))
    row["wall_seconds"] = round(time.perf_counter() - t0, 3)
    marker.unlink(missing_ok=True)
    return row


def run_group(jobs: list[Job], threads: int | None = None) -> list[dict]:
    """Fit same-size restoration items together in one batched fit (:func:`deepprior.tasks.solve_many`): one fit
    of N-times-wider layers, the preset's iterations for all (no per-item stopping)."""
    import time

    from ..cli.images import prepare, save_restored
    from ..fit import resolve_device
    from ..tasks import default_preset, solve_many

    _set_threads(threads)
    t0 = time.perf_counter()
    cmd = command_for(jobs[0].task)
    params = command_params(cmd)
    rows: dict[str, dict] = {}
    prepared, ok = [], []
    for job in jobs:
        row = rows[job.item.name] = {"name": job.item.name, "input": job.item.input, "output": str(job.final), "seed": job.item.seed,
               "host": socket.gethostname(), "group": len(jobs), "attempt": 1}
        try:
            prepared.append(prepare(cmd, item_argv(job, params)[0]))
            ok.append(job)
        except Exception as e:  # noqa: BLE001
            row.update(status="failed", error=one_line(e))
    if prepared:
        o = prepared[0].options
        try:
            dev = resolve_device(o["device"])
            preset = o.get("preset") or default_preset(prepared[0].problem, dev)
            overrides = {k: o[k] for k in ("iters", "lr", "net", "code", "reg_noise_std") if o.get(k) is not None}
            res = solve_many([p.problem for p in prepared], preset=preset, seeds=[j.item.seed for j in ok],
                             device=o["device"], **overrides)
            for job, p, r in zip(ok, prepared, res, strict=True):
                save_restored(job.partial, r.image, p.alpha, p.bit_depth)
                os.replace(job.partial, job.final)
                rows[job.item.name].update(status="ok", preset=preset, iterations=r.fit.iters_run,
                                           seconds=round(r.fit.seconds / len(ok), 3),
                                           **{k: round(float(v), 4) for k, v in r.metrics.items()
                                              if k in ("psnr", "ssim")})
        except Exception as e:  # noqa: BLE001
            for job in ok:
                rows[job.item.name].update(status="failed", error=one_line(e))
    wall = round(time.perf_counter() - t0, 3)
    for row in rows.values():
        row["wall_seconds"] = wall
    return list(rows.values())
