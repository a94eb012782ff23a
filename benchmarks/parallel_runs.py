"""Runs side by side against one run with every thread: what ``bayesncl reproduce --workers N``
buys on this machine.

    python benchmarks/parallel_runs.py [--steps 60] [--workers 2]

(a) one ``bayesncl fit`` of ``--steps`` steps with all threads, then (b) ``--workers`` such fits
at once with threads / workers each. Wall times include start-up, as in the grid. Prints the
throughput ratio (runs per hour of b over a) and writes benchmarks/parallel_runs.json. Needs the
Fashion-MNIST files (``apt-get install dataset-fashion-mnist``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def fit_command(config: str, steps: int, run_dir: str) -> list[str]:
    return [
        sys.executable, "-m", "bayesncl.cli", "fit", "--config", config, "--run_dir", run_dir,
        "--resume", "never", "--trainer.max_steps", str(steps),
        "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip


def timed(n: int, threads: int, config: str, steps: int, tmp: str) -> float:
    """Wall seconds of ``n`` fits started together, each with ``threads`` threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            fit_command(config, steps, f"{tmp}/run{n}_{k}"),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for k in range(n)
    ]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"bayesncl fit failed:\n{err.decode()[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--config", default="configs/fashion-mnist/bayesncl.yaml")
    ap.add_argument("--out", default=str(Path(__file__).with_name("parallel_runs.json")))
    args = ap.parse_args()
    threads = torch.get_num_threads()
    per_worker = max(1, threads // args.workers)
    one, many = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # interleaved, so drift hits both alike
            one.append(timed(1, threads, args.config, args.steps, tmp))
            many.append(timed(args.workers, per_worker, args.config, args.steps, tmp))
    a, b = min(one), min(many)
    ratio = args.workers * a / b
    result = {
        "machine": {"cpu": platform.machine(), "threads": threads, "torch": torch.__version__},
        "config": args.config,
        "steps": args.steps,
        "workers": args.workers,
        "one_run_all_threads_s": one,
        "parallel_runs_s": many,
        "throughput_ratio": ratio,
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"{args.steps}-step fit ({args.config}), best of {args.repeats}:")
    print(f"  1 run, {threads} threads:                  {a:.1f} s")
    print(f"  {args.workers} runs at once, {per_worker} thread(s) each:   {b:.1f} s")
    print(f"  runs per hour, parallel / one at a time:  {ratio:.2f}x")


if __name__ == "__main__":
    main()
