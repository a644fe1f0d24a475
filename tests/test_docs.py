"""The docs' scripts run as they are written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_mri_python_api_script_runs_and_prints_the_table():
    text = (DOCS / "mri.md").read_text()
    section = text[text.index("## Python API"):text.index("## Conventions")]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    assert len(code.strip().splitlines()) <= 20
    assert not re.search(r"from deepprior\.\w+\.\w+|import deepprior\.\w+\.", code)  # no deep imports
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/mri.md", "exec"), {})
    rows = {line.split()[0]: float(line.split()[1]) for line in out.getvalue().splitlines()[1:]}
    assert set(rows) == {"zerofill", "cgsense", "lps"}
    assert rows["lps"] > rows["zerofill"] + 3 and rows["cgsense"] > rows["zerofill"]
