"""Where the time of a real ``bayesncl fit`` step goes: Lightning's simple profiler (mean time per
hook: data loading, batch augmentation, training_step, backward, optimiser step) over a short
Fashion-MNIST BayesNCL run, plus the PyTorch operator table of the same steps.

    python benchmarks/profile_fit.py [--steps 60] [--config configs/fashion-mnist/bayesncl.yaml]

Needs the Fashion-MNIST files (``apt-get install dataset-fashion-mnist``).
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from bayesncl.train import fit as fit_mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--config", default="configs/fashion-mnist/bayesncl.yaml")
    ap.add_argument("--ops", type=int, default=15, help="rows of the operator table")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "--config", args.config, "--run_dir", tmp, "--trainer.max_steps", str(args.steps),
            "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
            "--trainer.profiler", "simple",
        ]  # fmt: skip
        with torch.profiler.profile() as prof:
            fit_mod.fit(argv)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.ops))


if __name__ == "__main__":
    main()
