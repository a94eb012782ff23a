"""``bayesncl reproduce``: a grid of fit + evaluate runs, tabulated like the BayesNCL paper.

Every cell is mean ± std over seeds. Runs live in OUT/runs/<row>/seed<k>/; a run whose
eval/metrics.json exists is skipped, and an interrupted fit resumes from its last.ckpt, so
rerunning the same command continues the grid. OUT/results.json holds every run's metrics and
the tables; OUT/results.md the tables.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bayesncl.train.recipes import recipe


@dataclass(frozen=True)
class Row:
    """One configuration of the grid (one row of a table), run once per seed."""

    name: str
    method: str
    overrides: dict[str, Any] = field(default_factory=dict)  # method_overrides
    tables: tuple[str, ...] = ()
    optim: dict[str, Any] = field(default_factory=dict)  # changes to model.optim
    max_seeds: int | None = None  # run at most this many seeds of the row (None: all)
    first_seed: int = 0  # seeds first_seed, first_seed + 1, ...

    def seeds(self, n_seeds: int) -> range:
        n = min(n_seeds, self.max_seeds or n_seeds)
        return range(self.first_seed, self.first_seed + n)


@dataclass(frozen=True)
class Preset:
    name: str
    dataset: str
    rows: tuple[Row, ...]
    seeds: int
    fit_args: tuple[str, ...]  # extra `bayesncl fit` arguments (epochs, ...)
    eval_args: dict[str, Any]
    sensitivity: tuple[tuple[float, float], ...] = ()  # (rho, lambda) grid for BayesNCL
    description: str = ""
    tune: bool = False  # after the grid, confirm the selected sensitivity cell (select_tuned)


CORE_ROWS = (
    Row("CL", "cl", tables=("main", "downstream")),
    Row("NCL", "ncl", tables=("main", "downstream", "overhead")),
    Row("NCL+TopK", "ncl-topk", tables=("main",)),
    Row("BayesNCL (GS)", "bayesncl-gs", tables=("main",)),
    Row(
        "BayesNCL (STE)",
        "bayesncl",
        tables=("main", "downstream", "ablation", "overhead", "sensitivity"),
    ),
)
ABLATION_ROWS = (
    Row("Soft gating", "bayesncl-soft", tables=("ablation",)),
    Row("Remove detachment", "bayesncl-nodetach", tables=("ablation",)),
    Row("1-layer head", "bayesncl-head1", tables=("ablation",)),
    Row("3-layer head", "bayesncl-head3", tables=("ablation",)),
)
SENSITIVITY = tuple((rho, lam) for rho in (0.2, 0.5, 0.8) for lam in (3e-5, 3e-4, 3e-3))
GATE_TEMPERATURES = (0.5, 2.0)  # around the default T = 1
GATE_LR_FACTORS = (0.1, 10.0)  # times the recipe's optim.gate_lr


def _sensitivity_rows(
    dataset: str,
    grid: tuple[tuple[float, float], ...],
    temperatures: tuple[float, ...] = (),
    gate_lr_factors: tuple[float, ...] = (),
    max_seeds: int | None = None,
) -> tuple[Row, ...]:
    """BayesNCL around its defaults: the rho x lambda grid, then gate T and gate lr one at a time.

    The default cell (rho 0.8, lambda 3e-5, T 1, the recipe's gate lr) is the BayesNCL (STE) row.
    """
    rows = []
    for rho, lam in grid:
        if (rho, lam) == (0.8, 3e-5):
            continue
        rows.append(
            Row(
                f"rho={rho} lambda={lam:g}",
                "bayesncl",
                {"prior": rho, "kl_weight": lam},
                ("sensitivity",),
                max_seeds=max_seeds,
            )
        )
    for t in temperatures:
        rows.append(
            Row(
                f"gate T={t:g}",
                "bayesncl",
                {"gate_temperature": t},
                ("sensitivity",),
                max_seeds=max_seeds,
            )
        )
    base_lr = recipe(dataset, "bayesncl")["model"]["optim"].get("gate_lr")
    for f in gate_lr_factors if base_lr else ():
        rows.append(
            Row(
                f"gate lr={round(base_lr * f, 10):g}",
                "bayesncl",
                tables=("sensitivity",),
                optim={"gate_lr": round(base_lr * f, 10)},
                max_seeds=max_seeds,
            )
        )
    return tuple(rows)


_CPU_FIT = ("--trainer.max_epochs", "3", "--trainer.enable_progress_bar", "false")
_CPU_EVAL = {"probe_epochs": 20, "train_limit": 20000}


def _official(dataset: str) -> Preset:
    return Preset(
        dataset,
        dataset,
        CORE_ROWS
        + ABLATION_ROWS
        + _sensitivity_rows(dataset, SENSITIVITY, GATE_TEMPERATURES, GATE_LR_FACTORS),
        3,
        (),
        {},
        SENSITIVITY,
        f"{dataset} with the official schedules (GPU)",
        tune=True,
    )


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        "quick",
        "fashion-mnist",
        (CORE_ROWS[0], CORE_ROWS[1], CORE_ROWS[4]),
        1,
        _CPU_FIT,
        _CPU_EVAL,
        description="Fashion-MNIST, CL / NCL / BayesNCL, 1 seed, 3 epochs (about 10 minutes on 2 CPU cores)",
    ),
    "cpu": Preset(
        "cpu",
        "fashion-mnist",
        CORE_ROWS
        + ABLATION_ROWS
        + _sensitivity_rows(
            "fashion-mnist", SENSITIVITY, GATE_TEMPERATURES, GATE_LR_FACTORS, max_seeds=1
        ),
        3,
        _CPU_FIT,
        _CPU_EVAL,
        SENSITIVITY,
        "Fashion-MNIST, every table, 3 epochs per run; 3 seeds per row, 1 seed per "
        "sensitivity cell other than the default (the BayesNCL row)",
        tune=True,
    ),
    "cifar10": _official("cifar10"),
    "cifar100": _official("cifar100"),
    "imagenet100": _official("imagenet100"),
}


def row_slug(name: str) -> str:
    """A row's name as a folder name: ``BayesNCL (STE)`` -> ``BayesNCL__STE_``."""
    return "".join(ch if ch.isalnum() or ch in "=._-" else "_" for ch in name)


def run_dir(out: Path, row: Row, seed: int) -> Path:
    return out / "runs" / row_slug(row.name) / f"seed{seed}"


def grid_config(preset: Preset, row: Row, seed: int, out: Path) -> dict[str, Any]:
    """The ``bayesncl fit`` config of one run: the recipe with the row's changes."""
    cfg = recipe(preset.dataset, row.method)
    if row.overrides:
        cfg["model"].setdefault("method_overrides", {}).update(row.overrides)
    if row.optim:
        cfg["model"].setdefault("optim", {}).update(row.optim)
    cfg["seed"] = seed
    cfg["run_dir"] = str(run_dir(out, row, seed))
    return cfg


def fit_argv(preset: Preset, row: Row, seed: int, out: Path, extra: list[str]) -> list[str]:
    """Write the run's grid-config.yaml; the ``bayesncl fit`` arguments that use it."""
    path = run_dir(out, row, seed) / "grid-config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(grid_config(preset, row, seed, out), sort_keys=False))
    return ["--config", str(path), *preset.fit_args, *extra]


def check_finished_run(preset: Preset, row: Row, seed: int, out: Path) -> None:
    """A finished run counts only if it was made with the settings the grid would use now."""
    path = run_dir(out, row, seed) / "grid-config.yaml"
    if not path.is_file():
        return
    stored, wanted = yaml.safe_load(path.read_text()), grid_config(preset, row, seed, out)
    stored.pop("run_dir", None)  # the same folder, however --out was spelled
    wanted.pop("run_dir", None)
    if stored != wanted:
        raise ValueError(
            f"{path.parent} holds a finished run of {row.name!r}, seed {seed}, made with other "
            "settings than this grid's (see its grid-config.yaml); delete that folder to rerun "
            "it, or pass another --out"
        )


def _fmt(values: list[float], scale: float, digits: int) -> str:
    if not values:
        return "-"
    m = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {statistics.stdev(values) * scale:.{digits}f}"


TABLES: dict[str, tuple[str, list[tuple[str, str, float, int]]]] = {
    "main": (
        "Main results (interpretability)",
        [("Cons.", "consistency", 100, 2), ("H_s", "entropy_sum", 1, 2), ("Act.", "activation_ratio", 1, 2),
         ("1 - sparsity", "active_fraction", 1, 3), ("sparsity", "sparsity", 1, 3)],
    ),
    "downstream": (
        "Downstream (frozen backbone features)",
        [("LP@1", "linear_top1", 100, 2), ("LP@5", "linear_top5", 100, 2), ("kNN@1", "knn_top1", 100, 2)],
    ),
    "ablation": ("Ablation", [("Cons.", "consistency", 100, 2), ("LP@1", "linear_top1", 100, 2)]),
    "overhead": (
        "Overhead",
        [("train time (min)", "fit_seconds", 1 / 60, 2), ("GMACs (pair)", "gmacs_pair", 1, 4),
         ("step (ms)", "step_seconds", 1000, 1)],
    ),
    "sensitivity": ("Sensitivity (BayesNCL: rho x lambda, gate T, gate lr)", [("Cons.", "consistency", 100, 2), ("LP@1", "linear_top1", 100, 2)]),
}  # fmt: skip


TUNED = "BayesNCL (tuned)"
TUNE_MAX_LP1_DROP = 0.01  # a candidate's LP@1 may be at most 1 point below NCL's mean


def select_tuned(
    preset: Preset, results: dict[str, list[dict[str, Any]]]
) -> tuple[Row | None, dict[str, Any]]:
    """Pick BayesNCL's setting from the sensitivity grid, by a rule fixed in advance.

    Every sensitivity cell (the default BayesNCL row included) is judged on its seed-0 run
    alone, so all cells stand on equal footing: among the cells whose linear-probe top-1 is at
    most ``TUNE_MAX_LP1_DROP`` below NCL's mean, the one with the highest consistency wins.
    The winner is then rerun on fresh seeds (1, 2, ...) that played no part in the choice, as
    the row ``BayesNCL (tuned)``, which removes the winner's-curse bias of its seed-0 score.
    The default cell is rerun too when it wins: its own seed-0 score took part in the choice.
    Returns (that row, or None when no cell qualifies; a summary).
    """
    ncl = [r["linear_top1"] for r in results.get("NCL", []) if r.get("linear_top1") is not None]
    floor = statistics.fmean(ncl) - TUNE_MAX_LP1_DROP if ncl else -math.inf
    cells = []
    for row in preset.rows:
        runs = [r for r in results.get(row.name, []) if r.get("seed", 0) == 0]
        if "sensitivity" not in row.tables or not runs:
            continue
        r0 = runs[0]
        cells.append((row, r0["consistency"], r0["linear_top1"], r0["linear_top1"] >= floor))
    eligible = [c for c in cells if c[3]]
    best = max(eligible, key=lambda c: c[1], default=None)
    info: dict[str, Any] = {
        "rule": "highest seed-0 Cons. among sensitivity cells with seed-0 LP@1 >= NCL mean "
        f"LP@1 - {100 * TUNE_MAX_LP1_DROP:g} points; confirmed on fresh seeds",
        "lp1_floor": floor if ncl else None,
        "candidates": {c[0].name: {"consistency": c[1], "linear_top1": c[2], "eligible": c[3]}
                       for c in cells},
        "selected": best[0].name if best else None,
    }  # fmt: skip
    if best is None:
        return None, info
    row = best[0]
    tuned = Row(
        TUNED, row.method, dict(row.overrides), ("main", "downstream"),
        dict(row.optim), first_seed=1,
    )  # fmt: skip
    return tuned, info


def tabulate(
    preset: Preset,
    results: dict[str, list[dict[str, Any]]],
    extra_rows: tuple[Row, ...] = (),
) -> tuple[str, dict[str, Any]]:
    """Markdown tables and their numbers (mean, std, n per cell) from per-run metrics."""
    md, data = [], {}
    for key, (title, cols) in TABLES.items():
        rows = [r for r in (*preset.rows, *extra_rows) if key in r.tables]
        if not rows:
            continue
        md += [
            f"### {title}",
            "",
            "| method | n | " + " | ".join(c[0] for c in cols) + " |",
            "|---" * (len(cols) + 2) + "|",
        ]
        data[key] = {}
        for row in rows:
            runs = results.get(row.name, [])
            cells, cell_data = [], {}
            for label, metric, scale, digits in cols:
                vals = [float(r[metric]) for r in runs if r.get(metric) is not None]
                cells.append(_fmt(vals, scale, digits))
                cell_data[label] = {
                    "metric": metric, "scale": scale, "values": vals,
                    "mean": statistics.fmean(vals) * scale if vals else None,
                    "std": statistics.stdev(vals) * scale if len(vals) > 1 else None,
                }  # fmt: skip
            md.append(f"| {row.name} | {len(runs)} | " + " | ".join(cells) + " |")
            data[key][row.name] = cell_data
        md.append("")
    return "\n".join(md), data


def _run_job(
    row: Row, seed: int, preset: Preset, root: Path, extra: list[str], data_dir: str | None
) -> Path:
    """Fit and evaluate one (row, seed) of the grid; returns its eval/metrics.json."""
    from bayesncl.evaluate.run import evaluate_checkpoint
    from bayesncl.train.fit import fit

    rd = run_dir(root, row, seed)
    t0 = time.time()
    fit(fit_argv(preset, row, seed, root, extra))
    fit_seconds = time.time() - t0
    metrics = evaluate_checkpoint(
        str(rd / "checkpoints" / "last.ckpt"), data_dir=data_dir, **preset.eval_args
    )
    metrics["fit_seconds"] = fit_seconds
    metrics_file = rd / "eval" / "metrics.json"
    metrics_file.write_text(json.dumps(metrics, indent=2))
    return metrics_file


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _run_jobs(
    todo: list[tuple[int, Row, int]],
    total: int,
    workers: int,
    common: tuple[Preset, Path, list[str], str | None],
    job: Callable[..., Path] | None = None,
) -> None:
    """Run the unfinished jobs ``(i, row, seed)``, ``workers`` at a time, with a progress line
    per start (one worker) or per end (several). ``job(row, seed, *common)`` runs one
    (default :func:`_run_job`; with several workers it must be importable by the workers)."""
    job = job or _run_job
    started = time.time()

    def eta(done: int) -> str:
        if not done:
            return ""
        left = (time.time() - started) / done * (len(todo) - done)
        return f", about {left / 60:.0f} min left"

    if workers == 1:
        for done, (i, row, seed) in enumerate(todo):
            print(f"[{i}/{total}] {row.name}, seed {seed}{eta(done)}", flush=True)
            job(row, seed, *common)
        return

    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    import torch

    threads = max(1, torch.get_num_threads() // workers)
    print(f"{len(todo)} runs, {workers} at a time, {threads} thread(s) each", flush=True)
    with ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(threads,)
    ) as pool:
        futures = {pool.submit(job, row, seed, *common): (i, row, seed) for i, row, seed in todo}
        pending, done = set(futures), 0
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                i, row, seed = futures[fut]
                if fut.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise RuntimeError(
                        f"run [{i}/{total}] {row.name}, seed {seed} failed "
                        f"(its folder: {run_dir(common[1], row, seed)})"
                    ) from fut.exception()
                done += 1
                print(f"[{i}/{total}] {row.name}, seed {seed}: finished{eta(done)}", flush=True)


def _run_rows(
    rows: tuple[Row, ...],
    n_seeds: int,
    workers: int,
    common: tuple[Preset, Path, list[str], str | None],
) -> dict[str, list[dict[str, Any]]]:
    """Run the unfinished (row, seed) jobs of ``rows``; every run's metrics, by row name."""
    root = common[1]
    jobs = [(row, seed) for row in rows for seed in row.seeds(n_seeds)]
    todo = []
    for i, (row, seed) in enumerate(jobs, 1):
        if (run_dir(root, row, seed) / "eval" / "metrics.json").is_file():
            check_finished_run(common[0], row, seed, root)
            print(f"[{i}/{len(jobs)}] {row.name}, seed {seed}: done already", flush=True)
        else:
            todo.append((i, row, seed))
    _run_jobs(todo, len(jobs), workers, common)
    results: dict[str, list[dict[str, Any]]] = {}
    for row, seed in jobs:
        metrics = json.loads((run_dir(root, row, seed) / "eval" / "metrics.json").read_text())
        metrics.setdefault("seed", seed)
        results.setdefault(row.name, []).append(metrics)
    return results


def reproduce(
    preset: str = "quick",
    seeds: int | None = None,
    out: str | None = None,
    data_dir: str | None = None,
    extra_fit_args: list[str] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Run (or continue) the grid of ``preset`` and write OUT/results.{md,json}.

    Args:
        preset: quick, cpu, cifar10, cifar100 or imagenet100.
        seeds: seeds per row (default: the preset's).
        out: output folder (default results/<preset>).
        data_dir: where the dataset lives (default: the recipe's).
        extra_fit_args: more ``bayesncl fit`` arguments for every run, e.g. ["--trainer.devices", "4"].
        workers: runs at once, each in its own process with (CPU threads / workers) threads.
            On CPUs, single-thread runs side by side use the cores better than one run with all
            threads (``python benchmarks/parallel_runs.py`` measures it). Leave 1 on GPUs: the
            workers would share one device.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r}; use one of: {', '.join(PRESETS)}")
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    p = PRESETS[preset]
    n_seeds = seeds or p.seeds
    if n_seeds < 1:
        raise ValueError(f"seeds={n_seeds} must be >= 1")
    root = Path(out or f"results/{preset}")
    extra = list(extra_fit_args or [])
    if data_dir:
        extra += ["--data.data_dir", data_dir]
    from bayesncl.reproduce.report import environment, utc_now

    env = environment()  # the code and versions the runs start with
    env["workers"] = workers
    common = (p, root, extra, data_dir)
    results = _run_rows(p.rows, n_seeds, workers, common)
    extra_rows: tuple[Row, ...] = ()
    tuning: dict[str, Any] | None = None
    if p.tune:
        tuned, tuning = select_tuned(p, results)
        print(f"tuning: selected {tuning['selected']!r} ({tuning['rule']})", flush=True)
        if tuned is not None:
            extra_rows = (tuned,)
            results.update(_run_rows(extra_rows, n_seeds, workers, common))
    md, tables = tabulate(p, results, extra_rows)
    header = (
        f"# bayesncl reproduce --preset {preset}\n\n{p.description}; {n_seeds} seed(s); "
        f"cells are mean ± std over seeds.\n\n"
    )
    (root / "results.md").write_text(header + md)
    env["finished"] = utc_now()
    (root / "results.json").write_text(
        json.dumps(
            {
                "preset": preset,
                "seeds": n_seeds,
                "environment": env,
                "tables": tables,
                "tuning": tuning,
                "runs": results,
            },
            indent=2,
            default=str,
        )
    )
    print(header + md)
    return tables


def reproduce_main(argv: list[str] | None = None) -> dict[str, Any]:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="bayesncl reproduce", description=__doc__, exit_on_error=False)
    parser.add_function_arguments(reproduce)
    cfg = parser.parse_args(sys.argv[2:] if argv is None else argv)
    return reproduce(**cfg.as_dict())


__all__ = ["PRESETS", "Preset", "Row", "reproduce", "tabulate"]
