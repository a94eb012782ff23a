from bayesncl.cli import dashes_to_underscores, main


def test_option_names_accept_dashes_values_are_untouched():
    args = ["evaluate", "run-1/last.ckpt", "--save-features", "my-file.npz", "--bn_mode=train",
            "--out-dir=a-b", "--", "-x", "--extra_fit_args", '["--trainer.max-epochs", "1"]']  # fmt: skip
    assert dashes_to_underscores(args) == [
        "evaluate", "run-1/last.ckpt", "--save_features", "my-file.npz", "--bn_mode=train",
        "--out_dir=a-b", "--", "-x", "--extra_fit_args", '["--trainer.max-epochs", "1"]',
    ]  # fmt: skip


def test_unknown_command_and_help(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "reproduce" in capsys.readouterr().out


def test_fit_called_directly_accepts_dashed_option_names():
    from bayesncl.train.fit import parse_fit_args

    _, cfg = parse_fit_args(["--config", "configs/digits/cl.yaml", "--trainer.max-epochs", "2",
                             "--data.batch-size=32"])  # fmt: skip
    assert cfg.trainer.max_epochs == 2 and cfg.data.batch_size == 32


def test_version_and_configs_list(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("bayesncl ")
    assert main(["configs", "digits/"]) == 0
    names = capsys.readouterr().out.split()
    assert "digits/bayesncl" in names and "digits/nce" in names and len(names) >= 18


def test_config_by_name_works_from_any_directory(tmp_path, monkeypatch):
    from bayesncl.train.fit import parse_fit_args

    monkeypatch.chdir(tmp_path)
    _, cfg = parse_fit_args(["--config", "fashion-mnist/bayesncl"])
    assert cfg.model.method.name == "bayesncl" and cfg.data.dataset == "fashion-mnist"


def test_output_is_one_line_per_epoch_and_quiet_is_silent(tmp_path, capfd):
    from .conftest import TINY_FIT

    base = ["fit", *TINY_FIT, "--trainer.enable_progress_bar", "true"]
    assert (
        main([*base, "--trainer.limit_train_batches", "2", "--run_dir", str(tmp_path / "a")]) == 0
    )
    out, err = capfd.readouterr()
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and "epoch 1/1" in lines[0] and "loss" in lines[0], out
    for noise in ("GPU available", "Tip", "Total params", "LeafSpec"):
        assert noise not in out + err
    args = ["-q", *base, "--trainer.limit_train_batches", "2", "--run_dir", str(tmp_path / "b")]
    assert main(args) == 0
    out, err = capfd.readouterr()
    assert out.strip() == "" and err.strip() == ""
