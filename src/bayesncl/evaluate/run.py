"""``bayesncl evaluate CHECKPOINT``: every interpretability metric, accuracy and cost of a run.

Writes OUT/metrics.json and OUT/metrics.md (OUT defaults to RUN_DIR/eval), optional figures,
and with ``--save_features F.npz`` the exact matrix (``features``) and ``labels`` the
interpretability metrics were computed on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader

from bayesncl.evaluate.checkpoint import load_pretrained
from bayesncl.evaluate.extract import extract
from bayesncl.metrics.retrieval import retrieval_precision
from bayesncl.metrics.streaming import interpretability_report

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
    ("gmacs_pair", "GMACs (two-view pair)", 1),
    ("params", "parameters (M)", 1e-6),
]


def markdown_table(metrics: dict[str, Any], title: str) -> str:
    lines = [f"### {title}", "", "| metric | value |", "|---|---|"]
    for key, label, scale in TABLE_ROWS:
        if key in metrics and metrics[key] is not None:
            lines.append(f"| {label} | {metrics[key] * scale:.4g} |")
    return "\n".join(lines) + "\n"


def evaluate_checkpoint(
    checkpoint: str,
    out_dir: str | None = None,
    data_dir: str | None = None,
    bn_mode: Literal["eval", "train"] = "eval",
    soft_gate: bool = False,
    save_features: str | None = None,
    probe: bool = True,
    probe_epochs: int = 100,
    probe_protocol: Literal["fast", "cifar", "imagenet100"] = "fast",
    knn_k: int = 200,
    knn_temperature: float = 0.1,
    select_dims: list[int] | None = None,
    train_limit: int | None = None,
    figures: bool = True,
    batch_size: int = 512,
    num_workers: int = 0,
    cost: bool = True,
) -> dict[str, Any]:
    """Evaluate a ``bayesncl fit`` checkpoint; returns the metrics dict (also written to disk).

    Args:
        checkpoint: RUN_DIR/checkpoints/last.ckpt.
        out_dir: where to write (default RUN_DIR/eval).
        data_dir: dataset location if it moved since training.
        bn_mode: ``eval`` (running statistics) or ``train`` (the official code's batch statistics).
        soft_gate: evaluate with alpha as the mask instead of the hard gate (official option).
        save_features: write the evaluated matrix and labels to this .npz file.
        probe: run the linear probe, kNN and feature-selection probes (on the training split).
        probe_epochs: epochs of the linear probe on frozen features.
        probe_protocol: ``fast`` (linear probe on pre-extracted, un-augmented features: the CPU
            path), or an official protocol on augmented images through the frozen backbone:
            ``cifar`` (LARS, 50 epochs) or ``imagenet100`` (SGD lr 1.0, 50 epochs); slow on CPU.
        knn_k, knn_temperature: weighted kNN settings (lightly's defaults 200 / 0.1).
        select_dims: widths of the feature-selection probe and of top-dimension retrieval
            (default: K/8, K/4, K/2).
        train_limit: use at most this many training images for the probes.
        figures: write the PNG figures.
        cost: parameters, GMACs and step time.
    """
    from bayesncl.train.datamodule import SSLDataModule, _subset, _Transformed

    model, run_cfg = load_pretrained(checkpoint)
    ckpt_path = Path(checkpoint)
    out = Path(out_dir) if out_dir else ckpt_path.parent.parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    from bayesncl.train.fit import resolved_init

    data_cfg = resolved_init(run_cfg).data.as_dict() if run_cfg else {}
    data_cfg.pop("train_subset", None)
    data_cfg.pop("val_subset", None)
    if data_dir is not None:
        data_cfg["data_dir"] = data_dir
    data_cfg["num_workers"] = num_workers
    dm = SSLDataModule(**data_cfg)
    num_classes = model.hparams.num_classes
    val_raw = dm.load(False)
    val_loader = DataLoader(
        _Transformed(val_raw, dm.eval_transform()), batch_size=batch_size, num_workers=num_workers
    )
    val = extract(model.encoder, val_loader, bn_mode, soft_gate)
    metrics: dict[str, Any] = {
        "checkpoint": str(ckpt_path),
        "method": model.method.name,
        "dataset": dm.spec.name,
        "bn_mode": bn_mode,
        "soft_gate": soft_gate,
        "num_eval_samples": len(val.labels),
    }
    metrics.update(interpretability_report(val.output, val.labels, num_classes))
    n_ret = min(10, len(val.labels) - 1)
    ks = tuple(k for k in (1, 3, 5, 10) if k <= n_ret)
    for k, v in retrieval_precision(val.output, val.labels, ks).items():
        metrics[f"retrieval_p{k}"] = v
    dim = val.output.shape[1]
    dims = select_dims or sorted({max(1, dim // 8), max(1, dim // 4), max(1, dim // 2)})
    for d in dims:  # retrieval on the d most active dimensions only (spec §2.6)
        for k, v in retrieval_precision(val.output, val.labels, ks, num_dims=d).items():
            metrics[f"retrieval_top{d}dims_p{k}"] = v
    if val.mask is not None:
        metrics["gate_open"] = float(val.mask.mean())
    if probe:
        train_raw = _subset(dm.load(True), train_limit)
        train_loader = DataLoader(
            _Transformed(train_raw, dm.eval_transform()),
            batch_size=batch_size,
            num_workers=num_workers,
        )
        train = extract(model.encoder, train_loader, "eval", soft_gate)
        from bayesncl.evaluate.probe import feature_selection_probe, knn_accuracy, linear_probe

        if probe_protocol == "fast":
            lp = linear_probe(
                train.h, train.labels, val.h, val.labels, num_classes, epochs=probe_epochs
            )
        else:
            from bayesncl.data.augment import AugmentConfig, view_transform
            from bayesncl.evaluate.probe import PROTOCOLS, augmented_linear_probe

            crop_flip = AugmentConfig(
                crop_scale_min=0.08,
                jitter_prob=0.0,
                grayscale_prob=0.0,
                blur_prob=0.0,
                flip_prob=0.5,
            )
            aug = view_transform(crop_flip, dm.image_size, dm.spec.mean, dm.spec.std)
            lp = augmented_linear_probe(
                model.encoder.backbone, _Transformed(train_raw, aug), val.h, val.labels, num_classes,
                PROTOCOLS[probe_protocol], num_workers,
            )  # fmt: skip
        metrics["linear_protocol"] = probe_protocol
        metrics.update({f"linear_{k}": v for k, v in lp.items()})
        kn = knn_accuracy(
            train.h, train.labels, val.h, val.labels, knn_k, knn_temperature, num_classes
        )
        metrics.update({f"knn_{k}": v for k, v in kn.items()})
        metrics["knn_k"], metrics["knn_temperature"] = knn_k, knn_temperature
        for d in dims:
            fs = feature_selection_probe(
                train.features,
                train.labels,
                val.features,
                val.labels,
                d,
                num_classes=num_classes,
                epochs=probe_epochs,
            )
            metrics[f"select{d}_top1"] = fs["top1"]
    if cost:
        image_shape = tuple(val_loader.dataset[0][0].shape)
        metrics.update(cost_report_safe(model, image_shape))
    if save_features:
        np.savez_compressed(save_features, features=val.output.numpy(), labels=val.labels.numpy())
        metrics["features_file"] = str(save_features)
    if figures:
        from bayesncl.evaluate import figures as fig

        name = f"{dm.spec.name} / {model.method.name}"
        metrics["figures"] = [
            str(
                fig.top_activated_grid(
                    val.output, lambda i: val_raw[i][0], out / "top_activated.png", title=name
                )
            ),
            str(fig.correlation_heatmap(val.output, out / "correlation.png", title=name)),
        ]
        if val.mask is not None:
            metrics["figures"].append(
                str(
                    fig.gate_vs_frequency(
                        val.mask, val.features, out / "gate_vs_frequency.png", title=name
                    )
                )
            )
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "metrics.md").write_text(
        markdown_table(metrics, f"{dm.spec.name} / {model.method.name}")
    )
    return metrics


def cost_report_safe(model, image_shape) -> dict[str, float]:
    from bayesncl.evaluate.cost import cost_report

    with torch.enable_grad():
        return cost_report(model, image_shape)


def evaluate_main(argv: list[str] | None = None) -> dict[str, Any]:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="bayesncl evaluate", description=__doc__, exit_on_error=False)
    parser.add_function_arguments(evaluate_checkpoint, as_positional=True)
    cfg = parser.parse_args(sys.argv[2:] if argv is None else argv)
    metrics = evaluate_checkpoint(**cfg.as_dict())
    print(markdown_table(metrics, f"{metrics['dataset']} / {metrics['method']}"))
    return metrics
