"""The static feature browser (issue 16 item 3): its statistics, and in a real headless Chromium
from file://: the index renders every dimension, sorting works, a dimension page shows its images
with their labels, an image page its active dimensions."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bayesncl.browse.chromium import dump_dom, find_chromium, page_url, screenshot
from bayesncl.browse.site import browse_main
from bayesncl.core.presets import method_preset
from bayesncl.data.datasets import FASHION_MNIST_CLASSES, load_digits
from bayesncl.export.model import (
    ModelSettings,
    Preprocessing,
    TrainedEncoder,
    TrainedEncoderParts,
    build_encoder,
    load,
)
from bayesncl.export.write import write_export
from tests.fakedata import write_fashion_mnist

SETTINGS = ModelSettings(
    backbone="convnet", backbone_width=8, in_channels=1, proj_hidden_dim=32, proj_output_dim=16
)
DIGITS = Preprocessing("digits", 1, 8, (0.3,), (0.37,))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, Path]:
    """(export dir of a randomly initialised gated digits encoder, its site on the test split)."""
    root = tmp_path_factory.mktemp("browse")
    torch.manual_seed(0)
    method = method_preset("bayesncl")
    state = build_encoder(SETTINGS, method).state_dict()
    model = TrainedEncoder(TrainedEncoderParts(SETTINGS, method, DIGITS, state))
    write_export(model, root / "export")
    assert browse_main([str(root / "export"), "--out", str(root / "site")]) == 0
    return root / "export", root / "site"


def read_data(site: Path) -> dict:
    text = (site / "data.js").read_text()
    assert text.startswith("window.DATA = ")
    return json.loads(text[len("window.DATA = ") :].rstrip().rstrip(";"))


def test_site_statistics(site):
    export, out = site
    assert sorted(p.name for p in out.iterdir()) == [
        "browse.css", "browse.js", "data.js", "index.html", "sprites",
    ]  # fmt: skip
    data = read_data(out)
    assert (data["n"], data["K"], data["has_gate"], data["id_kind"]) == (360, 16, True, "indices")
    assert Image.open(out / "sprites" / "sheet-0.png").size == (32 * 8, 12 * 8)  # 360 in 12 rows
    # recompute every statistic from the encoder's features
    images = load_digits(False, Path("data"), False)
    rep = load(export).represent(images.images)
    v, labels = rep.output.numpy(), images.targets.numpy()
    active = v > 1e-5 * np.linalg.norm(v, axis=1, keepdims=True)
    assert data["labels"] == labels.tolist()
    for d in data["dims"]:
        k, act = d["k"], active[:, d["k"]]
        assert d["freq"] == pytest.approx(act.mean(), abs=1e-4)
        assert d["gate"] == pytest.approx(rep.mask[:, k].float().mean().item(), abs=1e-4)
        if not act.any():
            assert d["cons"] is None and d["top"] == []
            continue
        hist = np.bincount(labels[act], minlength=10)
        assert d["hist"] == hist.tolist()
        assert d["cons"] == pytest.approx(hist.max() / hist.sum(), abs=1e-4)
        mass = np.bincount(labels, weights=v[:, k], minlength=10)
        p = mass / mass.sum()
        p = p[p > 1e-5]
        assert d["ent"] == pytest.approx(-(p * np.log(p)).sum(), abs=1e-3)
        order = np.argsort(-v[:, k], kind="stable")[: min(24, act.sum())]
        assert d["top"] == order.tolist()
        assert d["bottom_v"] == sorted(d["bottom_v"])  # weakest first, all active
        assert all(act[d["bottom"]])
    i = 7
    *dims, n_active = data["images"][i]
    assert (
        n_active == active[i].sum()
        and [k for k, _ in dims]
        == np.argsort(-np.where(active[i], v[i], -1), kind="stable")[: len(dims)].tolist()
    )


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium; installed with apt-get where missing (root), as scripts/test.sh does."""
    if find_chromium() is None and shutil.which("apt-get") and os.geteuid() == 0:
        install = ["apt-get", "install", "-y", "-q", "chromium"]
        if subprocess.run(install, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True)
            subprocess.run(install, capture_output=True)
    exe = find_chromium()
    if exe is None:
        pytest.skip(
            "chromium is not installed and `apt-get install -y chromium` could not install it"
        )
    return exe


def rows(dom: str) -> list[int]:
    return [int(k) for k in re.findall(r'<tr class="dim-row[^"]*" data-dim="(\d+)"', dom)]


def expected_order(data: dict, key: str, descending: bool) -> list[int]:
    present = [d for d in data["dims"] if d[key] is not None]
    missing = [d for d in data["dims"] if d[key] is None]
    sign = -1 if descending else 1
    ordered = sorted(present, key=lambda d: (sign * d[key], d["k"]))
    return [d["k"] for d in ordered + sorted(missing, key=lambda d: d["k"])]


def test_index_renders_and_sorts_in_chromium(site, chromium):
    _, out = site
    data = read_data(out)
    index = out / "index.html"
    dom = dump_dom(page_url(index))  # default: frequency, descending
    assert rows(dom) == expected_order(data, "freq", True)
    assert "16 dimensions" in dom
    for fragment, key, desc in [
        ("sort=consistency&order=desc", "cons", True),
        ("sort=entropy&order=asc", "ent", False),
        ("sort=gate&order=asc", "gate", False),
    ]:
        assert rows(dump_dom(page_url(index, fragment))) == expected_order(data, key, desc), (
            fragment
        )
    assert len(set(expected_order(data, "cons", True)[:5])) == 5


def test_dimension_and_image_pages_in_chromium(site, chromium, tmp_path):
    _, out = site
    data = read_data(out)
    dim = max(data["dims"], key=lambda d: len(d["top"]))
    dom = dump_dom(page_url(out / "index.html", f"dim={dim['k']}"))
    assert f"Dimension {dim['k']}</h1>" in dom
    top = dom.split('id="top-images"', 1)[1].split("</div>", 1)[0]
    assert top.count('class="cell"') == len(dim["top"]) == 24
    first = dim["top"][0]
    assert f'href="#img={first}"' in top and f"image {first} ({data['labels'][first]})" in top
    assert "Gate open rate by class" in dom and "Classes of the activating images" in dom
    i = dim["top"][0]
    dom = dump_dom(page_url(out / "index.html", f"img={i}"))
    listed = dom.split('id="active-dims"', 1)[1]
    assert listed.count('href="#dim=') == len(data["images"][i]) - 1
    png = screenshot(page_url(out / "index.html", f"dim={dim['k']}"), tmp_path / "dim.png")
    with Image.open(png) as im:
        assert im.size == (1200, 900)
        assert len(set(im.convert("L").getdata())) > 20  # rendered content, not a blank page


FMNIST = Preprocessing("fashion-mnist", 1, 28, (0.286,), (0.353,))


@pytest.fixture(scope="module")
def fmnist_site(tmp_path_factory) -> tuple[Path, Path]:
    """(export dir, site) of a random gated encoder on 20 fake Fashion-MNIST test images."""
    root = tmp_path_factory.mktemp("browse-fmnist")
    data = write_fashion_mnist(root / "data", n_train=10, n_test=20)
    torch.manual_seed(0)
    method = method_preset("bayesncl")
    state = build_encoder(SETTINGS, method).state_dict()
    pre = replace(FMNIST, data_dir=str(data))
    model = TrainedEncoder(TrainedEncoderParts(SETTINGS, method, pre, state))
    write_export(model, root / "export")
    assert browse_main([str(root / "export"), "--out", str(root / "site"), "--thumb", "8"]) == 0
    return root / "export", root / "site"


def test_fashion_mnist_classes_are_named(fmnist_site):
    """Issue 16: the browser's data and the export name Fashion-MNIST's classes, not 0..9."""
    export, out = fmnist_site
    data = read_data(out)
    assert data["classes"] == list(FASHION_MNIST_CLASSES)
    assert data["classes"][1] == "Trouser" and data["labels"][:3] == [0, 1, 2]
    cfg = json.loads((export / "config.json").read_text())
    assert cfg["classes"][1] == "Trouser"
    assert (
        "- classes: 10, by label: T-shirt/top, Trouser, Pullover,"
        in (export / "README.md").read_text()
    )


def test_fashion_mnist_names_in_the_pages_in_chromium(fmnist_site, chromium):
    """The one Chromium check of the names: a dimension page's histogram and image captions and
    an image page's label show "Trouser" (label 1), not "1"."""
    _, out = fmnist_site
    data = read_data(out)
    dim = max(data["dims"], key=lambda d: d["hist"][1] if d.get("hist") else -1)
    assert dim["hist"][1] > 0
    dom = dump_dom(page_url(out / "index.html", f"dim={dim['k']}"))
    hist = dom.split("Classes of the activating images", 1)[1]
    assert "Trouser" in hist and "Ankle boot" in hist
    top = dom.split('id="top-images"', 1)[1].split("</div>", 1)[0]
    trouser = next(i for i in dim["top"] if data["labels"][i] == 1)
    assert f"image {trouser} (Trouser)" in top
    dom = dump_dom(page_url(out / "index.html", "img=1"))  # image 1 is label 1
    assert "<dt>label</dt><dd>Trouser</dd>" in dom
