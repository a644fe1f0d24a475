"""What a batch is made of: items (one input, or one slice of one input, with its own options and seed), expanded
from files, globs or a CSV/JSONL manifest, and the command line that runs each one.

An item's seed is a hash of ``--seed`` and the item's name, so that a result depends neither on the worker that
ran it nor on the order: ``deepprior <task> INPUT --seed <seed>`` with the recorded seed reproduces it.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

# Extensions a task's output gets in OUTDIR (restoration: the input's own format when it can be written).
IMAGE_EXTS = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
MANIFEST_EXTS = (".csv", ".jsonl")


@dataclass
class Item:
    """One unit of work. ``name`` is unique within the batch and names the output (``OUTDIR/<name><ext>``)."""

    name: str
    input: str
    options: dict = field(default_factory=dict)  # per-item options: CLI option name (no dashes) → value
    seed: int = 0
    slice: int | None = None
    file: str | None = None  # per-slice items: the name of the file whose volume they stack into

    def output(self, outdir: Path, ext: str) -> Path:
        return Path(outdir) / f"{self.name}{ext}"


def item_seed(base: int, name: str) -> int:
    """The seed of item ``name`` in a batch run with ``--seed base``: stable across machines and runs.

    >>> item_seed(0, "img01") == item_seed(0, "img01") != item_seed(1, "img01")
    True
    """
    h = hashlib.sha256(f"{base}:{name}".encode()).digest()
    return int.from_bytes(h[:4], "little") % (2**31 - 1)


def _read_manifest(path: Path) -> list[dict]:
    """Rows of a CSV (header row; an ``input`` column) or JSONL (one object per line) manifest. Relative paths in
    it are taken relative to the manifest's folder."""
    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(f"cannot read manifest {path}: {e.strerror or e}") from None
    if path.suffix.lower() == ".csv":
        rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(text.splitlines())]
        rows = [{k: v for k, v in r.items() if v != ""} for r in rows]
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}, line {n}: not JSON ({e.msg}); one object per line, e.g. "
                                 '{"input": "a.png", "mask": "a_mask.png"}') from None
            if not isinstance(r, dict):
                raise InputError(f"{path}, line {n}: expected an object with an \"input\" key")
            rows.append(r)
    for n, r in enumerate(rows, 1):
        if "input" not in r:
            raise InputError(f"{path}, row {n}: no \"input\" (every row names its input file)")
        for k, v in list(r.items()):  # file-valued options are relative to the manifest
            if isinstance(v, str) and k in ("input", "mask", "gt", "kernel", "maps") and not Path(v).is_absolute():
                r[k] = str(path.parent / v)
    return rows


def expand_inputs(inputs: list[str]) -> list[dict]:
    """Files, globs and manifests (``.csv``/``.jsonl``) → rows ``{"input": path, **options}``, in the order given.

    A glob that matches nothing, a missing file or a duplicate stem is an :class:`InputError`.
    """
    rows: list[dict] = []
    for arg in inputs:
        p = Path(arg)
        if p.suffix.lower() in MANIFEST_EXTS and p.is_file():
            rows += _read_manifest(p)
        elif any(c in arg for c in "*?["):
            hits = sorted(glob.glob(arg, recursive=True))
            if not hits:
                raise InputError(f"{arg}: the pattern matches no file (quote it so the shell does not expand it)")
            rows += [{"input": h} for h in hits if Path(h).is_file()]
        else:
            if not p.exists():
                raise InputError(f"{arg}: no such file")
            rows.append({"input": arg})
    if not rows:
        raise InputError("no inputs: give files, globs or a .csv/.jsonl manifest")
    seen: dict[str, str] = {}
    for r in rows:
        stem = stem_of(r["input"])
        r.setdefault("name", stem)
        if r["name"] in seen:
            raise InputError(f"{r['input']} and {seen[r['name']]} would both write OUTDIR/{r['name']}.*; give "
                             "them different names (a manifest's \"name\" column)")
        seen[r["name"]] = r["input"]
    return rows


def stem_of(path: str) -> str:
    """``a/b/photo.png`` → ``photo``; ``study.nii.gz`` → ``study``."""
    name = Path(path).name
    for ext in (".nii.gz", ".tar.gz"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return Path(name).stem


def make_items(rows: list[dict], seed: int, slices: dict[str, int] | None = None) -> list[Item]:
    """One item per row, or with ``slices`` (name → slice count) one per slice, named ``<stem>_slice<k>``."""
    items = []
    for r in rows:
        opts = {k: v for k, v in r.items() if k not in ("input", "name")}
        name = r["name"]
        if slices is None:
            items.append(Item(name, r["input"], opts, item_seed(seed, name)))
        else:
            for k in range(slices[name]):
                sname = f"{name}_slice{k}"
                items.append(Item(sname, r["input"], opts, item_seed(seed, sname), slice=k, file=name))
    return items


def option_argv(options: dict, params: dict) -> list[str]:
    """Per-item options (manifest columns) as command-line arguments of the task's command. ``params``: the
    command's option name (``sigma``, ``mask``…) → (flag string, is_flag)."""
    argv = []
    for k, v in options.items():
        key = k.lstrip("-").replace("_", "-")
        if key not in params:
            raise InputError(f"manifest column {k!r} is not an option of this task (choose from "
                             f"{', '.join(sorted(params))})")
        flag, is_flag = params[key]
        if is_flag:
            if str(v).lower() in ("1", "true", "yes"):
                argv.append(flag)
        else:
            argv += [flag, str(v)]
    return argv
