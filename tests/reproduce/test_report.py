import ast
import json
import statistics
from pathlib import Path

import pytest

from bayesncl.reproduce import paper
from bayesncl.reproduce.provenance import environment
from bayesncl.reproduce.report import END, START, compare, load_results, write_report

REPO = Path(__file__).resolve().parents[2]


def cell(values, scale=100.0):
    vals = list(values)
    return {
        "scale": scale, "values": vals,
        "mean": statistics.fmean(vals) * scale,
        "std": statistics.stdev(vals) * scale if len(vals) > 1 else None,
    }  # fmt: skip


def test_compare_verdicts():
    a, b = cell([0.60, 0.61, 0.59]), cell([0.50, 0.51, 0.49])
    assert compare(a, b) == ("holds", pytest.approx(10.0))
    assert compare(b, a)[0] == "does not hold"
    assert compare(cell([0.505, 0.52, 0.49]), b)[0] == "within noise"
    assert compare(a, b, higher=False)[0] == "does not hold"
    assert compare(None, b) == ("no data", None)


def _rows(dataset, *rows):
    return {r.key: {**r.params(), "resolved": paper.resolved_params(dataset, r),
                    "dir": f"runs/{r.key}", "eval": "grid-eval"} for r in rows}  # fmt: skip


#: a sensitivity cell whose label says nothing: its place comes from its parameters
ODD = paper.Row("odd", "my favourite cell", "bayesncl", {"gate": {"prior": 0.5, "kl_weight": 3e-4}},
                tables=("sensitivity",))  # fmt: skip
T2 = paper.Row(
    "t2", "gate T=2", "bayesncl", {"gate": {"temperature": 2.0}}, tables=("sensitivity",)
)
TUNED = paper.Row(paper.TUNE.tuned_key, "BayesNCL (tuned)", "bayesncl", ODD.method,
                  tables=("main", "downstream"), first_seed=1)  # fmt: skip


def fake_results(dataset="fashion-mnist", preset="cpu"):
    main = {
        key: {"consistency": cell(c), "entropy_sum": cell(h, 1), "activation_ratio": cell(a, 1)}
        for key, c, h, a in [
            ("cl", [0.1, 0.1, 0.1], [2.3, 2.3, 2.3], [1, 1, 1]),
            ("ncl", [0.45, 0.47, 0.46], [1.2, 1.25, 1.2], [0.3, 0.28, 0.29]),
            ("bayesncl", [0.58, 0.6, 0.59], [0.9, 0.95, 0.92], [0.4, 0.41, 0.42]),
        ]
    }
    sens = {
        "bayesncl": {"consistency": cell([0.58, 0.6, 0.59]), "linear_top1": cell([0.8, 0.81, 0.8])},
        "odd": {"consistency": cell([0.62]), "linear_top1": cell([0.79])},
        "t2": {"consistency": cell([0.55]), "linear_top1": cell([0.8])},
    }
    main[TUNED.key] = {
        "consistency": cell([0.61, 0.62, 0.63]),
        "entropy_sum": cell([0.9] * 3, 1),
        "activation_ratio": cell([0.3] * 3, 1),
    }
    tuning = {
        "rule": "highest seed-0 Cons.",
        "lp1_floor": 0.79,
        "selected": "odd",
        "candidates": {
            "bayesncl": {"consistency": 0.58, "linear_top1": 0.8, "eligible": True},
            "odd": {"consistency": 0.62, "linear_top1": 0.79, "eligible": True},
            "t2": {"consistency": 0.7, "linear_top1": 0.5, "eligible": False},
        },
    }
    core = paper.CORE_ROWS
    return {
        "format": 2, "preset": preset, "seeds": 3, "tuning": tuning,
        "dataset": paper.dataset_record(dataset),
        "environment": {"commit": "abc1234", "torch": "2.x", "threads": 2, "workers": 2,
                        "started": "2026-11-22 20:39 UTC", "finished": "2026-11-22 22:10 UTC"},
        "settings": {"budget": {"trainer.max_epochs": [3], "data.train_subset": [None]}},
        "rows": _rows(dataset, core[0], core[1], core[4], ODD, T2, TUNED),
        "tables": {"main": main, "sensitivity": sens}, "runs": {},
    }  # fmt: skip


def test_report_writes_tables_claims_and_keeps_hand_written_text(tmp_path):
    res = tmp_path / "res"
    res.mkdir()
    (res / "results.json").write_text(json.dumps(fake_results()))
    out = tmp_path / "RESULTS.md"
    out.write_text(f"# Results\n\nMy reading.\n\n{START}\nold\n{END}\n\nMore notes.\n")
    text = write_report(str(res), str(out))
    assert "My reading." in text and "More notes." in text and "\nold\n" not in text
    assert "| BayesNCL (STE) | 3 | 59.00 ± 1.00 |" in text
    assert "| Cons.: BayesNCL above NCL | 59.00 ± 1.00 | 46.00 ± 1.00 | +13.00 | holds |" in text
    assert "commit abc1234" in text and "Ran 2026-11-22 20:39 UTC to 2026-11-22 22:10 UTC" in text
    assert "2 threads, 2 runs at a time (1 thread(s) each)." in text
    assert "Preset `cpu` on Fashion-MNIST, 3 seed(s)" in text
    assert "trainer.max_epochs 3; data.train_subset None." in text
    # the matrix is laid out from the rows' parameters (the label says nothing)
    assert "Cons. over rho (prior) x lambda (KL weight); default rho 0.8, lambda 3e-5:" in text
    assert "| rho = 0.5 | - | 62.00 |" in text  # lambda 3e-05, 3e-04
    assert "| rho = 0.8 | 59.00 ± 1.00 | - |" in text
    assert "| default (T = 1, gate lr = 0.1) | 59.00 ± 1.00 | 80.33 ± 0.58 |" in text
    assert "| gate T=2 | 55.00 | 80.00 |\n" in text
    assert "| my favourite cell | 62.00 | 79.00 |\n" not in text  # in the matrix, not listed
    assert "Highest Cons. in the sensitivity grid: my favourite cell (62.00, n = 1)" in text
    assert "| BayesNCL (STE) | 59.00 ± 1.00 | 56.50 | 22.02 | 36.14 |" in text  # paper columns
    assert "| NCL | - | - | 70.95 | 1.416G | 193.78 | 3.731G |" in text  # the paper's overhead
    assert "| BayesNCL (STE) | - | 88.02 | 60.69 | 70.44 | - | 91.71 |" in text
    assert "| my favourite cell | 62.00 | 79.00 | yes | **selected** |" in text
    assert "| gate T=2 | 70.00 | 50.00 | no |  |" in text
    assert "rerun on fresh seeds as `BayesNCL (tuned)`: Cons. 62.00 ± 1.00" in text
    assert (
        "| Cons.: BayesNCL (tuned) above NCL | 62.00 ± 1.00 | 46.00 ± 1.00 | +16.00 | holds |"
        in text
    )
    assert "Cons. (ours, F-MNIST)" in text
    assert (
        "Fashion-MNIST has 10 balanced classes like CIFAR-10, so chance consistency is 10.00"
        in text
    )
    assert write_report(str(res), str(out)) == text  # idempotent


def test_the_report_names_the_dataset_it_ran_on(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(fake_results("cifar100", "cifar100")))
    text = write_report(str(path), str(tmp_path / "R.md"))
    assert "F-MNIST" not in text and "Fashion-MNIST" not in text
    assert "| method | Cons. (ours, CIFAR-100) | CIFAR-10 | CIFAR-100 | IN-100 |" in text
    assert "LP@1 (ours, CIFAR-100)" in text and "Preset `cifar100` on CIFAR-100" in text
    assert (
        "CIFAR-100 has 100 balanced classes like ImageNet-100, so chance consistency is 1.00 in "
        "both; the paper's CIFAR-10 column has 10 classes (chance 10.00). The paper's CIFAR-100 "
        "column is the same dataset." in text
    )


def test_the_committed_cpu_results_still_make_results_md(tmp_path):
    """docs/results/cpu-results.json (the first format: rows keyed by display name) is
    converted on read and gives RESULTS.md's tables and numbers."""
    src = REPO / "docs" / "results" / "cpu-results.json"
    _, data = load_results(src)
    assert data["rows"]["bayesncl-rho0.5-lambda0.0003"]["method"] == {
        "gate": {"prior": 0.5, "kl_weight": 0.0003}
    }
    assert data["tuning"]["selected"] == "bayesncl" and data["dataset"]["name"] == "fashion-mnist"
    text = write_report(str(src), str(tmp_path / "R.md"), source="docs/results/cpu-results.json")
    for line in (
        "| NCL | 3 | 61.90 ± 5.60 | 0.82 ± 0.13 | 0.35 ± 0.11 | 0.026 ± 0.001 | 0.974 ± 0.001 |",
        "| BayesNCL (tuned) | 3 | 80.62 ± 0.33 | 99.27 ± 0.11 | 77.41 ± 0.42 |",
        "| BayesNCL (STE) | 3 | 2.13 ± 0.32 | 0.0044 ± 0.0000 | 17.9 ± 0.7 |",
        "| rho = 0.8 | 64.08 ± 4.24 | 62.90 | 64.78 |",
        "| rho = 0.2 | 80.50 | 81.54 | 79.62 |",
        "| gate lr=0.01 | 58.25 | 81.23 |",
        "Highest Cons. in the sensitivity grid: rho=0.5 lambda=0.0003 (64.91, n = 1); NCL: 61.90 ± 5.60.",
        "| rho=0.2 lambda=0.003 | 28.50 | 79.62 | no |  |",
        "BayesNCL (STE) rerun on fresh seeds as `BayesNCL (tuned)`: Cons. 61.09 ± 2.31, LP@1 "
        "80.62 ± 0.33 (NCL: 61.90 ± 5.60, 80.91 ± 0.07).",
        "| Ablation: 2-layer head above 3-layer, Cons. | 64.08 ± 4.24 | 54.32 ± 12.55 | +9.76 | "
        "within noise |",
        "| Act.: BayesNCL (tuned) not below NCL | 0.44 ± 0.07 | 0.35 ± 0.11 | +0.09 | within noise |",
        "| BayesNCL (GS) | 60.48 ± 3.73 | 53.68 | 20.75 | 11.66 | 0.87 ± 0.09 | 3.36 | 0.34 ± 0.07 | 0.13 |",
        "| 3-layer head | 54.32 ± 12.55 | 26.37 | 78.67 ± 3.09 | 68.09 |",
        "Source: `docs/results/cpu-results.json`",
    ):
        assert line in text, line


def test_environment_names_versions():
    env = environment(commit="deadbee")
    assert env["commit"] == "deadbee" and env["torch"] and env["threads"] >= 1


def test_report_copies_and_links_the_figures(tmp_path):
    res = tmp_path / "res"
    for key in ("ncl", "bayesncl"):
        ev = res / "runs" / key / "seed0" / "grid-eval"
        ev.mkdir(parents=True)
        (ev / "top_activated.png").write_bytes(b"png")
    (res / "runs" / "bayesncl" / "seed0" / "grid-eval" / "gate_vs_frequency.png").write_bytes(b"g")
    (res / "results.json").write_text(json.dumps(fake_results()))
    out = tmp_path / "doc" / "RESULTS.md"
    out.parent.mkdir()
    figures = tmp_path / "doc" / "figures"
    figures.mkdir()
    (figures / "cpu_cl_top_activated.png").write_bytes(b"kept")  # from an earlier report
    text = write_report(str(res), str(out), figures=str(figures))
    assert (figures / "cpu_bayesncl_gate_vs_frequency.png").read_bytes() == b"g"
    assert "](figures/cpu_ncl_top_activated.png)" in text
    assert "](figures/cpu_cl_top_activated.png)" in text  # no run folder: the copy is linked
    assert "BayesNCL (STE), gate open rate against activation frequency (seed 0):" in text
    assert text.index("### Figures") < text.index(END)


def test_load_results_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"results\.json: no such file"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("{")
    with pytest.raises(ValueError, match=r"results\.json is not valid JSON"):
        load_results(tmp_path)


def test_no_import_cycle_between_grid_and_report():
    """report and grid share paper/provenance/tune and import neither each other."""
    src = REPO / "src" / "bayesncl" / "reproduce"

    def imports(name):
        tree = ast.parse((src / f"{name}.py").read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    assert "bayesncl.reproduce.grid" not in imports("report")
    assert "bayesncl.reproduce.report" not in imports("grid")
    for leaf in ("paper", "provenance", "tune"):
        assert not {m for m in imports(leaf) if m.endswith((".grid", ".report"))}


def test_the_committed_ncl_cpu_results_sit_beside_the_ncl_papers_numbers(tmp_path):
    """Issue 13 item 7: the NCL paper's tables (in/out of distribution, Table 1, SEPIN, Table 4,
    Fig. 3) are printed beside ours, our FT column read from the fine-tuned rows (CE from CL for
    CL, CE from NCL for NCL), and each of its results without a row here says why."""
    src = REPO / "docs" / "results" / "ncl-cpu" / "results.json"
    text = write_report(str(src), str(tmp_path / "R.md"), source="x")
    _, data = load_results(src)
    ft_cl = data["tables"]["ncl-finetune"]["ce-ft-cl"]["objective_top1"]
    ft_ncl = data["tables"]["ncl-finetune"]["ce-ft"]["objective_top1"]
    lp_cl = data["tables"]["ncl-ssl"]["cl"]["linear_top1"]
    assert "### Side by side with the NCL paper" in text
    row = (
        f"| CL | {lp_cl['mean']:.2f} ± {lp_cl['std']:.2f} | 87.6 ± 0.2 | 58.6 ± 0.2 | 68.7 ± 0.3 "
        f"| {ft_cl['mean']:.2f} ± {ft_cl['std']:.2f} | 92.3 ± 0.1 | 72.6 ± 0.1 | 77.3 ± 0.5 |"
    )
    assert row in text
    assert f"| {ft_ncl['mean']:.2f} ± {ft_ncl['std']:.2f} | 92.6 ± 0.1 |" in text
    for published in ("7.43 ± 0.15", "36.1 ± 0.3", "| 82.0 |", "≈93.5 / 92 / 98", "19.8 ± 0.1"):
        assert published in text, published
    assert all(f"* {why}" in text for why in paper.NCL_PAPER_ABSENT)
    # the BayesNCL paper's side-by-side is not printed for a grid without its tables
    assert "### Side by side with the BayesNCL paper" not in text
