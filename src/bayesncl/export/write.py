"""``bayesncl export CKPT OUT_DIR``: the encoder as safetensors + JSON config + a model card.

OUT_DIR/model.safetensors  backbone + head (projector, gate, the objective's own parameters)
OUT_DIR/config.json        model settings, ``method`` (``MethodConfig.to_dict()``), the
                           evaluation preprocessing (mean/std, image size), ``classes`` (the
                           name of each label, where known), provenance
OUT_DIR/README.md          model card: method, data, epochs, steps, headline metrics
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bayesncl.data.datasets import get_dataset_spec, known_class_names
from bayesncl.export.model import (
    CONFIG_FILE,
    EXPORT_FORMAT,
    EXPORT_VERSION,
    WEIGHTS_FILE,
    ModelFileError,
    TrainedEncoder,
    describe,
    load,
    read_checkpoint,
    resolve_model_path,
)

#: metrics.json keys shown on the model card: (key, label, scale)
HEADLINE = [
    ("linear_top1", "linear probe top-1 (%)", 100),
    ("knn_top1", "kNN top-1 (%)", 100),
    ("consistency", "class consistency (%)", 100),
    ("entropy_sum", "semantic entropy H_s (nats)", 1),
    ("sparsity", "sparsity", 1),
    ("activation_ratio", "active dims / K", 1),
    ("retrieval_p1", "retrieval P@1 (%)", 100),
    ("gate_open", "gate open rate", 1),
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bayesncl")
    except PackageNotFoundError:
        return "unknown"


def export_classes(model: TrainedEncoder) -> list[str] | None:
    """The training dataset's class names by label where known without reading images
    (:func:`~bayesncl.data.datasets.known_class_names`), else None."""
    try:
        spec = get_dataset_spec(model.preprocessing.dataset)
    except ValueError:  # a dataset this installation does not know: no names
        return None
    return known_class_names(spec, model.preprocessing.data_dir)


def find_metrics(checkpoint: Path, run_dir: str | None) -> Path | None:
    """RUN_DIR/eval/metrics.json of the checkpoint's run, if ``bayesncl evaluate`` wrote one."""
    for root in (checkpoint.parent.parent, Path(run_dir) if run_dir else None):
        if root is not None and (root / "eval" / "metrics.json").is_file():
            return root / "eval" / "metrics.json"
    return None


def _classes_line(model: TrainedEncoder) -> str:
    names = export_classes(model)
    if not names:
        return "not recorded (named by the data files, e.g. CIFAR's meta file)"
    more = f", ... ({len(names) - 20} more)" if len(names) > 20 else ""
    return f"{len(names)}, by label: " + ", ".join(names[:20]) + more


def model_card(model: TrainedEncoder, metrics: dict[str, Any] | None, source: str) -> str:
    """The export's README.md."""
    info, pre, m = model.info, model.preprocessing, model.method
    epoch, steps = info.get("epoch"), info.get("global_step")
    done = (
        f"{steps} optimizer steps, stopped in epoch {epoch + 1} of {info.get('max_epochs')}"
        if epoch is not None
        else "unknown"
    )
    lines = [
        f"# bayesncl encoder: {m.name} on {pre.dataset}",
        "",
        f"- method: `{m.name}` (nonneg `{m.nonneg}`, top-k `{m.topk_k}`, "
        f"gate `{m.gate.kind if m.gate else 'none'}`, objective `{m.objective}`, tau {m.tau})",
        f"- backbone: `{model.settings.backbone}`, representation width K = {model.dim}",
        f"- data: `{pre.dataset}`, {pre.in_channels} channel(s), {pre.image_size} px, "
        f"mean {list(pre.mean)}, std {list(pre.std)}",
        f"- classes: {_classes_line(model)}",
        f"- training: {done}, seed {info.get('seed')}",
        f"- exported from: `{source}` with bayesncl {_version()}",
        "",
    ]
    if metrics:
        lines += [
            "## Evaluation (`bayesncl evaluate`, held-out split)",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        for key, label, scale in HEADLINE:
            if metrics.get(key) is not None:
                lines.append(f"| {label} | {metrics[key] * scale:.4g} |")
        lines.append("")
    else:
        lines += ["No evaluation found (run `bayesncl evaluate` on the checkpoint first).", ""]
    lines += [
        "## Use",
        "",
        "```python",
        "import bayesncl",
        'model = bayesncl.load("THIS_DIR")',
        "features = model.encode(images)  # N x K, non-negative, rows of unit norm",
        "```",
        "",
        "`bayesncl encode THIS_DIR --images DIR --out features.npz`;",
        "`bayesncl browse THIS_DIR --out site/` for a feature browser.",
        "",
    ]
    return "\n".join(lines)


def write_export(
    model: TrainedEncoder,
    out_dir: str | Path,
    metrics: dict[str, Any] | None = None,
    source: str = "",
) -> Path:
    """Write ``model`` as OUT_DIR/{model.safetensors, config.json, README.md}; returns OUT_DIR."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.encoder.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    training = dict(model.info)
    if metrics:
        training["metrics"] = {k: metrics.get(k) for k, _, _ in HEADLINE if k in metrics}
    config = {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "bayesncl_version": _version(),
        "model": asdict(model.settings),
        "method": model.method.to_dict(),
        "preprocessing": model.preprocessing.to_dict(),
        "representation_dim": model.dim,
        "classes": export_classes(model),
        "training": training,
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    (out / "README.md").write_text(model_card(model, metrics, source))
    return out


def export_model(checkpoint: str | Path, out_dir: str | Path) -> Path:
    """Write OUT_DIR/{model.safetensors, config.json, README.md} from a ``bayesncl fit``
    checkpoint (or a run directory), with the headline metrics of RUN_DIR/eval/metrics.json
    when ``bayesncl evaluate`` wrote one; returns OUT_DIR."""
    ckpt = resolve_model_path(checkpoint)
    if ckpt.is_dir():
        raise ModelFileError(f"{ckpt} is already an export directory; export a .ckpt")
    model = TrainedEncoder(read_checkpoint(ckpt))
    metrics_path = find_metrics(ckpt, model.info.get("run_dir"))
    metrics = None
    if metrics_path:
        metrics = json.loads(metrics_path.read_text())
        model.info["metrics_file"] = str(metrics_path)
    return write_export(model, out_dir, metrics, str(ckpt))


def export_main(argv: list[str]) -> int:
    """``bayesncl export CKPT OUT_DIR``."""
    parser = argparse.ArgumentParser(
        prog="bayesncl export", description=__doc__, exit_on_error=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("checkpoint", help="RUN_DIR/checkpoints/last.ckpt (or RUN_DIR)")
    parser.add_argument("out_dir", help="directory to write (created)")
    args = parser.parse_args(argv)
    out = export_model(args.checkpoint, args.out_dir)
    model = load(out)  # read back: the export is complete and loads
    print(f"exported {describe(model)} to {out}/ ({WEIGHTS_FILE}, {CONFIG_FILE}, README.md)")
    return 0
