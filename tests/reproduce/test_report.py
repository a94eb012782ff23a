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
    return {
        "preset": "cpu", "seeds": 3, "environment": {"commit": "abc1234", "torch": "2.x"},
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
    assert "commit abc1234" in text
    assert "| rho = 0.5 | - | 62.00 |" in text  # the rho x lambda matrix (lambda 3e-05, 3e-04)
    assert "| gate T=2 | 55.00 | 80.00 |" in text
    assert "Highest Cons. in the sensitivity grid: rho=0.5 lambda=0.0003" in text
    assert "| BayesNCL (STE) | 59.00 ± 1.00 | 56.50 | 22.02 | 36.14 |" in text  # paper columns
    assert write_report(str(res), str(out)) == text  # idempotent


def test_environment_names_versions():
    env = environment(commit="deadbee")
    assert env["commit"] == "deadbee" and env["torch"] and env["threads"] >= 1
