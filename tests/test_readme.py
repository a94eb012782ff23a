"""The README's library example runs as written."""

import re
from pathlib import Path


def test_readme_example_runs(capsys):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "no python example in the README"
    exec(compile(blocks[0], "README.md", "exec"), {})
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("nt_xent")]
    assert len(lines) == 3


def test_readme_two_tower_example_runs():
    """The MMNCL example (issue 14): a finite CLIP loss of two towers from the core's pieces."""
    import math

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "TwoTower" in b]
    assert len(blocks) == 1
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)
    assert set(scope["terms"].terms) == {"clip"} and math.isfinite(float(scope["terms"].total))
