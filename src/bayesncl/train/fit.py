"""``bayesncl fit``: typed YAML config -> data, model, Lightning Trainer; resumable runs.

The config has five sections: ``seed``, ``run_dir``, ``resume``, ``model`` (PretrainModule),
``data`` (SSLDataModule) and ``trainer`` (:class:`TrainerConfig`). Unknown keys and wrong types
are errors (jsonargparse). The resolved config is written to RUN_DIR/config.yaml and stored in
every checkpoint. ``resume: auto`` continues from RUN_DIR/checkpoints/last.ckpt when it exists,
so rerunning the same command after a kill continues the run.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from bayesncl.train.datamodule import SSLDataModule
from bayesncl.train.module import PretrainModule


@dataclass(frozen=True)
class TrainerConfig:
    """The Lightning Trainer settings bayesncl exposes.

    precision: ``32-true`` (CPU default), ``bf16-mixed`` or ``16-mixed`` (the official runs use
    fp16 AMP). strategy ``ddp`` with devices > 1 or num_nodes > 1 runs data-parallel; set
    ``sync_batchnorm: true`` there (official). checkpoint_every_n_steps: also save
    checkpoints/last.ckpt every this many steps (mid-epoch resume); checkpoints are always saved
    at the end of every epoch. profiler: Lightning's ``simple`` (time per hook: data, step,
    backward, optimiser), ``advanced`` (cProfile) or ``pytorch`` (operator traces), printed at
    the end of the run.
    """

    max_epochs: int = 200
    max_steps: int = -1
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    sync_batchnorm: bool = False
    log_every_n_steps: int = 50
    check_val_every_n_epoch: int = 1
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    checkpoint_every_n_steps: int | None = None
    enable_progress_bar: bool = True
    deterministic: bool = False
    profiler: str | None = None

    def __post_init__(self) -> None:
        if self.max_epochs < 1 and self.max_steps < 1:
            raise ValueError("trainer.max_epochs (or trainer.max_steps) must be >= 1")
        valid = ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "64-true")
        if self.precision not in valid:
            raise ValueError(
                f"trainer.precision={self.precision!r}; use one of: {', '.join(valid)}"
            )
        if self.profiler not in (None, "simple", "advanced", "pytorch"):
            raise ValueError(
                f"trainer.profiler={self.profiler!r}; use simple, advanced, pytorch or null"
            )
        if self.checkpoint_every_n_steps is not None and self.checkpoint_every_n_steps < 1:
            raise ValueError("trainer.checkpoint_every_n_steps must be >= 1 (or null)")


def fit_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="bayesncl fit",
        description="Pretrain a model (NCL / BayesNCL / CL).",
        exit_on_error=False,
    )
    p.add_argument(
        "--config",
        action=ActionConfigFile,
        help="YAML config file (configs/<dataset>/<method>.yaml)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of initialisation, shuffling, augmentation"
    )
    p.add_argument(
        "--run_dir", type=str, default="runs/default", help="checkpoints, logs and config go here"
    )
    p.add_argument(
        "--resume",
        type=str,
        default="auto",
        help="auto (continue RUN_DIR's last.ckpt if any), never, or a path",
    )
    p.add_class_arguments(
        PretrainModule,
        "model",
        skip={"in_channels", "num_classes", "batch_size_for_scaling", "seed"},
        instantiate=False,
    )
    p.add_class_arguments(SSLDataModule, "data", skip={"seed"}, instantiate=False)
    p.add_class_arguments(TrainerConfig, "trainer")
    return p


def parse_fit_args(argv: list[str]) -> tuple[ArgumentParser, Namespace]:
    """Parse ``bayesncl fit`` arguments; option names may use dashes or underscores (also when
    ``fit`` is called directly, as ``bayesncl reproduce`` does with its extra_fit_args)."""
    from bayesncl.cli import dashes_to_underscores

    parser = fit_parser()
    return parser, parser.parse_args(dashes_to_underscores(argv))


def resolve_ckpt(run_dir: Path, resume: str) -> str | None:
    if resume == "never":
        return None
    if resume == "auto":
        last = run_dir / "checkpoints" / "last.ckpt"
        return str(last) if last.is_file() else None
    if not Path(resume).is_file():
        raise FileNotFoundError(f"resume={resume!r}: no such checkpoint")
    return resume


def last_checkpoint(dirpath: str, every_n_steps: int | None):
    """One checkpoint file, ``last.ckpt``, rewritten at the end of every epoch and, if
    ``every_n_steps`` is set, every that many steps too (Lightning's ModelCheckpoint does one or
    the other; two instances would write last.ckpt and last-v1.ckpt)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    class LastCheckpoint(ModelCheckpoint):
        def on_train_epoch_end(self, trainer, pl_module) -> None:
            super().on_train_epoch_end(trainer, pl_module)
            if every_n_steps and not self._should_skip_saving_checkpoint(trainer):
                self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    if every_n_steps:
        return LastCheckpoint(
            dirpath=dirpath, save_last=True, save_top_k=0, every_n_train_steps=every_n_steps
        )
    return LastCheckpoint(
        dirpath=dirpath,
        save_last=True,
        save_top_k=0,
        every_n_epochs=1,
        save_on_train_epoch_end=True,
    )


def resolved_init(run_config: dict[str, Any]) -> Namespace:
    """Typed objects (dataclasses included) of a saved run config, validated like the CLI's."""
    parser = fit_parser()
    return parser.instantiate(parser.parse_object(run_config))


def build_trainer(cfg: TrainerConfig, run_dir: Path):
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    loggers: list[Any] = [CSVLogger(str(run_dir), name="", version="logs")]
    try:
        import tensorboard  # noqa: F401

        loggers.append(
            TensorBoardLogger(str(run_dir), name="", version="tensorboard", default_hp_metric=False)
        )
    except ImportError:
        pass
    every = cfg.checkpoint_every_n_steps
    callbacks: list[Any] = [
        last_checkpoint(str(run_dir / "checkpoints"), every),
        LearningRateMonitor(logging_interval="step"),
    ]
    kwargs = {
        k: v for k, v in cfg.__dict__.items() if k != "checkpoint_every_n_steps" and v is not None
    }
    trainer = pl.Trainer(
        default_root_dir=str(run_dir),
        logger=loggers,
        callbacks=callbacks,
        use_distributed_sampler=False,  # EpochSampler shards by rank itself
        **kwargs,
    )
    if (
        cfg.sync_batchnorm
        and trainer.world_size > 1
        and trainer.accelerator.__class__.__name__ == "CPUAccelerator"
    ):
        raise ValueError(
            "trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm is CUDA-only); on CPU set it "
            "false, or use model.backbone_norm=group for batch-independent features"
        )
    return trainer


def fit(argv: list[str] | None = None) -> Path:
    """Run ``bayesncl fit`` with command-line style arguments; returns the run directory."""
    import lightning.pytorch as pl

    parser, cfg = parse_fit_args(sys.argv[2:] if argv is None else argv)
    run_dir = Path(cfg.run_dir)
    ckpt = resolve_ckpt(run_dir, cfg.resume)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    init = parser.instantiate(cfg)
    trainer_cfg: TrainerConfig = init.trainer
    data = SSLDataModule(**init.data.as_dict(), seed=cfg.seed)
    model = PretrainModule(
        **init.model.as_dict(),
        in_channels=data.in_channels,
        num_classes=data.num_classes,
        seed=cfg.seed,
    )
    trainer = build_trainer(trainer_cfg, run_dir)
    model.hparams.batch_size_for_scaling = data.batch_size * trainer.world_size
    run_dir.mkdir(parents=True, exist_ok=True)
    dumped = parser.dump(cfg, skip_none=False)
    (run_dir / "config.yaml").write_text(dumped)
    model.run_config = yaml.safe_load(dumped)
    trainer.fit(model, datamodule=data, ckpt_path=ckpt)
    return run_dir
