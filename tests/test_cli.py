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
