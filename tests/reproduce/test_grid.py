import json
import time
from pathlib import Path

import pytest
import yaml

from bayesncl.cli import main
from bayesncl.reproduce import grid


@pytest.fixture
def tiny_preset(monkeypatch):
    rows = (
        grid.Row("CL", "cl", tables=("main", "downstream")),
        grid.Row(
            "BayesNCL (STE)", "bayesncl", tables=("main", "downstream", "overhead", "sensitivity")
        ),
        grid.Row(
            "rho=0.5 lambda=0.001",
            "bayesncl",
            {"prior": 0.5, "kl_weight": 1e-3},
            ("sensitivity",),
            max_seeds=1,
        ),
    )
    fit_args = (
        "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false", "--model.backbone_width", "8",
        "--model.proj_hidden_dim", "32", "--model.proj_output_dim", "16", "--data.batch_size", "64",
    )  # fmt: skip
    preset = grid.Preset("tiny", "digits", rows, 2, fit_args, {"probe_epochs": 3, "figures": False})
    monkeypatch.setitem(grid.PRESETS, "tiny", preset)
    return preset


def test_grid_runs_tabulates_and_resumes(tmp_path, tiny_preset, monkeypatch, capsys):
    out = tmp_path / "res"
    assert main(["reproduce", "--preset", "tiny", "--out", str(out)]) == 0
    md = (out / "results.md").read_text()
    assert "### Main results (interpretability)" in md and "### Sensitivity" in md
    assert " ± " in md  # two seeds: mean ± std
    data = json.loads((out / "results.json").read_text())
    assert len(data["runs"]["CL"]) == 2
    cell = data["tables"]["main"]["CL"]["Cons."]
    assert cell["mean"] == pytest.approx(
        100 * sum(r["consistency"] for r in data["runs"]["CL"]) / 2
    )
    assert len(data["runs"]["rho=0.5 lambda=0.001"]) == 1  # capped at one seed
    sens = data["runs"]["rho=0.5 lambda=0.001"][0]
    assert sens["method"] == "bayesncl"
    cfg = (out / "runs" / "rho=0.5_lambda=0.001" / "seed0" / "config.yaml").read_text()
    assert "prior: 0.5" in cfg and "kl_weight: 0.001" in cfg

    # rerunning skips every finished run
    def boom(*a, **k):
        raise AssertionError("fit called for a finished run")

    monkeypatch.setattr("bayesncl.train.fit.fit", boom)
    capsys.readouterr()
    assert main(["reproduce", "--preset", "tiny", "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("done already") == 5


def test_unknown_preset(capsys):
    assert main(["reproduce", "--preset", "imagenet1k"]) == 2
    assert "preset='imagenet1k'" in capsys.readouterr().err


def test_presets_cover_the_papers_tables():
    cpu = grid.PRESETS["cpu"]
    names = {r.name for r in cpu.rows}
    assert {"CL", "NCL", "NCL+TopK", "BayesNCL (GS)", "BayesNCL (STE)", "Soft gating", "Remove detachment",
            "1-layer head", "3-layer head"} <= names  # fmt: skip
    sens = [r for r in cpu.rows if "sensitivity" in r.tables]
    assert len(sens) == 13  # default + 8 more rho x lambda cells + 2 gate T + 2 gate lr
    assert {r.name for r in sens} >= {"gate T=0.5", "gate T=2", "gate lr=0.01", "gate lr=1"}
    assert all(r.max_seeds == 1 for r in sens if r.name != "BayesNCL (STE)")
    assert cpu.seeds == 3 and grid.PRESETS["quick"].seeds == 1
    assert cpu.tune and not grid.PRESETS["quick"].tune  # quick: no sensitivity grid to tune on
    for name in ("cifar10", "cifar100", "imagenet100"):
        assert grid.PRESETS[name].fit_args == ()  # the official schedules, untouched


def test_optim_overrides_and_seed_caps_reach_the_runs(tmp_path):
    p = grid.PRESETS["cpu"]
    row = next(r for r in p.rows if r.name == "gate lr=1")
    argv = grid.fit_argv(p, row, 0, tmp_path, [])
    cfg = yaml.safe_load(Path(argv[1]).read_text())
    assert cfg["model"]["optim"]["gate_lr"] == 1.0
    assert cfg["model"]["optim"]["lr"] == 0.4  # the rest of the recipe kept
    t_row = next(r for r in p.rows if r.name == "gate T=0.5")
    cfg = yaml.safe_load(Path(grid.fit_argv(p, t_row, 0, tmp_path, [])[1]).read_text())
    assert cfg["model"]["method_overrides"] == {"gate_temperature": 0.5}


def test_parallel_workers_finish_every_run(tmp_path, tiny_preset, capsys):
    out = tmp_path / "par"
    tables = grid.reproduce("tiny", seeds=1, out=str(out), workers=2)
    printed = capsys.readouterr().out
    assert "3 runs, 2 at a time" in printed and printed.count(": finished") == 3
    data = json.loads((out / "results.json").read_text())
    assert {k: len(v) for k, v in data["runs"].items()} == {
        "CL": 1, "BayesNCL (STE)": 1, "rho=0.5 lambda=0.001": 1
    }  # fmt: skip
    assert tables["main"]["CL"]["Cons."]["mean"] == pytest.approx(
        100 * data["runs"]["CL"][0]["consistency"]
    )
    assert data["environment"]["torch"]


def test_a_failed_parallel_run_is_named(tmp_path, tiny_preset):
    with pytest.raises(RuntimeError, match=r"run \[\d/3\] .*, seed 0 failed"):
        grid.reproduce(
            "tiny", seeds=1, out=str(tmp_path), workers=2,
            extra_fit_args=["--trainer.max_epochs", "0"],
        )  # fmt: skip


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers=0"):
        grid.reproduce("quick", workers=0)


def _sens_preset(tune=True):
    rows = (
        grid.Row("NCL", "ncl", tables=("main", "downstream")),
        grid.Row("BayesNCL (STE)", "bayesncl", tables=("main", "downstream", "sensitivity")),
        grid.Row("rho=0.5", "bayesncl", {"prior": 0.5}, ("sensitivity",), max_seeds=1),
        grid.Row("gate lr=1", "bayesncl", tables=("sensitivity",), optim={"gate_lr": 1.0},
                 max_seeds=1),
        grid.Row("rho=0.2", "bayesncl", {"prior": 0.2}, ("sensitivity",), max_seeds=1),
    )  # fmt: skip
    return grid.Preset("sens", "digits", rows, 3, (), {}, tune=tune)


def _run(cons, lp1, seed=0):
    return {"consistency": cons, "linear_top1": lp1, "seed": seed}


def test_select_tuned_takes_the_most_consistent_cell_that_keeps_accuracy():
    p = _sens_preset()
    results = {
        "NCL": [_run(0.40, 0.80, s) for s in range(3)],
        "BayesNCL (STE)": [_run(0.50, 0.80, 0), _run(0.9, 0.9, 1)],  # only seed 0 counts
        "rho=0.5": [_run(0.60, 0.795)],  # within 1 point of NCL: eligible
        "gate lr=1": [_run(0.55, 0.81)],
        "rho=0.2": [_run(0.70, 0.75)],  # most consistent, but loses 5 points of accuracy
    }
    tuned, info = grid.select_tuned(p, results)
    assert info["selected"] == "rho=0.5" and not info["candidates"]["rho=0.2"]["eligible"]
    assert info["lp1_floor"] == pytest.approx(0.79)
    assert tuned.name == grid.TUNED and tuned.overrides == {"prior": 0.5}
    assert list(tuned.seeds(3)) == [1, 2, 3]  # fresh seeds: seed 0 chose the cell
    results["rho=0.5"] = [_run(0.60, 0.70)]
    tuned, info = grid.select_tuned(p, results)
    assert tuned.optim == {"gate_lr": 1.0} and tuned.overrides == {}
    results["BayesNCL (STE)"][0] = _run(0.99, 0.8)
    tuned, info = grid.select_tuned(p, results)  # the default wins: rerun on fresh seeds too
    assert info["selected"] == "BayesNCL (STE)" and tuned.overrides == {} and tuned.optim == {}
    assert list(tuned.seeds(3)) == [1, 2, 3]
    for name in ("BayesNCL (STE)", "rho=0.5", "gate lr=1"):
        results[name][0] = _run(0.99, 0.5)
    assert grid.select_tuned(p, results)[0] is None  # nothing keeps the accuracy


def test_reproduce_confirms_the_selected_cell_on_fresh_seeds(tmp_path, monkeypatch):
    p = _sens_preset()
    monkeypatch.setitem(grid.PRESETS, "sens", p)
    scores = {"NCL": (0.4, 0.8), "BayesNCL (STE)": (0.5, 0.8), "rho=0.5": (0.6, 0.8),
              "gate lr=1": (0.3, 0.8), "rho=0.2": (0.7, 0.5), grid.TUNED: (0.65, 0.81)}  # fmt: skip
    ran = []

    def fake_job(row, seed, preset, root, extra, data_dir):
        ran.append((row.name, seed))
        out = grid.run_dir(root, row, seed) / "eval" / "metrics.json"
        out.parent.mkdir(parents=True)
        cons, lp1 = scores[row.name]
        out.write_text(json.dumps({"consistency": cons + seed / 100, "linear_top1": lp1}))
        return out

    monkeypatch.setattr(grid, "_run_job", fake_job)
    tables = grid.reproduce("sens", out=str(tmp_path))
    assert ran[-3:] == [(grid.TUNED, 1), (grid.TUNED, 2), (grid.TUNED, 3)]
    assert tables["main"][grid.TUNED]["Cons."]["values"] == [0.66, 0.67, 0.68]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["tuning"]["selected"] == "rho=0.5"
    assert "| BayesNCL (tuned) | 3 |" in (tmp_path / "results.md").read_text()
    ran.clear()
    grid.reproduce("sens", out=str(tmp_path))  # rerun: everything done, tuned runs included
    assert ran == []


def test_a_finished_run_made_with_other_settings_is_not_reused(tmp_path, monkeypatch):
    p = _sens_preset()
    row = p.rows[2]
    argv = grid.fit_argv(p, row, 0, tmp_path, [])
    grid.check_finished_run(p, row, 0, tmp_path)  # same settings: fine
    monkeypatch.chdir(tmp_path)
    grid.check_finished_run(p, row, 0, Path("."))  # the same folder, spelled another way
    changed = grid.Row(row.name, "bayesncl", {"prior": 0.3}, row.tables, max_seeds=1)
    with pytest.raises(ValueError, match=r"made with other settings.*delete that folder"):
        grid.check_finished_run(p, changed, 0, tmp_path)
    assert Path(argv[1]).is_file()


def test_parallel_progress_is_printed_as_each_run_ends(tmp_path, monkeypatch):
    from tests.reproduce.fake_jobs import sleepy_job

    printed = []
    monkeypatch.setattr(grid, "print", lambda *a, **k: printed.append((time.time(), a[0])),
                        raising=False)  # fmt: skip
    fast, slow = grid.Row("fast", "cl", {"sleep": 0.1}), grid.Row("slow", "cl", {"sleep": 4.0})
    todo = [(1, fast, 0), (2, slow, 0)]
    grid._run_jobs(todo, 2, 2, (None, tmp_path, [], None), job=sleepy_job)
    when = next(t for t, line in printed if line.startswith("[1/2] fast, seed 0: finished"))
    assert when < float((tmp_path / "slow.end").read_text())
