"""Installed like a library (issue 16 item 6): a wheel built from the repository carries the
configs and the browser's files, and ``bayesncl fit --config digits/bayesncl`` runs from it in a
directory outside the repository. The wheel is installed without dependencies into its own
folder, which comes first on the path (the dependencies are this environment's)."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_carries_configs_and_fits_outside_the_repo(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(ROOT)],
        check=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("bayesncl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "bayesncl/configs/digits/bayesncl.yaml" in names
    assert "bayesncl/browse/static/index.html" in names
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        check=True,
    )  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import bayesncl, sys; from bayesncl.cli import main; "
        f"assert bayesncl.__file__.startswith({str(target)!r}), bayesncl.__file__; "
        "sys.exit(main(['-q', 'fit', '--config', 'digits/bayesncl', '--trainer.max_steps', '2', "
        "'--run_dir', 'run']))"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (work / "run" / "checkpoints" / "last.ckpt").is_file()
