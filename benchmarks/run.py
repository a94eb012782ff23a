"""Benchmarks: training-step cost of CL / NCL / BayesNCL against the backbone alone, the full
``fit`` step (data + augmentation + Lightning) against that floor, metric evaluation against a
per-dimension loop, and peak memory. Prints a table and writes JSON.

    python benchmarks/run.py [--out benchmarks/results.json] [--repeats 15]

Variants are timed interleaved (one step of each in turn, repeated), so machine noise hits all
of them alike; medians are reported, and ratios are taken within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from bayesncl.core.pipeline import NCLHead
from bayesncl.models.backbones import build_backbone

MODELS = {
    "convnet-28px-b256": {
        "backbone": ("convnet", 1, 16),
        "image": (1, 28, 28),
        "batch": 256,
        "proj": (512, 128),
    },
    "resnet18-cifar-32px-b64": {
        "backbone": ("resnet18", 3, 0),
        "image": (3, 32, 32),
        "batch": 64,
        "proj": (2048, 256),
    },
}
VARIANTS = ("backbone", "cl", "ncl", "bayesncl")


def build(model: str, variant: str):
    spec = MODELS[model]
    name, ch, width = spec["backbone"]
    torch.manual_seed(0)
    net, dim = build_backbone(name, "cifar", 2, ch, width or 32)
    net = net.to(memory_format=torch.channels_last)
    head = None if variant == "backbone" else NCLHead(dim, *spec["proj"], variant)
    params = list(net.parameters()) + (list(head.parameters()) if head else [])
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    x = torch.randn(2 * spec["batch"], *spec["image"]).contiguous(memory_format=torch.channels_last)
    idx = torch.arange(spec["batch"]).repeat(2)

    def step() -> None:
        h = net(x)
        loss = h.square().mean() if head is None else head.loss(head(h), idx).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def time_steps(model: str, repeats: int, variants: tuple[str, ...] = VARIANTS) -> dict[str, float]:
    steps = {v: build(model, v) for v in variants}
    for s in steps.values():  # warm-up
        s()
        s()
    times: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(repeats):
        for v, s in steps.items():
            t = time.perf_counter()
            s()
            times[v].append(time.perf_counter() - t)
    return {v: statistics.median(t) for v, t in times.items()}


class StepParts:
    """Lightning callback: wall time of every training step, split at the loop's hooks.

    ``data``: end of the previous step -> start of this one (loading, transfer, batch
    augmentation in ``on_after_batch_transfer``, loop bookkeeping); ``forward``: start ->
    ``on_before_backward`` (model, loss, logging); ``backward``; ``optimizer``: after backward ->
    end of the step (LARS, scheduler, Lightning's step bookkeeping).
    """

    PARTS = ("data", "forward", "backward", "optimizer")

    def __init__(self, floor_step=None) -> None:
        """``floor_step``: a callable run (and timed) after every training step, outside the
        step's own spans: the backbone-only floor, interleaved so both see the same machine."""
        import lightning.pytorch as pl

        parts = self
        self.floor_step = floor_step
        self.floor: list[float] = []

        class _Hooks(pl.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
                parts._mark("start")

            def on_before_backward(self, trainer, pl_module, loss) -> None:
                parts._mark("before_backward")

            def on_after_backward(self, trainer, pl_module) -> None:
                parts._mark("after_backward")

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                parts._mark("end")

        self.callback = _Hooks()
        self.marks: list[dict[str, float]] = []
        self._current: dict[str, float] = {}
        self._last_end: float | None = None

    def _mark(self, name: str) -> None:
        now = time.perf_counter()
        if name == "start":
            self._current = {"prev_end": self._last_end or now, "start": now}
        else:
            self._current[name] = now
        if name == "end":
            self.marks.append(self._current)
            if self.floor_step is not None:
                t = time.perf_counter()
                self.floor_step()
                now = time.perf_counter()
                self.floor.append(now - t)
            self._last_end = now

    def medians(self, skip: int) -> dict[str, float]:
        """Median seconds of each part and of the whole step (end to end), after ``skip`` steps."""
        m = self.marks[skip:]
        spans = {
            "data": [x["start"] - x["prev_end"] for x in m],
            "forward": [x["before_backward"] - x["start"] for x in m],
            "backward": [x["after_backward"] - x["before_backward"] for x in m],
            "optimizer": [x["end"] - x["after_backward"] for x in m],
            "step": [x["end"] - x["prev_end"] for x in m],
        }
        out = {k: statistics.median(v) for k, v in spans.items()}
        if self.floor:
            out["floor"] = statistics.median(self.floor[skip:])
        return out


def fit_step_seconds(repeats: int) -> dict[str, float]:
    """Median seconds per steady-state training step of a real ``bayesncl fit`` with the
    Fashion-MNIST BayesNCL config, of its parts (:class:`StepParts`), and of the backbone-only
    floor step run between them. Needs the data (``apt-get install dataset-fashion-mnist``)."""
    import tempfile

    import bayesncl.train.fit as fit_mod

    parts = StepParts(floor_step=build("convnet-28px-b256", "backbone"))
    with tempfile.TemporaryDirectory() as tmp:
        fit_mod.fit(
            [
                "--config", "configs/fashion-mnist/bayesncl.yaml", "--run_dir", tmp,
                "--trainer.max_steps", str(repeats + 5), "--trainer.limit_val_batches", "0",
                "--trainer.enable_progress_bar", "false",
            ],
            callbacks=[parts.callback],
        )  # fmt: skip
    return parts.medians(skip=5)


def augmentation_seconds(batch: int = 256, repeats: int = 5) -> dict[str, float]:
    """Two views of a batch of 28x28 grayscale images: per-image torchvision transforms (in the
    main process) against the batched augmentation, same settings."""
    import numpy as np

    from bayesncl.data.augment import GRAYSCALE_AUGMENT, view_transform
    from bayesncl.data.batch_augment import BatchAugment
    from bayesncl.data.datasets import TensorImages
    from bayesncl.data.views import MultiViewDataset

    rng = np.random.default_rng(0)
    base = TensorImages(rng.integers(0, 256, (batch, 28, 28)), np.zeros(batch))
    per_image = MultiViewDataset(base, view_transform(GRAYSCALE_AUGMENT, 28, (0.286,), (0.353,)), 2)
    batched = BatchAugment(GRAYSCALE_AUGMENT, 28, (0.286,), (0.353,))
    images = base.images
    t_img, t_batch = [], []
    for r in range(repeats):
        t = time.perf_counter()
        [per_image[(r, i)] for i in range(batch)]
        t_img.append(time.perf_counter() - t)
        g = torch.Generator().manual_seed(r)
        t = time.perf_counter()
        batched.views(images, g, 2)  # what `bayesncl fit` calls
        t_batch.append(time.perf_counter() - t)
    return {"per_image_s": statistics.median(t_img), "batched_s": statistics.median(t_batch)}


def _median_seconds(fn, repeats: int = 3) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def metric_seconds(n: int = 10_000, d: int = 2048, classes: int = 10) -> dict[str, float]:
    from bayesncl.metrics.interpretability import class_tables
    from bayesncl.metrics.reference import loop_class_consistency, loop_semantic_entropy
    from bayesncl.metrics.streaming import interpretability_report

    g = torch.Generator().manual_seed(0)
    f = torch.relu(torch.randn(n, d, generator=g) - 1.3)  # about 10% active, like NCL features
    y = torch.randint(0, classes, (n,), generator=g)

    def three_matmuls() -> None:  # the tables as three full n x d temporaries (the first version)
        a = f.abs()
        onehot = torch.nn.functional.one_hot(y, classes).float()
        norm = torch.linalg.vector_norm(f, dim=1, keepdim=True).clamp_min(1e-12)
        [(x.T @ onehot) for x in ((a > 1e-5 * norm).float(), a, (a > 1e-5).float())]

    def loop() -> None:
        loop_class_consistency(f, y)
        for v in ("sum", "mean", "frequency"):
            loop_semantic_entropy(f, y, v)

    from bayesncl.metrics.interpretability import (
        _eigenvalues,
        effective_rank_from_gram,
        gram_matrix,
    )

    gram = f.T @ f

    def rank_errors(x: torch.Tensor) -> tuple[float, float]:
        """Effective rank from the float32 Gram (float32 and float64 eigenvalues) minus the
        one from float64 singular values of F."""
        s = torch.linalg.svdvals(x.double())
        p = s / s.sum()
        exact = float(-(p * p.clamp_min(1e-300).log()).sum())
        g32 = gram_matrix(x)
        return tuple(float(effective_rank_from_gram(g32, dtype=t)) - exact
                     for t in (torch.float32, torch.float64))  # fmt: skip

    full32, full64 = rank_errors(f)
    wide32, wide64 = rank_errors(f[:1000])
    return {
        "density": float((f != 0).float().mean()),
        "effective_rank_f64": float(effective_rank_from_gram(gram, dtype=torch.float64)),
        "effective_rank_error_f32_eig": full32,
        "effective_rank_error_f64_eig": full64,
        "effective_rank_error_f32_eig_n1000": wide32,
        "effective_rank_error_f64_eig_n1000": wide64,
        "metrics_class_s": _median_seconds(
            lambda: interpretability_report(f, y, classes, spectral=False)
        ),
        "metrics_all_s": _median_seconds(lambda: interpretability_report(f, y, classes)),
        "class_tables_one_pass_s": _median_seconds(lambda: class_tables(f, y, classes)),
        "class_tables_three_matmuls_s": _median_seconds(three_matmuls),
        "gram_dense_s": _median_seconds(lambda: f.T @ f),
        "gram_s": _median_seconds(lambda: gram_matrix(f)),
        "eigvalsh_f64_s": _median_seconds(lambda: _eigenvalues(gram.double())),
        "eigvalsh_f32_s": _median_seconds(lambda: _eigenvalues(gram)),
        "loop_class_s": _median_seconds(loop, repeats=1),
    }


def head_seconds(model: str, repeats: int = 200) -> dict[str, float]:
    """The head alone (projector, non-negativity, gate, NT-Xent + KL; forward, backward, SGD)
    on fixed backbone features of ``model``'s width and batch: many short interleaved steps, so
    the gate's own cost shows without the backbone's noise."""
    spec = MODELS[model]
    name, ch, width = spec["backbone"]
    _, dim = build_backbone(name, "cifar", 2, ch, width or 32)
    torch.manual_seed(0)
    h = torch.randn(2 * spec["batch"], dim)
    idx = torch.arange(spec["batch"]).repeat(2)
    steps = {}
    for method in ("cl", "ncl", "bayesncl"):
        head = NCLHead(dim, *spec["proj"], method)
        opt = torch.optim.SGD(head.parameters(), lr=0.01)

        def step(head=head, opt=opt) -> None:
            loss = head.loss(head(h.clone().requires_grad_()), idx).total
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        steps[method] = step
    times: dict[str, list[float]] = {m: [] for m in steps}
    for s in steps.values():
        s()
    for _ in range(repeats):
        for m, s in steps.items():
            t = time.perf_counter()
            s()
            times[m].append(time.perf_counter() - t)
    return {f"{m}_head_s": statistics.median(t) for m, t in times.items()}


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_memory_mb(model: str, variant: str) -> float:
    """Peak resident memory added by building and running 3 steps of one variant, in a fresh
    process (peak RSS minus the RSS after imports; Linux /proc)."""
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); from run import build, _rss_mb; "
        f"before = _rss_mb('VmRSS'); s = build({model!r}, {variant!r}); [s() for _ in range(3)]; "
        "print(_rss_mb('VmHWM') - before)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="benchmarks/results.json")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--skip-fit", action="store_true", help="skip the full fit-step measurement")
    ap.add_argument(
        "--only", choices=("steps", "fit", "augmentation", "metrics"), help="run one section only"
    )
    args = ap.parse_args()
    report = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "python": platform.python_version()},
        "models": {},
    }  # fmt: skip

    def want(section: str) -> bool:
        return args.only in (None, section)

    for model in MODELS if want("steps") else ():
        t = time_steps(model, args.repeats)
        batch = MODELS[model]["batch"]
        entry = {f"{v}_s": t[v] for v in VARIANTS}
        entry.update({f"{v}_img_per_s": 2 * batch / t[v] for v in VARIANTS})
        entry["bayesncl_over_ncl"] = t["bayesncl"] / t["ncl"]
        entry["ncl_over_cl"] = t["ncl"] / t["cl"]
        entry["bayesncl_over_backbone"] = t["bayesncl"] / t["backbone"]
        entry.update({f"{v}_peak_mb": peak_memory_mb(model, v) for v in VARIANTS})
        heads = head_seconds(model)
        entry.update(heads)
        entry["gate_s"] = heads["bayesncl_head_s"] - heads["ncl_head_s"]
        entry["gate_over_ncl_step"] = entry["gate_s"] / t["ncl"]
        report["models"][model] = entry
    if want("fit") and not args.skip_fit:
        # floor measured right before and after the fit steps, so both see the same machine state
        # the floor: a backbone-only step (same batch shape) after every fit step, so machine
        # drift hits both alike (it moved the floor by up to 2x between minutes here)
        fit_parts = fit_step_seconds(3 * args.repeats)
        fit_s, floor = fit_parts["step"], fit_parts["floor"]
        report["fit_step"] = {
            "fit_step_s": fit_s, "backbone_s": floor, "fit_over_backbone": fit_s / floor,
            "parts_s": {k: v for k, v in fit_parts.items() if k not in ("step", "floor")},
        }  # fmt: skip
    if want("augmentation"):
        report["augmentation"] = augmentation_seconds()
    if want("metrics"):
        report["metrics"] = metric_seconds()
        report["metrics"]["loop_over_vectorised"] = (
            report["metrics"]["loop_class_s"] / report["metrics"]["metrics_class_s"]
        )
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"machine: {report['machine']}")
    print(f"{'model':26} {'variant':9} {'ms/step':>9} {'img/s':>8} {'peak MB':>8}")
    for model, e in report["models"].items():
        for v in VARIANTS:
            print(
                f"{model:26} {v:9} {e[v + '_s'] * 1000:9.1f} {e[v + '_img_per_s']:8.0f} {e[v + '_peak_mb']:8.0f}"
            )
        print(
            f"{model:26} BayesNCL/NCL {e['bayesncl_over_ncl']:.3f}  NCL/CL {e['ncl_over_cl']:.3f}  BayesNCL/backbone {e['bayesncl_over_backbone']:.3f}"
        )
        print(
            f"{'':26} head alone: CL {e['cl_head_s'] * 1000:.2f} ms, NCL {e['ncl_head_s'] * 1000:.2f} ms, "
            f"BayesNCL {e['bayesncl_head_s'] * 1000:.2f} ms; the gate {e['gate_s'] * 1000:.2f} ms "
            f"= {100 * e['gate_over_ncl_step']:.1f}% of the NCL step"
        )
    if "fit_step" in report:
        f = report["fit_step"]
        print(
            f"fit step (fashion-mnist bayesncl, data+aug+Lightning): {f['fit_step_s'] * 1000:.1f} ms; backbone floor (interleaved) {f['backbone_s'] * 1000:.1f} ms; ratio {f['fit_over_backbone']:.3f}"
        )
        print(
            "  parts (medians): "
            + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in f["parts_s"].items())
        )
    if a := report.get("augmentation"):
        print(
            f"two views of 256 28x28 images: per-image transforms {a['per_image_s'] * 1000:.0f} ms, batched {a['batched_s'] * 1000:.1f} ms"
        )
    if m := report.get("metrics"):
        print_metrics(m)
    print(f"wrote {args.out}")


def print_metrics(m: dict[str, float]) -> None:
    print(
        f"metrics on 10000x2048: class metrics {m['metrics_class_s']:.3f} s, all (with Gram/spectrum) {m['metrics_all_s']:.3f} s; per-dimension loop {m['loop_class_s']:.2f} s ({m['loop_over_vectorised']:.0f}x)"
    )
    print(
        f"  parts: class tables one pass {m['class_tables_one_pass_s']:.3f} s (three n x d matmuls {m['class_tables_three_matmuls_s']:.3f} s); "
        f"Gram F^T F {m['gram_s']:.3f} s (dense matmul {m['gram_dense_s']:.3f} s; density {m['density']:.3f}); "
        f"eigenvalues 2048 float32 {m['eigvalsh_f32_s']:.3f} s, float64 {m['eigvalsh_f64_s']:.3f} s "
    )
    print(
        f"  effective rank {m['effective_rank_f64']:.4f}; error against float64 singular values of F: "
        f"float32 eigenvalues {m['effective_rank_error_f32_eig']:+.1e} (n = 1000 < d: "
        f"{m['effective_rank_error_f32_eig_n1000']:+.1e}), float64 eigenvalues "
        f"{m['effective_rank_error_f64_eig']:+.1e} ({m['effective_rank_error_f64_eig_n1000']:+.1e})"
    )


if __name__ == "__main__":
    main()
