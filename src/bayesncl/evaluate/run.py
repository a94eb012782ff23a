"""``bayesncl evaluate CHECKPOINT``: every interpretability metric, accuracy and cost of a run.

Writes OUT/metrics.json and OUT/metrics.md (OUT defaults to RUN_DIR/eval), optional figures,
and with ``--save_features F.npz`` the exact matrix (``features``) and ``labels`` the
interpretability metrics were computed on.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from jsonargparse import ArgumentParser
from torch import nn
from torch.utils.data import DataLoader, Dataset

from bayesncl.data.datasets import class_names
from bayesncl.data.scenes import nuisance_labels
from bayesncl.data.shifts import TABLES
from bayesncl.data.splits import EvalSplits, Transformed, eval_splits
from bayesncl.evaluate import ncl_paper, steps
from bayesncl.evaluate.checkpoint import checkpoint_task, load_pretrained, read_checkpoint
from bayesncl.evaluate.common import metrics_table, progress, writable_dir
from bayesncl.evaluate.extract import extract
from bayesncl.evaluate.multimodal import evaluate_two_tower
from bayesncl.evaluate.probe import probe_augmentation
from bayesncl.evaluate.shifted import ood_metrics
from bayesncl.models.encoder import Encoder

#: rows of the markdown table: (key in metrics.json, label, scale)
TABLE_ROWS = [
    ("consistency", "Cons. (%)", 100),
    ("entropy_sum", "H_s, activation-weighted (nats)", 1),
    ("entropy_frequency", "H_s, frequency (nats)", 1),
    ("activation_ratio", "Act. = active dims / K", 1),
    ("active_fraction", "Act. = 1 - sparsity", 1),
    ("sparsity", "sparsity (|x| <= 1e-5)", 1),
    ("orthogonality", "mean |corr| between dims", 1),
    ("effective_rank", "spectral entropy", 1),
    ("retrieval_p1", "retrieval P@1 (%)", 100),
    ("retrieval_p10", "retrieval P@10 (%)", 100),
    ("linear_top1", "linear probe top-1 (%)", 100),
    ("linear_top5", "linear probe top-5 (%)", 100),
    ("knn_top1", "kNN top-1 (%)", 100),
    ("gate_open", "gate open rate", 1),
    ("nuisance_consistency", "Cons. w.r.t. the nuisance label (%)", 100),
    ("nuisance_dim_share", "share of active dims dominated by the nuisance", 1),
    ("nuisance_linear_top1", "nuisance probe on h, top-1 (%)", 100),
    ("nuisance_linear_v_top1", "nuisance probe on v, top-1 (%)", 100),
    ("gate_open_nuisance_dims", "gate open rate, nuisance-dominated dims", 1),
    ("gate_open_class_dims", "gate open rate, other active dims", 1),
    ("objective_top1", "objective's classifier top-1 (%)", 100),
    ("consistency_topm", "Cons., top-200 activated per dim (%)", 100),
    ("consistency_rectified", "Cons. of max(v, 0) (%)", 100),
    ("ood_clean_top1", "OOD: clean subset, top-1 (%)", 100),
    ("ood_corruption_top1", "OOD: corruptions, mean top-1 (%)", 100),
    ("ood_sketch_top1", "OOD: sketch, top-1 (%)", 100),
    ("ood_stylized_top1", "OOD: stylized-like, top-1 (%)", 100),
    ("fs_all_lp", "feature selection: all dims, LP (%)", 100),
    ("fs_activation_lp", "feature selection: K/4 by activation, LP (%)", 100),
    ("fs_random_lp", "feature selection: K/4 random, LP (%)", 100),
    ("sepin_at_10", "SEPIN@10 (nats, InfoNCE estimate)", 1),
    ("gmacs_pair", "GMACs (two-view pair)", 1),
    ("params", "parameters (M)", 1e-6),
]


def markdown_table(metrics: dict[str, Any], title: str) -> str:
    """``bayesncl evaluate``'s metrics as a markdown table (the keys of :data:`TABLE_ROWS`)."""
    return metrics_table(metrics, title, TABLE_ROWS)


@dataclass
class EvalConfig:
    """Options of ``bayesncl evaluate`` (checked when made, before any work).

    Args:
        data_dir: dataset location if it moved since training.
        bn_mode: ``eval`` (running statistics) or ``train`` (the official code's batch statistics).
        soft_gate: evaluate with alpha as the mask instead of the hard gate (official option).
        save_features: write the evaluated matrix and labels to this .npz file.
        probe: run the linear probe, kNN and feature-selection probes (on the training split).
        probe_epochs: epochs of the linear probe on frozen features (>= 1).
        probe_protocol: a key of ``bayesncl.evaluate.steps.PROBES``: ``fast`` (linear probe on
            pre-extracted, un-augmented features: the CPU path), or an official protocol on
            augmented images through the frozen backbone: ``cifar`` (LARS, 50 epochs) or
            ``imagenet100`` (SGD lr 1.0, 50 epochs); slow on CPU.
        knn_k: neighbours of the weighted kNN vote (>= 1; lightly's default 200).
        knn_temperature: temperature T of the vote weights exp(sim / T) (> 0; lightly's 0.1).
        select_dims: widths of the feature-selection probe and of top-dimension retrieval, each
            in 1..K (default: K/8, K/4, K/2).
        train_limit: use at most this many training images for the probes (>= 1).
        figures: write the PNG figures.
        batch_size: images per batch of the feature extraction (>= 1).
        num_workers: loader processes of the feature extraction (0: in this process).
        cost: parameters, GMACs and step time (on a copy of the model).
        ood: the NCL paper's out-of-distribution sets (``bayesncl.evaluate.shifted``): the clean
            linear probe scored on 14 corruptions x severities, a sketch and a stylized-like set.
        ood_limit: test images per shifted set (the first ones; >= 1).
        ood_severities: corruption severities (each in 1..5; default all five).
        ood_table: the corruption parameters: ``cifar`` (CIFAR-10-C, 28-32 px images) or
            ``imagenet`` (ImageNet-C, 224 px images).
        selection: the NCL paper's Table 1 feature selection (K/4 dims by expected activation
            after / before the non-negativity, random, all): probe, P@10, transfer to digits.
        selection_keep: dimensions kept (default K/4).
        sepin: SEPIN@1/10/100/all between two augmented views (InfoNCE estimate).
        sepin_samples: test images of the SEPIN estimate (>= 2).
        sepin_steps: optimisation steps of each InfoNCE critic (>= 1).
    """

    data_dir: str | None = None
    bn_mode: Literal["eval", "train"] = "eval"
    soft_gate: bool = False
    save_features: str | None = None
    probe: bool = True
    probe_epochs: int = 100
    probe_protocol: str = "fast"
    knn_k: int = 200
    knn_temperature: float = 0.1
    select_dims: list[int] | None = None
    train_limit: int | None = None
    figures: bool = True
    batch_size: int = 512
    num_workers: int = 0
    cost: bool = True
    # the NCL paper's evaluations
    ood: bool = False
    ood_limit: int = 1000
    ood_severities: list[int] | None = None
    ood_table: str = "cifar"
    selection: bool = False
    selection_keep: int | None = None
    sepin: bool = False
    sepin_samples: int = 1000
    sepin_steps: int = 100

    def __post_init__(self) -> None:
        def need(ok: bool, option: str, valid: str) -> None:
            if not ok:
                raise ValueError(f"--{option}={getattr(self, option)!r} is invalid: {valid}")

        need(self.bn_mode in ("eval", "train"), "bn_mode", "use eval or train")
        need(
            self.probe_protocol in steps.PROBES, "probe_protocol", f"use {', '.join(steps.PROBES)}"
        )
        need(self.probe_epochs >= 1, "probe_epochs", "must be >= 1 (0 epochs reports chance)")
        need(self.knn_k >= 1, "knn_k", "the neighbours of the kNN vote must be >= 1")
        need(math.isfinite(self.knn_temperature) and self.knn_temperature > 0, "knn_temperature",
             "must be > 0")  # fmt: skip
        need(self.select_dims is None or all(d >= 1 for d in self.select_dims), "select_dims",
             "every width must be in 1..K (the representation width)")  # fmt: skip
        need(self.train_limit is None or self.train_limit >= 1, "train_limit",
             "must be >= 1 (or unset: the whole training split)")  # fmt: skip
        need(self.batch_size >= 1, "batch_size", "must be >= 1")
        need(self.num_workers >= 0, "num_workers", "must be >= 0 (0: load in this process)")
        need(self.ood_limit >= 1, "ood_limit", "must be >= 1 test image per shifted set")
        need(self.ood_severities is None or (len(self.ood_severities) > 0 and all(
            1 <= v <= 5 for v in self.ood_severities)), "ood_severities",
             "each severity must be in 1..5 (or unset: all five)")  # fmt: skip
        need(self.ood_table in TABLES, "ood_table", f"must be one of: {', '.join(TABLES)}")
        need(self.selection_keep is None or self.selection_keep >= 1, "selection_keep",
             "must be in 1..K (or unset: K/4)")  # fmt: skip
        need(self.sepin_samples >= 2, "sepin_samples", "must be >= 2")
        need(self.sepin_steps >= 1, "sepin_steps", "must be >= 1")

    def dims(self, k: int) -> list[int]:
        """The widths of top-dimension retrieval and feature selection for a K-dim model."""
        if self.select_dims and max(self.select_dims) > k:
            raise ValueError(
                f"--select_dims={self.select_dims!r} is invalid: every width must be in 1..{k} "
                f"(K, the width of this model's representation)"
            )
        return list(self.select_dims) if self.select_dims else steps.default_dims(k)


def _option_names() -> str:
    return ", ".join(f.name for f in fields(EvalConfig))


def _loader(ds: Dataset, config: EvalConfig) -> DataLoader:
    return DataLoader(ds, batch_size=config.batch_size, num_workers=config.num_workers)


def run(
    encoder: Encoder, splits: EvalSplits, config: EvalConfig, out_dir: Path, num_classes: int,
    classifier: nn.Module | None = None, source: str = "the model", title: str = "",
) -> dict[str, Any]:  # fmt: skip
    """Every evaluation step of ``encoder`` on ``splits`` (no Lightning involved); returns the
    metrics. ``source`` names the model in errors; figures go to ``out_dir``."""
    dims = config.dims(encoder.head.out_dim)
    val_raw = splits.load(False)
    val_set = Transformed(val_raw, splits.transform())
    with progress(f"features of the {len(val_set):,} held-out images"):
        val = extract(encoder, _loader(val_set, config), config.bn_mode, config.soft_gate)
    steps.check_finite(val, source)
    m: dict[str, Any] = {"bn_mode": config.bn_mode, "soft_gate": config.soft_gate}
    m["num_eval_samples"] = len(val.labels)
    with progress("interpretability metrics and retrieval"):
        m |= steps.interpretability(val, num_classes)
        m |= steps.retrieval(val, dims)
        m |= ncl_paper.consistency_variants(val)
    m |= steps.gate_statistics(val)
    val_nuisance = nuisance_labels(val_raw)
    if val_nuisance is not None:  # a dataset with a second label (scenes: the background)
        with progress("metrics w.r.t. the nuisance label"):
            m |= steps.nuisance(
                val, val_nuisance, num_classes, out_dir if config.figures else None, title
            )
    m |= steps.objective_accuracy(encoder, val)
    if config.probe:
        train_raw = splits.load(True, config.train_limit)
        train_set = Transformed(train_raw, splits.transform())
        with progress(f"features of {len(train_set):,} training images"):
            train = extract(encoder, _loader(train_set, config), "eval", config.soft_gate)
        steps.check_finite(train, source)
        augment = probe_augmentation(splits.image_size, splits.spec.mean, splits.spec.std)
        inputs = steps.ProbeInputs(train, val, num_classes, config.probe_epochs, encoder,
                                   train_raw, augment, config.num_workers)  # fmt: skip
        with progress(f"linear probe ({config.probe_protocol}, {config.probe_epochs} epochs)"):
            m |= steps.linear(inputs, config.probe_protocol)
        train_nuisance = nuisance_labels(train_raw)
        if val_nuisance is not None and train_nuisance is not None:
            with progress("nuisance probes (on h and on v)"):
                m |= steps.nuisance_probe(
                    train, val, train_nuisance, val_nuisance, config.probe_epochs
                )
        with progress(f"kNN (k={config.knn_k}) and feature selection ({len(dims)} widths)"):
            m |= steps.knn(train, val, num_classes, config.knn_k, config.knn_temperature)
            m |= steps.feature_selection(train, val, dims, num_classes, config.probe_epochs)
        if config.selection:
            with progress("NCL Table 1 feature selection (probe, P@10, transfer to digits)"):
                transfer = ncl_paper.transfer_features(encoder, splits)
                m |= ncl_paper.feature_selection_table(
                    train, val, num_classes, config.selection_keep, config.probe_epochs, transfer
                )
        if config.ood:
            severities = tuple(config.ood_severities or (1, 2, 3, 4, 5))
            with progress(f"out-of-distribution sets ({config.ood_limit} images each)"):
                m |= ood_metrics(
                    encoder, train, val_raw, splits.transform(), num_classes, config.ood_limit,
                    severities, config.probe_epochs, config.batch_size, table=config.ood_table,
                )  # fmt: skip
    if config.sepin:
        with progress(f"SEPIN ({config.sepin_samples} images, two views)"):
            m |= ncl_paper.sepin(encoder, splits, val_raw, config.sepin_samples, config.sepin_steps)
    if config.cost:
        with progress("cost (parameters, MACs, step time)"):
            m |= steps.cost(encoder, tuple(val_set[0][0].shape), classifier)
    if config.save_features:
        m |= steps.export_features(val, config.save_features)
    if config.figures:
        with progress("figures"):
            names = class_names(splits.spec, val_raw)
            m |= steps.figures(val, lambda i: val_raw[i][0], out_dir, title, names)
    return m


#: the options of :class:`EvalConfig` a multi-modal checkpoint's evaluation takes
MULTIMODAL_OPTIONS = ("data_dir", "probe_epochs", "train_limit", "figures", "batch_size")


def _evaluate_multimodal(
    path: Path, out_dir: str | None, config: EvalConfig, ckpt: dict[str, Any]
) -> dict[str, Any]:
    """A ``task: multimodal`` checkpoint: ``bayesncl.evaluate.multimodal``; options it does not
    take are refused unless left at their defaults."""
    default = EvalConfig()
    unused = [
        f.name
        for f in fields(EvalConfig)
        if f.name not in MULTIMODAL_OPTIONS and getattr(config, f.name) != getattr(default, f.name)
    ]
    if unused:
        raise ValueError(
            f"{path} is a multimodal (two-tower) checkpoint; evaluate options {unused} apply to "
            f"single-encoder checkpoints only (it takes: {', '.join(MULTIMODAL_OPTIONS)})"
        )
    options = {k: getattr(config, k) for k in MULTIMODAL_OPTIONS}
    return evaluate_two_tower(path, out_dir, **options, ckpt=ckpt)


def evaluate_checkpoint(
    checkpoint: str, out_dir: str | None = None, **options: Any
) -> dict[str, Any]:
    """Evaluate a ``bayesncl fit`` checkpoint (RUN_DIR/checkpoints/last.ckpt); ``options`` are
    the fields of :class:`EvalConfig`. Returns the metrics dict, also written to OUT/metrics.json
    and OUT/metrics.md (OUT: ``out_dir``, default RUN_DIR/eval). The model is not changed."""
    unknown = sorted(set(options) - {f.name for f in fields(EvalConfig)})
    if unknown:
        raise ValueError(f"unknown evaluate options {unknown}; valid: {_option_names()}")
    config = EvalConfig(**options)
    ckpt_path = Path(checkpoint)
    ckpt = read_checkpoint(ckpt_path)  # once: both loaders take the dict
    if checkpoint_task(ckpt) == "multimodal":
        return _evaluate_multimodal(ckpt_path, out_dir, config, ckpt)
    model, run_cfg = load_pretrained(ckpt_path, ckpt)
    out = writable_dir(Path(out_dir) if out_dir else ckpt_path.parent.parent / "eval", "--out_dir")
    if config.save_features:
        writable_dir(Path(config.save_features).parent, "--save_features (its folder)")
    splits = eval_splits(run_cfg.get("data"), config.data_dir)
    title = f"{splits.spec.name} / {model.method.name}"
    metrics: dict[str, Any] = {
        "checkpoint": str(ckpt_path), "method": model.method.name, "dataset": splits.spec.name,
    }  # fmt: skip
    metrics |= run(model.encoder, splits, config, out, model.hparams.num_classes,
                   model.classifier, f"checkpoint {ckpt_path}", title)  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "metrics.md").write_text(markdown_table(metrics, title))
    return metrics


def evaluate_main(argv: list[str] | None = None) -> dict[str, Any]:
    """The ``bayesncl evaluate`` command line: prints the markdown table."""
    parser = ArgumentParser(prog="bayesncl evaluate", description=__doc__, exit_on_error=False)
    parser.add_argument("checkpoint", type=str, help="RUN_DIR/checkpoints/last.ckpt")
    parser.add_argument("--out_dir", type=str | None, default=None, help="default RUN_DIR/eval")
    parser.add_class_arguments(EvalConfig, nested_key=None)
    cfg = parser.parse_args(sys.argv[2:] if argv is None else argv)
    options = {f.name: cfg[f.name] for f in fields(EvalConfig)}
    metrics = evaluate_checkpoint(cfg.checkpoint, cfg.out_dir, **options)
    if metrics.get("task") == "multimodal":
        from bayesncl.evaluate.multimodal import markdown

        print(markdown(metrics, f"{metrics['dataset']} / {metrics['method']} (two towers)"))
    else:
        print(markdown_table(metrics, f"{metrics['dataset']} / {metrics['method']}"))
    return metrics
