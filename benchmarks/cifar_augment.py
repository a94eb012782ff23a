"""CIFAR recipes: per-image (``augment_on=sample``) against batched (``augment_on=batch``)
augmentation in a short real ``bayesncl fit``, interleaved rounds.

    python benchmarks/cifar_augment.py [--rounds 3] [--steps 6] [--out benchmarks/cifar_augment.json]

Data: random 32x32 RGB images in the CIFAR-10 layout (timing does not depend on the pixels),
written to a temporary folder. Config: configs/cifar10/ncl.yaml (official augmentation, hue
included) on this CPU (``32-true``, no sync-BN), with two models: the recipe's ResNet-18 at
batch 64 (a step here is seconds, so the augmentation is a small share) and the ConvNet (width
16, batch 256), standing in for a fast accelerator step, where the data pipeline shows.
Per-image augmentation runs in 0 and 2 loader workers; batched on the (CPU) device.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import ROOT, time_fit

VARIANTS = {
    "sample_w0": ("--data.augment_on", "sample", "--data.num_workers", "0"),
    "sample_w2": ("--data.augment_on", "sample", "--data.num_workers", "2"),
    "batch": ("--data.augment_on", "batch", "--data.num_workers", "0"),
}
MODELS = {
    "resnet18_b64": ("--data.batch_size", "64"),
    "convnet_b256": (
        "--data.batch_size", "256", "--model.backbone", "convnet",
        "--model.backbone_width", "16", "--model.proj_hidden_dim", "512",
        "--model.proj_output_dim", "128",
    ),
}  # fmt: skip


def write_fake_cifar10(root: Path, n_train: int = 2560, n_test: int = 64) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    per = n_train // 5
    for name, n in [(f"data_batch_{i}", per) for i in range(1, 6)] + [("test_batch", n_test)]:
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        labels = list(rng.integers(0, 10, n))
        (folder / name).write_bytes(pickle.dumps({"data": data, "labels": labels}))
    names = [f"c{i}" for i in range(10)]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--out", default=str(ROOT / "benchmarks/cifar_augment.json"))
    args = ap.parse_args(argv)
    res: dict = {
        "command": "python benchmarks/cifar_augment.py " + " ".join(argv or sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_before": os.getloadavg(),
        "rounds": [],
    }
    with tempfile.TemporaryDirectory() as data:
        write_fake_cifar10(Path(data))
        common = (
            "--data.download", "false", "--trainer.precision", "32-true",
            "--trainer.sync_batchnorm", "false",
        )  # fmt: skip
        for r in range(args.rounds):
            got: dict = {}
            names = list(VARIANTS)
            names = names[r % 3 :] + names[: r % 3]  # rotate the order from round to round
            for model in args.models:
                for v in names:
                    flags = VARIANTS[v]
                    steps, _ = time_fit(
                        data,
                        3 if v != "sample_w2" else 5,
                        args.steps,
                        compiled=False,
                        config="configs/cifar10/ncl.yaml",
                        extra=(*common, *MODELS[model], *flags),
                    )
                    got[f"{model}/{v}"] = statistics.median(steps)
            res["rounds"].append(dict(sorted(got.items())))
            print(f"round {r + 1}: ms/step", {k: round(1e3 * v, 1) for k, v in got.items()})
    summary = {}
    for model in args.models:
        b = [r[f"{model}/batch"] for r in res["rounds"]]
        for v in ("sample_w0", "sample_w2"):
            s = [r[f"{model}/{v}"] for r in res["rounds"]]
            ratios = [x / y for x, y in zip(s, b)]
            summary[f"{model}: {v} / batch"] = {
                "median": statistics.median(ratios),
                "min": min(ratios),
                "max": max(ratios),
            }
        for v in VARIANTS:
            summary[f"{model}/{v} ms"] = 1e3 * statistics.median(
                [r[f"{model}/{v}"] for r in res["rounds"]]
            )
    res["summary"] = summary
    res["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
