"""RESULTS.md from a finished grid: tables, the papers' claims checked, and the side-by-side.

    python -m bayesncl.reproduce.report results/cpu RESULTS.md [--figures docs/figures]

Everything between the ``generated`` markers of the output file is rewritten from
OUT/results.json; text outside them (the hand-written reading) is kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
from pathlib import Path
from typing import Any

from bayesncl.reproduce.grid import TABLES, TUNED, row_slug

START, END = "<!-- generated:start -->", "<!-- generated:end -->"

# The BayesNCL paper's figures (../shared/papers/000_...): main, downstream and ablation tables.
PAPER_MAIN = {  # Cons. CIFAR-10, Cons. CIFAR-100, Cons. IN-100, H_s IN-100, Act. IN-100
    "CL": (10.00, 1.00, 1.00, 4.59, 1.00),
    "NCL": (53.82, 9.91, 14.93, 3.28, 0.48),
    "NCL+TopK": (51.81, 12.32, 14.27, 3.35, 0.47),
    "BayesNCL (GS)": (53.68, 20.75, 11.66, 3.36, 0.13),
    "BayesNCL (STE)": (56.50, 22.02, 36.14, 2.10, 0.50),
}
PAPER_DOWNSTREAM = {  # LP@1 CIFAR-10, CIFAR-100, IN-100, LP@5 IN-100
    "CL": (87.88, 59.72, 68.31, 90.24),
    "NCL": (87.80, 60.67, 69.63, 91.23),
    "BayesNCL (STE)": (88.02, 60.69, 70.44, 91.71),
}
PAPER_OVERHEAD = {  # training minutes and FLOPs (G) of CIFAR-100, then IN-100
    "NCL": (70.95, 1.416, 193.78, 3.731),
    "BayesNCL (STE)": (75.12, 1.419, 218.53, 3.815),
}
PAPER_ABLATION = {  # IN-100 Cons., LP@1
    "BayesNCL (STE)": (36.14, 70.44),
    "Soft gating": (33.15, 69.87),
    "Remove detachment": (22.29, 67.47),
    "1-layer head": (40.85, 69.55),
    "3-layer head": (26.37, 68.09),
}


def _cell(tables: dict, table: str, row: str, col: str) -> dict[str, Any] | None:
    return tables.get(table, {}).get(row, {}).get(col)


def _fmt(cell: dict[str, Any] | None, digits: int = 2) -> str:
    if not cell or cell.get("mean") is None:
        return "-"
    if cell.get("std") is None:
        return f"{cell['mean']:.{digits}f}"
    return f"{cell['mean']:.{digits}f} ± {cell['std']:.{digits}f}"


def compare(a: dict | None, b: dict | None, higher: bool = True) -> tuple[str, float | None]:
    """Verdict on "a above b" (or below, ``higher=False``) from two cells' runs.

    ``holds``: the difference of means has the claimed sign and exceeds the larger of the two
    standard errors summed (a rough two-sigma-like margin for 3 seeds); ``within noise``: the
    sign is right but the margin is not; ``does not hold``: the sign is wrong and beyond noise;
    ``unclear`` otherwise.
    """
    if not a or not b or a.get("mean") is None or b.get("mean") is None:
        return "no data", None
    diff = (a["mean"] - b["mean"]) * (1 if higher else -1)
    noise = 0.0
    for c in (a, b):
        n = len(c.get("values") or [])
        if c.get("std") is not None and n > 1:
            noise += c["std"] / math.sqrt(n)
    margin = 2 * noise
    if diff > margin:
        return "holds", diff
    if diff > 0:
        return "within noise", diff
    if diff < -margin:
        return "does not hold", diff
    return "unclear (within noise, wrong sign)", diff


CLAIMS: list[tuple[str, str, str, str, str, bool]] = [
    # text, table, column, row a, row b, a higher than b
    ("Cons.: BayesNCL above NCL", "main", "Cons.", "BayesNCL (STE)", "NCL", True),
    ("Cons.: NCL above CL", "main", "Cons.", "NCL", "CL", True),
    ("H_s: BayesNCL below NCL", "main", "H_s", "BayesNCL (STE)", "NCL", False),
    ("Act.: BayesNCL not below NCL", "main", "Act.", "BayesNCL (STE)", "NCL", True),
    ("LP@1: BayesNCL not below NCL", "downstream", "LP@1", "BayesNCL (STE)", "NCL", True),
    ("LP@1: NCL not below CL", "downstream", "LP@1", "NCL", "CL", True),
    ("kNN@1: BayesNCL not below NCL", "downstream", "kNN@1", "BayesNCL (STE)", "NCL", True),
    ("Ablation: hard (STE) gating above soft, Cons.", "ablation", "Cons.", "BayesNCL (STE)",
     "Soft gating", True),
    ("Ablation: detachment helps, Cons.", "ablation", "Cons.", "BayesNCL (STE)",
     "Remove detachment", True),
    ("Ablation: 2-layer head above 3-layer, Cons.", "ablation", "Cons.", "BayesNCL (STE)",
     "3-layer head", True),
]  # fmt: skip


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]


def _sensitivity(data: dict[str, Any]) -> list[str]:
    sens = data["tables"].get("sensitivity", {})
    if not sens:
        return []
    grid: dict[tuple[float, float], dict] = {}
    others = []
    for name, cells in sens.items():
        m = re.fullmatch(r"rho=([\d.]+) lambda=([\de.+-]+)", name)
        if m:
            grid[(float(m[1]), float(m[2]))] = cells
        elif name == "BayesNCL (STE)":
            grid[(0.8, 3e-5)] = cells
        else:
            others.append((name, cells))
    lines = []
    if grid:
        rhos = sorted({k[0] for k in grid})
        lams = sorted({k[1] for k in grid})
        for col in ("Cons.", "LP@1"):
            rows = [
                [f"rho = {r:g}"] + [_fmt(grid.get((r, lam), {}).get(col)) for lam in lams]
                for r in rhos
            ]
            lines += [
                f"{col} over rho (prior) x lambda (KL weight); default rho 0.8, lambda 3e-5:",
                "",
            ]
            lines += _table([col] + [f"lambda = {lam:g}" for lam in lams], rows)
    if others:
        default = sens.get("BayesNCL (STE)", {})
        rows = [
            [
                "default (T = 1, recipe gate lr)",
                _fmt(default.get("Cons.")),
                _fmt(default.get("LP@1")),
            ]
        ]
        rows += [[n, _fmt(c.get("Cons.")), _fmt(c.get("LP@1"))] for n, c in others]
        lines += ["Gate temperature T and gate learning rate, one at a time:", ""]
        lines += _table(["setting", "Cons.", "LP@1"], rows)
    best = max(
        ((n, c) for n, c in sens.items() if c.get("Cons.", {}).get("mean") is not None),
        key=lambda nc: nc[1]["Cons."]["mean"],
        default=None,
    )
    ncl = _cell(data["tables"], "main", "NCL", "Cons.")
    if best and ncl and ncl.get("mean") is not None:
        lines += [
            f"Highest Cons. in the sensitivity grid: {best[0]} ({_fmt(best[1]['Cons.'])}, "
            f"n = {len(best[1]['Cons.']['values'])}); NCL: {_fmt(ncl)}.",
            "",
        ]
    return lines


def _tuning(data: dict[str, Any]) -> list[str]:
    info = data.get("tuning")
    if not info:
        return []
    lines = [
        "### Tuning (BayesNCL on this data)",
        "",
        f"Rule, fixed before the runs: {info['rule']}.",
    ]
    if info.get("lp1_floor") is not None:
        lines[-1] += f" LP@1 floor: {100 * info['lp1_floor']:.2f}."
    rows = [
        [name, f"{100 * c['consistency']:.2f}", f"{100 * c['linear_top1']:.2f}",
         "yes" if c["eligible"] else "no", "**selected**" if name == info["selected"] else ""]
        for name, c in sorted(info["candidates"].items(), key=lambda kv: -kv[1]["consistency"])
    ]  # fmt: skip
    lines += ["", *_table(["cell (seed 0)", "Cons.", "LP@1", "eligible", ""], rows)]
    t = data["tables"]
    if info["selected"] is None:
        lines += ["No cell kept LP@1 within the floor; nothing to confirm.", ""]
    elif TUNED in t.get("main", {}):
        lines += [
            f"{info['selected']} rerun on fresh seeds as `{TUNED}`: Cons. "
            f"{_fmt(_cell(t, 'main', TUNED, 'Cons.'))}, LP@1 "
            f"{_fmt(_cell(t, 'downstream', TUNED, 'LP@1'))} (NCL: "
            f"{_fmt(_cell(t, 'main', 'NCL', 'Cons.'))}, "
            f"{_fmt(_cell(t, 'downstream', 'NCL', 'LP@1'))}).",
            "",
        ]
    return lines


def generated_section(data: dict[str, Any], source: str) -> str:
    t = data["tables"]
    env = data.get("environment", {})
    lines = [START, "", f"Source: `{source}` (every number below is read from it)."]
    if env:
        lines += [
            "",
            (
                f"Ran {env['started']} to {env.get('finished', '?')}; "
                if "started" in env
                else f"Finished {env.get('finished', '?')}; "
            )
            + f"bayesncl commit {env.get('commit', '?')}; "
            f"torch {env.get('torch', '?')}, torchvision {env.get('torchvision', '?')}, "
            f"lightning {env.get('lightning', '?')}, Python {env.get('python', '?')}; "
            f"{env.get('cpu', '?')}, {env.get('threads', '?')} threads"
            + (
                f", {env['workers']} runs at a time ({env['threads'] // env['workers']} thread(s) each)."
                if env.get("workers", 1) > 1
                else "."
            ),
        ]
    lines += [
        "",
        f"Preset `{data['preset']}`, {data['seeds']} seed(s) per row; cells are mean ± std over seeds.",
        "",
    ]
    titles = {
        "main": "Main results (interpretability)",
        "downstream": "Downstream (frozen backbone features)",
        "ablation": "Ablation",
        "overhead": "Overhead",
    }
    for key, title in titles.items():
        rows = t.get(key)
        if not rows:
            continue
        cols = list(next(iter(rows.values())))
        digits = {label: d for label, _, _, d in TABLES[key][1]}
        body = [
            [name, str(len(next(iter(cells.values()))["values"]))]
            + [_fmt(cells[c], digits.get(c, 2)) for c in cols]
            for name, cells in rows.items()
        ]
        lines += [f"### {title}", "", *_table(["method", "n", *cols], body)]
    lines += ["### Sensitivity (BayesNCL)", "", *_sensitivity(data)]
    lines += _tuning(data)
    lines += ["### The papers' claims at this scale", ""]
    rows = []
    claims = list(CLAIMS)
    if TUNED in t.get("main", {}):
        claims += [
            ("Cons.: BayesNCL (tuned) above NCL", "main", "Cons.", TUNED, "NCL", True),
            ("LP@1: BayesNCL (tuned) not below NCL", "downstream", "LP@1", TUNED, "NCL", True),
            ("Act.: BayesNCL (tuned) not below NCL", "main", "Act.", TUNED, "NCL", True),
        ]
    for text, table, col, a, b, higher in claims:
        ca, cb = _cell(t, table, a, col), _cell(t, table, b, col)
        verdict, diff = compare(ca, cb, higher)
        rows.append([text, _fmt(ca), _fmt(cb), "-" if diff is None else f"{diff:+.2f}", verdict])
    lines += _table(["claim", "a", "b", "a - b (claimed direction)", "verdict"], rows)
    lines += [
        "Verdict: *holds* when the difference has the claimed sign and exceeds twice the summed "
        "standard errors of the two cells; *within noise* when the sign is right but smaller.",
        "",
        "### Side by side with the BayesNCL paper",
        "",
        "Fashion-MNIST has 10 balanced classes like CIFAR-10, so chance consistency is 10.00 in "
        "both; the paper's ImageNet-100 column has 100 classes (chance 1.00).",
        "",
    ]
    rows = []
    for name, paper in PAPER_MAIN.items():
        ours = [_fmt(_cell(t, "main", name, c)) for c in ("Cons.", "H_s", "Act.")]
        rows.append([name, ours[0], f"{paper[0]:.2f}", f"{paper[1]:.2f}", f"{paper[2]:.2f}",
                     ours[1], f"{paper[3]:.2f}", ours[2], f"{paper[4]:.2f}"])  # fmt: skip
    lines += _table(
        ["method", "Cons. (ours, F-MNIST)", "CIFAR-10", "CIFAR-100", "IN-100",
         "H_s (ours)", "H_s IN-100", "Act. (ours)", "Act. IN-100"], rows,
    )  # fmt: skip
    rows = [
        [name, _fmt(_cell(t, "downstream", name, "LP@1"))]
        + [f"{v:.2f}" for v in paper[:3]]
        + [_fmt(_cell(t, "downstream", name, "LP@5")), f"{paper[3]:.2f}"]
        for name, paper in PAPER_DOWNSTREAM.items()
    ]
    lines += _table(
        ["method", "LP@1 (ours, F-MNIST)", "CIFAR-10", "CIFAR-100", "IN-100",
         "LP@5 (ours)", "LP@5 IN-100"], rows,
    )  # fmt: skip
    rows = [
        [name, _fmt(_cell(t, "overhead", name, "train time (min)")),
         _fmt(_cell(t, "overhead", name, "GMACs (pair)"), 4),
         f"{paper[0]:.2f}", f"{paper[1]:.3f}G", f"{paper[2]:.2f}", f"{paper[3]:.3f}G"]
        for name, paper in PAPER_OVERHEAD.items()
    ]  # fmt: skip
    lines += _table(
        ["method", "train min (ours)", "GMACs (ours)", "min CIFAR-100", "FLOPs CIFAR-100",
         "min IN-100", "FLOPs IN-100"], rows,
    )  # fmt: skip
    rows = [
        [name, _fmt(_cell(t, "ablation", name, "Cons.")), f"{paper[0]:.2f}",
         _fmt(_cell(t, "ablation", name, "LP@1")), f"{paper[1]:.2f}"]
        for name, paper in PAPER_ABLATION.items()
    ]  # fmt: skip
    lines += _table(
        ["configuration", "Cons. (ours)", "Cons. IN-100", "LP@1 (ours)", "LP@1 IN-100"], rows
    )
    lines += [END]
    return "\n".join(lines)


FIGURE_ROWS = ("CL", "NCL", "BayesNCL (STE)", TUNED)
FIGURES = {"top_activated.png": "top-activated test images of the most active dimensions",
           "gate_vs_frequency.png": "gate open rate against activation frequency"}  # fmt: skip


def copy_figures(results_dir: str, data: dict[str, Any], dest: Path, link_from: Path) -> list[str]:
    """Copy the evaluation figures of the first seed of each main row to ``dest``; markdown
    linking them relative to the folder ``link_from``."""
    import os
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    lines = ["### Figures (the first seed of each row)", ""]
    for row in FIGURE_ROWS:
        if row not in data["tables"].get("main", {}):
            continue
        slug = row_slug(row)
        seed = (data["runs"].get(row) or [{}])[0].get("seed", 0)
        for name, caption in FIGURES.items():
            src = Path(results_dir) / "runs" / slug / f"seed{seed}" / "eval" / name
            if not src.is_file():
                continue
            target = dest / f"{data['preset']}_{slug}_{name}"
            shutil.copyfile(src, target)
            rel = os.path.relpath(target, link_from)
            lines += [f"{row}, {caption} (seed {seed}):", "", f"![{row}: {caption}]({rel})", ""]
    return lines


def write_report(
    results_dir: str, output: str, source: str | None = None, figures: str | None = None
) -> str:
    """Rewrite the generated part of ``output`` from ``results_dir``/results.json; with
    ``figures``, copy the main rows' figures there and show them."""
    path = Path(results_dir) / "results.json"
    data = json.loads(path.read_text())
    section = generated_section(data, source or str(path))
    out = Path(output)
    if figures:
        fig_lines = copy_figures(results_dir, data, Path(figures), out.resolve().parent)
        section = section.replace(END, "\n".join(fig_lines) + END)
    text = out.read_text() if out.is_file() else f"# Results\n\n{START}\n{END}\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    out.write_text(text)
    return text


def utc_now() -> str:
    """The time as results.json records it: ``2026-11-22 20:39 UTC``."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def environment(commit: str | None = None) -> dict[str, Any]:
    """Versions, commit, machine and start time, stored in results.json by ``bayesncl reproduce``."""
    import platform
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    import torch

    env: dict[str, Any] = {"started": utc_now()}
    for pkg in ("torch", "torchvision", "lightning", "bayesncl"):
        try:
            env[pkg] = version(pkg)
        except PackageNotFoundError:
            env[pkg] = None
    if commit is None:
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True, text=True, check=True, cwd=Path(__file__).parent,
            ).stdout.strip()  # fmt: skip
            changed = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                capture_output=True, text=True, check=True, cwd=Path(__file__).parent,
            ).stdout.strip()  # fmt: skip
            if changed:
                commit += "-dirty"  # uncommitted changes: the runs are not exactly this commit
        except (OSError, subprocess.CalledProcessError):
            commit = None
    env.update(
        commit=commit,
        python=platform.python_version(),
        cpu=platform.processor() or platform.machine(),
        threads=torch.get_num_threads(),
    )
    return env


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("results_dir", help="the grid's output folder (with results.json)")
    ap.add_argument("output", nargs="?", default="RESULTS.md")
    ap.add_argument("--source", help="how to name results.json in the text (default: its path)")
    ap.add_argument("--figures", help="copy the main rows' figures to this folder and show them")
    args = ap.parse_args(argv)
    write_report(args.results_dir, args.output, args.source, args.figures)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
