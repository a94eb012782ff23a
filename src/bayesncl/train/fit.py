"""``bayesncl fit``: typed YAML config -> data, model, Lightning Trainer; resumable runs.

The config has five sections: ``seed``, ``run_dir``, ``resume``, ``model`` (PretrainModule),
``data`` (SSLDataModule) and ``trainer`` (:class:`TrainerConfig`). Unknown keys and wrong types
are errors (jsonargparse). The resolved config is written to RUN_DIR/config.yaml and stored in
every checkpoint. ``resume: auto`` continues from RUN_DIR/checkpoints/last.ckpt when it exists,
so rerunning the same command after a kill continues the run, bit for bit.

Reliability (see :mod:`bayesncl.train.checkpointing` and :mod:`bayesncl.train.rundir`): the run
directory is checked writable and locked at start-up; a rerun with other settings is refused
(``--resume force`` continues on purpose); checkpoints are written atomically next to their
target, the previous one is kept and used when the newest does not load, and they are always
loaded weights-only; logs/metrics.csv continues over resumed segments.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from bayesncl._argv import dashes_to_underscores
from bayesncl._output import configure, interactive, verbosity
from bayesncl.core.presets import PRESETS
from bayesncl.train.checkpointing import (
    LAST,
    AtomicCheckpointIO,
    LastCheckpoint,
    prev_path,
    remove_checkpoints,
    remove_stale_temp_files,
    select_checkpoint,
)
from bayesncl.train.csvlog import RunCSVLogger
from bayesncl.train.datamodule import SSLDataModule
from bayesncl.train.method_args import config_task, expand_method_args, method_dict
from bayesncl.train.module import PretrainModule, check_finetune
from bayesncl.train.progress import EpochLine
from bayesncl.train.rundir import (
    RunDirLock,
    check_same_settings,
    is_global_zero_process,
    prepare_run_dir,
    write_text_atomic,
)


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


#: the tasks of ``bayesncl fit`` (the config's ``task`` key): pretraining of one encoder, or
#: two towers on paired data (MMNCL / CLIP-style, ``bayesncl.train.multimodal_module``)
TASKS = ("pretrain", "multimodal")


def _common_args(p: ArgumentParser, task: str) -> None:
    p.add_argument(
        "--config",
        action=ActionConfigFile,
        help="a YAML config file, or a shipped config by name, e.g. digits/bayesncl "
        "(`bayesncl configs` lists them)",
    )
    p.add_argument(
        "--task",
        type=Literal[task],  # type: ignore[valid-type]
        default=task,
        help="pretrain (one encoder, the default) or multimodal (two towers on paired data; "
        "set by the multimodal configs, e.g. fashion-mnist-edges/mmncl)",
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
        help="auto (continue RUN_DIR's last.ckpt if any, with the same settings), force (continue "
        "it although settings changed), never (start over: RUN_DIR's checkpoints are deleted), "
        "or a checkpoint path",
    )


def fit_parser(task: str = "pretrain") -> ArgumentParser:
    """The ``bayesncl fit`` parser of ``task`` (:data:`TASKS`)."""
    if task not in TASKS:
        raise ValueError(f"task={task!r}; use one of: {', '.join(TASKS)}")
    if task == "multimodal":
        return _multimodal_parser()
    p = ArgumentParser(
        prog="bayesncl fit",
        description="Train a model: any method preset (CL, NCL, BayesNCL and its ablations, "
        "SCL / non-negative SCL, supervised CE / NCE) on any dataset of the registry. "
        f"--model.method NAME takes a preset: {', '.join(PRESETS)}; then e.g. "
        "--model.method.gate.prior 0.5 (rho), --model.method.gate.kl_weight (lambda), "
        "--model.method.gate.temperature (T), --model.method.tau. Datasets and their layout: "
        "digits (scikit-learn), fashion-mnist (IDX files), cifar10/cifar100 (torchvision "
        "folders), imagenet100 and imagefolder (DATA_DIR/train/<class>/*, DATA_DIR/val/<class>/*). "
        "Two towers on paired data (MMNCL, CLIP-style): --task multimodal, see "
        "--config fashion-mnist-edges/mmncl.",
        exit_on_error=False,
    )
    _common_args(p, task)
    p.add_class_arguments(
        PretrainModule,
        "model",
        skip={"in_channels", "num_classes", "image_size", "batch_size_for_scaling", "seed"},
        instantiate=False,
    )
    p.add_class_arguments(SSLDataModule, "data", skip={"seed"}, instantiate=False)
    p.add_class_arguments(TrainerConfig, "trainer")
    return p


def _multimodal_parser() -> ArgumentParser:
    from bayesncl.train.multimodal_module import TwoTowerModule
    from bayesncl.train.paired_datamodule import PairedDataModule

    p = ArgumentParser(
        prog="bayesncl fit",
        description="Train two towers on paired data (task: multimodal): MMNCL (non-negative "
        "towers) or CLIP-style CL with the symmetric InfoNCE. --model.method / "
        "--model.pair_method take a contrastive preset (cl, ncl, ncl-topk, bayesncl, ...). "
        "Paired datasets: fmnist-edges (M1), fmnist-captions (M2), pairs (your CSV or JSONL "
        "of image path and caption: --data.pairs_file).",
        exit_on_error=False,
    )
    _common_args(p, "multimodal")
    p.add_class_arguments(
        TwoTowerModule,
        "model",
        skip={
            "in_channels", "image_size", "pair_kind", "pair_channels", "vocab_size",
            "num_classes", "tokenizer", "class_names", "batch_size_for_scaling", "seed",
        },
        instantiate=False,
    )  # fmt: skip
    p.add_class_arguments(PairedDataModule, "data", skip={"seed"}, instantiate=False)
    p.add_class_arguments(TrainerConfig, "trainer")
    return p


def parse_fit_args(argv: list[str]) -> tuple[ArgumentParser, Namespace]:
    """Parse ``bayesncl fit`` arguments; option names may use dashes or underscores (also when
    ``fit`` is called directly, as ``bayesncl reproduce`` does with its extra_fit_args)."""
    args = expand_method_args(dashes_to_underscores(argv))
    parser = fit_parser(config_task(args))
    return parser, parser.parse_args(args)


def resolved_init(run_config: dict[str, Any]) -> Namespace:
    """Typed objects (dataclasses included) of a saved run config, validated like the CLI's."""
    parser = fit_parser(run_config.get("task", "pretrain"))
    return parser.instantiate(parser.parse_object(run_config))


def build_trainer(cfg: TrainerConfig, run_dir: Path, callbacks: Sequence[Any] = ()):
    """The Trainer of a run: metrics.csv (continued on resume) and TensorBoard logs, last.ckpt
    written atomically by :class:`AtomicCheckpointIO`, the learning rates, and ``callbacks``."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import TensorBoardLogger

    loggers: list[Any] = [RunCSVLogger(run_dir / "logs")]
    try:
        import tensorboard  # noqa: F401

        loggers.append(
            TensorBoardLogger(str(run_dir), name="", version="tensorboard", default_hp_metric=False)
        )
    except ImportError:
        pass
    all_callbacks: list[Any] = [
        LastCheckpoint(run_dir / "checkpoints", cfg.checkpoint_every_n_steps),
        LearningRateMonitor(logging_interval="step"),
        *callbacks,
    ]
    kwargs = {
        k: v for k, v in cfg.__dict__.items() if k != "checkpoint_every_n_steps" and v is not None
    }
    # one progress display: the bar in a terminal, a line per epoch otherwise, nothing with -q
    show = cfg.enable_progress_bar and verbosity() >= 0
    kwargs["enable_progress_bar"] = show and interactive()
    if show and not interactive():
        all_callbacks.append(EpochLine(str(run_dir)))
    trainer = pl.Trainer(
        default_root_dir=str(run_dir),
        logger=loggers,
        callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # EpochSampler shards by rank itself
        enable_model_summary=verbosity() > 0,
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


def _resolve(parser: ArgumentParser, config: dict[str, Any]) -> dict[str, Any]:
    """A stored run config as today's parser resolves it (defaults filled in, old method format
    converted), for comparing with a new one."""
    config = dict(config)
    model = dict(config.get("model") or {})
    if isinstance(model.get("method"), str):
        model["method"] = method_dict(model["method"], model.pop("method_overrides", None))
        config["model"] = model
    return yaml.safe_load(parser.dump(parser.parse_object(config), skip_none=False))


def resolve_stored_config(config: dict[str, Any]) -> dict[str, Any]:
    """A stored RUN_DIR/config.yaml as today's ``bayesncl fit`` would resolve it: settings added
    since the run was made take their defaults (they are added with the old behaviour as the
    default), the old method format is converted. Unchanged when today's parser rejects it
    (the comparison then names the differing keys)."""
    try:
        return _resolve(fit_parser(config.get("task", "pretrain")), config)
    except Exception:  # an old or foreign config: compare it as stored
        return config


def check_resume_value(resume: str) -> None:
    """``--resume`` is auto, force, never or an existing checkpoint file."""
    if resume not in ("auto", "force", "never") and not Path(resume).is_file():
        raise FileNotFoundError(
            f"resume={resume!r}: no such checkpoint (use auto, force, never or a checkpoint path)"
        )


def start_run(
    run_dir: Path,
    resume: str,
    model: Any,
    trainer: Any,
    dumped: str,
    normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> str | None:
    """What happens between the checks of the config and training, with RUN_DIR locked: the
    settings compared with the stored config.yaml (before it is rewritten), the checkpoint
    chosen, read and checked, config.yaml written and metrics.csv continued or restarted.
    Returns the checkpoint to resume from. Processes of ranks > 0 only choose the checkpoint."""
    io = trainer.strategy.checkpoint_io
    assert isinstance(io, AtomicCheckpointIO)
    rank0 = is_global_zero_process()
    if rank0:
        remove_stale_temp_files(run_dir)
        last = run_dir / "checkpoints" / LAST
        if resume == "never":
            removed = remove_checkpoints(run_dir)
            if removed:
                names = ", ".join(p.name for p in removed)
                print(
                    f"bayesncl fit: --resume never: starting {run_dir} over, removed its "
                    f"checkpoints ({names})",
                    file=sys.stderr,
                )
        elif resume not in ("auto", "force") or last.exists() or prev_path(last).exists():
            check_same_settings(run_dir, yaml.safe_load(dumped), resume, normalize)
    chosen = select_checkpoint(run_dir, resume, model.state_dict(), io)
    if rank0:
        write_text_atomic(run_dir / "config.yaml", dumped)
        for logger in trainer.loggers:
            if isinstance(logger, RunCSVLogger):
                logger.begin(None if chosen is None else chosen[1])
    return None if chosen is None else str(chosen[0])


def _build_pretrain(init: Namespace, seed: int) -> tuple[Any, Any]:
    data = SSLDataModule(**init.data.as_dict(), seed=seed)
    model = PretrainModule(
        **init.model.as_dict(),
        in_channels=data.in_channels,
        image_size=data.image_size,
        num_classes=data.num_classes,
        seed=seed,
    )
    objective = model.encoder.head.objective
    if data.num_views < objective.min_views:
        raise ValueError(
            f"data.num_views={data.num_views}, but objective {model.method.objective!r} needs "
            f">= {objective.min_views} views per image (its positives): set data.num_views"
        )
    return data, model


def _build_multimodal(init: Namespace, seed: int) -> tuple[Any, Any]:
    from bayesncl.train.multimodal_module import TwoTowerModule
    from bayesncl.train.paired_datamodule import PairedDataModule

    data = PairedDataModule(**init.data.as_dict(), seed=seed)
    tokenizer = data.tokenizer
    model = TwoTowerModule(
        **init.model.as_dict(),
        in_channels=data.in_channels,
        image_size=data.image_size,
        pair_kind=data.pair_kind,
        pair_channels=data.pair_channels or 1,
        vocab_size=0 if tokenizer is None else tokenizer.vocab_size,
        num_classes=data.num_classes,
        tokenizer=None if tokenizer is None else tokenizer.to_dict(),
        class_names=None if data.class_names is None else list(data.class_names),
        seed=seed,
    )
    return data, model


def fit(argv: list[str] | None = None, callbacks: Sequence[Any] = ()) -> Path:
    """Run ``bayesncl fit`` with command-line style arguments; returns the run directory.

    ``callbacks``: extra Lightning callbacks (observers such as the benchmarks' step timer).
    """
    import lightning.pytorch as pl

    configure()
    parser, cfg = parse_fit_args(sys.argv[2:] if argv is None else argv)
    run_dir = Path(cfg.run_dir)
    check_resume_value(cfg.resume)
    if cfg.task == "pretrain":
        check_finetune(cfg.model.finetune, cfg.model.init_from)  # before any data is read
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    init = parser.instantiate(cfg)
    trainer_cfg: TrainerConfig = init.trainer
    build = _build_multimodal if cfg.task == "multimodal" else _build_pretrain
    data, model = build(init, cfg.seed)
    trainer = build_trainer(trainer_cfg, run_dir, callbacks)
    model.hparams.batch_size_for_scaling = data.batch_size * trainer.world_size
    dumped = parser.dump(cfg, skip_none=False)
    model.run_config = yaml.safe_load(dumped)
    prepare_run_dir(run_dir)
    lock = RunDirLock(run_dir).acquire() if is_global_zero_process() else None
    try:
        ckpt = start_run(
            run_dir, cfg.resume, model, trainer, dumped, lambda old: _resolve(parser, old)
        )
        trainer.fit(model, datamodule=data, ckpt_path=ckpt)
    finally:
        if lock is not None:
            lock.release()
    return run_dir
