"""``bayesncl browse MODEL --out SITE_DIR``: a static, offline feature browser.

SITE_DIR/index.html opens from the file system (no server): every dimension of the
representation in a table sortable by activation frequency, class consistency, semantic entropy
and gate open rate; a page per dimension (its most and least activated images with labels, its
class histogram, its gate statistics) and per image (its active dimensions). The data sit in
SITE_DIR/data.js (``window.DATA = {...}``: file:// pages may not fetch JSON), the thumbnails in
PNG sprite sheets (SITE_DIR/sprites/), so 10,000 images stay a few MB.

Statistics per dimension k over the N images (v = the representation ``bayesncl evaluate``
measures; a sample activates k when v_ik > 1e-5 ||v_i||, as the metrics, spec §2.2):
frequency = share of images that activate k; consistency = share of those in k's most frequent
class; entropy = -sum_c p_c ln p_c with p_c proportional to the activation mass of class c
(H_s's ``sum`` variant, spec §2.3); gate open = mean of the gate mask m_ik; mean alpha.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from bayesncl.export.encode import (
    Encoded,
    ImageSource,
    add_source_arguments,
    encode_source,
    source_from_args,
)
from bayesncl.export.model import TrainedEncoder, describe, load
from bayesncl.metrics.interpretability import class_tables

EPS = 1e-5
SHEET_COLS = 32  # thumbnails per sprite-sheet row
SHEET_ROWS = 32  # rows per sheet: 1,024 thumbnails per PNG
STATIC_FILES = ("index.html", "browse.js", "browse.css")


def _r(x: float, digits: int = 4) -> float | None:
    """A JSON-safe rounded float (None for NaN)."""
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else round(x, digits)


def dimension_stats(
    enc: Encoded, num_classes: int, labelled: bool, top_n: int = 24, image_dims: int = 32
) -> dict[str, Any]:
    """Per-dimension statistics, top/bottom images and per-image active dimensions."""
    v = torch.from_numpy(enc.features)
    n, k = v.shape
    labels = torch.from_numpy(np.where(enc.labels >= 0, enc.labels, 0))
    counts, mass, _ = class_tables(v, labels, max(num_classes, 1), EPS)  # (K x C) each
    norm = torch.linalg.vector_norm(v, dim=1, keepdim=True).clamp_min(1e-12)
    active = v.abs() > EPS * norm  # (N x K)
    freq = active.float().mean(0)
    total = counts.sum(1)
    dims = []
    mask = torch.from_numpy(enc.mask) if enc.mask is not None else None
    alpha = torch.from_numpy(enc.alpha) if enc.alpha is not None else None
    for d in range(k):
        col = v[:, d]
        act_idx = torch.nonzero(active[:, d]).flatten()
        order = act_idx[torch.argsort(col[act_idx], descending=True, stable=True)]
        top = order[:top_n].tolist()
        bottom = order.flip(0)[:top_n].tolist()
        row: dict[str, Any] = {
            "k": d,
            "freq": _r(freq[d]),
            "n_active": len(act_idx),
            "mean_active": _r(col[act_idx].mean()) if len(act_idx) else None,
            "top": top,
            "top_v": [_r(col[i], 3) for i in top],
            "bottom": bottom,
            "bottom_v": [_r(col[i], 3) for i in bottom],
        }
        if labelled:
            t = float(total[d])
            row["hist"] = [int(c) for c in counts[d]]
            row["cons"] = _r(counts[d].max() / t) if t > 0 else None
            row["top_class"] = int(counts[d].argmax()) if t > 0 else None
            m = mass[d]
            if float(m.sum()) > EPS:
                p = m / m.sum()
                p = p[p > EPS]
                row["ent"] = _r(-(p * p.log()).sum())
            else:
                row["ent"] = None
        if mask is not None and alpha is not None:
            row["gate"] = _r(mask[:, d].mean())
            row["alpha"] = _r(alpha[:, d].mean())
            row["alpha_hist"] = [int(c) for c in torch.histc(alpha[:, d], 10, 0.0, 1.0)]
            if labelled:
                opened = torch.zeros(num_classes).index_add_(0, labels, mask[:, d])
                seen = torch.bincount(labels, minlength=num_classes).clamp_min(1)
                row["gate_by_class"] = [_r(x, 3) for x in opened / seen]
        dims.append(row)
    images = []
    for i in range(n):
        idx = torch.nonzero(active[i]).flatten()
        idx = idx[torch.argsort(v[i, idx], descending=True, stable=True)]
        images.append([[int(j), _r(v[i, j], 3)] for j in idx[:image_dims]] + [len(idx)])
    return {"dims": dims, "images": images}


def _thumbnail(image: Any, cell: int, mode: str) -> Image.Image:
    if isinstance(image, torch.Tensor):
        arr = image.numpy()
        if arr.dtype != np.uint8:
            arr = (np.clip(arr, 0, 1) * 255).astype(np.uint8)
        arr = arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)
        image = Image.fromarray(arr)
    elif isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image = image.convert(mode)
    if image.size != (cell, cell):
        image = ImageOps.fit(image, (cell, cell), Image.Resampling.BICUBIC)
    return image


def write_sprites(source: ImageSource, out: Path, thumb: int) -> dict[str, Any]:
    """PNG sprite sheets of every image (``SHEET_COLS x SHEET_ROWS`` cells each)."""
    n = len(source)
    first = source.dataset[0][0]
    size = max(first.shape[-2:]) if isinstance(first, torch.Tensor) else max(first.size)
    gray = isinstance(first, torch.Tensor) and first.shape[0] == 1
    gray = gray or (isinstance(first, Image.Image) and first.mode == "L")
    cell, mode = min(thumb, int(size)), "L" if gray else "RGB"
    (out / "sprites").mkdir(parents=True, exist_ok=True)
    per_sheet = SHEET_COLS * SHEET_ROWS
    files = []
    for s in range(math.ceil(n / per_sheet)):
        count = min(per_sheet, n - s * per_sheet)
        rows = math.ceil(count / SHEET_COLS)
        sheet = Image.new(mode, (SHEET_COLS * cell, rows * cell))
        for j in range(count):
            image = source.dataset[s * per_sheet + j][0]
            r, c = divmod(j, SHEET_COLS)
            sheet.paste(_thumbnail(image, cell, mode), (c * cell, r * cell))
        name = f"sprites/sheet-{s}.png"
        sheet.save(out / name, optimize=True)
        files.append(name)
    return {"cols": SHEET_COLS, "per_sheet": per_sheet, "cell": cell, "files": files}


def build_site(
    model: TrainedEncoder,
    source: ImageSource,
    out_dir: str | Path,
    batch_size: int = 256,
    num_workers: int = 0,
    thumb: int = 32,
    title: str | None = None,
) -> Path:
    """Encode ``source`` and write the browser to ``out_dir``; returns index.html's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    enc = encode_source(model, source, batch_size, num_workers, gate=True)
    labelled = source.has_labels
    num_classes = max(int(enc.labels.max()) + 1 if labelled and len(enc.labels) else 1, 1)
    if source.classes:
        num_classes = max(num_classes, len(source.classes))
    classes = list(source.classes or [str(c) for c in range(num_classes)])
    stats = dimension_stats(enc, num_classes, labelled)
    sprites = write_sprites(source, out, thumb)
    ids = source.ids()
    ((key, values),) = ids.items()
    data = {
        "title": title or f"{model.method.name} on {model.preprocessing.dataset}",
        "model": describe(model),
        "source": source.description,
        "n": len(source),
        "K": model.dim,
        "has_gate": enc.mask is not None,
        "labelled": labelled,
        "classes": classes,
        "labels": enc.labels.tolist() if labelled else None,
        "id_kind": key,
        "ids": [str(x) if key == "paths" else int(x) for x in values],
        "sprites": sprites,
        **stats,
    }
    text = "window.DATA = " + json.dumps(data, separators=(",", ":")) + ";\n"
    (out / "data.js").write_text(text)
    static = resources.files("bayesncl.browse").joinpath("static")
    for name in STATIC_FILES:
        if not static.joinpath(name).is_file():
            raise FileNotFoundError(
                f"bayesncl/browse/static/{name} is missing from the installed package: "
                "reinstall bayesncl (its package data holds the browser's files)"
            )
        with resources.as_file(static.joinpath(name)) as src:
            shutil.copyfile(src, out / name)
    return out / "index.html"


def site_size(out_dir: str | Path) -> int:
    """Bytes of every file of the site."""
    return sum(p.stat().st_size for p in Path(out_dir).rglob("*") if p.is_file())


def browse_main(argv: list[str]) -> int:
    """``bayesncl browse``."""
    parser = argparse.ArgumentParser(
        prog="bayesncl browse", description=__doc__, exit_on_error=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("model", help="export directory, RUN_DIR/checkpoints/last.ckpt or RUN_DIR")
    parser.add_argument("--out", required=True, help="site directory to write (index.html)")
    add_source_arguments(parser, required=False)
    parser.add_argument("--thumb", type=int, default=32, help="thumbnail side in pixels (max)")
    args = parser.parse_args(argv)
    if args.thumb < 1:
        raise ValueError(f"--thumb {args.thumb} must be >= 1")
    model = load(args.model, args.device)
    source = source_from_args(model, args)
    print(f"browsing {source.description} with {describe(model)}", file=sys.stderr)
    index = build_site(model, source, args.out, args.batch_size, args.num_workers, args.thumb)
    mb = site_size(args.out) / 1e6
    print(
        f"wrote {index} ({mb:.1f} MB); open it in a browser (works offline, from the file system)"
    )
    return 0
