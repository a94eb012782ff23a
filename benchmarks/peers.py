"""bayesncl against a peer library on the same model, data and batch; augmentation alone.

    pip install -e ".[bench]"          # lightly, kornia
    python benchmarks/peers.py [--rounds 7] [--steps 10] [--out benchmarks/peers.json]
    python benchmarks/peers.py --quick  # smoke test: 1 round, 3 steps, few repeats

Model: the Fashion-MNIST ConvNet of ``configs/fashion-mnist/ncl.yaml`` (width 16, projector
512 -> 128, tau 0.2), batch 256, Fashion-MNIST (``--data``, default
/usr/share/datasets/fashion-mnist). Pipelines, each run for ``--steps`` timed steps after
warm-up steps in every round:

* ``bayesncl_fit``: a real ``bayesncl fit`` (batched augmentation, Lightning, LARS, logging),
  timed by a callback between consecutive step ends;
* ``bayesncl_fit_compiled``: the same with ``--model.compile true`` (its first step, the
  compilation, is reported separately: cold cache in round 1, warm cache after);
* ``lightly_w0/1/2``: LightlySSL's documented SimCLR loop (``SimCLRTransform`` on PIL images in
  a DataLoader with 0/1/2 workers, one forward per view, ``SimCLRProjectionHead``,
  ``NTXentLoss``, SGD), same backbone, same augmentation settings as bayesncl's preset;
* ``lightly_kornia``: the same loop with kornia's batched augmentation instead;
* ``bare_model``: a plain PyTorch loop of the same model and loss with no augmentation (the
  floor: backbone + projector + NT-Xent + SGD step on both views in one channels_last pass);
* ``bare_backbone``: the backbone alone on both views, a sum-of-squares loss, SGD.

Rounds are interleaved (every pipeline once per round, order rotated); each pipeline's
DataLoader workers live only inside its own block, so no pipeline prefetches during another's
timing. Ratios are taken within a round (paired) and reported as median, min and max over
rounds. Peak memory is measured in one subprocess per pipeline (``ru_maxrss`` of the process
and of its largest worker, minus the RSS before the pipeline started). Augmentation alone: two
views of 256 images, 28x28 grayscale (Fashion-MNIST preset) and 32x32 RGB (official CIFAR
recipe, hue included), bayesncl batched vs kornia vs torchvision v2 per image vs lightly per
image, interleaved repeats, medians (per-image transforms with one torch thread, as in a loader
worker; batched ones with all threads).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
DATA = "/usr/share/datasets/fashion-mnist"
BATCH = 256
MEAN, STD = (0.286,), (0.353,)  # bayesncl's Fashion-MNIST normalisation
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
PIPELINES = (
    "bayesncl_fit",
    "bayesncl_fit_compiled",
    "lightly_w0",
    "lightly_w1",
    "lightly_w2",
    "lightly_kornia",
    "bare_model",
    "bare_backbone",
)
WARMUP = {"bayesncl_fit": 3, "bayesncl_fit_compiled": 4}  # others: 3 (+ workers)


# ---------------------------------------------------------------------------- data and model
def load_images(data_dir: str) -> Tensor:
    """Fashion-MNIST training images, (60000, 28, 28) uint8, read with bayesncl's IDX reader."""
    from bayesncl.data.idx import read_idx

    folder = Path(data_dir)
    path = next(p for p in folder.rglob("train-images-idx3-ubyte*") if p.is_file())
    return torch.from_numpy(np.array(read_idx(path), dtype=np.uint8))


def backbone() -> tuple[nn.Module, int]:
    """The ConvNet of configs/fashion-mnist/ncl.yaml (width 16, one input channel)."""
    from bayesncl.models.backbones import build_backbone

    return build_backbone("convnet", "cifar", 2, 1, 16)


def lightly_settings(rgb: bool) -> dict:
    """SimCLRTransform arguments equal to bayesncl's preset (grayscale) or the official CIFAR
    recipe (RGB)."""
    from bayesncl.data.augment import GRAYSCALE_AUGMENT, SIMCLR_AUGMENT

    c = SIMCLR_AUGMENT if rgb else GRAYSCALE_AUGMENT
    mean, std = (CIFAR_MEAN, CIFAR_STD) if rgb else (MEAN, STD)
    return {
        "input_size": 32 if rgb else 28,
        "cj_prob": c.jitter_prob,
        "cj_bright": c.brightness,
        "cj_contrast": c.contrast,
        "cj_sat": c.saturation,
        "cj_hue": c.hue,
        "min_scale": c.crop_scale_min,
        "random_gray_scale": c.grayscale_prob,
        "gaussian_blur": c.blur_prob,
        "hf_prob": c.flip_prob,
        "normalize": {"mean": list(mean), "std": list(std)},
    }


def kornia_augment(rgb: bool, fast: bool) -> nn.Module:
    """kornia's batched equivalent of the same settings. ``fast``: a fixed jitter order and the
    resample cropping mode (one batched warp instead of per-image slices)."""
    import kornia.augmentation as K

    from bayesncl.data.augment import GRAYSCALE_AUGMENT, SIMCLR_AUGMENT

    c = SIMCLR_AUGMENT if rgb else GRAYSCALE_AUGMENT
    size = 32 if rgb else 28
    mean, std = (CIFAR_MEAN, CIFAR_STD) if rgb else (MEAN, STD)
    ops: list[nn.Module] = [
        K.RandomResizedCrop(
            (size, size),
            scale=(c.crop_scale_min, 1.0),
            cropping_mode="resample" if fast else "slice",
        ),
        K.RandomHorizontalFlip(p=c.flip_prob),
        K.ColorJitter(
            c.brightness,
            c.contrast,
            c.saturation if rgb else 0.0,
            c.hue if rgb else 0.0,
            p=c.jitter_prob,
            order=(0, 1, 2, 3) if fast else None,
        ),
    ]
    if rgb:
        ops.append(K.RandomGrayscale(p=c.grayscale_prob))
    k = max(3, (size // 10) | 1)
    ops.append(K.RandomGaussianBlur((k, k), (0.1, 2.0), p=c.blur_prob))
    ops.append(K.Normalize(torch.tensor(mean), torch.tensor(std)))
    return nn.Sequential(*ops)


class _PILImages(torch.utils.data.Dataset):
    """uint8 (n, H, W[, 3]) images as PIL images through a transform, as torchvision's
    FashionMNIST / CIFAR10 datasets hand them to lightly's transforms."""

    def __init__(self, images: Tensor, transform: Callable) -> None:
        self.images, self.transform = images.numpy(), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        img = self.images[i]
        pil = Image.fromarray(img, mode="L" if img.ndim == 2 else "RGB")
        return self.transform(pil), 0


# ---------------------------------------------------------------------------- step loops
def _batches(images: Tensor, seed: int) -> Iterator[Tensor]:
    """Endless shuffled batches of indices (drop_last), as a sampler would give."""
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(len(images), generator=g)
        for b in range(len(images) // BATCH):
            yield perm[b * BATCH : (b + 1) * BATCH]


def _sgd(params) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.06, momentum=0.9)  # lightly's example optimiser


def lightly_steps(images: Tensor, workers: int) -> Iterator[None]:
    """LightlySSL's documented SimCLR loop (examples/pytorch/simclr.py), our backbone."""
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform

    torch.manual_seed(0)
    net, dim = backbone()
    model = nn.Sequential(net, SimCLRProjectionHead(dim, 512, 128))
    criterion, opt = NTXentLoss(temperature=0.2), _sgd(model.parameters())
    ds = _PILImages(images, SimCLRTransform(**lightly_settings(rgb=False)))
    loader = torch.utils.data.DataLoader(
        ds, batch_size=BATCH, shuffle=True, drop_last=True, num_workers=workers
    )
    while True:
        for (x0, x1), _ in loader:
            loss = criterion(model(x0), model(x1))
            loss.backward()
            opt.step()
            opt.zero_grad()
            yield


def lightly_kornia_steps(images: Tensor) -> Iterator[None]:
    """The same loop with kornia's batched augmentation (fast setting) on raw batches."""
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead

    torch.manual_seed(0)
    net, dim = backbone()
    model = nn.Sequential(net, SimCLRProjectionHead(dim, 512, 128))
    criterion, opt = NTXentLoss(temperature=0.2), _sgd(model.parameters())
    aug = kornia_augment(rgb=False, fast=True)
    for idx in _batches(images, 0):
        x = images[idx].unsqueeze(1).float() / 255
        loss = criterion(model(aug(x)), model(aug(x)))
        loss.backward()
        opt.step()
        opt.zero_grad()
        yield


def bare_steps(images: Tensor, head: bool) -> Iterator[None]:
    """No augmentation: normalised batches, both views = the image, one channels_last pass over
    2n images; with ``head`` bayesncl's NCL head and NT-Xent loss (the model of the fit), else
    the backbone alone with a sum-of-squares loss."""
    from bayesncl.core.objectives import Batch
    from bayesncl.core.presets import method_preset
    from bayesncl.models.encoder import Encoder

    torch.manual_seed(0)
    net, dim = backbone()
    net = net.to(memory_format=torch.channels_last)
    enc = Encoder(net, dim, method_preset("ncl"), 512, 128, 10) if head else None
    opt = _sgd((enc if enc is not None else net).parameters())
    for idx in _batches(images, 0):
        x = (images[idx].unsqueeze(1).float() / 255 - MEAN[0]) / STD[0]
        x = torch.cat([x, x]).contiguous(memory_format=torch.channels_last)
        if enc is not None:
            rep = enc.represent(x)
            i2 = torch.arange(BATCH).repeat(2)
            loss = enc.head.loss(rep, Batch(indexes=i2, labels=i2 % 10)).total
        else:
            loss = net(x).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        yield


def time_loop(steps: Iterator[None], warmup: int, n: int) -> tuple[list[float], float]:
    """Seconds between consecutive step ends for n steps after ``warmup`` steps, and the
    seconds of the warm-up (worker start-up included)."""
    t0 = time.perf_counter()
    for _ in range(warmup):
        next(steps)
    last = time.perf_counter()
    warm = last - t0
    out = []
    for _ in range(n):
        next(steps)
        now = time.perf_counter()
        out.append(now - last)
        last = now
    steps.close()  # ends the loader iterator: its workers exit before the next block
    return out, warm


def time_fit(
    data_dir: str,
    warmup: int,
    n: int,
    compiled: bool,
    config: str = "configs/fashion-mnist/ncl.yaml",
    extra: tuple[str, ...] = (),
) -> tuple[list[float], float]:
    """Step times of a real ``bayesncl fit`` (default configs/fashion-mnist/ncl.yaml, ``extra``
    arguments appended); also the first step's seconds (the compilation, when ``compiled``)."""
    import lightning.pytorch as pl

    import bayesncl.train.fit as fit_mod

    ends: list[float] = []
    start: list[float] = []

    class _Timer(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if not start:
                start.append(time.perf_counter())

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            ends.append(time.perf_counter())

    if compiled:
        torch._dynamo.reset()
    argv = [
        "--config", str(ROOT / config),
        "--data.data_dir", data_dir,
        "--trainer.max_steps", str(warmup + n),
        "--trainer.limit_val_batches", "0",
        "--trainer.enable_progress_bar", "false",
        "--trainer.checkpoint_every_n_steps", "100000",
        "--model.compile", "true" if compiled else "false",
        *extra,
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        fit_mod.fit([*argv, "--run_dir", tmp], callbacks=[_Timer()])
    steps = [b - a for a, b in zip(ends[warmup - 1 : -1], ends[warmup:])]
    return steps, ends[0] - start[0]


def run_pipeline(name: str, images: Tensor, data_dir: str, n: int) -> dict:
    warm = WARMUP.get(name, 3)
    if name.startswith("bayesncl_fit"):
        steps, first = time_fit(data_dir, warm, n, compiled=name.endswith("compiled"))
        return {"steps": steps, "first_step_s": first}
    if name.startswith("lightly_w"):
        workers = int(name[-1])
        loop = lightly_steps(images, workers)
        warm += 2 * workers  # prefetch depth: let the workers reach their steady state
    elif name == "lightly_kornia":
        loop = lightly_kornia_steps(images)
    else:
        loop = bare_steps(images, head=name == "bare_model")
    steps, warm_s = time_loop(loop, warm, n)
    return {"steps": steps, "warmup_s": warm_s}


# ---------------------------------------------------------------------------- memory
def _status_mb(key: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident since exec) of this process, MB.
    (``ru_maxrss`` would not do: Linux keeps it across exec, so a subprocess started from a
    large parent reports the parent's peak.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_of(name: str, data_dir: str, n: int) -> dict:
    """Run one pipeline in this (fresh) process; peak RSS over the RSS before it started."""
    images = load_images(data_dir)
    import lightly  # noqa: F401  (imported before the baseline, as in the timing runs)

    gc.collect()
    base = _status_mb("VmRSS")
    run_pipeline(name, images, data_dir, n)
    peak = _status_mb("VmHWM")
    # the largest terminated child: the loader workers (only the lightly_w1/w2 loops have any;
    # fit's children, if any, are not data workers). Forked workers share the parent's pages
    # copy-on-write, so this counts those shared pages too.
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    workers = int(name[-1]) if name.startswith("lightly_w") else 0
    return {
        "baseline_mb": base,
        "peak_mb": peak,
        "added_mb": peak - base,
        "worker_peak_mb": child if workers else None,
        "workers": workers,
    }


# ---------------------------------------------------------------------------- augmentation
def augmentation_ms(repeats: int) -> dict:
    """ms for two views of 256 images per method, grayscale 28 and RGB 32, interleaved."""
    return {"gray28": _augmentation(False, repeats), "rgb32": _augmentation(True, repeats)}


def _augmentation(rgb: bool, repeats: int) -> dict:
    from lightly.transforms import SimCLRTransform

    from bayesncl.data.augment import GRAYSCALE_AUGMENT, SIMCLR_AUGMENT, view_transform
    from bayesncl.data.batch_augment import BatchAugment

    cfg = SIMCLR_AUGMENT if rgb else GRAYSCALE_AUGMENT
    size, ch = (32, 3) if rgb else (28, 1)
    mean, std = (CIFAR_MEAN, CIFAR_STD) if rgb else (MEAN, STD)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (BATCH, ch, size, size), generator=g, dtype=torch.uint8)
    batched = BatchAugment(cfg, size, mean, std)
    per_image = view_transform(cfg, size, mean, std)
    hwc = images.permute(0, 2, 3, 1).contiguous() if rgb else images[:, 0]
    pil = _PILImages(hwc, SimCLRTransform(**lightly_settings(rgb)))
    kornia_default, kornia_fast = kornia_augment(rgb, False), kornia_augment(rgb, True)
    xf = images.float() / 255
    fns = {
        "bayesncl_batched": lambda: batched.views(images, g, 2),
        "kornia_default": lambda: [kornia_default(xf) for _ in range(2)],
        "kornia_fast": lambda: [kornia_fast(xf) for _ in range(2)],
        "torchvision_v2_per_image": lambda: [
            per_image(images[i]) for _ in range(2) for i in range(BATCH)
        ],
        "lightly_per_image": lambda: [pil[i] for i in range(BATCH)],  # 2 views each
    }
    times: dict[str, list[float]] = {k: [] for k in fns}
    threads = torch.get_num_threads()
    for f in fns.values():
        f()  # warm-up
    for _ in range(repeats):
        for k, f in fns.items():
            # per-image transforms run in loader workers, which use one torch thread each
            torch.set_num_threads(1 if k.endswith("per_image") else threads)
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    torch.set_num_threads(threads)
    med = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    med["kornia_fastest"] = min(med["kornia_default"], med["kornia_fast"])
    return {"ms_two_views_of_256": med, "repeats": repeats}


# ---------------------------------------------------------------------------- report
def _ratio_stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(rounds: list[dict]) -> dict:
    names = [k for k in PIPELINES if k in rounds[0]]
    med = {k: [statistics.median(r[k]["steps"]) for r in rounds] for k in names}
    summary: dict = {
        "step_ms": {k: 1e3 * statistics.median(v) for k, v in med.items()},
        "images_per_s": {k: BATCH / statistics.median(v) for k, v in med.items()},
    }
    fit = med["bayesncl_fit"]
    summary["fit_speedup_over"] = {  # other step time / fit step time, paired per round
        k: _ratio_stats([o / f for o, f in zip(med[k], fit)]) for k in names if k != "bayesncl_fit"
    }
    documented = [k for k in names if k.startswith("lightly_w")]
    if documented:  # lightly's own loop with its fastest worker count in that round
        best = [min(med[k][i] for k in documented) for i in range(len(rounds))]
        summary["fit_over_best_lightly_documented"] = _ratio_stats(
            [b / f for b, f in zip(best, fit)]
        )
    if "bayesncl_fit_compiled" in med:
        firsts = [r["bayesncl_fit_compiled"]["first_step_s"] for r in rounds]
        eager_first = [r["bayesncl_fit"]["first_step_s"] for r in rounds]
        summary["compile"] = {
            "first_step_s_cold_cache": firsts[0],
            "first_step_s_warm_cache_median": statistics.median(firsts[1:] or firsts),
            "eager_first_step_s_median": statistics.median(eager_first),
            "speedup_compiled": _ratio_stats(
                [f / c for f, c in zip(fit, med["bayesncl_fit_compiled"])]
            ),
        }
    for floor in ("bare_model", "bare_backbone"):
        if floor in med:
            summary[f"fit_step_over_{floor}"] = _ratio_stats(
                [f / b for f, b in zip(fit, med[floor])]
            )
    return summary


def print_table(res: dict) -> None:
    s = res["summary"]
    print(f"\n{res['date']}  load before/after: {res['load_before']} / {res['load_after']}")
    print(f"{'pipeline':24} {'ms/step':>9} {'img/s':>8} {'fit x':>22} {'peak MB':>9}")
    for k, ms in s["step_ms"].items():
        r = s["fit_speedup_over"].get(k)
        ratio = f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})" if r else "1"
        mem = res.get("memory", {}).get(k, {}).get("added_mb", float("nan"))
        print(f"{k:24} {ms:9.1f} {s['images_per_s'][k]:8.0f} {ratio:>22} {mem:9.0f}")
    for key, a in res["augmentation"].items():
        print(f"augmentation {key} (ms, two views of 256):")
        for k, v in a["ms_two_views_of_256"].items():
            print(f"  {k:26} {v:8.1f}")
    if "compile" in s:
        print("compile:", json.dumps(s["compile"]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--aug-repeats", type=int, default=11)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/peers.json"))
    ap.add_argument("--quick", action="store_true", help="1 round, 3 steps, 3 repeats")
    ap.add_argument("--only", nargs="*", default=list(PIPELINES), choices=PIPELINES)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-of", choices=PIPELINES, help=argparse.SUPPRESS)
    ap.add_argument("--resummarise", action="store_true", help="recompute --out's summary")
    args = ap.parse_args(argv)
    if args.resummarise:
        res = json.loads(Path(args.out).read_text())
        res["summary"] = summarise(res["rounds"])
        Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
        print_table(res)
        return
    if args.memory_of:
        print(json.dumps(memory_of(args.memory_of, args.data, args.steps)))
        return
    if args.quick:
        args.rounds, args.steps, args.aug_repeats = 1, 3, 3
    # round 1 compiles into an empty inductor cache (cold); later rounds hit it (warm)
    cache = None
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        cache = tempfile.mkdtemp(prefix="peers-inductor-")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    try:
        run(args, argv)
    finally:
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)


def run(args: argparse.Namespace, argv: list[str] | None) -> None:
    import kornia
    import lightly
    import torchvision

    res: dict = {
        "command": "python benchmarks/peers.py " + " ".join(argv if argv else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "load_before": os.getloadavg(),
        "uptime_before": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "lightly": lightly.__version__,
            "kornia": kornia.__version__,
        },
        "settings": {"batch": BATCH, "rounds": args.rounds, "steps": args.steps},
    }
    images = load_images(args.data)
    rounds = []
    order = list(args.only)
    for r in range(args.rounds):
        rot = order[r % len(order) :] + order[: r % len(order)]
        got = {name: run_pipeline(name, images, args.data, args.steps) for name in rot}
        rounds.append({k: got[k] for k in order})
        ms = {k: round(1e3 * statistics.median(v["steps"]), 1) for k, v in rounds[-1].items()}
        print(f"round {r + 1}/{args.rounds}: ms/step {ms}", flush=True)
    res["rounds"] = rounds
    res["summary"] = summarise(rounds)
    res["load_before_augmentation"] = os.getloadavg()
    res["augmentation"] = augmentation_ms(args.aug_repeats)
    if not args.no_memory:
        res["load_before_memory"] = os.getloadavg()
        res["memory"] = {}
        for name in args.only:
            cmd = [sys.executable, __file__, "--memory-of", name, "--data", args.data]
            cmd += ["--steps", str(min(args.steps, 5))]
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
            res["memory"][name] = (
                json.loads(last) if last.startswith("{") else {"error": out.stderr[-500:]}
            )
    res["load_after"] = os.getloadavg()
    res["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print_table(res)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
