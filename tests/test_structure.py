"""The code's shape: no import cycle, no private name imported across modules, modules of reasonable size,
and the Makefile's benchmark target names scripts that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "deepprior"
ROOT = SRC.parents[1]


def _modules() -> dict[str, Path]:
    mods = {}
    for p in SRC.rglob("*.py"):
        parts = list(p.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]):
    """(target module, imported names) of every import in the file, function-level ones included."""
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                yield (sub, None) if sub in mods else (mod, a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, None


def test_no_import_cycle():
    mods = _modules()
    graph = {m: {t for t, _ in _imports(m, p, mods) if t in mods and t != m} for m, p in mods.items()}

    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for n in graph[todo.pop()]:
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        return seen

    # a package's __init__ importing its own submodules is how it exports them, not a cycle
    cycles = sorted(m for m in mods if m in reach(m) and not any(
        m.startswith(p + ".") or p.startswith(m + ".") for p in graph[m]))
    cycles += sorted(f"{m} <-> {n}" for m in mods for n in graph[m]
                     if m in graph.get(n, ()) and m < n and not (n.startswith(m + ".") or m.startswith(n + ".")))
    assert not cycles, cycles


def test_no_private_name_imported_across_modules():
    mods = _modules()
    bad = [f"{m}: {t}.{n}" for m, p in mods.items() for t, n in _imports(m, p, mods)
           if n and n.startswith("_") and n != "__version__" and t.startswith("deepprior")]
    tests = [f"{p.name}: {n}" for p in Path(__file__).parent.glob("*.py")
             for n in re.findall(r"^\s*from \S+ import .*?\b(_[a-z]\w*)", p.read_text(), flags=re.M)]
    assert not bad and not tests, bad + tests


def test_modules_stay_small():
    big = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 420}
    assert not big, big


def test_make_bench_runs_scripts_that_exist():
    make = (ROOT / "Makefile").read_text()
    scripts = re.findall(r'"(bench/[\w./-]+\.py)', make)
    assert scripts and all((ROOT / s).is_file() for s in scripts), scripts
