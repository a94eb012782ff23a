import json

import pytest

from bayesncl.reproduce.report import END, START, compare, environment, write_report


def cell(values, scale=100.0):
    import statistics

    vals = list(values)
    return {
        "metric": "x", "scale": scale, "values": vals,
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


def fake_results():
    main = {
        name: {"Cons.": cell(c), "H_s": cell(h, 1), "Act.": cell(a, 1)}
        for name, c, h, a in [
            ("CL", [0.1, 0.1, 0.1], [2.3, 2.3, 2.3], [1, 1, 1]),
            ("NCL", [0.45, 0.47, 0.46], [1.2, 1.25, 1.2], [0.3, 0.28, 0.29]),
            ("BayesNCL (STE)", [0.58, 0.6, 0.59], [0.9, 0.95, 0.92], [0.4, 0.41, 0.42]),
        ]
    }
    sens = {
        "BayesNCL (STE)": {"Cons.": cell([0.58, 0.6, 0.59]), "LP@1": cell([0.8, 0.81, 0.8])},
        "rho=0.5 lambda=0.0003": {"Cons.": cell([0.62]), "LP@1": cell([0.79])},
        "gate T=2": {"Cons.": cell([0.55]), "LP@1": cell([0.8])},
    }
    main["BayesNCL (tuned)"] = {
        "Cons.": cell([0.61, 0.62, 0.63]),
        "H_s": cell([0.9] * 3, 1),
        "Act.": cell([0.3] * 3, 1),
    }
    tuning = {
        "rule": "highest seed-0 Cons.",
        "lp1_floor": 0.79,
        "selected": "rho=0.5 lambda=0.0003",
        "candidates": {
            "BayesNCL (STE)": {"consistency": 0.58, "linear_top1": 0.8, "eligible": True},
            "rho=0.5 lambda=0.0003": {"consistency": 0.62, "linear_top1": 0.79, "eligible": True},
            "gate T=2": {"consistency": 0.7, "linear_top1": 0.5, "eligible": False},
        },
    }
    return {
        "preset": "cpu", "seeds": 3, "tuning": tuning,
        "environment": {"commit": "abc1234", "torch": "2.x", "threads": 2, "workers": 2,
                        "started": "2026-11-22 20:39 UTC", "finished": "2026-11-22 22:10 UTC"},
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
    assert "| rho = 0.5 | - | 62.00 |" in text  # the rho x lambda matrix (lambda 3e-05, 3e-04)
    assert "| gate T=2 | 55.00 | 80.00 |" in text
    assert "Highest Cons. in the sensitivity grid: rho=0.5 lambda=0.0003" in text
    assert "| BayesNCL (STE) | 59.00 ± 1.00 | 56.50 | 22.02 | 36.14 |" in text  # paper columns
    assert "| NCL | - | - | 70.95 | 1.416G | 193.78 | 3.731G |" in text  # the paper's overhead
    assert "| BayesNCL (STE) | - | 88.02 | 60.69 | 70.44 | - | 91.71 |" in text
    assert "| rho=0.5 lambda=0.0003 | 62.00 | 79.00 | yes | **selected** |" in text
    assert "| gate T=2 | 70.00 | 50.00 | no |  |" in text
    assert "rerun on fresh seeds as `BayesNCL (tuned)`: Cons. 62.00 ± 1.00" in text
    assert (
        "| Cons.: BayesNCL (tuned) above NCL | 62.00 ± 1.00 | 46.00 ± 1.00 | +16.00 | holds |"
        in text
    )
    assert write_report(str(res), str(out)) == text  # idempotent


def test_environment_names_versions():
    env = environment(commit="deadbee")
    assert env["commit"] == "deadbee" and env["torch"] and env["threads"] >= 1


def test_report_copies_and_links_the_figures(tmp_path):
    res = tmp_path / "res"
    for slug in ("NCL", "BayesNCL__STE_"):
        ev = res / "runs" / slug / "seed0" / "eval"
        ev.mkdir(parents=True)
        (ev / "top_activated.png").write_bytes(b"png")
    (res / "runs" / "BayesNCL__STE_" / "seed0" / "eval" / "gate_vs_frequency.png").write_bytes(b"g")
    (res / "results.json").write_text(json.dumps(fake_results()))
    out = tmp_path / "doc" / "RESULTS.md"
    out.parent.mkdir()
    text = write_report(str(res), str(out), figures=str(tmp_path / "doc" / "figures"))
    assert (
        tmp_path / "doc" / "figures" / "cpu_BayesNCL__STE__gate_vs_frequency.png"
    ).read_bytes() == b"g"
    assert "](figures/cpu_NCL_top_activated.png)" in text
    assert text.index("### Figures") < text.index(END)
