"""The papers' knowledge as data: grid rows, tables, published numbers and the claims to check.

Everything ``bayesncl reproduce`` (:mod:`bayesncl.reproduce.grid`) runs and everything its report
(:mod:`bayesncl.reproduce.report`) prints about the BayesNCL paper lives here, once:

* :class:`Row`: one configuration of the grid, with *structured* parameters (a method preset,
  nested method changes applied with ``MethodConfig.updated``, changes to ``model.optim``) and a
  stable ``key`` (its run folder and its key in results.json). The ``label`` is for display only;
  nothing is ever parsed out of it.
* :data:`TABLES`: each table as ``(metric key, label, scale, digits)`` columns.
* :data:`SENSITIVITY`, :data:`TUNE`: how the sensitivity grid is laid out and tuned.
* :data:`PAPER_TABLES`: the numbers the BayesNCL paper publishes, beside ours.
* :data:`CLAIMS`: the paper's claims, as "row a above/below row b on a metric of a table".
* :data:`GRIDS`: the grid presets (quick, cpu, cifar10, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from bayesncl.core.config import MethodConfig
from bayesncl.train.recipes import recipe

# --- datasets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """How the report names a dataset, and whether its test classes are balanced (then chance
    consistency is 1 / classes)."""

    label: str
    short: str
    balanced: bool = True


DATASET_INFO: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo("Fashion-MNIST", "F-MNIST"),
    "cifar10": DatasetInfo("CIFAR-10", "CIFAR-10"),
    "cifar100": DatasetInfo("CIFAR-100", "CIFAR-100"),
    "imagenet100": DatasetInfo("ImageNet-100", "IN-100"),
    "digits": DatasetInfo("digits (8x8)", "digits", balanced=False),
    "scenes": DatasetInfo("Fashion-MNIST on textured backgrounds (scenes)", "scenes"),
    # the mm-cpu grid's recipe (its M2 rows switch data.dataset to the captions)
    "fashion-mnist-edges": DatasetInfo(
        "Fashion-MNIST pairs (M1: edge maps; the M2 rows: captions)", "F-MNIST pairs"
    ),
}


def dataset_record(name: str) -> dict[str, Any]:
    """results.json's ``dataset``: name, label, short label, classes, balanced."""
    from bayesncl.data import DATASETS

    info = DATASET_INFO.get(name, DatasetInfo(name, name, balanced=False))
    spec = DATASETS.get(name)
    return {
        "name": name,
        "label": info.label,
        "short": info.short,
        "num_classes": spec.num_classes if spec is not None else None,
        "balanced": info.balanced,
    }


#: the datasets of the paper's columns, with their classes (all balanced)
PAPER_DATASETS: dict[str, int] = {"CIFAR-10": 10, "CIFAR-100": 100, "ImageNet-100": 100}


# --- rows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One configuration of the grid (one row of a table), run once per seed.

    key: stable identifier: the run folder OUT/runs/<key>/ and the key in results.json.
    label: the name shown in tables (display only).
    preset: the method preset (``bayesncl.core.presets.PRESETS``) on the dataset's recipe.
    method: nested method changes, applied with ``MethodConfig.updated`` (``{"gate":
        {"prior": 0.5}}``).
    optim: changes to ``model.optim`` (``{"gate_lr": 1.0}``).
    """

    key: str
    label: str
    preset: str
    method: dict[str, Any] = field(default_factory=dict)
    optim: dict[str, Any] = field(default_factory=dict)
    tables: tuple[str, ...] = ()
    max_seeds: int | None = None  # run at most this many seeds of the row (None: all)
    first_seed: int = 0  # seeds first_seed, first_seed + 1, ...
    init_from: str | None = None  # fine-tuned from this row's checkpoint of the same seed
    data: dict[str, Any] = field(default_factory=dict)  # changes to the data section
    evaluate: dict[str, Any] = field(default_factory=dict)  # evaluation options of this row
    model: dict[str, Any] = field(default_factory=dict)  # changes to model settings (not method)
    #: with ``init_from``: the dataset's fine-tuning schedule (``recipes.FINETUNE``) instead of
    #: its supervised one (ncl-cpu keeps the latter, as its published runs were made)
    finetune: bool = False

    def seeds(self, n_seeds: int) -> range:
        n = min(n_seeds, self.max_seeds or n_seeds)
        return range(self.first_seed, self.first_seed + n)

    def params(self) -> dict[str, Any]:
        """The row's parameters as results.json stores them."""
        return (
            {
                "label": self.label,
                "preset": self.preset,
                "method": self.method,
                "optim": self.optim,
                "tables": list(self.tables),
                "init_from": self.init_from,
                "data": self.data,
            }
            | ({"finetune": True} if self.finetune else {})
            | ({"evaluate": self.evaluate} if self.evaluate else {})
            | ({"model": self.model} if self.model else {})
        )


def _g(x: float) -> str:
    return f"{x:g}"


CORE_ROWS = (
    Row("cl", "CL", "cl", tables=("main", "downstream")),
    Row("ncl", "NCL", "ncl", tables=("main", "downstream", "overhead")),
    Row("ncl-topk", "NCL+TopK", "ncl-topk", tables=("main",)),
    Row("bayesncl-gs", "BayesNCL (GS)", "bayesncl-gs", tables=("main",)),
    Row(
        "bayesncl",
        "BayesNCL (STE)",
        "bayesncl",
        tables=("main", "downstream", "ablation", "overhead", "sensitivity"),
    ),
)
ABLATION_ROWS = (
    Row("bayesncl-soft", "Soft gating", "bayesncl-soft", tables=("ablation",)),
    Row("bayesncl-nodetach", "Remove detachment", "bayesncl-nodetach", tables=("ablation",)),
    Row("bayesncl-head1", "1-layer head", "bayesncl-head1", tables=("ablation",)),
    Row("bayesncl-head3", "3-layer head", "bayesncl-head3", tables=("ablation",)),
)
#: the NCL paper's other systems (ncl-extras-spec §2-3): contrastive objectives with and without
#: non-negativity, and supervised CE vs NCE from scratch and fine-tuned from NCL (Table 4)
#: the NCL paper's evaluations of CL against NCL (ncl-extras-spec §5, §7, §8): out-of-distribution
#: sets, feature selection and SEPIN, run on the CL and NCL rows only (they cost minutes per run)
#: (SEPIN on 500 images with 50 critic steps: a dense CL model has 128 live dimensions, each
#: a critic of its own; at 1,000 images and 100 steps that is about 15 minutes per CL run here)
NCL_EVALUATIONS: dict[str, Any] = {
    "ood": True,
    "selection": True,
    "sepin": True,
    "sepin_samples": 500,
    "sepin_steps": 50,
}
_NCL_CL_TABLES = ("ncl-ssl", "ncl-ood", "ncl-selection", "ncl-sepin", "ncl-fig3")
NCL_SSL_ROWS = (
    Row("cl", "CL", "cl", tables=_NCL_CL_TABLES, evaluate=NCL_EVALUATIONS),
    Row("ncl", "NCL", "ncl", tables=_NCL_CL_TABLES, evaluate=NCL_EVALUATIONS),
    Row("scl", "SCL", "scl", tables=("ncl-ssl",)),
    Row("nscl", "Non-negative SCL", "nscl", tables=("ncl-ssl",)),
)
#: the NCL paper's activation ablation (ncl-extras-spec §1, talk): NCL with each map of
#: ``NONNEG_MAPS`` in place of its reparameterised ReLU; GELU and leaky ReLU are not non-negative
NCL_ACTIVATIONS: tuple[tuple[str, str], ...] = (
    ("relu", "ReLU"),
    ("sigmoid", "sigmoid"),
    ("softplus", "softplus"),
    ("exp", "exp"),
    ("leakyrelu", "leaky ReLU"),
    ("gelu", "GELU"),
)
NCL_ACTIVATION_ROWS = tuple(
    Row(
        f"ncl-act-{name}",
        f"NCL, {label}",
        "ncl",
        method={"nonneg": name},
        tables=("ncl-activation",),
    )
    for name, label in NCL_ACTIVATIONS
)
NCL_SUPERVISED_ROWS = tuple(
    Row(
        f"{name}{suffix}",
        f"{label}{note}",
        name,
        tables=("ncl-supervised", "ncl-finetune")
        if (name, src) == ("ce", "ncl")
        else ("ncl-supervised",),
        init_from=src,
    )
    for suffix, note, src in (("", "", None), ("-ft", " (fine-tuned from NCL)", "ncl"))
    for name, label in (
        ("ce", "CE"),
        ("nce", "NCE"),
        ("ce-mlp", "CE + MLP projector"),
        ("nce-mlp", "NCE + MLP projector"),
    )
)
#: the FT column of the NCL paper's in-distribution table: CE fine-tuning from CL (and from NCL)
NCL_SUPERVISED_ROWS = (
    *NCL_SUPERVISED_ROWS,
    Row("ce-ft-cl", "CE (fine-tuned from CL)", "ce", tables=("ncl-finetune",), init_from="cl"),
)
#: multi-modal NCL (issue 14, ncl-extras-spec §4): two towers on M1 (edge maps) and M2
#: (captions) of Fashion-MNIST; CLIP-style CL is the baseline without non-negativity
MM_SETTINGS: dict[str, tuple[str, str]] = {
    "m1": ("fmnist-edges", "M1: image and its edge map"),
    "m2": ("fmnist-captions", "M2: image and its caption"),
}
MM_METHOD_ROWS: tuple[tuple[str, str], ...] = (
    ("clip", "CLIP-style CL"),
    ("mmncl", "MMNCL"),
    ("mmbayesncl", "MMNCL + gate (BayesNCL)"),
)
MM_ROWS = tuple(
    Row(
        f"mm-{method}-{setting}",
        f"{label} ({setting.upper()})",
        method,
        tables=(f"mm-{setting}",),
        data={"dataset": dataset},
    )
    for setting, (dataset, _) in MM_SETTINGS.items()
    for method, label in MM_METHOD_ROWS
)
#: non-negative unit codes have cosine similarities in [0, 1], not [-1, 1]: at tau = 0.05 MMNCL's
#: logits span the range CLIP-style CL's do at the recipes' 0.1
MM_ROWS += tuple(
    Row(
        f"mm-mmncl-tau0.05-{setting}",
        f"MMNCL, tau 0.05 ({setting.upper()})",
        "mmncl",
        tables=(f"mm-{setting}",),
        data={"dataset": dataset},
        model={"temperature": 0.05},
    )
    for setting, (dataset, _) in MM_SETTINGS.items()
)
#: the shared-feature benchmark (issue 15): settings of bayesncl.data.scenes, by key
SCENES_SETTINGS: dict[str, tuple[str, str]] = {
    "pi20": ("scenes-pi20", "shared background in 20% of images, any class"),
    "pi50": ("scenes-pi50", "shared background in 50% of images, any class"),
    "pi80": ("scenes-pi80", "shared background in 80% of images, any class"),
    "group": ("scenes-group", "shared background in 80% of the tops (4 of 10 classes), never else"),
}
SCENES_METHODS: tuple[tuple[str, str], ...] = (
    ("cl", "CL"),
    ("ncl", "NCL"),
    ("ncl-topk", "NCL+TopK"),
    ("bayesncl", "BayesNCL (STE)"),
    ("bayesncl-gs", "BayesNCL (GS)"),
    ("ncl-ipw", "NCL, inverse-frequency similarity"),
    ("bayesncl-freq", "BayesNCL, frequency-aware gate"),
)
SCENES_ROWS = tuple(
    Row(
        f"{method}-{setting}",
        label,
        method,
        tables=(f"scenes-{setting}",),
        data={"dataset": dataset},
    )
    for setting, (dataset, _) in SCENES_SETTINGS.items()
    for method, label in SCENES_METHODS
)
#: the rho x lambda grid of the paper's sensitivity figure
SENSITIVITY_GRID = tuple((rho, lam) for rho in (0.2, 0.5, 0.8) for lam in (3e-5, 3e-4, 3e-3))
GATE_TEMPERATURES = (0.5, 2.0)  # around the default T = 1
GATE_LR_FACTORS = (0.1, 10.0)  # times the recipe's optim.gate_lr


def sensitivity_rows(
    dataset: str,
    grid: tuple[tuple[float, float], ...] = SENSITIVITY_GRID,
    temperatures: tuple[float, ...] = GATE_TEMPERATURES,
    gate_lr_factors: tuple[float, ...] = GATE_LR_FACTORS,
    max_seeds: int | None = None,
) -> tuple[Row, ...]:
    """BayesNCL around its defaults: the rho x lambda grid, then gate T and gate lr one at a time.

    The cell of the preset's own values is the ``bayesncl`` row (BayesNCL (STE)), not repeated.
    """
    base = recipe(dataset, "bayesncl")["model"]
    gate = base["method"]["gate"]
    rows = []
    for rho, lam in grid:
        if (rho, lam) == (gate["prior"], gate["kl_weight"]):
            continue
        rows.append(
            Row(
                f"bayesncl-rho{_g(rho)}-lambda{_g(lam)}",
                f"rho={rho} lambda={lam:g}",
                "bayesncl",
                {"gate": {"prior": rho, "kl_weight": lam}},
                tables=("sensitivity",),
                max_seeds=max_seeds,
            )
        )
    for t in temperatures:
        rows.append(
            Row(
                f"bayesncl-T{_g(t)}",
                f"gate T={t:g}",
                "bayesncl",
                {"gate": {"temperature": t}},
                tables=("sensitivity",),
                max_seeds=max_seeds,
            )
        )
    base_lr = base["optim"].get("gate_lr")
    for f in gate_lr_factors if base_lr else ():
        lr = round(base_lr * f, 10)
        rows.append(
            Row(
                f"bayesncl-gatelr{_g(lr)}",
                f"gate lr={lr:g}",
                "bayesncl",
                optim={"gate_lr": lr},
                tables=("sensitivity",),
                max_seeds=max_seeds,
            )
        )
    return tuple(rows)


# --- tables -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column: the metric key of evaluate's metrics, its label, scale and digits."""

    metric: str
    label: str
    scale: float = 1.0
    digits: int = 2


def format_cell(cell: dict[str, Any] | None, digits: int = 2) -> str:
    """A table cell as shown: ``mean ± std`` (std over seeds), ``mean`` for one seed, ``-``
    for none."""
    if not cell or cell.get("mean") is None:
        return "-"
    if cell.get("std") is None:
        return f"{cell['mean']:.{digits}f}"
    return f"{cell['mean']:.{digits}f} ± {cell['std']:.{digits}f}"


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    columns: tuple[Column, ...]

    def column(self, metric: str) -> Column:
        return next(c for c in self.columns if c.metric == metric)


_CONS = Column("consistency", "Cons.", 100, 2)
_LP1 = Column("linear_top1", "LP@1", 100, 2)
TABLES: dict[str, Table] = {
    t.key: t
    for t in (
        Table(
            "main",
            "Main results (interpretability)",
            (
                _CONS,
                Column("entropy_sum", "H_s", 1, 2),
                Column("activation_ratio", "Act.", 1, 2),
                Column("active_fraction", "1 - sparsity", 1, 3),
                Column("sparsity", "sparsity", 1, 3),
            ),
        ),
        Table(
            "downstream",
            "Downstream (frozen backbone features)",
            (_LP1, Column("linear_top5", "LP@5", 100, 2), Column("knn_top1", "kNN@1", 100, 2)),
        ),
        Table("ablation", "Ablation", (_CONS, _LP1)),
        Table(
            "overhead",
            "Overhead",
            (
                Column("fit_seconds", "train time (min)", 1 / 60, 2),
                Column("gmacs_pair", "GMACs (pair)", 1, 4),
                Column("step_seconds", "step (ms)", 1000, 1),
            ),
        ),
        Table("sensitivity", "Sensitivity (BayesNCL)", (_CONS, _LP1)),
        Table(
            "ncl-ssl",
            "NCL paper: contrastive objectives with and without non-negativity (Fig. 5)",
            (
                _LP1,
                _CONS,
                Column("sparsity", "sparsity", 1, 3),
                Column("entropy_sum", "H_s", 1, 2),
                Column("orthogonality", "mean abs. corr.", 1, 3),
            ),
        ),
        Table(
            "ncl-supervised",
            "NCL paper Table 4: supervised CE vs NCE",
            (
                Column("objective_top1", "test acc.", 100, 2),
                _LP1,
                _CONS,
                Column("sparsity", "sparsity", 1, 3),
            ),
        ),
        Table(
            "ncl-finetune",
            "NCL paper, in-distribution table, FT column: full fine-tuning with CE from CL and NCL",
            (Column("objective_top1", "FT acc.", 100, 2), _CONS),
        ),
        Table(
            "ncl-ood",
            "NCL paper, out-of-distribution table: frozen linear probe on shifted test sets "
            "(Fashion-MNIST-C, Sobel sketch, stylized-like; 1,000 test images each)",
            (
                Column("ood_clean_top1", "clean", 100, 2),
                Column("ood_corruption_top1", "Corruption", 100, 2),
                Column("ood_sketch_top1", "Sketch", 100, 2),
                Column("ood_stylized_top1", "Stylized-like", 100, 2),
                Column("ood_noise_top1", "noise", 100, 2),
                Column("ood_blur_top1", "blur", 100, 2),
                Column("ood_weather_top1", "weather", 100, 2),
                Column("ood_digital_top1", "digital", 100, 2),
            ),
        ),
        Table(
            "ncl-selection",
            "NCL paper Table 1: feature selection, K/4 dimensions kept",
            (
                Column("fs_all_lp", "LP all", 100, 2),
                Column("fs_random_lp", "LP random", 100, 2),
                Column("fs_preactivation_lp", "LP EA w/o ReLU", 100, 2),
                Column("fs_activation_lp", "LP EA w/ ReLU", 100, 2),
                Column("fs_activation_lp_drop", "LP drop EA w/ ReLU", 100, 2),
                Column("fs_all_p10", "P@10 all", 100, 2),
                Column("fs_random_p10", "P@10 random", 100, 2),
                Column("fs_activation_p10", "P@10 EA w/ ReLU", 100, 2),
                Column("fs_all_transfer", "transfer all", 100, 2),
                Column("fs_random_transfer", "transfer random", 100, 2),
                Column("fs_activation_transfer", "transfer EA w/ ReLU", 100, 2),
            ),
        ),
        Table(
            "ncl-sepin",
            "NCL paper: SEPIN@k (InfoNCE estimate; see sepin_estimator in each run)",
            (
                Column("sepin_at_1", "SEPIN@1", 1, 3),
                Column("sepin_at_10", "SEPIN@10", 1, 3),
                Column("sepin_at_100", "SEPIN@100", 1, 3),
                Column("sepin_at_all", "SEPIN@all", 1, 3),
            ),
        ),
        *(
            Table(
                f"mm-{setting}",
                f"Multi-modal NCL, {meaning} (retrieval on 1,000 test pairs; R@k in %)",
                (
                    Column("x_to_y/R@1", "img->pair R@1", 100, 2),
                    Column("y_to_x/R@1", "pair->img R@1", 100, 2),
                    Column("x_to_y/R@10", "img->pair R@10", 100, 2),
                    Column("zero_shot_top1", "zero-shot", 100, 2),
                    Column("x_consistency", "Cons. img", 100, 2),
                    Column("y_consistency", "Cons. pair", 100, 2),
                    Column("x_sparsity", "sparsity img", 1, 3),
                    Column("y_sparsity", "sparsity pair", 1, 3),
                    Column("x_linear_top1", "LP img", 100, 2),
                    Column("x_active_dims", "live dims img", 1, 0),
                    Column("agreement_share_both", "dims live in both", 1, 2),
                    Column("agreement_correlation", "agreement r", 1, 3),
                    Column("agreement_jaccard", "pair Jaccard", 1, 3),
                ),
            )
            for setting, (_, meaning) in MM_SETTINGS.items()
        ),
        Table(
            "ncl-activation",
            "NCL paper, activation ablation (talk; no published numbers): NCL with other maps "
            "(the NCL row uses the reparameterised ReLU)",
            (
                _LP1,
                _CONS,
                Column("sparsity", "sparsity", 1, 3),
                Column("orthogonality", "mean abs. corr.", 1, 3),
            ),
        ),
        Table(
            "ncl-fig3",
            "NCL paper Fig. 3: consistency variants and sparsity",
            (
                Column("consistency", "Cons. (BayesNCL paper's)", 100, 2),
                Column("consistency_topm", "Cons. top-200", 100, 2),
                Column("consistency_rectified", "Cons. rectified", 100, 2),
                Column("sparsity", "sparsity", 1, 3),
            ),
        ),
        *(
            Table(
                f"scenes-{setting}",
                f"Shared features ({dataset}): {meaning}",
                (
                    _CONS,
                    Column("nuisance_consistency", "nuisance Cons.", 100, 2),
                    Column("nuisance_dim_share", "nuisance dims", 1, 3),
                    _LP1,
                    Column("nuisance_linear_top1", "nuisance LP (h)", 100, 2),
                    Column("nuisance_linear_v_top1", "nuisance LP (v)", 100, 2),
                    Column("activation_ratio", "Act.", 1, 2),
                    Column("gate_open_nuisance_dims", "gate open: nuis. dims", 1, 2),
                    Column("gate_open_class_dims", "gate open: other dims", 1, 2),
                ),
            )
            for setting, (dataset, meaning) in SCENES_SETTINGS.items()
        ),
    )
}


@dataclass(frozen=True)
class Axis:
    """One setting of the sensitivity table: a dotted path into the row's resolved settings
    (``method.gate.prior``, ``optim.gate_lr``)."""

    path: str
    symbol: str
    meaning: str


@dataclass(frozen=True)
class Sensitivity:
    """The sensitivity table's layout: rows whose only changes are on ``axes`` (and the ``base``
    row itself) form a matrix over the axes' resolved values; the other rows are listed one at
    a time beside the base row."""

    table: str
    base: str  # the row key of the default cell
    axes: tuple[Axis, Axis]
    others: tuple[Axis, ...] = ()  # settings named in the default row's label


SENSITIVITY = Sensitivity(
    "sensitivity",
    "bayesncl",
    (
        Axis("method.gate.prior", "rho", "prior"),
        Axis("method.gate.kl_weight", "lambda", "KL weight"),
    ),
    (
        Axis("method.gate.temperature", "T", "gate temperature T"),
        Axis("optim.gate_lr", "gate lr", "gate learning rate"),
    ),
)


@dataclass(frozen=True)
class TuneRule:
    """How BayesNCL's setting is chosen from the sensitivity cells (:mod:`.tune`)."""

    table: str = "sensitivity"  # the candidate cells: the rows of this table
    reference: str = "ncl"  # the row whose mean guard metric sets the floor
    score: str = "consistency"  # highest wins
    guard: str = "linear_top1"  # may be at most max_drop below the reference's mean
    max_drop: float = 0.01
    tuned_key: str = "bayesncl-tuned"
    tuned_label: str = "BayesNCL (tuned)"
    tuned_tables: tuple[str, ...] = ("main", "downstream")


TUNE = TuneRule()


# --- the paper's numbers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Ours:
    """A column of our numbers: ``metric`` of our table; ``{dataset}`` in the label is ours.
    ``table`` / ``rows``: read it from another of our tables, and from other rows of it (side-by-
    side row key -> our row key), e.g. the FT column of CL from the row "CE fine-tuned from CL"."""

    metric: str
    label: str
    digits: int = 2
    table: str | None = None
    rows: dict[str, str] | None = None


@dataclass(frozen=True)
class Published:
    """A column of the paper's numbers, formatted with ``fmt``."""

    label: str
    fmt: str = "{:.2f}"


@dataclass(frozen=True)
class PaperTable:
    """A side-by-side table: ``rows`` maps a row key to the published values, in the order of
    the :class:`Published` columns."""

    table: str  # our table the Ours cells come from
    first: str  # header of the first column
    columns: tuple[Ours | Published, ...]
    rows: dict[str, tuple[float | str, ...]]
    title: str = ""  # a heading of its own (the NCL paper's tables)


# The BayesNCL paper (../shared/papers/000_...): main, downstream, overhead and ablation tables.
PAPER_TABLES: tuple[PaperTable, ...] = (
    PaperTable(
        "main",
        "method",
        (
            Ours("consistency", "Cons. (ours, {dataset})"),
            Published("CIFAR-10"),
            Published("CIFAR-100"),
            Published("IN-100"),
            Ours("entropy_sum", "H_s (ours)"),
            Published("H_s IN-100"),
            Ours("activation_ratio", "Act. (ours)"),
            Published("Act. IN-100"),
        ),
        {
            "cl": (10.00, 1.00, 1.00, 4.59, 1.00),
            "ncl": (53.82, 9.91, 14.93, 3.28, 0.48),
            "ncl-topk": (51.81, 12.32, 14.27, 3.35, 0.47),
            "bayesncl-gs": (53.68, 20.75, 11.66, 3.36, 0.13),
            "bayesncl": (56.50, 22.02, 36.14, 2.10, 0.50),
        },
    ),
    PaperTable(
        "downstream",
        "method",
        (
            Ours("linear_top1", "LP@1 (ours, {dataset})"),
            Published("CIFAR-10"),
            Published("CIFAR-100"),
            Published("IN-100"),
            Ours("linear_top5", "LP@5 (ours)"),
            Published("LP@5 IN-100"),
        ),
        {
            "cl": (87.88, 59.72, 68.31, 90.24),
            "ncl": (87.80, 60.67, 69.63, 91.23),
            "bayesncl": (88.02, 60.69, 70.44, 91.71),
        },
    ),
    PaperTable(
        "overhead",
        "method",
        (
            Ours("fit_seconds", "train min (ours)"),
            Ours("gmacs_pair", "GMACs (ours)", 4),
            Published("min CIFAR-100"),
            Published("FLOPs CIFAR-100", "{:.3f}G"),
            Published("min IN-100"),
            Published("FLOPs IN-100", "{:.3f}G"),
        ),
        {"ncl": (70.95, 1.416, 193.78, 3.731), "bayesncl": (75.12, 1.419, 218.53, 3.815)},
    ),
    PaperTable(
        "ablation",
        "configuration",
        (
            Ours("consistency", "Cons. (ours)"),
            Published("Cons. IN-100"),
            Ours("linear_top1", "LP@1 (ours)"),
            Published("LP@1 IN-100"),
        ),
        {
            "bayesncl": (36.14, 70.44),
            "bayesncl-soft": (33.15, 69.87),
            "bayesncl-nodetach": (22.29, 67.47),
            "bayesncl-head1": (40.85, 69.55),
            "bayesncl-head3": (26.37, 68.09),
        },
    ),
)


# --- the claims -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """ "Row ``a`` above (``higher``) or below row ``b`` on ``metric`` of ``table``"."""

    text: str
    table: str
    metric: str
    a: str
    b: str
    higher: bool = True


# The NCL paper (../shared/ncl-extras-spec.md §2.3, §5.1, §7.1, §8, §9): its published numbers
# (ImageNet-100 / CIFAR, ResNet-18, mean ± std as printed) beside ours on Fashion-MNIST.
_PM = "{}"  # printed as published, with its ± where given
NCL_PAPER_TABLES: tuple[PaperTable, ...] = (
    PaperTable(
        "ncl-ssl",
        "method",
        (
            Ours("linear_top1", "LP (ours, {dataset})"),
            Published("LP CIFAR-10", _PM),
            Published("LP CIFAR-100", _PM),
            Published("LP IN-100", _PM),
            Ours("objective_top1", "FT (ours)", table="ncl-finetune",
                 rows={"cl": "ce-ft-cl", "ncl": "ce-ft"}),
            Published("FT CIFAR-10", _PM),
            Published("FT CIFAR-100", _PM),
            Published("FT IN-100", _PM),
        ),
        {
            "cl": ("87.6 ± 0.2", "58.6 ± 0.2", "68.7 ± 0.3", "92.3 ± 0.1", "72.6 ± 0.1",
                   "77.3 ± 0.5"),
            "ncl": ("87.8 ± 0.2", "59.7 ± 0.4", "69.4 ± 0.3", "92.6 ± 0.1", "73.0 ± 0.2",
                    "79.2 ± 0.4"),
        },
        "In-distribution: linear probe and full fine-tuning (spec §5.1 (a))",
    ),
    PaperTable(
        "ncl-ood",
        "method",
        (
            Ours("ood_stylized_top1", "Stylized-like (ours)"),
            Published("Stylized IN-100", _PM),
            Ours("ood_corruption_top1", "Corruption (ours)"),
            Published("Corruption IN-C", _PM),
            Ours("ood_sketch_top1", "Sketch (ours)"),
            Published("Sketch IN-100", _PM),
        ),
        {
            "cl": ("19.6 ± 0.4", "34.5 ± 0.2", "27.1 ± 0.1"),
            "ncl": ("21.2 ± 0.2", "36.1 ± 0.3", "28.0 ± 0.2"),
        },
        "Out of distribution (spec §5.1 (b); ours: Fashion-MNIST-C, Sobel sketch, stylized-like)",
    ),
    PaperTable(
        "ncl-selection",
        "method",
        (
            Ours("fs_all_lp", "LP all (ours)"),
            Published("LP all IN-100", _PM),
            Ours("fs_random_lp", "LP random (ours)"),
            Published("LP random", _PM),
            Ours("fs_activation_lp", "LP EA (ours)"),
            Published("LP EA w/ ReLU", _PM),
            Ours("fs_all_p10", "P@10 all (ours)"),
            Published("mAP@10 all", _PM),
            Ours("fs_activation_p10", "P@10 EA (ours)"),
            Published("mAP@10 EA", _PM),
            Ours("fs_all_transfer", "transfer all (ours)"),
            Published("transfer all", _PM),
            Ours("fs_activation_transfer", "transfer EA (ours)"),
            Published("transfer EA", _PM),
        ),
        {
            "cl": ("66.8 ± 0.2", "66.2 ± 0.1", "66.5 ± 0.1", "10.9 ± 0.2", "10.2 ± 0.2",
                   "17.2 ± 0.1", "16.6 ± 0.3"),
            "ncl": ("68.9 ± 0.1", "64.3 ± 0.2", "68.9 ± 0.3", "14.2 ± 0.2", "14.2 ± 0.2",
                    "19.9 ± 0.1", "19.8 ± 0.1"),
        },
        "Table 1, feature selection: 512 of 2,048 dims (IN-100); ours 32 of 128, transfer to "
        "digits (the paper's transfer target is not known)",
    ),
    PaperTable(
        "ncl-sepin",
        "method",
        (
            Ours("sepin_at_1", "SEPIN@1 (ours)", 3),
            Published("SEPIN@1 IN-100", _PM),
            Ours("sepin_at_10", "SEPIN@10 (ours)", 3),
            Published("SEPIN@10", _PM),
            Ours("sepin_at_100", "SEPIN@100 (ours)", 3),
            Published("SEPIN@100", _PM),
            Ours("sepin_at_all", "SEPIN@all (ours)", 3),
            Published("SEPIN@all", _PM),
        ),
        {
            "cl": ("0.88 ± 0.08", "0.79 ± 0.02", "0.69 ± 0.01", "0.47 ± 0.01"),
            "ncl": ("7.43 ± 0.15", "5.93 ± 0.12", "3.87 ± 0.04", "0.48 ± 0.01"),
        },
        "SEPIN@k (the estimators differ: absolute values are not comparable, the order is)",
    ),
    PaperTable(
        "ncl-supervised",
        "loss",
        (
            Ours("objective_top1", "test acc. (ours)"),
            Published("IN-100", _PM),
        ),
        {
            "ce": ("76.1",), "nce": ("78.6",), "ce-mlp": ("78.4",), "nce-mlp": ("79.2",),
            "ce-ft": ("78.6",), "nce-ft": ("80.2",), "ce-mlp-ft": ("81.1",),
            "nce-mlp-ft": ("82.0",),
        },
        "Table 4, supervised CE vs NCE, from scratch and fine-tuned (no ± published)",
    ),
    PaperTable(
        "ncl-fig3",
        "method",
        (
            Ours("consistency_topm", "Cons. top-200 (ours)"),
            Ours("consistency_rectified", "Cons. rectified (ours)"),
            Published("Cons. C10 bar", _PM),
            Published("C100 bar", _PM),
            Published("IN-100 bar", _PM),
            Ours("sparsity", "sparsity (ours)", 3),
            Published("sparsity % C10 / C100 / IN-100", _PM),
        ),
        {
            "cl": ("≈14.8", "≈1.9", "≈1.6", "≈0 / 0 / 0"),
            "ncl": ("≈45.0", "≈11.9", "≈18.2", "≈93.5 / 92 / 98"),
        },
        "Fig. 3, consistency and sparsity (bars read off the figure, ±1; its consistency "
        "variant is not stated)",
    ),
)  # fmt: skip
#: the NCL paper's results with no row here, and why (shown under its side-by-side tables)
NCL_PAPER_ABSENT: tuple[str, ...] = (
    "Fig. 5 (SCL against non-negative SCL): the paper's numbers are not recovered (spec §9); "
    "the table above has ours only.",
    "Activation ablation: reported in a talk without numbers (spec §8 item 4); ours above.",
    "Fig. 4 (CE and NCE per epoch): read off a plot (spec §2.3), not tabulated; ours is "
    "docs/figures/ncl_fig4_curves.png.",
    "MMNCL: no published numbers (spec §4.1); ours are in the mm-cpu section.",
    "CIFAR-10/100 and ImageNet-100 runs of our own: they need GPUs and the datasets, which this "
    "machine does not have; `reproduce --preset ncl-cifar10` (`ncl-cifar100`, "
    "`ncl-imagenet100`) runs them with the official schedules (their configs are tested).",
)


CLAIMS: tuple[Claim, ...] = (
    Claim("Cons.: BayesNCL above NCL", "main", "consistency", "bayesncl", "ncl"),
    Claim("Cons.: NCL above CL", "main", "consistency", "ncl", "cl"),
    Claim("H_s: BayesNCL below NCL", "main", "entropy_sum", "bayesncl", "ncl", higher=False),
    Claim("Act.: BayesNCL not below NCL", "main", "activation_ratio", "bayesncl", "ncl"),
    Claim("LP@1: BayesNCL not below NCL", "downstream", "linear_top1", "bayesncl", "ncl"),
    Claim("LP@1: NCL not below CL", "downstream", "linear_top1", "ncl", "cl"),
    Claim("kNN@1: BayesNCL not below NCL", "downstream", "knn_top1", "bayesncl", "ncl"),
    Claim(
        "Ablation: hard (STE) gating above soft, Cons.",
        "ablation",
        "consistency",
        "bayesncl",
        "bayesncl-soft",
    ),
    Claim(
        "Ablation: detachment helps, Cons.",
        "ablation",
        "consistency",
        "bayesncl",
        "bayesncl-nodetach",
    ),
    Claim(
        "Ablation: 2-layer head above 3-layer, Cons.",
        "ablation",
        "consistency",
        "bayesncl",
        "bayesncl-head3",
    ),
)
#: the NCL paper's claims (checked when their rows ran)
NCL_CLAIMS: tuple[Claim, ...] = (
    Claim("Cons.: NCL above CL", "ncl-ssl", "consistency", "ncl", "cl"),
    Claim("LP@1: NCL not below CL", "ncl-ssl", "linear_top1", "ncl", "cl"),
    Claim("Cons.: non-negative SCL above SCL", "ncl-ssl", "consistency", "nscl", "scl"),
    Claim("sparsity: non-negative SCL above SCL", "ncl-ssl", "sparsity", "nscl", "scl"),
    Claim("LP@1: non-negative SCL not below SCL", "ncl-ssl", "linear_top1", "nscl", "scl"),
    Claim("test acc.: NCE above CE", "ncl-supervised", "objective_top1", "nce", "ce"),
    Claim(
        "test acc.: NCE + MLP above CE + MLP",
        "ncl-supervised",
        "objective_top1",
        "nce-mlp",
        "ce-mlp",
    ),
    Claim(
        "test acc.: NCE above CE, fine-tuned", "ncl-supervised", "objective_top1", "nce-ft", "ce-ft"
    ),
    Claim(
        "test acc.: fine-tuned NCE above NCE from scratch",
        "ncl-supervised",
        "objective_top1",
        "nce-ft",
        "nce",
    ),
    Claim("Cons.: NCE above CE", "ncl-supervised", "consistency", "nce", "ce"),
    Claim("FT: fine-tuned from NCL above from CL", "ncl-finetune", "objective_top1", "ce-ft",
          "ce-ft-cl"),
    Claim("OOD Corruption: NCL above CL", "ncl-ood", "ood_corruption_top1", "ncl", "cl"),
    Claim("OOD Sketch: NCL above CL", "ncl-ood", "ood_sketch_top1", "ncl", "cl"),
    Claim("OOD Stylized-like: NCL above CL", "ncl-ood", "ood_stylized_top1", "ncl", "cl"),
    Claim("Feature selection (EA w/ ReLU): NCL's LP drop below CL's", "ncl-selection",
          "fs_activation_lp_drop", "ncl", "cl", higher=False),
    Claim("Feature selection (EA w/ ReLU): NCL's LP above CL's", "ncl-selection",
          "fs_activation_lp", "ncl", "cl"),
    Claim("SEPIN@10: NCL above CL", "ncl-sepin", "sepin_at_10", "ncl", "cl"),
    Claim("Cons. top-200: NCL above CL", "ncl-fig3", "consistency_topm", "ncl", "cl"),
    *(c for setting in MM_SETTINGS for c in (
        Claim(f"{setting.upper()}: MMNCL image-tower Cons. above CLIP-style", f"mm-{setting}",
              "x_consistency", f"mm-mmncl-{setting}", f"mm-clip-{setting}"),
        Claim(f"{setting.upper()}: MMNCL partner-tower Cons. above CLIP-style", f"mm-{setting}",
              "y_consistency", f"mm-mmncl-{setting}", f"mm-clip-{setting}"),
        Claim(f"{setting.upper()}: MMNCL retrieval R@1 not below CLIP-style", f"mm-{setting}",
              "x_to_y/R@1", f"mm-mmncl-{setting}", f"mm-clip-{setting}"),
        Claim(f"{setting.upper()}: MMNCL dims agree across towers more than CLIP-style's",
              f"mm-{setting}", "agreement_correlation", f"mm-mmncl-{setting}",
              f"mm-clip-{setting}"),
    )),
    Claim("Activations: ReLU above GELU (not non-negative), Cons.", "ncl-activation",
          "consistency", "ncl-act-relu", "ncl-act-gelu"),
    Claim("Activations: ReLU above leaky ReLU (not non-negative), Cons.", "ncl-activation",
          "consistency", "ncl-act-relu", "ncl-act-leakyrelu"),
    Claim("Activations: ReLU above sigmoid, Cons.", "ncl-activation", "consistency",
          "ncl-act-relu", "ncl-act-sigmoid"),
    Claim("Activations: ReLU sparser than softplus", "ncl-activation", "sparsity",
          "ncl-act-relu", "ncl-act-softplus"),
)  # fmt: skip

#: the shared-feature benchmark's questions (issue 15), per setting
SCENES_CLAIMS: tuple[Claim, ...] = tuple(
    claim
    for setting in SCENES_SETTINGS
    for claim in (
        Claim(f"{setting}: Cons.: BayesNCL above NCL", f"scenes-{setting}", "consistency",
              f"bayesncl-{setting}", f"ncl-{setting}"),
        Claim(f"{setting}: nuisance dims: BayesNCL below NCL", f"scenes-{setting}",
              "nuisance_dim_share", f"bayesncl-{setting}", f"ncl-{setting}", higher=False),
        Claim(f"{setting}: nuisance LP (v): BayesNCL below NCL", f"scenes-{setting}",
              "nuisance_linear_v_top1", f"bayesncl-{setting}", f"ncl-{setting}", higher=False),
        Claim(f"{setting}: Cons.: frequency-aware gate above BayesNCL", f"scenes-{setting}",
              "consistency", f"bayesncl-freq-{setting}", f"bayesncl-{setting}"),
        Claim(f"{setting}: Cons.: inverse-frequency NCL above NCL", f"scenes-{setting}",
              "consistency", f"ncl-ipw-{setting}", f"ncl-{setting}"),
    )
)  # fmt: skip

#: checked when the tuned row was run
TUNED_CLAIMS: tuple[Claim, ...] = (
    Claim("Cons.: BayesNCL (tuned) above NCL", "main", "consistency", TUNE.tuned_key, "ncl"),
    Claim(
        "LP@1: BayesNCL (tuned) not below NCL", "downstream", "linear_top1", TUNE.tuned_key, "ncl"
    ),
    Claim(
        "Act.: BayesNCL (tuned) not below NCL", "main", "activation_ratio", TUNE.tuned_key, "ncl"
    ),
)

#: rows whose evaluation figures the report shows (their first seed)
FIGURE_ROWS: tuple[str, ...] = ("cl", "ncl", "bayesncl", TUNE.tuned_key)
FIGURES: dict[str, str] = {
    "top_activated.png": "top-activated test images of the most active dimensions",
    "gate_vs_frequency.png": "gate open rate against activation frequency",
}


# --- grid presets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """A grid: rows of one dataset, seeds per row, extra fit arguments and evaluation options."""

    name: str
    dataset: str
    rows: tuple[Row, ...]
    seeds: int
    fit_args: tuple[str, ...]  # extra `bayesncl fit` arguments (epochs, ...)
    eval_args: dict[str, Any]
    description: str = ""
    tune: bool = False  # after the grid, confirm the selected sensitivity cell (tune.select_tuned)


_CPU_FIT = ("--trainer.max_epochs", "3", "--trainer.enable_progress_bar", "false")
_CPU_EVAL = {"probe_epochs": 20, "train_limit": 20000}


def _official(dataset: str) -> Preset:
    return Preset(
        dataset,
        dataset,
        CORE_ROWS + ABLATION_ROWS + sensitivity_rows(dataset),
        3,
        (),
        {},
        f"{DATASET_INFO[dataset].label} with the official schedules (GPU)",
        tune=True,
    )


def _ncl_official(dataset: str) -> Preset:
    """The rows of ``ncl-cpu`` on a GPU dataset with the official schedules: the dataset's
    recipes (pretraining, supervised from scratch) and, for the rows fine-tuned from NCL, its
    fine-tuning schedule (CIFAR: LARS lr 0.4, ImageNet-100: SGD lr 1.0; 30 epochs)."""
    supervised = tuple(replace(r, finetune=bool(r.init_from)) for r in NCL_SUPERVISED_ROWS)
    return Preset(
        f"ncl-{dataset}",
        dataset,
        NCL_SSL_ROWS + supervised + NCL_ACTIVATION_ROWS,
        3,
        (),
        {"ood_table": "imagenet"} if dataset == "imagenet100" else {},
        f"{DATASET_INFO[dataset].label}, the NCL paper's other systems (the rows of ncl-cpu) "
        "with the official schedules (GPU): CL / NCL / SCL / non-negative SCL, supervised CE "
        "vs NCE from scratch and fine-tuned (30 epochs) from the NCL run of the same seed, NCL "
        "with other activations",
    )


GRIDS: dict[str, Preset] = {
    "quick": Preset(
        "quick",
        "fashion-mnist",
        (CORE_ROWS[0], CORE_ROWS[1], CORE_ROWS[4]),
        1,
        _CPU_FIT,
        _CPU_EVAL,
        description="Fashion-MNIST, CL / NCL / BayesNCL, 1 seed, 3 epochs (about 10 minutes on "
        "2 CPU cores)",
    ),
    "cpu": Preset(
        "cpu",
        "fashion-mnist",
        CORE_ROWS + ABLATION_ROWS + sensitivity_rows("fashion-mnist", max_seeds=1),
        3,
        _CPU_FIT,
        _CPU_EVAL,
        "Fashion-MNIST, every table, 3 epochs per run; 3 seeds per row, 1 seed per "
        "sensitivity cell other than the default (the BayesNCL row)",
        tune=True,
    ),
    "ncl-cpu": Preset(
        "ncl-cpu",
        "fashion-mnist",
        NCL_SSL_ROWS + NCL_SUPERVISED_ROWS + NCL_ACTIVATION_ROWS,
        3,
        _CPU_FIT,
        _CPU_EVAL,
        "Fashion-MNIST, the NCL paper's other systems: CL / NCL / SCL / non-negative SCL, "
        "supervised CE vs NCE (with and without projector, from scratch and fine-tuned from "
        "the NCL run of the same seed), and NCL with other activations, 3 epochs per run, "
        "3 seeds",
    ),
    "mm-cpu": Preset(
        "mm-cpu",
        "fashion-mnist-edges",
        MM_ROWS,
        3,
        _CPU_FIT,
        {"probe_epochs": 20, "train_limit": 20000},
        "Fashion-MNIST, multi-modal NCL: CLIP-style CL, MMNCL (at the recipe's tau 0.1 and at "
        "0.05) and MMNCL with the gate on M1 (edge maps) and M2 (captions), 3 epochs per run, "
        "3 seeds",
    ),
    "scenes": Preset(
        "scenes",
        "scenes",
        SCENES_ROWS,
        3,
        (
            "--trainer.max_epochs",
            "3",
            "--trainer.enable_progress_bar",
            "false",
            "--data.train_subset",
            "15000",
        ),
        {"probe_epochs": 20, "train_limit": 10000, "cost": False},
        "Fashion-MNIST garments on textured backgrounds (bayesncl.data.scenes): CL, NCL, "
        "NCL+TopK, BayesNCL (STE, GS) and the two frequency-aware methods, on a shared "
        "background of frequency 0.2 / 0.5 / 0.8 (any class) and one shared by the tops; "
        "3 epochs on 15,000 training images per run, 3 seeds",
    ),
    "cifar10": _official("cifar10"),
    "cifar100": _official("cifar100"),
    "imagenet100": _official("imagenet100"),
    "ncl-cifar10": _ncl_official("cifar10"),
    "ncl-cifar100": _ncl_official("cifar100"),
    "ncl-imagenet100": _ncl_official("imagenet100"),
}


def known_rows() -> dict[str, Row]:
    """Every row of every grid preset, by key (the tuned row excluded: its parameters are the
    selected cell's)."""
    out: dict[str, Row] = {}
    for p in GRIDS.values():
        for r in p.rows:
            out.setdefault(r.key, r)
    return out


def row_fit_config(dataset: str, row: Row) -> dict[str, Any]:
    """The recipe of ``row.preset`` on ``dataset`` with the row's changes: the method through
    ``MethodConfig.updated`` (``cfg["model"]["method"]`` stays the nested dict), the optimiser
    key by key; ``row.finetune``: the dataset's fine-tuning schedule (``recipes.FINETUNE``,
    ncl-extras-spec §8.2)."""
    cfg = recipe(dataset, row.preset, finetune=row.finetune)
    if row.method:
        method = MethodConfig.from_dict(cfg["model"]["method"]).updated(row.method)
        cfg["model"]["method"] = method.to_dict()
    if row.optim:
        cfg["model"]["optim"] = {**cfg["model"].get("optim", {}), **row.optim}
    if row.data:
        cfg["data"] = {**cfg["data"], **row.data}
    if row.model:
        cfg["model"] = {**cfg["model"], **row.model}
    return cfg


def resolved_params(dataset: str, row: Row) -> dict[str, Any]:
    """The row's full method and optimiser settings on ``dataset`` (results.json ``rows``)."""
    model = row_fit_config(dataset, row)["model"]
    return {"method": model["method"], "optim": model.get("optim", {})}
