"""Export, load and encode (issue 16 item 1-2): the exported encoder gives exactly the features
``bayesncl evaluate --save-features`` measured, loading never runs pickled code, and the README's
two-line example runs."""

from __future__ import annotations

import builtins
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import bayesncl
from bayesncl.cli import main
from bayesncl.export.encode import encode_main
from bayesncl.export.model import ModelFileError, load
from bayesncl.export.write import export_main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A two-step BayesNCL digits run (gate included), evaluated (RUN_DIR/eval/metrics.json)."""
    tmp = tmp_path_factory.mktemp("run")
    argv = ["fit", "--config", "configs/digits/bayesncl.yaml", "--trainer.max_steps", "2",
            "--trainer.enable_progress_bar", "false", "--run_dir", str(tmp)]  # fmt: skip
    assert main(argv) == 0
    ckpt = tmp / "checkpoints" / "last.ckpt"
    feats = tmp / "eval_features.npz"
    argv = ["evaluate", str(ckpt), "--save-features", str(feats), "--probe", "false",
            "--figures", "false", "--cost", "false"]  # fmt: skip
    assert main(argv) == 0
    return tmp


def test_export_load_encode_equals_evaluate_features(run, tmp_path, capsys):
    """export -> encode (CLI) and export -> bayesncl.load -> encode give the matrix
    ``evaluate --save-features`` wrote: max abs diff 0.0 here (asserted <= 1e-6)."""
    ckpt = run / "checkpoints" / "last.ckpt"
    out = tmp_path / "export"
    assert export_main([str(ckpt), str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    assert encode_main([str(out), "--dataset", "digits", "--out", str(tmp_path / "f.npz")]) == 0
    assert "encode: 360/360 images (100%)" in capsys.readouterr().err
    ours, theirs = np.load(tmp_path / "f.npz"), np.load(run / "eval_features.npz")
    assert sorted(ours) == ["classes", "features", "indices", "labels"]
    assert list(ours["classes"]) == [str(i) for i in range(10)]  # digits' names (issue 16)
    diff = float(np.abs(ours["features"] - theirs["features"]).max())
    print(f"max abs diff encode vs evaluate --save-features: {diff}")
    assert diff <= 1e-6
    np.testing.assert_array_equal(ours["labels"], theirs["labels"])
    np.testing.assert_array_equal(ours["indices"], np.arange(360))
    # the Python API on raw uint8 images, from the export and from the checkpoint
    from bayesncl.data.datasets import load_digits

    images = load_digits(False, Path("data"), False).images  # 360 x 1 x 8 x 8 uint8
    for source in (out, ckpt):
        feats = bayesncl.load(source).encode(images).numpy()
        assert float(np.abs(feats - theirs["features"]).max()) <= 1e-6


def test_export_config_and_model_card(run, tmp_path):
    ckpt = run / "checkpoints" / "last.ckpt"
    export_main([str(ckpt), str(tmp_path)])
    cfg = json.loads((tmp_path / "config.json").read_text())
    hp = torch.load(ckpt, weights_only=True)["hyper_parameters"]
    assert cfg["method"] == hp["method"]  # MethodConfig.to_dict(), round-tripped
    assert cfg["method"]["gate"]["kind"] == "bernoulli"
    assert cfg["model"] == {k: hp[k] for k in cfg["model"]}
    assert cfg["preprocessing"] | {"data_dir": None} == {
        "dataset": "digits", "in_channels": 1, "image_size": 8, "mean": [0.3], "std": [0.37],
        "resize": None, "data_dir": None,
    }  # fmt: skip
    assert cfg["training"]["global_step"] == 2
    assert cfg["classes"] == [str(i) for i in range(10)]
    card = (tmp_path / "README.md").read_text()
    assert "- classes: 10, by label: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9\n" in card
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert "# bayesncl encoder: bayesncl on digits" in card
    assert "2 optimizer steps, stopped in epoch 1 of 30" in card
    assert f"| class consistency (%) | {metrics['consistency'] * 100:.4g} |" in card
    # the gate and the objective's parameters are in the weights: the model is complete
    model = load(tmp_path)
    assert model.has_gate and not model.training and model.dim == 64
    rep = model.represent(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    assert rep.mask is not None and rep.h.shape == (2, 64)


class _RunsCode:
    """Unpickling this calls ``exec``: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_checkpoint_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"hyper_parameters": {"method": _RunsCode(marker)}, "state_dict": {}}, evil)
    # the file really runs code when unpickled the ordinary way
    torch.load(evil, weights_only=False)
    assert marker.read_text() == "ran"
    marker.unlink()
    with pytest.raises(
        ModelFileError, match=r"evil\.ckpt holds objects other than tensors .*refused"
    ):
        bayesncl.load(evil)
    assert not marker.exists()
    with pytest.raises(ModelFileError, match="refused"):  # the CLI: one line, exit 2
        encode_main([str(evil), "--dataset", "digits", "--out", str(tmp_path / "f.npz")])
    assert not marker.exists()


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"nothing\.ckpt does not exist"):
        load(tmp_path / "nothing.ckpt")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelFileError, match=r"model\.safetensors is missing"):
        load(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelFileError, match=r"config\.json is not a bayesncl export"):
        load(tmp_path)


def test_import_and_load_without_lightning(run):
    code = (
        "import sys, bayesncl\n"
        "assert not [m for m in sys.modules if m.startswith('lightning')]\n"
        f"m = bayesncl.load({str(run / 'checkpoints' / 'last.ckpt')!r})\n"
        "assert not [m for m in sys.modules if m.startswith('lightning')], 'lightning imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_encode_image_files_and_imagefolder(run, tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "folder" / cls).mkdir(parents=True)
        for i in range(3):  # RGB 20 x 20: converted to gray and resized to the model's 8 x 8
            arr = rng.integers(0, 256, (20, 20, 3)).astype(np.uint8)
            Image.fromarray(arr).save(tmp_path / "folder" / cls / f"{i}.png")
    ckpt = str(run / "checkpoints" / "last.ckpt")
    out = tmp_path / "a.npz"
    assert encode_main([ckpt, "--imagefolder", str(tmp_path / "folder"), "--out", str(out)]) == 0
    a = np.load(out)
    assert sorted(a) == ["classes", "features", "labels", "paths"]
    assert a["features"].shape == (6, 64) and list(a["labels"]) == [0, 0, 0, 1, 1, 1]
    assert list(a["classes"]) == ["cat", "dog"] and a["paths"][3].endswith("dog/0.png")
    assert encode_main([ckpt, "--images", str(tmp_path / "folder"), "--out", str(out)]) == 0
    b = np.load(out)
    assert sorted(b) == ["features", "paths"]  # no labels for plain image files
    np.testing.assert_array_equal(a["features"], b["features"])
    direct = bayesncl.load(ckpt).encode([Path(p) for p in b["paths"]]).numpy()
    np.testing.assert_allclose(direct, b["features"], atol=1e-6)


def readme_example(text: str | None = None) -> str:
    """The first python block of the README's "Use a trained model" section."""
    text = (ROOT / "README.md").read_text() if text is None else text
    _, found, section = ("\n" + text).partition("\n## Use a trained model")
    assert found, "README.md has no '## Use a trained model' section (issue 16)"
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's 'Use a trained model' section has no python example"
    return blocks[0]


def test_readme_load_encode_example_runs(run, tmp_path):
    export_main([str(run / "checkpoints" / "last.ckpt"), str(tmp_path / "export")])
    code = readme_example()
    lines = [ln for ln in code.splitlines() if ln.strip() and not ln.startswith(("#", "import"))]
    assert len(lines) == 2, code  # two lines: load, encode
    code = code.replace("runs/digits/bayesncl/export", str(tmp_path / "export"))
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    scope: dict = {"images": images}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["features"].shape == (5, 64)


def test_encode_accepts_tensors_arrays_pil_images_and_files(tmp_path):
    """Every accepted input form gives the same features as the uint8 N x C x H x W tensor."""
    from bayesncl.core.presets import method_preset
    from bayesncl.export.model import (
        ModelSettings,
        Preprocessing,
        TrainedEncoder,
        TrainedEncoderParts,
        build_encoder,
    )

    settings = ModelSettings(
        backbone="convnet", backbone_width=8, in_channels=1, proj_hidden_dim=32, proj_output_dim=16
    )
    torch.manual_seed(0)
    state = build_encoder(settings, method_preset("ncl")).state_dict()
    pre = Preprocessing("digits", 1, 8, (0.3,), (0.37,))
    model = TrainedEncoder(TrainedEncoderParts(settings, method_preset("ncl"), pre, state))
    x = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    want = model.encode(x)
    files = []
    for i in range(4):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(x[i, 0].numpy()).save(files[-1])
    for form in (
        x[:, 0],  # N x H x W
        x.numpy()[:, 0],  # NumPy N x H x W
        x.numpy().transpose(0, 2, 3, 1),  # NumPy N x H x W x 1
        [Image.fromarray(a) for a in x[:, 0].numpy()],
        files,
        [str(f) for f in files],
    ):
        torch.testing.assert_close(model.encode(form, batch_size=3), want, rtol=0, atol=1e-6)
    torch.testing.assert_close(model.encode(x.float() / 255), want, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"float images must lie in \[0, 1\]"):
        model.encode(x.float())
    assert not model.train().training  # stays in eval mode
