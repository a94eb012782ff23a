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
