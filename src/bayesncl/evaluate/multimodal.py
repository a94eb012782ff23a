"""Evaluation of a multi-modal (MMNCL / CLIP-style) checkpoint (ncl-extras-spec §4.3, issue 14
item 4): cross-modal retrieval both ways, zero-shot classification from prompts (caption pairs
with class names), each tower's consistency, sparsity and linear probe, per-dimension agreement
of the two towers, and a figure of the top dimensions in both modalities.

``bayesncl evaluate RUN_DIR/checkpoints/last.ckpt`` lands here for checkpoints of
``task: multimodal`` (``bayesncl.evaluate.run.evaluate_checkpoint`` dispatches).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from bayesncl.data.paired import caption_prompts, captions_of
from bayesncl.evaluate.checkpoint import CheckpointError, checkpoint_task, read_checkpoint
from bayesncl.evaluate.common import metrics_table, progress, writable_dir
from bayesncl.evaluate.probe import linear_probe
from bayesncl.metrics.crossmodal import cross_modal_retrieval, dimension_agreement
from bayesncl.metrics.interpretability import active_dims, class_consistency, sparsity
from bayesncl.models.text import PAD, UNK, Tokenizer
from bayesncl.train.multimodal import encode_pairs
from bayesncl.train.multimodal_module import MULTIMODAL_TASK, TwoTowerModule
from bayesncl.train.optim import OptimConfig

#: M2's caveat, printed with every zero-shot result on captions that name the class
CAPTION_CAVEAT = (
    "the captions contain the class name, so zero-shot accuracy here tests the plumbing and the "
    "shared dimensions, not CLIP-scale zero-shot transfer (ncl-extras-spec §4.3)"
)
#: what the metrics keys mean, in the order metrics.md lists them (key, label, scale)
MM_ROWS: tuple[tuple[str, str, float], ...] = (
    ("x_to_y/R@1", "retrieval image -> partner, R@1 (%)", 100),
    ("x_to_y/R@5", "retrieval image -> partner, R@5 (%)", 100),
    ("x_to_y/R@10", "retrieval image -> partner, R@10 (%)", 100),
    ("y_to_x/R@1", "retrieval partner -> image, R@1 (%)", 100),
    ("y_to_x/R@5", "retrieval partner -> image, R@5 (%)", 100),
    ("y_to_x/R@10", "retrieval partner -> image, R@10 (%)", 100),
    ("retrieval_pairs", "retrieval gallery (pairs)", 1),
    ("retrieval_distinct_partners", "retrieval gallery: distinct captions", 1),
    ("zero_shot_top1", "zero-shot top-1, prompt ensemble (%)", 100),
    ("zero_shot_plain_top1", "zero-shot top-1, 'a {class}' (%)", 100),
    ("x_consistency", "image tower: consistency (%)", 100),
    ("y_consistency", "partner tower: consistency (%)", 100),
    ("x_sparsity", "image tower: sparsity", 1),
    ("y_sparsity", "partner tower: sparsity", 1),
    ("x_active_dims", "image tower: dimensions ever active", 1),
    ("y_active_dims", "partner tower: dimensions ever active", 1),
    ("x_linear_top1", "image tower: linear probe top-1 (%)", 100),
    ("y_linear_top1", "partner tower: linear probe top-1 (%)", 100),
    ("agreement_correlation", "agreement: mean correlation of dim k across towers", 1),
    ("agreement_share_both", "agreement: share of dims active in both towers", 1),
    ("agreement_share_one", "agreement: share of dims active in one tower only", 1),
    ("agreement_jaccard", "agreement: mean Jaccard of a pair's active dims", 1),
)


def load_two_tower(
    path: str | Path, ckpt: dict[str, Any] | None = None
) -> tuple[TwoTowerModule, dict[str, Any]]:
    """(TwoTowerModule in eval mode, the run config) of a ``task: multimodal`` checkpoint
    (``ckpt``: its dict, when :func:`~bayesncl.evaluate.checkpoint.read_checkpoint` has read
    it already)."""
    path = Path(path)
    ckpt = read_checkpoint(path) if ckpt is None else ckpt
    if checkpoint_task(ckpt) != MULTIMODAL_TASK:
        raise CheckpointError(f"{path} is not a bayesncl multimodal checkpoint")
    hp = dict(ckpt["hyper_parameters"])
    try:
        hp["optim"] = OptimConfig(**hp.get("optim", {}))
        model = TwoTowerModule(**hp)
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (TypeError, RuntimeError, ValueError) as err:
        raise CheckpointError(
            f"{path} does not match the model its settings describe: {err}"
        ) from err
    model.eval()
    return model, ckpt["bayesncl"].get("config") or {}


def _encode_captions(model: TwoTowerModule, captions: Sequence[str]) -> Tensor:
    assert model.tokenizer is not None
    with torch.no_grad():
        return model.model.tower_y(model.tokenizer(list(captions))).output


def generic_prompts(class_name: str) -> list[str]:
    """Prompts of a class for captions of unknown grammar (your own pairs)."""
    return [f"a {class_name}", f"a photo of a {class_name}"]


def zero_shot(
    model: TwoTowerModule,
    codes_x: Tensor,
    labels: Tensor,
    class_names: Sequence[str],
    prompts: Callable[[str], list[str]] = caption_prompts,
) -> dict[str, float]:
    """Top-1 of the nearest class prototype (cosine): the mean of the unit text codes of each
    class's ``prompts`` (M2: :func:`~bayesncl.data.paired.caption_prompts`, its caption
    grammar; your pairs: :func:`generic_prompts`), and of "a {class}" alone."""
    x = F.normalize(codes_x.float(), dim=1)
    out = {}
    for key, make in (
        ("zero_shot_top1", prompts),
        ("zero_shot_plain_top1", lambda name: [f"a {name}"]),
    ):
        protos = torch.stack(
            [
                F.normalize(_encode_captions(model, make(n)).float(), dim=1).mean(0)
                for n in class_names
            ]
        )
        pred = (x @ F.normalize(protos, dim=1).T).argmax(1)
        out[key] = float((pred == labels).float().mean())
    return out


def top_words(
    codes_y: Tensor, captions: Sequence[str], tokenizer: Tokenizer, dim: int, n: int = 5
) -> list[tuple[str, float]]:
    """The words whose captions activate dimension ``dim`` of the text tower most on average
    (words of fewer than 5 captions are left out)."""
    ids = tokenizer(list(captions))
    values = codes_y[:, dim].float()
    sums = torch.zeros(tokenizer.vocab_size)
    counts = torch.zeros(tokenizer.vocab_size)
    for row, v in zip(ids, values, strict=True):
        words = torch.unique(row[(row != PAD) & (row != UNK)])
        sums[words] += v
        counts[words] += 1
    mean = torch.where(counts >= 5, sums / counts.clamp_min(1), torch.full_like(sums, -1.0))
    order = mean.argsort(descending=True)[:n]
    return [(tokenizer.vocab[int(i)], float(mean[i])) for i in order if mean[i] > 0]


def crossmodal_figure(
    path: Path,
    codes_x: Tensor,
    codes_y: Tensor,
    images: Dataset,
    correlation: Tensor,
    captions: Sequence[str] | None,
    tokenizer: Tokenizer | None,
    dims: int = 6,
    per_dim: int = 6,
    title: str = "",
) -> Path:
    """Rows: the ``dims`` dimensions whose activations agree most across the towers
    (correlation over the pairs); left: the images that activate the dimension most in the image
    tower; right: the partners that activate it most in the partner tower (edge maps), or the
    dimension's top words (captions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corr = torch.nan_to_num(correlation, nan=-2.0)
    chosen = corr.argsort(descending=True)[:dims].tolist()
    right = per_dim if captions is None else 2
    fig, axes = plt.subplots(
        len(chosen), per_dim + right, figsize=(1.1 * (per_dim + right), 1.2 * len(chosen)),
        squeeze=False,
    )  # fmt: skip
    for r, k in enumerate(chosen):
        top_x = codes_x[:, k].argsort(descending=True)[:per_dim].tolist()
        for c in range(per_dim + right):
            axes[r][c].axis("off")
        for c, i in enumerate(top_x):
            img = images[i][0]
            axes[r][c].imshow(img.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray")
        axes[r][0].set_title(f"dim {k}, r={float(correlation[k]):.2f}", fontsize=7, loc="left")
        if captions is None:
            top_y = codes_y[:, k].argsort(descending=True)[:per_dim].tolist()
            for c, i in enumerate(top_y):
                pair = images[i][1]
                axes[r][per_dim + c].imshow(pair.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray")
        else:
            assert tokenizer is not None
            words = top_words(codes_y, captions, tokenizer, k)
            text = "\n".join(f"{w} {v:.2f}" for w, v in words) or "(no word)"
            axes[r][per_dim].text(0, 0.5, text, fontsize=7, va="center")
    fig.suptitle(title + ": image tower (left) vs partner tower (right)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _tower_metrics(
    prefix: str, codes: Tensor, labels: Tensor | None, num_classes: int
) -> dict[str, float]:
    out = {
        f"{prefix}_sparsity": float(sparsity(codes)),
        f"{prefix}_active_dims": int(active_dims(codes)),
    }
    if labels is not None:
        out[f"{prefix}_consistency"] = float(
            class_consistency(codes, labels, num_classes=num_classes)
        )
    return out


def markdown(metrics: dict[str, Any], title: str) -> str:
    """The metrics as a two-column markdown table (the keys of :data:`MM_ROWS` present), then
    the evaluation's notes."""
    notes = "".join(f"\nNote: {note}\n" for note in metrics.get("notes", []))
    return metrics_table(metrics, title, MM_ROWS) + notes


def evaluate_two_tower(
    checkpoint: str | Path,
    out_dir: str | Path | None = None,
    data_dir: str | None = None,
    probe_epochs: int = 100,
    train_limit: int | None = None,
    retrieval_limit: int = 1000,
    figures: bool = True,
    batch_size: int = 512,
    ckpt: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every multi-modal evaluation of ``checkpoint`` on its validation pairs (probes trained on
    at most ``train_limit`` training pairs); writes OUT/metrics.json, metrics.md and the figure
    (OUT: ``out_dir``, default RUN_DIR/eval). Returns the metrics. ``ckpt``: the checkpoint's
    dict when it was read already."""
    from bayesncl.train.paired_datamodule import PairedDataModule

    path = Path(checkpoint)
    model, run_cfg = load_two_tower(path, ckpt)
    out = writable_dir(Path(out_dir) if out_dir else path.parent.parent / "eval", "--out_dir")
    data_cfg = dict(run_cfg.get("data") or {})
    if data_dir is not None:
        data_cfg["data_dir"] = data_dir
    data_cfg.pop("train_subset", None)
    data = PairedDataModule(**data_cfg, seed=int(run_cfg.get("seed", 0)))
    tokenizer = model.tokenizer
    hp = model.hparams
    notes: list[str] = []
    metrics: dict[str, Any] = {
        "checkpoint": str(path),
        "task": MULTIMODAL_TASK,
        "method": model.method.name,
        "pair_method": model.pair_method.name,
        "dataset": data.spec.name,
        "temperature": float(torch.as_tensor(model.model.tau()).detach()),
    }
    val = data.load(False)
    captions = captions_of(val) if hp.pair_kind == "text" else None
    train = data.train_pairs  # read by the data module already
    if train_limit is not None and len(train) > train_limit:  # type: ignore[arg-type]
        train = torch.utils.data.Subset(train, range(train_limit))
    with progress(f"codes of both towers ({len(val)} validation pairs)"):  # type: ignore[arg-type]
        vx, vy, vlabels = encode_pairs(model.model, val, tokenizer, batch_size)
    labelled = bool((vlabels >= 0).all()) and hp.num_classes > 0
    n = min(retrieval_limit, len(vx))
    with progress(f"retrieval ({n} pairs) and agreement"):
        ks = [k for k in (1, 5, 10) if k <= n]
        groups = None
        if captions is not None:  # identical captions are interchangeable partners
            ids: dict[str, int] = {}
            groups = torch.tensor([ids.setdefault(c, len(ids)) for c in captions[:n]])
            metrics["retrieval_distinct_partners"] = len(ids)
        metrics |= cross_modal_retrieval(vx[:n], vy[:n], ks, groups=groups, names=("x", "y"))
        metrics["retrieval_pairs"] = n
        agree = dimension_agreement(vx, vy)
        metrics["agreement_correlation"] = agree["mean_correlation"]
        metrics["agreement_share_both"] = agree["share_both"]
        metrics["agreement_share_one"] = agree["share_one"]
        metrics["agreement_jaccard"] = agree["support_jaccard"]
        metrics["agreement_per_dim"] = [
            None if v != v else float(v) for v in agree["correlation"].tolist()
        ]
    metrics |= _tower_metrics("x", vx, vlabels if labelled else None, hp.num_classes)
    metrics |= _tower_metrics("y", vy, vlabels if labelled else None, hp.num_classes)
    if labelled:
        with progress(f"linear probes of both towers ({len(train)} training pairs)"):  # type: ignore[arg-type]
            tx, ty, tlabels = encode_pairs(model.model, train, tokenizer, batch_size)
            for prefix, tr, va in (("x", tx, vx), ("y", ty, vy)):
                acc = linear_probe(tr, tlabels, va, vlabels, hp.num_classes, probe_epochs)
                metrics[f"{prefix}_linear_top1"] = acc["top1"]
    else:
        notes.append("the pairs have no labels: no consistency, probes or zero-shot")
    if hp.pair_kind == "text" and labelled and hp.class_names:
        m2 = data.spec.name == "fmnist-captions"  # its own caption grammar, and its caveat
        with progress("zero-shot from prompts"):
            metrics |= zero_shot(
                model, vx, vlabels, hp.class_names, caption_prompts if m2 else generic_prompts
            )
        if m2:
            notes.append(CAPTION_CAVEAT)
    elif hp.pair_kind == "image":
        notes.append("zero-shot classification needs text prompts: not defined for image partners")
    else:
        notes.append(
            "zero-shot needs labels and class names: for your pairs set data.label_key and "
            "data.class_names"
        )
    metrics["notes"] = notes
    title = f"{data.spec.name} / {model.method.name} (two towers)"
    if figures:
        with progress("figure"):
            crossmodal_figure(
                out / "crossmodal_dims.png", vx, vy, val, agree["correlation"], captions,
                tokenizer, title=title,
            )  # fmt: skip
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "metrics.md").write_text(markdown(metrics, title))
    return metrics
