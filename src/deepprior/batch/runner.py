"""The driver: expand the inputs into items, skip what is done, hand the rest to Ray (an embedded local instance, or
the cluster at ``--ray-address``/``RAY_ADDRESS``), record every finished item in ``OUTDIR/manifest.jsonl`` as it
arrives, stack per-slice results into volumes, and print one summary table.

Only file names travel to workers and rows come back: inputs and outputs move through the filesystem, which a
cluster's nodes must share.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import ConfigError, InputError
from .items import IMAGE_EXTS, expand_inputs, make_items, option_argv
from .manifest import append_row, read_manifest
from .worker import PARTIAL, Job, command_for, command_params, item_argv, one_line, run_group, run_job

# Task options the batch sets per item (or replaces with its own), and what to use instead.
RESERVED = {"output": "-o OUTDIR", "seed": "--seed (each item's seed derives from it)", "overwrite": "--force",
            "resume": "a plain rerun (it resumes from checkpoints by itself)", "checkpoint-every": "--checkpoint-every",
            "plot": "the single-item command", "figure": "the single-item command", "save-every": "the single-item command",
            "gif": "the single-item command", "montage": "the single-item command", "slice": "--per-slice",
            "quiet": "-q"}


def split_args(task: str, args: list[str]) -> tuple[list[str], list[str]]:
    """Command-line tokens after TASK → (inputs, task options), using the task command's own option table to tell
    an option's value from an input."""
    cmd = command_for(task)
    takes_value, long_of = {}, {}
    for p in cmd.params:
        if isinstance(p, click.Option):
            for s in (*p.opts, *p.secondary_opts):
                takes_value[s] = not p.is_flag
                long_of[s] = max(p.opts, key=len).lstrip("-")
    inputs, opts, i = [], [], 0
    while i < len(args):
        a = args[i]
        name = a.split("=", 1)[0]
        if not (a.startswith("-") and len(a) > 1):
            inputs.append(a)
            i += 1
            continue
        if name not in takes_value:
            raise InputError(f"{a}: no such option for batch {task} (see 'deepprior {_cmd_name(task)} --help')")
        if long_of[name] in RESERVED:
            raise InputError(f"{name} is set per item by the batch; use {RESERVED[long_of[name]]}")
        n = 2 if takes_value[name] and "=" not in a else 1
        if i + n > len(args):
            raise InputError(f"{name} needs a value")
        opts += args[i:i + n]
        i += n
    return inputs, opts


def _cmd_name(task: str) -> str:
    return "mri recon" if task == "mri-recon" else task


def _validate(task: str, first_input: str, argv: list[str]) -> dict:
    """Parse the shared task options once on the driver (bad values stop here, before any worker starts)."""
    cmd = command_for(task)
    ctx = cmd.make_context(_cmd_name(task), [first_input, *argv, "-o", "unused.png"], resilient_parsing=False)
    return ctx.params


def _pin_device(argv: list[str], params: dict, gpus_per_task: float) -> tuple[list[str], float]:
    """Every worker gets the same device, chosen here: ``cuda`` when GPUs are requested per task (or asked for),
    else ``cpu`` — so that ``auto`` cannot pick different presets on different nodes."""
    dev = params.get("device", "auto")
    if dev == "cuda" and gpus_per_task <= 0:
        gpus_per_task = 1.0
    dev = "cuda" if gpus_per_task > 0 else "cpu"
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--device":
            skip = True
            continue
        if a.startswith("--device="):
            continue
        out.append(a)
    return [*out, "--device", dev], gpus_per_task


def _ray(address: str | None, workers: int | None, cpus_per_task: float):
    try:
        import ray
    except ImportError:
        raise ConfigError("deepprior batch runs on Ray, which is not installed: pip install 'deepprior[batch]'") from None

    if ray.is_initialized():
        return ray, False
    address = address or os.environ.get("RAY_ADDRESS")
    kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address:
        try:
            ray.init(address=address, **kw)
        except Exception as e:  # noqa: BLE001 - an unreachable cluster is a one-line error
            raise InputError(f"cannot connect to the Ray cluster at {address}: {one_line(e)}") from None
    else:
        cpus = (workers or max(1, int((os.cpu_count() or 1) // max(cpus_per_task, 1)))) * cpus_per_task
        ray.init(address="local", num_cpus=cpus, **kw)  # never join a cluster by accident
    return ray, True


def run(inputs, *, task: str, outdir, seed: int = 0, workers: int | None = None, ray_address: str | None = None,
        gpus_per_task: float = 0.0, cpus_per_task: float = 1.0, group: bool = False, group_size: int = 8,
        force: bool = False, per_slice: bool = False, ext: str | None = None, checkpoint_every: int | None = None,
        progress: bool = False, task_argv: list[str] | None = None, **options) -> list[dict]:
    """Run ``task`` on every input (files, globs, CSV/JSONL manifests) and return this run's manifest rows.

    ``options``: the task command's options by name (``preset="fast"``, ``iters=100``, ``sigma=25``), or
    ``task_argv`` in command-line form. Results go to ``OUTDIR/<stem><ext>``; rows are appended to
    ``OUTDIR/manifest.jsonl``; items done before (output and ``ok`` row) are skipped unless ``force``.

    >>> import numpy as np, tempfile, os
    >>> from deepprior.io import save_image
    >>> d = tempfile.mkdtemp()
    >>> save_image(os.path.join(d, "a.png"), np.full((16, 16, 1), 0.5))
    >>> rows = run([os.path.join(d, "a.png")], task="denoise", outdir=os.path.join(d, "out"), preset="fast",
    ...            iters=3, stop="none", workers=1)  # doctest: +SKIP
    """
    from .stack import stack_volumes

    outdir = Path(outdir)
    cmd = command_for(task)
    params = command_params(cmd)
    argv = list(task_argv or []) + option_argv(options, params)
    rows_in = expand_inputs([str(i) for i in inputs])
    _, argv = split_args(task, argv)
    params_parsed = _validate(task, rows_in[0]["input"], argv)
    argv, gpus_per_task = _pin_device(argv, params_parsed, gpus_per_task)
    if group and (task == "mri-recon" or params_parsed.get("method", "dip") != "dip"):
        raise ConfigError("--group fits several restoration images in one batched DIP fit; it needs method dip")
    if per_slice and task != "mri-recon":
        raise ConfigError("--per-slice applies to batch mri-recon")
    slices = None
    if per_slice:
        from ..mri.io import open_slices

        slices = {}
        for r in rows_in:
            try:
                slices[r["name"]] = open_slices(r["input"])[0]
            except Exception:  # noqa: BLE001 - unreadable: one item that fails with the reader's own error
                slices[r["name"]] = 1
    items = make_items(rows_in, seed, slices)
    ext = ext or (".h5" if task == "mri-recon" else ".png")
    if not ext.startswith("."):
        ext = "." + ext
    if task != "mri-recon" and ext.lower() not in IMAGE_EXTS:
        raise InputError(f"--ext {ext}: restoration outputs are {', '.join(IMAGE_EXTS)}")
    (outdir / PARTIAL).mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint_every
    if task == "mri-recon" and params_parsed.get("method") not in ("dip", "tddip", "gip"):
        ckpt = None  # the other MRI methods do not checkpoint: a retried item starts over
    jobs = [Job(task, it, argv, str(outdir), ".npy" if it.slice is not None else ext, ckpt) for it in items]
    done = read_manifest(outdir)
    todo = []
    for job in jobs:
        prev = done.get(job.item.name)
        if force:
            for p in (job.partial, job.partial.with_name(job.partial.name + ".ckpt")):
                p.unlink(missing_ok=True)
        elif prev and prev.get("status") == "ok" and job.final.exists():
            continue
        todo.append(job)
    rows = _schedule(todo, outdir, workers, ray_address, gpus_per_task, cpus_per_task, group, group_size, progress)
    if per_slice:
        rows += stack_volumes(jobs, rows_in, outdir, ext, force)
    return rows


def _groups(jobs: list[Job], size: int) -> tuple[list[list[Job]], list[dict]]:
    """Same-shape items in groups of at most ``size`` (shapes read on the driver; unreadable items fail here)."""
    from ..cli.images import prepare

    cmd = command_for(jobs[0].task)
    params = command_params(cmd)
    by_shape: dict[tuple, list[Job]] = {}
    failed = []
    for job in jobs:
        try:
            p = prepare(cmd, item_argv(job, params)[0]).problem
            by_shape.setdefault((tuple(p.y.shape), p.out_hw, p.channels), []).append(job)
        except Exception as e:  # noqa: BLE001
            failed.append({"name": job.item.name, "input": job.item.input, "output": str(job.final),
                           "seed": job.item.seed, "status": "failed", "error": one_line(e)})
    groups = [g[i:i + size] for g in by_shape.values() for i in range(0, len(g), size)]
    return groups, failed


def _schedule(todo, outdir, workers, address, gpus, cpus, group, group_size, progress) -> list[dict]:
    rows: list[dict] = []
    if not todo:
        return rows
    units: list[list[Job]] = [[j] for j in todo]
    if group:
        units, failed = _groups(todo, group_size)
        for r in failed:
            append_row(outdir, r)
        rows += failed
    ray, own = _ray(address, workers, cpus)
    threads = max(1, int(cpus))
    try:
        single = ray.remote(run_job).options(num_cpus=cpus, num_gpus=gpus, max_retries=3, retry_exceptions=False)
        grouped = ray.remote(run_group).options(num_cpus=cpus, num_gpus=gpus, max_retries=3, retry_exceptions=False)
        pending = {(grouped.remote(u, threads) if len(u) > 1 else single.remote(u[0], threads)): u for u in units}
        bar = _Bar(sum(len(u) for u in units), progress)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            for ref in ready:
                unit = pending.pop(ref)
                try:
                    out = ray.get(ref)
                    out = out if isinstance(out, list) else [out]
                except Exception as e:  # noqa: BLE001 - a worker that died past its retries
                    out = [{"name": j.item.name, "input": j.item.input, "output": str(j.final), "seed": j.item.seed,
                            "status": "failed", "error": one_line(e)} for j in unit]
                for r in out:
                    append_row(outdir, r)
                rows += out
            bar.update(rows, len(pending))
        bar.close()
    finally:
        if own:
            ray.shutdown()
    return rows


class _Bar:
    """One overall bar: items done / failed / running and the ETA."""

    def __init__(self, total: int, show: bool):
        self.progress = None
        if show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeRemainingColumn(), console=Console(stderr=True))
            self.progress.start()
            self.task = self.progress.add_task("batch", total=total)

    def update(self, rows, running_units):
        if self.progress is None:
            return
        ok = sum(r["status"] == "ok" for r in rows)
        bad = len(rows) - ok
        self.progress.update(self.task, completed=len(rows),
                             description=f"done {ok} · failed {bad} · running {running_units}")

    def close(self):
        if self.progress is not None:
            self.progress.stop()
