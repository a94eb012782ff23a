"""The ``bayesncl`` command. Subcommands are a registry (name -> module, function, summary),
imported only when run, so ``bayesncl --help`` starts fast."""

from __future__ import annotations

import argparse
import importlib
import sys

from bayesncl._argv import dashes_to_underscores
from bayesncl._output import set_verbosity

#: name -> (module, function taking argv, one-line summary)
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "fit": ("bayesncl.train.fit", "fit", "train a model (bayesncl fit --config digits/bayesncl)"),
    "evaluate": (
        "bayesncl.evaluate.run",
        "evaluate_main",
        "interpretability and accuracy of a checkpoint (bayesncl evaluate RUN_DIR/checkpoints/last.ckpt)",
    ),
    "reproduce": (
        "bayesncl.reproduce.grid",
        "reproduce_main",
        "the papers' tables on real data (bayesncl reproduce --preset quick)",
    ),
    "export": (
        "bayesncl.export.write",
        "export_main",
        "the encoder as safetensors + config.json + model card (bayesncl export CKPT OUT_DIR)",
    ),
    "encode": (
        "bayesncl.export.encode",
        "encode_main",
        "images to a features file (bayesncl encode MODEL --images DIR --out features.npz)",
    ),
    "browse": (
        "bayesncl.browse.site",
        "browse_main",
        "static offline HTML feature browser (bayesncl browse MODEL --out SITE_DIR)",
    ),
    "configs": ("bayesncl.cli", "configs_main", "list the shipped configs (names for --config)"),
}


def usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    rows = "\n".join(
        f"  {name:<{width}}  {summary}" for name, (_, _, summary) in SUBCOMMANDS.items()
    )
    return (
        f"usage: bayesncl [-q | -v] [--version] {{{','.join(SUBCOMMANDS)}}} [options]\n\n{rows}\n\n"
        "  -q  errors and results only     -v  also Lightning's own messages\n"
        "Run `bayesncl COMMAND --help` for the options of a command."
    )


def configs_main(argv: list[str]) -> None:
    """``bayesncl configs [FILTER]``: the shipped configs, one name per line."""
    from bayesncl.train.recipes import shipped_configs

    pattern = argv[0] if argv else ""
    for name in shipped_configs():
        if pattern in name:
            print(name)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("bayesncl")
    except PackageNotFoundError:  # running from a source tree
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    argv = dashes_to_underscores(sys.argv[1:] if argv is None else argv)
    level = 0
    while argv and argv[0] in ("-q", "--quiet", "-v", "--verbose"):
        level += -1 if argv.pop(0) in ("-q", "--quiet") else 1
    for flag, step in (("-q", -1), ("--quiet", -1), ("-v", 1), ("--verbose", 1)):
        while flag in argv[1:]:  # also after the command
            argv.remove(flag)
            level += step
    set_verbosity(level)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        print(f"bayesncl {version()}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        print(f"bayesncl: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module, function, _ = SUBCOMMANDS[command]
    try:
        getattr(importlib.import_module(module), function)(rest)
    except (ValueError, FileNotFoundError, argparse.ArgumentError) as err:
        # configuration and data problems: one clear line, no traceback
        print(f"bayesncl {command}: error: {err}", file=sys.stderr)
        return 2
    except FloatingPointError as err:
        # a diverged run: say what went non-finite and what to change
        print(f"bayesncl {command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
