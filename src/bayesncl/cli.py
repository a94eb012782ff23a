"""The ``bayesncl`` command: ``fit``, ``evaluate``, ``reproduce``."""

from __future__ import annotations

import argparse
import sys

USAGE = """usage: bayesncl {fit,evaluate,reproduce} [options]

  fit        pretrain a model from a YAML config (bayesncl fit --config configs/<dataset>/<method>.yaml)
  evaluate   interpretability and accuracy of a checkpoint (bayesncl evaluate RUN_DIR/checkpoints/last.ckpt)
  reproduce  the papers' tables on real data (bayesncl reproduce --preset quick)

Run `bayesncl COMMAND --help` for the options of a command."""


def dashes_to_underscores(args: list[str]) -> list[str]:
    """``--save-features F`` -> ``--save_features F``: options may be spelled with dashes (the
    usual CLI style) or underscores (their names in the code and configs). Only the option name
    of a ``--`` token changes, never a value, also not one given as ``--name=value``."""
    out = []
    for a in args:
        if a.startswith("--") and len(a) > 2:
            name, eq, value = a[2:].partition("=")
            a = "--" + name.replace("-", "_") + eq + value
        out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = dashes_to_underscores(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    try:
        if command == "fit":
            from bayesncl.train.fit import fit

            fit(rest)
        elif command == "evaluate":
            from bayesncl.evaluate.run import evaluate_main

            evaluate_main(rest)
        elif command == "reproduce":
            from bayesncl.reproduce.grid import reproduce_main

            reproduce_main(rest)
        else:
            print(f"bayesncl: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
            return 2
    except (ValueError, FileNotFoundError, argparse.ArgumentError) as err:
        # configuration and data problems: one clear line, no traceback
        print(f"bayesncl {command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
