"""Every shipped config is the recipe it claims to be and parses into valid typed settings; one
config per dataset runs end to end on tiny fake data in its dataset's real format (a couple of
steps on CPU). The method axis is covered by the core's tests (every preset on one head)."""

import json
from pathlib import Path

import pytest
import yaml

from bayesncl.cli import main
from bayesncl.core.config import MethodConfig
from bayesncl.core.presets import PRESETS
from bayesncl.train.fit import parse_fit_args
from bayesncl.train.recipes import (
    CONFIG_PRESETS,
    MM_METHODS,
    MM_RECIPES,
    PROTOCOLS,
    RECIPES,
    recipe,
)

from ..fakedata import (
    write_cifar,
    write_fashion_mnist,
    write_image_folder,
    write_imagenet100,
    write_pairs,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*/*.yaml"))


def test_every_dataset_and_method_has_a_config():
    single = len(RECIPES) * (len(CONFIG_PRESETS) + len(PROTOCOLS))
    assert len(CONFIGS) == single + len(MM_RECIPES) * len(MM_METHODS)
    assert {"scl", "nscl", "bayesncl"} <= set(CONFIG_PRESETS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_matches_recipe(path):
    assert yaml.safe_load(path.read_text()) == recipe(path.parent.name, path.stem)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_parses_into_valid_settings(path):
    parser, cfg = parse_fit_args(["--config", str(path)])
    init = parser.instantiate(cfg)
    method = init.model.method
    if path.parent.name in MM_RECIPES:  # two towers, each with the method's preset
        assert cfg.task == "multimodal" and init.model.pair_method is None
        assert isinstance(method, MethodConfig) and method.name == MM_METHODS[path.stem]
        return
    assert cfg.task == "pretrain"
    preset = PROTOCOLS.get(path.stem, path.stem)  # finetune: the CE preset, fine-tuned
    assert isinstance(method, MethodConfig) and method.name == preset
    assert init.model.finetune == (path.stem == "finetune")
    base = PRESETS[preset]
    assert (method.gate is None) == (base.gate is None)
    if base.topk_k is not None:  # k = K/8 of the dataset's width
        assert method.topk_k == init.model.proj_output_dim // 8


#: one end-to-end run per dataset, each with another method family
E2E = {
    "digits": "nce",  # supervised: one view, step schedule
    "fashion-mnist": "bayesncl-freq",
    "cifar10": "bayesncl-gs",
    "cifar100": "nscl",
    "imagenet100": "bayesncl-head3",
    "imagefolder": "ncl",
    "scenes": "bayesncl",
    # two towers (issue 14): M1, M2 and your image-caption CSV
    "fashion-mnist-edges": "mmncl",
    "fashion-mnist-captions": "mmbayesncl",
    "pairs": "clip",
}


def test_every_dataset_has_an_end_to_end_run():
    assert set(E2E) == set(RECIPES) | set(MM_RECIPES)
    datasets = {recipe(d, E2E[d])["data"]["dataset"] for d in E2E}
    assert {fake_family(d) for d in datasets} == set(FAKE_DATA)


def test_a_new_users_image_folder_needs_only_its_data_dir(tmp_path):
    """Issue 16: 3 classes of 28-px PNGs train with the README's command and --data.data_dir
    (the test only adds limits to stay short); classes and size come from the folders."""
    from bayesncl.train.datamodule import SSLDataModule

    data = write_image_folder(tmp_path / "images", ["cat", "dog", "owl"], 4, size=28)
    dm = SSLDataModule(dataset="imagefolder", data_dir=str(data), num_workers=0)
    assert (dm.num_classes, dm.image_size) == (3, 28)  # not upscaled to 224 px
    run = tmp_path / "run"
    args = ["fit", "--config", "imagefolder/ncl", "--data.data_dir", str(data), "--run_dir",
            str(run), "--trainer.max_steps", "1", "--data.batch_size", "4", "--data.num_workers", "0"]  # fmt: skip
    assert main(args) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["stem"] == "auto"
    ckpt = str(run / "checkpoints" / "last.ckpt")
    quick = ["--probe_epochs", "1", "--knn_k", "3", "--figures", "false", "--cost", "false"]
    assert main(["evaluate", ckpt, *quick]) == 0  # the README's evaluate command, made short
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["num_eval_samples"] == 12 and metrics["dataset"] == "imagefolder"


#: a writer of tiny files in each dataset's real on-disk format (digits ships with scikit-learn)
FAKE_DATA = {
    "digits": lambda root: root,
    "fashion-mnist": write_fashion_mnist,
    "scenes": write_fashion_mnist,  # garments from Fashion-MNIST's files, backgrounds drawn
    "cifar10": lambda root: write_cifar(root, 10),
    "cifar100": lambda root: write_cifar(root, 100),
    "imagenet100": write_imagenet100,
    "imagefolder": lambda root: write_image_folder(root, ["cat", "dog", "owl"], 4, size=28),
    "fmnist-edges": write_fashion_mnist,
    "fmnist-captions": write_fashion_mnist,
    "pairs": write_pairs,
}


def fake_family(dataset: str) -> str:
    return "scenes" if dataset.startswith("scenes") else dataset  # scenes-pi80, ...


def fake_data(dataset: str, root: Path) -> Path:
    return FAKE_DATA[fake_family(dataset)](root)


@pytest.mark.parametrize("dataset", sorted(E2E))
def test_config_runs_end_to_end(dataset, tmp_path, monkeypatch):
    path = ROOT / "configs" / dataset / f"{E2E[dataset]}.yaml"
    cfg = yaml.safe_load(path.read_text())
    dataset = cfg["data"]["dataset"]
    monkeypatch.setattr("bayesncl.data.datasets.FASHION_MNIST_SYSTEM_DIR", tmp_path / "none")
    data_dir = fake_data(dataset, tmp_path / "data")
    precision = "bf16-mixed" if cfg["trainer"].get("precision") == "16-mixed" else "32-true"
    args = [
        "fit", "--config", str(path), "--run_dir", str(tmp_path / "run"), "--data.data_dir", str(data_dir),
        "--data.batch_size", "4", "--data.num_workers", "0", "--trainer.max_steps", "2",
        "--trainer.limit_val_batches", "1", "--trainer.accelerator", "cpu", "--trainer.precision", precision,
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    if dataset == "imagenet100":
        args += ["--data.image_size", "32"]
    if dataset == "pairs":  # the README's CSV example
        args += ["--data.pairs_file", str(data_dir / "train.csv"),
                 "--data.val_pairs_file", str(data_dir / "val.csv"), "--data.label_key", "label"]  # fmt: skip
    assert main(args) == 0
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"]["method"] == cfg["model"]["method"]
    assert saved["trainer"]["max_steps"] == 2
