"""Runs and configs written before the nested method config (commit 85e91a1) keep working."""

import yaml

from bayesncl.cli import main

from ..conftest import TINY_FIT

SHORT = [*TINY_FIT, "--trainer.limit_train_batches", "2", "--model.method", "ncl"]


def test_old_format_run_dir_resumes_and_other_settings_are_still_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["fit", *SHORT, "--run_dir", str(run)]) == 0
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["model"]["method"] = "ncl"  # the old format: a preset name ...
    cfg["model"]["method_overrides"] = {"temperature": 0.2}  # ... plus flat overrides
    del cfg["data"]["skip_corrupt"]  # and a setting added since
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["fit", *SHORT, "--run_dir", str(run)]) == 0  # same run: continues
    assert main(["fit", *SHORT, "--run_dir", str(run), "--model.method.tau", "0.3"]) == 2
    assert "model.method.tau: 0.2 -> 0.3" in capsys.readouterr().err


def test_old_format_config_file_loads(tmp_path):
    from bayesncl.train.fit import parse_fit_args

    old = {
        "model": {"method": "bayesncl", "method_overrides": {"prior": 0.5, "exact_kl": True}},
        "data": {"dataset": "digits"},
    }
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(old))
    parser, cfg = parse_fit_args(["--config", str(path)])
    method = parser.instantiate(cfg).model.method
    assert method.gate.prior == 0.5 and method.gate.kl_clamp is None and method.name == "bayesncl"
