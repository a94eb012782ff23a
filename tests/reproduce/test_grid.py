import json
import os
import time
from pathlib import Path

import pytest
import yaml

from bayesncl.cli import main
from bayesncl.reproduce import grid, paper
from bayesncl.reproduce.paper import Preset, Row
from bayesncl.reproduce.provenance import write_json_atomic
from bayesncl.reproduce.report import write_report
from bayesncl.reproduce.tune import select_tuned

TINY_FIT = (
    "--trainer.max_steps", "2", "--trainer.enable_progress_bar", "false",
    "--model.backbone_width", "8", "--model.proj_hidden_dim", "32",
    "--model.proj_output_dim", "16", "--data.batch_size", "64",
)  # fmt: skip
TINY_EVAL = {"probe_epochs": 1, "train_limit": 256, "figures": False, "cost": False}
SENS = Row(
    "bayesncl-rho0.5-lambda0.001",
    "rho=0.5 lambda=0.001",
    "bayesncl",
    {"gate": {"prior": 0.5, "kl_weight": 1e-3}},
    tables=("sensitivity",),
    max_seeds=1,
)


@pytest.fixture
def tiny_preset(monkeypatch):
    rows = (paper.CORE_ROWS[0], SENS)  # CL (2 seeds), one sensitivity cell (1 seed)
    preset = Preset("tiny", "digits", rows, 2, TINY_FIT, TINY_EVAL)
    monkeypatch.setitem(grid.PRESETS, "tiny", preset)
    return preset


def test_grid_end_to_end_on_digits(tmp_path, tiny_preset, monkeypatch, capsys):
    """Real fits (2 steps each): parameters, settings and evaluations land where they should,
    a rerun reuses the runs, and `bayesncl evaluate` on a run does not change the grid."""
    out = tmp_path / "res"
    assert main(["reproduce", "--preset", "tiny", "--out", str(out)]) == 0
    md = (out / "results.md").read_text()
    assert "### Main results (interpretability)" in md and " ± " in md  # 2 seeds: mean ± std
    assert "trainer.max_steps 2" in md  # the settings the runs actually had
    data = json.loads((out / "results.json").read_text())
    assert data["format"] == 2 and data["dataset"]["name"] == "digits"
    assert data["rows"][SENS.key]["method"] == {"gate": {"prior": 0.5, "kl_weight": 1e-3}}
    assert data["rows"][SENS.key]["resolved"]["method"]["gate"]["prior"] == 0.5
    assert data["settings"]["budget"]["trainer.max_steps"] == [2]
    assert len(data["runs"]["cl"]) == 2 and len(data["runs"][SENS.key]) == 1
    cell = data["tables"]["main"]["cl"]["consistency"]
    assert cell["mean"] == pytest.approx(
        100 * sum(r["consistency"] for r in data["runs"]["cl"]) / 2
    )
    run = data["runs"][SENS.key][0]
    assert run["fit_config"]["trainer"]["max_steps"] == 2 and "run_dir" not in run["fit_config"]
    assert run["fit_config"]["model"]["method"]["gate"]["kl_weight"] == 1e-3
    assert run["fit_seconds"] > 0 and len(run["fit_segments"]) == 1
    rd = out / "runs" / SENS.key / "seed0"
    cfg = yaml.safe_load((rd / "config.yaml").read_text())
    assert cfg["model"]["method"]["gate"]["prior"] == 0.5
    assert (rd / "grid-eval" / "metrics.json").is_file() and not (rd / "eval").exists()
    text = write_report(str(out), str(tmp_path / "R.md"))  # the report reads the grid's file
    assert "Cons. (ours, digits)" in text and "F-MNIST" not in text

    # the user's own evaluation goes to RUN_DIR/eval and leaves the grid's numbers alone
    ckpt = out / "runs" / "cl" / "seed0" / "checkpoints" / "last.ckpt"
    user = ["evaluate", str(ckpt), "--probe_epochs", "3", "--figures", "false", "--cost", "false"]
    assert main(user) == 0
    assert (out / "runs" / "cl" / "seed0" / "eval" / "metrics.json").is_file()

    def boom(*a, **k):
        raise AssertionError("fit called for a finished run")

    monkeypatch.setattr("bayesncl.train.fit.fit", boom)
    capsys.readouterr()
    assert main(["reproduce", "--preset", "tiny", "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("done already") == 3
    assert json.loads((out / "results.json").read_text())["tables"] == data["tables"]

    # another budget than the finished runs had: refused, naming the folder and the key
    with pytest.raises(ValueError) as err:
        grid.reproduce("tiny", out=str(out), extra_fit_args=["--trainer.max_steps", "3"])
    msg = str(err.value)
    assert str(out / "runs" / "cl" / "seed0") in msg and "trainer.max_steps: 2 -> 3" in msg


def test_unknown_preset(capsys):
    assert main(["reproduce", "--preset", "imagenet1k"]) == 2
    assert "preset='imagenet1k'" in capsys.readouterr().err


def test_presets_cover_the_papers_tables():
    cpu = grid.PRESETS["cpu"]
    labels = {r.label for r in cpu.rows}
    assert {"CL", "NCL", "NCL+TopK", "BayesNCL (GS)", "BayesNCL (STE)", "Soft gating",
            "Remove detachment", "1-layer head", "3-layer head"} <= labels  # fmt: skip
    keys = [r.key for r in cpu.rows]
    assert len(keys) == len(set(keys))  # keys are unique: run folders and results.json keys
    sens = [r for r in cpu.rows if "sensitivity" in r.tables]
    assert len(sens) == 13  # default + 8 more rho x lambda cells + 2 gate T + 2 gate lr
    assert {r.key for r in sens} >= {"bayesncl-T0.5", "bayesncl-T2", "bayesncl-gatelr0.01",
                                     "bayesncl-gatelr1", "bayesncl-rho0.5-lambda0.0003"}  # fmt: skip
    assert all(r.max_seeds == 1 for r in sens if r.key != "bayesncl")
    assert cpu.seeds == 3 and grid.PRESETS["quick"].seeds == 1
    assert cpu.tune and not grid.PRESETS["quick"].tune  # quick: no sensitivity grid to tune on
    for name in ("cifar10", "cifar100", "imagenet100"):
        assert grid.PRESETS[name].fit_args == ()  # the official schedules, untouched
        assert grid.PRESETS[name].dataset == name


def test_method_and_optim_changes_reach_the_fit_config(tmp_path):
    """Row changes are nested method changes (MethodConfig.updated) and optimiser changes;
    the config the grid writes parses as a `bayesncl fit` config."""
    p = grid.PRESETS["cpu"]
    rows = {r.key: r for r in p.rows}
    cfg = yaml.safe_load(
        Path(grid.fit_argv(p, rows["bayesncl-gatelr1"], 0, tmp_path, [])[1]).read_text()
    )
    assert cfg["model"]["optim"]["gate_lr"] == 1.0
    assert cfg["model"]["optim"]["lr"] == 0.4  # the rest of the recipe kept
    argv = grid.fit_argv(p, rows["bayesncl-T0.5"], 0, tmp_path, [])
    resolved = grid.resolved_fit_config(argv)
    gate = resolved["model"]["method"]["gate"]
    assert gate["temperature"] == 0.5 and gate["prior"] == 0.8 and gate["mode"] == "ste"
    assert "method_overrides" not in resolved["model"]
    assert resolved["trainer"]["max_epochs"] == 3 and resolved["seed"] == 0
    cell = grid.grid_config(p, rows["bayesncl-rho0.2-lambda0.003"], 1, tmp_path)
    assert cell["model"]["method"]["gate"]["prior"] == 0.2 and cell["seed"] == 1
    with pytest.raises(ValueError, match="has no gate"):
        grid.grid_config(p, Row("x", "x", "ncl", {"gate": {"prior": 0.5}}), 0, tmp_path)


def _sens_preset(tune=True):
    rows = (
        Row("ncl", "NCL", "ncl", tables=("main", "downstream")),
        Row("bayesncl", "BayesNCL (STE)", "bayesncl", tables=("main", "downstream", "sensitivity")),
        Row("rho0.5", "rho=0.5", "bayesncl", {"gate": {"prior": 0.5}}, tables=("sensitivity",),
            max_seeds=1),
        Row("lr1", "gate lr=1", "bayesncl", optim={"gate_lr": 1.0}, tables=("sensitivity",),
            max_seeds=1),
        Row("rho0.2", "rho=0.2", "bayesncl", {"gate": {"prior": 0.2}}, tables=("sensitivity",),
            max_seeds=1),
    )  # fmt: skip
    return Preset("sens", "digits", rows, 3, (), {}, tune=tune)


def _run(cons, lp1, seed=0):
    return {"consistency": cons, "linear_top1": lp1, "seed": seed}


def test_select_tuned_takes_the_most_consistent_cell_that_keeps_accuracy():
    p = _sens_preset()
    results = {
        "ncl": [_run(0.40, 0.80, s) for s in range(3)],
        "bayesncl": [_run(0.50, 0.80, 0), _run(0.9, 0.9, 1)],  # only seed 0 counts
        "rho0.5": [_run(0.60, 0.795)],  # within 1 point of NCL: eligible
        "lr1": [_run(0.55, 0.81)],
        "rho0.2": [_run(0.70, 0.75)],  # most consistent, but loses 5 points of accuracy
    }
    tuned, info = select_tuned(p, results)
    assert info["selected"] == "rho0.5" and not info["candidates"]["rho0.2"]["eligible"]
    assert info["lp1_floor"] == pytest.approx(0.79)
    assert tuned.key == paper.TUNE.tuned_key and tuned.method == {"gate": {"prior": 0.5}}
    assert tuned.preset == "bayesncl" and tuned.label == "BayesNCL (tuned)"
    assert list(tuned.seeds(3)) == [1, 2, 3]  # fresh seeds: seed 0 chose the cell
    results["rho0.5"] = [_run(0.60, 0.70)]
    tuned, info = select_tuned(p, results)
    assert tuned.optim == {"gate_lr": 1.0} and tuned.method == {}
    results["bayesncl"][0] = _run(0.99, 0.8)
    tuned, info = select_tuned(p, results)  # the default wins: rerun on fresh seeds too
    assert info["selected"] == "bayesncl" and tuned.method == {} and tuned.optim == {}
    assert list(tuned.seeds(3)) == [1, 2, 3]
    for key in ("bayesncl", "rho0.5", "lr1"):
        results[key][0] = _run(0.99, 0.5)
    assert select_tuned(p, results)[0] is None  # nothing keeps the accuracy
    results["rho0.5"][0] = _run(float("nan"), 0.9)  # no active dimension: consistency NaN
    results["lr1"][0] = _run(0.3, 0.9)
    assert select_tuned(p, results)[1]["selected"] == "lr1"  # the NaN cell never wins


def test_reproduce_confirms_the_selected_cell_on_fresh_seeds(tmp_path, monkeypatch):
    p = _sens_preset()
    monkeypatch.setitem(grid.PRESETS, "sens", p)
    scores = {"ncl": (0.4, 0.8), "bayesncl": (0.5, 0.8), "rho0.5": (0.6, 0.8),
              "lr1": (0.3, 0.8), "rho0.2": (0.7, 0.5), paper.TUNE.tuned_key: (0.65, 0.81)}  # fmt: skip
    ran = []

    def fake_job(row, seed, preset, root, extra, data_dir):
        ran.append((row.key, seed))
        rd = grid.run_dir(root, row, seed)
        rd.mkdir(parents=True)
        cons, lp1 = scores[row.key]
        (rd / grid.DONE).write_text(
            json.dumps({"consistency": cons + seed / 100, "linear_top1": lp1})
        )
        return rd / grid.DONE

    monkeypatch.setattr(grid, "_run_job", fake_job)
    monkeypatch.setattr(grid, "check_finished_run", lambda *a: None)  # no fit configs here
    tables = grid.reproduce("sens", out=str(tmp_path))
    tuned = paper.TUNE.tuned_key
    assert ran[-3:] == [(tuned, 1), (tuned, 2), (tuned, 3)]
    assert tables["main"][tuned]["consistency"]["values"] == [0.66, 0.67, 0.68]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["tuning"]["selected"] == "rho0.5" and data["tuned_row"] == tuned
    assert data["rows"][tuned]["method"] == {"gate": {"prior": 0.5}}
    assert "| BayesNCL (tuned) | 3 |" in (tmp_path / "results.md").read_text()
    ran.clear()
    grid.reproduce("sens", out=str(tmp_path))  # rerun: everything done, tuned runs included
    assert ran == []


# --- provenance (issue 18 item 10) ------------------------------------------------------------


def _fake_fit(monkeypatch, seconds, fail=False):
    """`fit` that writes the resolved config.yaml as fit does and 'trains' for ``seconds``
    (recorded by the grid's timer), then returns, or dies like a kill after its checkpoint."""

    def fit(argv, callbacks=()):
        cfg = grid.resolved_fit_config(argv)
        rd = Path(cfg["run_dir"])
        (rd / "checkpoints").mkdir(parents=True, exist_ok=True)
        (rd / "config.yaml").write_text(yaml.safe_dump(cfg))
        timer = callbacks[0]
        timer.t0 -= seconds
        timer.on_save_checkpoint(None, None, {})
        if fail:
            raise KeyboardInterrupt("killed after its checkpoint")
        return rd

    monkeypatch.setattr("bayesncl.train.fit.fit", fit)


def _fake_evaluate(monkeypatch, calls):
    def evaluate_checkpoint(checkpoint, out_dir=None, **kw):
        calls.append(out_dir)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        metrics = {"consistency": 0.5, "linear_top1": 0.8}
        (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics))
        return metrics

    monkeypatch.setattr("bayesncl.evaluate.run.evaluate_checkpoint", evaluate_checkpoint)


@pytest.fixture
def one_row():
    return Preset("one", "digits", (Row("ncl", "NCL", "ncl", tables=("main",)),), 1,
                  ("--trainer.max_epochs", "3"), {"probe_epochs": 5})  # fmt: skip


def test_training_time_adds_up_over_resumed_segments(tmp_path, monkeypatch, one_row):
    calls = []
    _fake_evaluate(monkeypatch, calls)
    row = one_row.rows[0]
    _fake_fit(monkeypatch, 5.0, fail=True)
    with pytest.raises(KeyboardInterrupt):
        grid._run_job(row, 0, one_row, tmp_path, [], None)
    rd = grid.run_dir(tmp_path, row, 0)
    assert not (rd / grid.DONE).exists() and calls == []
    _fake_fit(monkeypatch, 3.0)
    done = json.loads(grid._run_job(row, 0, one_row, tmp_path, [], None).read_text())
    assert done["fit_seconds"] == pytest.approx(8.0, abs=0.5)
    assert [round(s["seconds"]) for s in done["fit_segments"]] == [5, 3]
    # the grid evaluates into its own folder, not `bayesncl evaluate`'s RUN_DIR/eval
    assert calls == [str(rd / "grid-eval")] and not (rd / "eval").exists()
    assert done["eval_args"] == {"probe_epochs": 5, "data_dir": None}
    assert done["fit_config"]["trainer"]["max_epochs"] == 3 and "run_dir" not in done["fit_config"]


def test_done_marker_is_written_last_and_atomically(tmp_path, monkeypatch, one_row):
    calls = []
    _fake_evaluate(monkeypatch, calls)
    _fake_fit(monkeypatch, 1.0)
    row = one_row.rows[0]
    real_write = grid.write_json_atomic

    def killed_at_done(path, data):
        if Path(path).name == grid.DONE:
            raise KeyboardInterrupt("killed before done.json")
        real_write(path, data)

    monkeypatch.setattr(grid, "write_json_atomic", killed_at_done)
    with pytest.raises(KeyboardInterrupt):
        grid._run_job(row, 0, one_row, tmp_path, [], None)
    rd = grid.run_dir(tmp_path, row, 0)
    assert (rd / "grid-eval" / "metrics.json").is_file() and not (rd / grid.DONE).exists()
    monkeypatch.setattr(grid, "write_json_atomic", real_write)

    def fit_again(*a, **k):
        raise AssertionError("trained already: only the evaluation is redone")

    monkeypatch.setattr("bayesncl.train.fit.fit", fit_again)
    results = grid._run_rows(one_row.rows, 1, 1, (one_row, tmp_path, [], None))  # not done: rerun
    assert results["ncl"][0]["consistency"] == 0.5 and len(calls) == 2
    assert results["ncl"][0]["fit_seconds"] == pytest.approx(1.0, abs=0.5)  # kept from the fit


def test_write_json_atomic_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "done.json"
    write_json_atomic(path, {"a": 1})

    def broken_replace(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["done.json"]  # no temp file left


def test_a_finished_run_made_with_other_settings_is_refused(tmp_path, monkeypatch, one_row):
    calls = []
    _fake_evaluate(monkeypatch, calls)
    _fake_fit(monkeypatch, 1.0)
    row = one_row.rows[0]
    common = (one_row, tmp_path, ["--data.train_subset", "1024"], None)
    grid._run_rows(one_row.rows, 1, 1, common)
    rd = grid.run_dir(tmp_path, row, 0)
    grid.check_finished_run(one_row, row, 0, tmp_path, ["--data.train_subset", "1024"])  # same
    monkeypatch.chdir(tmp_path)
    grid.check_finished_run(one_row, row, 0, Path("."), ["--data.train_subset", "1024"])
    # a 1,024-image run is not reused for a full-data grid, nor a 3-epoch run for 1 epoch
    with pytest.raises(ValueError) as err:
        grid._run_rows(one_row.rows, 1, 1, (one_row, tmp_path, ["--trainer.max_epochs", "1"], None))
    msg = str(err.value)
    assert str(rd) in msg and "delete that folder" in msg.lower()
    assert "data.train_subset: 1024 -> None" in msg and "trainer.max_epochs: 3 -> 1" in msg
    # another data folder or other evaluation options: refused too
    with pytest.raises(ValueError, match=r"data\.data_dir: 'data' -> '/elsewhere'"):
        grid.check_finished_run(one_row, row, 0, tmp_path,
                                ["--data.train_subset", "1024", "--data.data_dir", "/elsewhere"])  # fmt: skip
    other_eval = Preset("one", "digits", one_row.rows, 1, one_row.fit_args, {"probe_epochs": 9})
    with pytest.raises(ValueError, match=r"evaluate\.probe_epochs: 5 -> 9"):
        grid.check_finished_run(other_eval, row, 0, tmp_path, ["--data.train_subset", "1024"])
    # settings that do not change the trained model do not count
    grid.check_finished_run(one_row, row, 0, tmp_path,
                            ["--data.train_subset", "1024", "--data.num_workers", "3"])  # fmt: skip


def test_a_setting_added_since_the_run_counts_at_its_default(tmp_path, monkeypatch, one_row):
    """A run made before a setting existed (its config.yaml lacks the key) is not refused when
    the grid would use the setting's default; another value is still refused."""
    _fake_evaluate(monkeypatch, [])
    _fake_fit(monkeypatch, 1.0)
    grid._run_rows(one_row.rows, 1, 1, (one_row, tmp_path, [], None))
    rd = grid.run_dir(tmp_path, one_row.rows[0], 0)
    stored = yaml.safe_load((rd / "config.yaml").read_text())
    assert stored["model"].pop("finetune") is False  # as written before model.finetune existed
    (rd / "config.yaml").write_text(yaml.safe_dump(stored))
    assert grid.check_finished_run(one_row, one_row.rows[0], 0, tmp_path, []) is False
    with pytest.raises(ValueError, match=r"model\.init_from: None -> 'x\.ckpt'"):
        grid.check_finished_run(
            one_row, one_row.rows[0], 0, tmp_path, ["--model.init_from", "x.ckpt"]
        )


def test_reevaluate_evaluates_again_with_new_evaluation_settings_and_keeps_training(
    tmp_path, monkeypatch, one_row
):
    calls = []
    _fake_evaluate(monkeypatch, calls)
    _fake_fit(monkeypatch, 2.0)
    common = (one_row, tmp_path, [], None)
    grid._run_rows(one_row.rows, 1, 1, common)
    rd = grid.run_dir(tmp_path, one_row.rows[0], 0)
    config_before = (rd / "config.yaml").read_text()
    fits = []
    monkeypatch.setattr("bayesncl.train.fit.fit", lambda *a, **k: fits.append(a))
    more = Preset(
        "one", "digits", one_row.rows, 1, one_row.fit_args, {"probe_epochs": 5, "ood": True}
    )
    with pytest.raises(ValueError, match=r"evaluate\.ood: '<absent>' -> True.*--reevaluate true"):
        grid._run_rows(more.rows, 1, 1, (more, tmp_path, [], None))
    results = grid._run_rows(more.rows, 1, 1, (more, tmp_path, [], None), reevaluate=True)
    assert fits == [] and len(calls) == 2  # evaluated again, not trained again
    assert results["ncl"][0]["eval_args"] == {"probe_epochs": 5, "ood": True, "data_dir": None}
    assert results["ncl"][0]["fit_seconds"] == pytest.approx(2.0, abs=0.5)
    assert (rd / "config.yaml").read_text() == config_before
    # training settings that differ stay an error with reevaluate
    with pytest.raises(ValueError, match=r"trainer\.max_epochs: 3 -> 1"):
        grid._run_rows(more.rows, 1, 1, (more, tmp_path, ["--trainer.max_epochs", "1"], None),
                       reevaluate=True)  # fmt: skip


# --- workers ----------------------------------------------------------------------------------


def test_parallel_progress_is_printed_as_each_run_ends(tmp_path, monkeypatch):
    from tests.reproduce.fake_jobs import sleepy_job

    printed = []
    monkeypatch.setattr(grid, "print", lambda *a, **k: printed.append((time.time(), a[0])),
                        raising=False)  # fmt: skip
    fast, slow = Row("fast", "fast", "cl"), Row("slow", "slow", "cl")
    todo = [(1, fast, 0), (2, slow, 0)]
    grid._run_jobs(todo, 2, 2, (None, tmp_path, [], None), job=sleepy_job)
    when = next(t for t, line in printed if line.startswith("[1/2] fast, seed 0: finished"))
    assert when < float((tmp_path / "slow.end").read_text())


def test_a_failed_parallel_run_is_named(tmp_path):
    from tests.reproduce.fake_jobs import failing_job

    rows = [(1, Row("cl", "CL", "cl"), 0), (2, Row("ncl", "NCL", "ncl"), 0)]
    with pytest.raises(RuntimeError, match=r"run \[\d/2\] .*, seed 0 failed \(its folder: .*runs/"):
        grid._run_jobs(rows, 2, 2, (None, tmp_path, [], None), job=failing_job)


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers=0"):
        grid.reproduce("quick", workers=0)


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "imagenet100"])
def test_ncl_gpu_presets_resolve_every_run_through_the_fit_parser(dataset, tmp_path):
    """Issue 13 item 7: ncl-<dataset> has the rows of ncl-cpu with the official schedules; every
    (row, seed) config parses as `bayesncl fit` would run it (nothing runs). The rows fine-tuned
    from NCL get the fine-tuning schedule (ncl-extras-spec §8.2) and the NCL run's checkpoint."""
    p = grid.PRESETS[f"ncl-{dataset}"]
    cpu = grid.PRESETS["ncl-cpu"]
    assert (p.dataset, p.fit_args, p.seeds) == (dataset, (), 3)
    assert [r.key for r in p.rows] == [r.key for r in cpu.rows]
    official_ft = (
        {"name": "sgd", "lr": 1.0, "weight_decay": 0.0, "decay_rate": 1.0}
        if dataset == "imagenet100"
        else {"name": "lars", "lr": 0.4, "classifier_lr": 0.1, "weight_decay": 1e-4}
    )
    runs = 0
    for row in p.rows:
        for seed in row.seeds(p.seeds):
            cfg = grid.resolved_fit_config(grid.fit_argv(p, row, seed, tmp_path, []))
            runs += 1
            assert cfg["data"]["dataset"] == dataset and cfg["seed"] == seed
            assert cfg["model"]["method"]["name"] == row.preset
            if row.init_from:
                source = grid.run_dir(tmp_path, paper.known_rows()[row.init_from], seed)
                assert cfg["model"]["init_from"] == str(source / "checkpoints" / "last.ckpt")
                assert cfg["model"]["finetune"] is True
                assert cfg["trainer"]["max_epochs"] == 30
                assert official_ft.items() <= cfg["model"]["optim"].items()
            else:
                assert cfg["model"]["init_from"] is None and not cfg["model"]["finetune"]
                epochs = 100 if dataset == "imagenet100" else 200
                assert cfg["trainer"]["max_epochs"] == epochs
    # 12 rows of the NCL paper's systems + CE fine-tuned from CL + 6 activations
    assert runs == 19 * 3
    ft = next(r for r in cpu.rows if r.init_from)  # ncl-cpu keeps its supervised schedule
    cfg = grid.grid_config(cpu, ft, 0, tmp_path)
    assert "finetune" not in cfg["model"] and cfg["model"]["optim"]["name"] == "sgd"


def test_a_worker_whose_grid_process_is_gone_exits():
    """A killed `reproduce` must not leave workers that go on and overwrite run files later."""
    import subprocess
    import sys

    code = "from bayesncl.reproduce.grid import _exit_with_parent; _exit_with_parent(-5, 0.01)"
    done = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert done.returncode == 1


def test_mm_cpu_runs_two_towers_on_m1_and_m2(tmp_path):
    """Issue 14 item 5: mm-cpu runs CLIP-style CL, MMNCL (also at tau 0.05) and MMNCL with the
    gate on M1 and M2, 3 seeds each; every run's config resolves through `bayesncl fit` as a multimodal run with
    the method's preset on both towers."""
    p = grid.PRESETS["mm-cpu"]
    runs = 0
    for row in p.rows:
        for seed in row.seeds(p.seeds):
            cfg = grid.resolved_fit_config(grid.fit_argv(p, row, seed, tmp_path, []))
            runs += 1
            assert cfg["task"] == "multimodal" and cfg["seed"] == seed
            assert (
                cfg["data"]["dataset"]
                == {"m1": "fmnist-edges", "m2": "fmnist-captions"}[row.key.rsplit("-", 1)[1]]
            )
            tower = {"clip": "cl", "mmncl": "ncl", "mmbayesncl": "bayesncl"}[row.preset]
            assert cfg["model"]["method"]["name"] == tower and cfg["model"]["pair_method"] is None
            assert cfg["trainer"]["max_epochs"] == 3
            assert cfg["model"]["temperature"] == (0.05 if "tau" in row.key else 0.1)
    assert runs == 8 * 3
    assert {t for r in p.rows for t in r.tables} == {"mm-m1", "mm-m2"}
