"""RESULTS.md from a finished grid: tables, the papers' claims checked, and the side-by-side.

    python -m bayesncl.reproduce.report results/cpu RESULTS.md [--figures docs/figures]
    python -m bayesncl.reproduce.report docs/results/cpu-results.json RESULTS.md

Everything between the ``generated`` markers of the output file is rewritten from the grid's
results.json (a folder holding one, or the file itself); text outside them (the hand-written
reading) is kept. What to print comes from :mod:`bayesncl.reproduce.paper` and the rows'
parameters stored in results.json; the dataset is the one the grid ran on. results.json files
of the first format (rows keyed by display name, bayesncl <= 85e91a1) are converted on read.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

from bayesncl.reproduce.paper import (
    CLAIMS,
    FIGURE_ROWS,
    FIGURES,
    GRIDS,
    NCL_CLAIMS,
    NCL_PAPER_ABSENT,
    NCL_PAPER_TABLES,
    PAPER_DATASETS,
    PAPER_TABLES,
    SCENES_CLAIMS,
    SENSITIVITY,
    TABLES,
    TUNE,
    TUNED_CLAIMS,
    Ours,
    PaperTable,
    Row,
    dataset_record,
    format_cell,
    known_rows,
    resolved_params,
)
from bayesncl.reproduce.provenance import describe_budget, environment, utc_now

__all__ = ["END", "START", "compare", "environment", "load_results", "utc_now", "write_report"]

START, END = "<!-- generated:start -->", "<!-- generated:end -->"


def markers(preset: str | None) -> tuple[str, str]:
    """The markers around a grid's generated section: the ``cpu`` preset keeps the original
    pair; other presets get their own, so one RESULTS.md holds several grids."""
    if preset in (None, "cpu"):
        return START, END
    return f"<!-- generated:{preset}:start -->", f"<!-- generated:{preset}:end -->"


FORMAT = 2


# --- reading results.json ---------------------------------------------------------------------


def _legacy_slug(name: str) -> str:
    """The run folder name of a row in the first format: ``BayesNCL (STE)`` -> ``BayesNCL__STE_``."""
    return "".join(ch if ch.isalnum() or ch in "=._-" else "_" for ch in name)


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A results.json of the first format (rows, tables, tuning keyed by display name; cells by
    column label) in today's format: rows keyed by their paper.py key, with their parameters;
    cells keyed by metric. Rows it does not know keep their name as key, without parameters."""
    if data.get("format") == FORMAT:
        return data
    rows_by_label: dict[str, Row] = {}
    for r in known_rows().values():  # the first row of a label (later grids reuse labels)
        rows_by_label.setdefault(r.label, r)
    runs = data.get("runs", {})
    dataset = GRIDS[data["preset"]].dataset if data.get("preset") in GRIDS else None
    if dataset is None:
        dataset = next((r.get("dataset") for rs in runs.values() for r in rs), None)
    tuning = data.get("tuning")
    selected = rows_by_label.get((tuning or {}).get("selected") or "")

    labels: list[str] = list(runs)
    for table in data.get("tables", {}).values():
        labels += [n for n in table if n not in labels]
    rows: dict[str, dict[str, Any]] = {}
    key_of: dict[str, str] = {}
    for label in labels:
        row = rows_by_label.get(label)
        if label == TUNE.tuned_label and selected is not None:
            row = Row(TUNE.tuned_key, label, selected.preset, selected.method, selected.optim,
                      TUNE.tuned_tables, first_seed=1)  # fmt: skip
        key = row.key if row else label
        key_of[label] = key
        info: dict[str, Any] = {
            "label": label,
            "dir": f"runs/{_legacy_slug(label)}",
            "eval": "eval",
        }
        if row is not None:
            info.update(row.params())
            if dataset:
                info["resolved"] = resolved_params(dataset, row)
        info["seeds"] = [r.get("seed", 0) for r in runs.get(label, [])]
        rows[key] = info

    tables = {
        tkey: {
            key_of[name]: {c.get("metric", label): {k: v for k, v in c.items() if k != "metric"}
                           for label, c in cells.items()}
            for name, cells in table.items()
        }
        for tkey, table in data.get("tables", {}).items()
    }  # fmt: skip
    if tuning:
        tuning = {
            **tuning,
            "candidates": {key_of.get(n, n): c for n, c in tuning["candidates"].items()},
            "selected": key_of.get(tuning["selected"], tuning["selected"]),
        }
    return {
        **data,
        "format": FORMAT,
        "converted_from": 1,
        "dataset": dataset_record(dataset) if dataset else None,
        "tuned_row": TUNE.tuned_key if TUNE.tuned_key in rows else None,
        "rows": rows,
        "tables": tables,
        "tuning": tuning,
        "runs": {key_of[n]: rs for n, rs in runs.items()},
    }


def load_results(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """(the grid's folder, its results.json in today's format); ``path`` is the folder or the
    file."""
    p = Path(path)
    file = p if p.suffix == ".json" else p / "results.json"
    if not file.is_file():
        raise FileNotFoundError(
            f"{file}: no such file; give the grid's output folder (bayesncl reproduce --out) "
            "or its results.json"
        )
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{file} is not valid JSON ({err}); rerun the grid to rewrite it") from err
    for key in ("preset", "tables"):
        if key not in data:
            raise ValueError(f"{file} has no {key!r}: not a `bayesncl reproduce` results.json")
    return file.parent, upgrade(data)


# --- cells ------------------------------------------------------------------------------------


def _cell(data: dict[str, Any], table: str, row: str, metric: str) -> dict[str, Any] | None:
    return data["tables"].get(table, {}).get(row, {}).get(metric)


_fmt = format_cell


def _label(data: dict[str, Any], key: str) -> str:
    info = data.get("rows", {}).get(key)
    if info:
        return info["label"]
    row = known_rows().get(key)
    return row.label if row else key


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


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]


# --- sections ---------------------------------------------------------------------------------


def _get(tree: dict[str, Any] | None, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(tree, dict):
            return None
        tree = tree.get(part)
    return tree


def _changed_paths(info: dict[str, Any]) -> set[str]:
    def walk(tree: Any, prefix: str) -> set[str]:
        if isinstance(tree, dict) and tree:
            return set().union(*(walk(v, f"{prefix}.{k}") for k, v in tree.items()))
        return {prefix} if tree != {} else set()

    return walk(info.get("method", {}), "method") | walk(info.get("optim", {}), "optim")


def _short(v: Any) -> str:
    """A setting for prose: ``3e-05`` -> ``3e-5``, ``1.0`` -> ``1``."""
    if isinstance(v, float):
        return re.sub(r"e([+-])0+(\d)", r"e\1\2", f"{v:g}")
    return str(v)


def _sensitivity(data: dict[str, Any]) -> list[str]:
    """The sensitivity table: a matrix over the two axes, then the other cells one at a time."""
    s = SENSITIVITY
    sens = data["tables"].get(s.table, {})
    if not sens:
        return []
    cons, lp1 = TABLES[s.table].columns[:2]
    rows_info = data.get("rows", {})
    axes = {a.path for a in s.axes}
    grid: dict[tuple[Any, Any], dict] = {}
    others = []
    for key, cells in sens.items():
        info = rows_info.get(key, {})
        resolved = info.get("resolved")
        coords = tuple(_get(resolved, a.path) for a in s.axes) if resolved else (None, None)
        on_axes = "method" in info and _changed_paths(info) <= axes
        if None not in coords and (key == s.base or on_axes):
            grid[coords] = cells
        elif key != s.base:
            others.append((key, cells))
    base_resolved = rows_info.get(s.base, {}).get("resolved")
    lines = []
    if grid:
        xs = sorted({k[0] for k in grid})
        ys = sorted({k[1] for k in grid})
        ax, ay = s.axes
        default = ""
        if base_resolved:
            default = (
                f"; default {ax.symbol} {_short(_get(base_resolved, ax.path))}, "
                f"{ay.symbol} {_short(_get(base_resolved, ay.path))}"
            )
        for col in (cons, lp1):
            body = [
                [f"{ax.symbol} = {x:g}"]
                + [_fmt(grid.get((x, y), {}).get(col.metric), col.digits) for y in ys]
                for x in xs
            ]
            lines += [
                f"{col.label} over {ax.symbol} ({ax.meaning}) x {ay.symbol} ({ay.meaning})"
                f"{default}:",
                "",
            ]
            lines += _table([col.label] + [f"{ay.symbol} = {y:g}" for y in ys], body)
    if others:
        base = sens.get(s.base, {})
        named = ", ".join(
            f"{a.symbol} = {_short(_get(base_resolved, a.path))}" for a in s.others
        ) if base_resolved else ""  # fmt: skip
        body = [[f"default ({named})" if named else "default",
                 _fmt(base.get(cons.metric)), _fmt(base.get(lp1.metric))]]  # fmt: skip
        body += [[_label(data, k), _fmt(c.get(cons.metric)), _fmt(c.get(lp1.metric))]
                 for k, c in others]  # fmt: skip
        names = " and ".join(a.meaning or a.symbol for a in s.others) or "Other settings"
        lines += [f"{names[0].upper()}{names[1:]}, one at a time:", ""]
        lines += _table(["setting", cons.label, lp1.label], body)
    best = max(
        ((k, c) for k, c in sens.items() if (c.get(cons.metric) or {}).get("mean") is not None),
        key=lambda kc: kc[1][cons.metric]["mean"],
        default=None,
    )
    ref = _cell(data, "main", TUNE.reference, cons.metric)
    if best and ref and ref.get("mean") is not None:
        lines += [
            f"Highest {cons.label} in the sensitivity grid: {_label(data, best[0])} "
            f"({_fmt(best[1][cons.metric])}, n = {len(best[1][cons.metric]['values'])}); "
            f"{_label(data, TUNE.reference)}: {_fmt(ref)}.",
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
        [_label(data, key), f"{100 * c[TUNE.score]:.2f}", f"{100 * c[TUNE.guard]:.2f}",
         "yes" if c["eligible"] else "no", "**selected**" if key == info["selected"] else ""]
        for key, c in sorted(info["candidates"].items(), key=lambda kv: -kv[1][TUNE.score])
    ]  # fmt: skip
    lines += ["", *_table(["cell (seed 0)", "Cons.", "LP@1", "eligible", ""], rows)]
    tuned, ref = TUNE.tuned_key, TUNE.reference
    if info["selected"] is None:
        lines += ["No cell kept LP@1 within the floor; nothing to confirm.", ""]
    elif tuned in data["tables"].get("main", {}):
        lines += [
            f"{_label(data, info['selected'])} rerun on fresh seeds as `{_label(data, tuned)}`: "
            f"Cons. {_fmt(_cell(data, 'main', tuned, TUNE.score))}, LP@1 "
            f"{_fmt(_cell(data, 'downstream', tuned, TUNE.guard))} ({_label(data, ref)}: "
            f"{_fmt(_cell(data, 'main', ref, TUNE.score))}, "
            f"{_fmt(_cell(data, 'downstream', ref, TUNE.guard))}).",
            "",
        ]
    return lines


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def chance_sentence(ds: dict[str, Any] | None) -> str:
    """How chance consistency on our data compares with the paper's columns."""
    if not ds or not ds.get("num_classes"):
        return "The paper's CIFAR-10 column has 10 classes (chance consistency 10.00); CIFAR-100 "\
            "and ImageNet-100 have 100 (chance 1.00)."  # fmt: skip
    label, n = ds["label"], ds["num_classes"]
    chance = 100 / n
    same = [d for d, k in PAPER_DATASETS.items() if k == n and d != label]
    if ds.get("balanced"):
        text = f"{label} has {n} balanced classes"
        if same:
            text += f" like {_join(same)}, so chance consistency is {chance:.2f} in "
            text += "both" if len(same) == 1 else "all"
        else:
            text += f", so chance consistency is {chance:.2f}"
    else:
        text = f"{label} has {n} classes, not exactly balanced, so chance consistency is about "
        text += f"{chance:.2f}"
    by_classes: dict[int, list[str]] = {}
    for d, k in PAPER_DATASETS.items():
        if k != n and d != label:
            by_classes.setdefault(k, []).append(d)
    for k, names in by_classes.items():
        verb = "column has" if len(names) == 1 else "columns have"
        text += f"; the paper's {_join(names)} {verb} {k} classes (chance {100 / k:.2f})"
    text += "."
    if label in PAPER_DATASETS:
        text += f" The paper's {label} column is the same dataset."
    return text


def _paper_table(data: dict[str, Any], pt: PaperTable, short: str) -> list[str]:
    header = [pt.first] + [
        c.label.format(dataset=short) if isinstance(c, Ours) else c.label for c in pt.columns
    ]
    body = []
    for key, published in pt.rows.items():
        values = iter(published)
        cells = [_label(data, key)]
        for c in pt.columns:
            if isinstance(c, Ours):
                ours = (c.rows or {}).get(key, key)
                cells.append(_fmt(_cell(data, c.table or pt.table, ours, c.metric), c.digits))
            else:
                cells.append(c.fmt.format(next(values)))
        body.append(cells)
    return _table(header, body)


def _side_by_side(data: dict[str, Any]) -> list[str]:
    """The papers' published numbers beside ours: the BayesNCL paper's tables, and the NCL
    paper's (with a line for each of its results that has no row here, and why)."""
    ds = data.get("dataset") or {}
    short = ds.get("short", "?")
    lines: list[str] = []
    if any(data["tables"].get(pt.table) for pt in PAPER_TABLES):
        lines += ["### Side by side with the BayesNCL paper", "", chance_sentence(ds), ""]
        for pt in PAPER_TABLES:
            lines += _paper_table(data, pt, short)
    ncl = [pt for pt in NCL_PAPER_TABLES if data["tables"].get(pt.table)]
    if ncl:
        lines += [
            "### Side by side with the NCL paper",
            "",
            "The paper's numbers (ResNet-18 on CIFAR and ImageNet-100, as printed) beside ours "
            f"({short}, a small ConvNet, 3 epochs): compare directions, not values.",
            "",
        ]
        for pt in ncl:
            lines += [f"**{pt.title}**", "", *_paper_table(data, pt, short)]
        lines += ["Not here, and why:", ""]
        lines += [f"* {why}" for why in NCL_PAPER_ABSENT] + [""]
    return lines


def _n(data: dict[str, Any], key: str, cells: dict[str, Any]) -> int:
    runs = data.get("runs", {}).get(key)
    if runs is not None:
        return len(runs)
    return len(next(iter(cells.values()))["values"]) if cells else 0


def generated_section(data: dict[str, Any], source: str) -> str:
    """The generated part of RESULTS.md, from results.json in today's format."""
    env = data.get("environment", {})
    ds = data.get("dataset") or {}
    start, end = markers(data.get("preset"))
    lines = [start, "", f"Source: `{source}` (every number below is read from it)."]
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
    on = f" on {ds['label']}" if ds.get("label") else ""
    lines += [
        "",
        f"Preset `{data['preset']}`{on}, {data['seeds']} seed(s) per row; cells are mean ± std "
        "over seeds.",
        "",
    ]
    budget = (data.get("settings") or {}).get("budget")
    if budget:
        lines += [
            f"Every run's resolved settings (from its config.yaml): {describe_budget(budget)}.",
            "",
        ]
    for key, table in TABLES.items():
        rows = data["tables"].get(key)
        if not rows or key == SENSITIVITY.table:
            continue
        cols = [c for c in table.columns if any(c.metric in cells for cells in rows.values())]
        body = [
            [_label(data, rk), str(_n(data, rk, cells))]
            + [_fmt(cells.get(c.metric), c.digits) for c in cols]
            for rk, cells in rows.items()
        ]
        lines += [
            f"### {table.title}",
            "",
            *_table(["method", "n", *(c.label for c in cols)], body),
        ]
    if data["tables"].get(SENSITIVITY.table):
        lines += [f"### {TABLES[SENSITIVITY.table].title}", "", *_sensitivity(data)]
    lines += _tuning(data)
    lines += ["### The papers' claims at this scale", ""]
    claims = list(CLAIMS) + list(NCL_CLAIMS) + list(SCENES_CLAIMS)
    if TUNE.tuned_key in data["tables"].get("main", {}):
        claims += TUNED_CLAIMS
    # only the claims whose two rows this grid ran
    claims = [c for c in claims if {c.a, c.b} <= set(data["tables"].get(c.table, {}))]
    rows = []
    for c in claims:
        ca, cb = _cell(data, c.table, c.a, c.metric), _cell(data, c.table, c.b, c.metric)
        verdict, diff = compare(ca, cb, c.higher)
        rows.append([c.text, _fmt(ca), _fmt(cb), "-" if diff is None else f"{diff:+.2f}", verdict])
    lines += _table(["claim", "a", "b", "a - b (claimed direction)", "verdict"], rows)
    lines += [
        "Verdict: *holds* when the difference has the claimed sign and exceeds twice the summed "
        "standard errors of the two cells; *within noise* when the sign is right but smaller.",
        "",
    ]
    lines += _side_by_side(data)
    lines += [end]
    return "\n".join(lines)


def copy_figures(results_dir: str, data: dict[str, Any], dest: Path, link_from: Path) -> list[str]:
    """Copy the evaluation figures of the first seed of each figure row to ``dest`` (as
    PRESET_<run folder>_<figure>); markdown linking them relative to the folder ``link_from``.
    A figure already in ``dest`` is linked when its run folder is not at hand (a report made
    from a results.json kept without the runs)."""
    import os
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    lines = ["### Figures (the first seed of each row)", ""]
    for key in FIGURE_ROWS:
        if key not in data["tables"].get("main", {}):
            continue
        info = data.get("rows", {}).get(key, {})
        folder = info.get("dir", f"runs/{key}")
        seed = (data.get("runs", {}).get(key) or [{}])[0].get("seed", 0)
        label = _label(data, key)
        for name, caption in FIGURES.items():
            src = Path(results_dir) / folder / f"seed{seed}" / info.get("eval", "grid-eval") / name
            target = dest / f"{data['preset']}_{Path(folder).name}_{name}"
            if src.is_file():
                shutil.copyfile(src, target)
            elif not target.is_file():
                continue
            rel = os.path.relpath(target, link_from)
            lines += [f"{label}, {caption} (seed {seed}):", "", f"![{label}: {caption}]({rel})", ""]
    return lines


def write_report(
    results: str, output: str, source: str | None = None, figures: str | None = None
) -> str:
    """Rewrite the generated part of ``output`` from the grid's results.json (``results``: its
    folder or the file); with ``figures``, copy the figure rows' figures there and show them."""
    folder, data = load_results(results)
    path = Path(results) if Path(results).suffix == ".json" else folder / "results.json"
    section = generated_section(data, source or str(path))
    start, end = markers(data.get("preset"))
    out = Path(output)
    if figures:
        fig_lines = copy_figures(str(folder), data, Path(figures), out.resolve().parent)
        section = section.replace(end, "\n".join(fig_lines) + end)
    text = out.read_text() if out.is_file() else f"# Results\n\n{start}\n{end}\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    out.write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("results", help="the grid's output folder (with results.json), or the file")
    ap.add_argument("output", nargs="?", default="RESULTS.md")
    ap.add_argument("--source", help="how to name results.json in the text (default: its path)")
    ap.add_argument("--figures", help="copy the main rows' figures to this folder and show them")
    args = ap.parse_args(argv)
    try:
        write_report(args.results, args.output, args.source, args.figures)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"bayesncl.reproduce.report: {err}") from None
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
