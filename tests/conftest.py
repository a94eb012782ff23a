TINY_FIT = [
    "--data.dataset", "digits", "--data.batch_size", "64", "--data.num_workers", "0",
    "--model.backbone", "convnet", "--model.backbone_width", "8",
    "--model.proj_hidden_dim", "32", "--model.proj_output_dim", "16",
    "--model.optim.warmup_epochs", "0", "--trainer.accelerator", "cpu",
    "--trainer.enable_progress_bar", "false", "--trainer.max_epochs", "1",
]  # fmt: skip
