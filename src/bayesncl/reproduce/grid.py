"""``bayesncl reproduce``: a grid of fit + evaluate runs, tabulated like the BayesNCL paper.

The rows, tables and presets are data (:mod:`bayesncl.reproduce.paper`). Every cell is mean ±
std over seeds. Runs live in OUT/runs/<row key>/seed<k>/:

* a run is finished when its ``done.json`` exists (written last, atomically, with everything
  the tables need); a finished run is reused only when its fully resolved fit config
  (RUN_DIR/config.yaml, which ``fit`` writes) and evaluation settings equal what the grid would
  use now, and refused otherwise, naming the folder and the differing keys;
* an interrupted fit resumes from its last.ckpt, and its training time adds up over the
  segments (RUN_DIR/fit-time.json);
* the grid evaluates into RUN_DIR/grid-eval/, so ``bayesncl evaluate`` (RUN_DIR/eval/ by
  default) never changes the grid's numbers.

OUT/results.json holds every run's metrics and settings, the rows' parameters and the tables;
OUT/results.md the tables.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bayesncl.reproduce.paper import (
    GRIDS,
    SENSITIVITY,
    TABLES,
    TUNE,
    Preset,
    Row,
    dataset_record,
    format_cell,
    resolved_params,
    row_fit_config,
)
from bayesncl.reproduce.provenance import (
    describe_budget,
    environment,
    utc_now,
    write_json_atomic,
)
from bayesncl.reproduce.tune import select_tuned
from bayesncl.train.rundir import config_changes, read_run_config

PRESETS: dict[str, Preset] = GRIDS  # `bayesncl reproduce --preset NAME`
FORMAT = 2  # results.json / done.json format (1: rows keyed by display name, bayesncl <= 85e91a1)
DONE = "done.json"
GRID_EVAL = "grid-eval"  # the grid's evaluation folder inside a run (not `bayesncl evaluate`'s)
FIT_TIME = "fit-time.json"
#: settings that describe a run's training budget, summarised in results.json and the report
BUDGET_KEYS = (
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.limit_train_batches",
    "data.train_subset",
    "data.data_dir",
)


def run_dir(out: Path, row: Row, seed: int) -> Path:
    return Path(out) / "runs" / row.key / f"seed{seed}"


def grid_config(preset: Preset, row: Row, seed: int, out: Path) -> dict[str, Any]:
    """The ``bayesncl fit`` config of one run: the recipe with the row's changes."""
    cfg = row_fit_config(preset.dataset, row)
    cfg["seed"] = seed
    cfg["run_dir"] = str(run_dir(out, row, seed))
    if row.init_from:  # fine-tuned from another row's run of the same seed (run before it)
        source = next((r for r in preset.rows if r.key == row.init_from), None)
        if source is None:
            raise ValueError(
                f"row {row.key!r}: init_from={row.init_from!r} is not a row of the grid"
            )
        cfg["model"]["init_from"] = str(run_dir(out, source, seed) / "checkpoints" / "last.ckpt")
    return cfg


def fit_argv(preset: Preset, row: Row, seed: int, out: Path, extra: list[str]) -> list[str]:
    """Write the run's grid-config.yaml; the ``bayesncl fit`` arguments that use it."""
    path = run_dir(out, row, seed) / "grid-config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(grid_config(preset, row, seed, out), sort_keys=False))
    return ["--config", str(path), *preset.fit_args, *extra]


def resolved_fit_config(argv: list[str]) -> dict[str, Any]:
    """The config ``bayesncl fit argv`` would run, resolved as fit writes RUN_DIR/config.yaml."""
    from bayesncl.train.fit import parse_fit_args

    parser, cfg = parse_fit_args(argv)
    return yaml.safe_load(parser.dump(cfg, skip_none=False))


def wanted_fit_config(
    preset: Preset, row: Row, seed: int, out: Path, extra: list[str]
) -> dict[str, Any]:
    """What the grid would run now for (row, seed), resolved, without touching the run folder."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grid-config.yaml"
        path.write_text(yaml.safe_dump(grid_config(preset, row, seed, out), sort_keys=False))
        return resolved_fit_config(["--config", str(path), *preset.fit_args, *extra])


def eval_settings(preset: Preset, data_dir: str | None, row: Row | None = None) -> dict[str, Any]:
    """The options the grid passes to ``evaluate_checkpoint`` (stored in done.json): the
    preset's, then the row's own (``Row.evaluate``: evaluations only some rows need)."""
    return {**preset.eval_args, **(row.evaluate if row else {}), "data_dir": data_dir}


def run_config_changes(rd: Path, wanted: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """How the config RUN_DIR was trained with, resolved through today's ``bayesncl fit``
    parser (settings added since take their defaults), differs from ``wanted``."""
    from bayesncl.train.fit import resolve_stored_config

    return config_changes(resolve_stored_config(read_run_config(rd) or {}), wanted)


def check_finished_run(
    preset: Preset,
    row: Row,
    seed: int,
    out: Path,
    extra: list[str] | None = None,
    data_dir: str | None = None,
    reevaluate: bool = False,
) -> bool:
    """A finished run counts only if it was made with the settings the grid would use now.

    Compares RUN_DIR/config.yaml (the fully resolved config ``fit`` ran: epochs, data subsets,
    ``--extra_fit_args``, data dir, ...) with the config the grid would resolve now, ignoring
    the folder and the settings that do not change what is trained
    (``bayesncl.train.rundir.RESUMABLE_KEYS``), and done.json's evaluation settings with
    today's. Raises ValueError naming the folder and every differing key; with ``reevaluate``,
    a run whose training settings match but whose evaluation settings differ is not an error:
    returns True (evaluate it again, keeping its training), else False (nothing to do).
    """
    rd = run_dir(out, row, seed)
    stored = read_run_config(rd)
    if stored is None:
        raise ValueError(
            f"{rd} has a {DONE} but no config.yaml: it was not made by `bayesncl fit`; delete "
            "that folder to rerun it, or pass another --out"
        )
    changes = run_config_changes(rd, wanted_fit_config(preset, row, seed, out, extra or []))
    done = json.loads((rd / DONE).read_text())
    old_eval = done.get("eval_args", {})
    new_eval = eval_settings(preset, data_dir, row)
    eval_changes = [
        (f"evaluate.{k}", old_eval.get(k, "<absent>"), new_eval.get(k, "<absent>"))
        for k in sorted(set(old_eval) | set(new_eval))
        if old_eval.get(k) != new_eval.get(k)
    ]
    if eval_changes and not changes and reevaluate:
        return True
    changes += eval_changes
    if changes:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changes)
        hint = (
            " (only the evaluation differs: --reevaluate true evaluates it again and keeps its "
            "training)"
            if eval_changes and len(changes) == len(eval_changes)
            else ""
        )
        raise ValueError(
            f"{rd} holds a finished run of {row.label!r} (row {row.key}), seed {seed}, made "
            f"with other settings than this grid's (its config.yaml and {DONE} -> now): "
            f"{listed}. Delete that folder to rerun it, or pass another --out{hint}"
        )
    return False


def tabulate(
    preset: Preset,
    results: dict[str, list[dict[str, Any]]],
    extra_rows: tuple[Row, ...] = (),
) -> tuple[str, dict[str, Any]]:
    """Markdown tables and their numbers from per-run metrics (``results``: runs by row key).

    Returns (markdown, ``{table key: {row key: {metric key: cell}}}``); a cell holds the
    unscaled ``values``, the ``scale`` and the scaled ``mean`` and ``std``.
    """
    md, data = [], {}
    for key, table in TABLES.items():
        rows = [r for r in (*preset.rows, *extra_rows) if key in r.tables]
        if not rows:
            continue
        md += [
            f"### {table.title}",
            "",
            "| method | n | " + " | ".join(c.label for c in table.columns) + " |",
            "|---" * (len(table.columns) + 2) + "|",
        ]
        data[key] = {}
        for row in rows:
            runs = results.get(row.key, [])
            cells, cell_data = [], {}
            for col in table.columns:
                vals = [float(r[col.metric]) for r in runs if r.get(col.metric) is not None]
                cell_data[col.metric] = {
                    "scale": col.scale, "values": vals,
                    "mean": statistics.fmean(vals) * col.scale if vals else None,
                    "std": statistics.stdev(vals) * col.scale if len(vals) > 1 else None,
                }  # fmt: skip
                cells.append(format_cell(cell_data[col.metric], col.digits))
            md.append(f"| {row.label} | {len(runs)} | " + " | ".join(cells) + " |")
            data[key][row.key] = cell_data
        md.append("")
    return "\n".join(md), data


class SegmentClock:
    """Training time of a run over its segments (a kill and a rerun make two).

    RUN_DIR/fit-time.json lists one entry per segment: its start and the seconds from the
    ``fit`` call to the segment's last checkpoint or its end, rewritten (atomically) at every
    checkpoint save, so a killed segment keeps the time up to its last checkpoint (the work
    after it is redone, and timed, by the next segment). ``fit_seconds`` is their sum.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / FIT_TIME
        self.segments = read_fit_time(run_dir)["segments"]
        self.index = len(self.segments)
        self.t0 = time.monotonic()
        self.started = utc_now()

    def record(self, complete: bool = False) -> None:
        entry = {"started": self.started, "seconds": time.monotonic() - self.t0}
        self.segments[self.index : self.index + 1] = [entry]
        write_json_atomic(self.path, {"segments": self.segments, "complete": complete})

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: Any) -> None:
        self.record()


def fit_timer(run_dir: Path) -> SegmentClock:
    """A :class:`SegmentClock` that is a Lightning callback (Lightning is imported here, by the
    jobs that train, not by every process that imports the grid)."""
    from lightning.pytorch.callbacks import Callback

    class FitTimer(SegmentClock, Callback):
        pass

    return FitTimer(run_dir)


def read_fit_time(run_dir: Path) -> dict[str, Any]:
    """RUN_DIR/fit-time.json (``segments``, ``complete``), empty when absent."""
    path = Path(run_dir) / FIT_TIME
    if not path.is_file():
        return {"segments": [], "complete": False}
    return json.loads(path.read_text())


def _run_job(
    row: Row, seed: int, preset: Preset, root: Path, extra: list[str], data_dir: str | None
) -> Path:
    """Fit and evaluate one (row, seed) of the grid; returns its done.json, written last."""
    from bayesncl.evaluate.run import evaluate_checkpoint
    from bayesncl.train.fit import fit

    rd = run_dir(root, row, seed)
    argv = fit_argv(preset, row, seed, root, extra)
    if read_fit_time(rd)["complete"] and read_run_config(rd) is not None:
        # trained already (killed while evaluating): train no further, but only if the
        # settings still match (fit would check them)
        changes = run_config_changes(rd, resolved_fit_config(argv))
        if changes:
            listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changes)
            raise ValueError(
                f"{rd} was trained with other settings than this grid's (its config.yaml -> "
                f"now): {listed}. Delete that folder to rerun it, or pass another --out"
            )
    else:
        timer = fit_timer(rd)
        fit(argv, callbacks=[timer])
        timer.record(complete=True)
    fit_time = read_fit_time(rd)
    settings = eval_settings(preset, data_dir, row)
    metrics = evaluate_checkpoint(
        str(rd / "checkpoints" / "last.ckpt"), out_dir=str(rd / GRID_EVAL), **settings
    )
    config = read_run_config(rd) or {}
    config.pop("run_dir", None)
    done = {
        **metrics,
        "seed": seed,
        "row": row.key,
        "fit_seconds": sum(s["seconds"] for s in fit_time["segments"]),
        "fit_segments": fit_time["segments"],
        "fit_config": config,
        "eval_args": settings,
        "run_dir": str(rd),
        "eval_dir": str(rd / GRID_EVAL),
        "done": utc_now(),
        "format": FORMAT,
    }
    write_json_atomic(rd / DONE, done)
    return rd / DONE


def _exit_with_parent(parent: int, every: float = 2.0) -> None:
    """Stop this worker process when the grid's process is gone (killed): an orphaned worker
    would otherwise go on training or evaluating and later overwrite the run's files."""
    while True:
        time.sleep(every)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(threads: int, parent: int | None = None) -> None:
    import threading

    import torch

    torch.set_num_threads(threads)
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


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
            print(f"[{i}/{total}] {row.label}, seed {seed}{eta(done)}", flush=True)
            job(row, seed, *common)
        return

    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    import torch

    threads = max(1, torch.get_num_threads() // workers)
    print(f"{len(todo)} runs, {workers} at a time, {threads} thread(s) each", flush=True)
    with ProcessPoolExecutor(
        workers,
        mp_context=mp.get_context("spawn"),
        initializer=_init_worker,
        initargs=(threads, os.getpid()),
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
                        f"run [{i}/{total}] {row.label}, seed {seed} failed "
                        f"(its folder: {run_dir(common[1], row, seed)})"
                    ) from fut.exception()
                done += 1
                print(f"[{i}/{total}] {row.label}, seed {seed}: finished{eta(done)}", flush=True)


def _run_rows(
    rows: tuple[Row, ...],
    n_seeds: int,
    workers: int,
    common: tuple[Preset, Path, list[str], str | None],
    reevaluate: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """Run the unfinished (row, seed) jobs of ``rows``; every run's done.json, by row key.

    Finished runs are checked against today's settings first, all of them before any job
    starts, so a grid that would mix settings stops before spending time."""
    preset, root, extra, data_dir = common
    jobs = [(row, seed) for row in rows for seed in row.seeds(n_seeds)]
    todo = []
    for i, (row, seed) in enumerate(jobs, 1):
        if (run_dir(root, row, seed) / DONE).is_file():
            if check_finished_run(preset, row, seed, root, extra, data_dir, reevaluate):
                print(f"[{i}/{len(jobs)}] {row.label}, seed {seed}: trained already; its "
                      "evaluation settings changed: evaluating again", flush=True)  # fmt: skip
                todo.append((i, row, seed))
                continue
            print(f"[{i}/{len(jobs)}] {row.label}, seed {seed}: done already", flush=True)
        else:
            todo.append((i, row, seed))
    _run_jobs(todo, len(jobs), workers, common)
    results: dict[str, list[dict[str, Any]]] = {}
    for row, seed in jobs:
        run = json.loads((run_dir(root, row, seed) / DONE).read_text())
        run.setdefault("seed", seed)
        results.setdefault(row.key, []).append(run)
    return results


def budget(results: dict[str, list[dict[str, Any]]]) -> dict[str, list[Any]]:
    """The distinct values of :data:`BUDGET_KEYS` over the runs' resolved fit configs."""
    out: dict[str, list[Any]] = {}
    for key in BUDGET_KEYS:
        section, name = key.split(".")
        values: list[Any] = []
        for runs in results.values():
            for r in runs:
                v = (r.get("fit_config") or {}).get(section, {}).get(name)
                if v not in values:
                    values.append(v)
        out[key] = values
    return out


def reproduce(
    preset: str = "quick",
    seeds: int | None = None,
    out: str | None = None,
    data_dir: str | None = None,
    extra_fit_args: list[str] | None = None,
    workers: int = 1,
    reevaluate: bool = False,
) -> dict[str, Any]:
    """Run (or continue) the grid of ``preset`` and write OUT/results.{md,json}.

    Args:
        preset: a grid of ``bayesncl.reproduce.paper.GRIDS`` (quick, cpu, ncl-cpu, cifar10,
            cifar100, imagenet100).
        seeds: seeds per row (default: the preset's).
        out: output folder (default results/<preset>).
        data_dir: where the dataset lives (default: the recipe's).
        extra_fit_args: more ``bayesncl fit`` arguments for every run, e.g. ["--trainer.devices", "4"].
        workers: runs at once, each in its own process with (CPU threads / workers) threads.
            On CPUs, single-thread runs side by side use the cores better than one run with all
            threads (``python benchmarks/parallel_runs.py`` measures it). Leave 1 on GPUs: the
            workers would share one device.
        reevaluate: finished runs whose evaluation settings differ from the preset's today
            (e.g. a new evaluation was added) are evaluated again, their training kept; without
            it they are an error. Runs whose training settings differ are an error either way.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r}; use one of: {', '.join(PRESETS)}")
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    p = PRESETS[preset]
    n_seeds = seeds or p.seeds
    if n_seeds < 1:
        raise ValueError(f"seeds={n_seeds} must be >= 1")
    root = Path(out or f"results/{preset}").absolute()  # the same runs from any directory
    extra = list(extra_fit_args or [])
    if data_dir:
        extra += ["--data.data_dir", data_dir]
    env = environment()  # the code and versions the runs start with
    env["workers"] = workers
    common = (p, root, extra, data_dir)
    # rows fine-tuned from other rows run after them
    first = tuple(r for r in p.rows if not r.init_from)
    results = _run_rows(first, n_seeds, workers, common, reevaluate)
    later = tuple(r for r in p.rows if r.init_from)
    if later:
        results.update(_run_rows(later, n_seeds, workers, common, reevaluate))
    extra_rows: tuple[Row, ...] = ()
    tuning: dict[str, Any] | None = None
    if p.tune:
        tuned, tuning = select_tuned(p, results)
        print(f"tuning: selected {tuning['selected']!r} ({tuning['rule']})", flush=True)
        if tuned is not None:
            extra_rows = (tuned,)
            results.update(_run_rows(extra_rows, n_seeds, workers, common, reevaluate))
    md, tables = tabulate(p, results, extra_rows)
    used = budget(results)
    header = (
        f"# bayesncl reproduce --preset {preset}\n\n{p.description}; {n_seeds} seed(s); "
        f"cells are mean ± std over seeds.\n\nEvery run's resolved settings: "
        f"{describe_budget(used)}.\n\n"
    )
    (root / "results.md").write_text(header + md)
    env["finished"] = utc_now()
    rows = {
        r.key: {
            **r.params(),
            "seeds": list(r.seeds(n_seeds)),
            "resolved": resolved_params(p.dataset, r),
            "dir": f"runs/{r.key}",  # its runs: DIR/seed<k>/, evaluated in DIR/seed<k>/EVAL/
            "eval": GRID_EVAL,
        }
        for r in (*p.rows, *extra_rows)
    }
    write_json_atomic(
        root / "results.json",
        {
            "format": FORMAT,
            "preset": preset,
            "description": p.description,
            "dataset": dataset_record(p.dataset),
            "seeds": n_seeds,
            "settings": {
                "fit_args": list(p.fit_args),
                "extra_fit_args": extra,
                "data_dir": data_dir,
                "eval_args": p.eval_args,
                "budget": used,
            },
            "environment": env,
            "sensitivity": {"table": SENSITIVITY.table, "base": SENSITIVITY.base},
            "tuned_row": TUNE.tuned_key if extra_rows else None,
            "rows": rows,
            "tables": tables,
            "tuning": tuning,
            "runs": results,
        },
    )
    print(header + md)
    return tables


def reproduce_main(argv: list[str] | None = None) -> dict[str, Any]:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="bayesncl reproduce", description=__doc__, exit_on_error=False)
    parser.add_function_arguments(reproduce)
    cfg = parser.parse_args(sys.argv[2:] if argv is None else argv)
    return reproduce(**cfg.as_dict())


__all__ = ["PRESETS", "Preset", "Row", "check_finished_run", "reproduce", "tabulate"]
