"""A picture of the feature browser for the README (needs a Chromium, e.g. Debian's).

    python -m bayesncl.browse.screenshot MODEL [--dataset NAME ...] [--dim K] \\
        [--out docs/figures/browser.png]

Builds the site of MODEL (export directory, checkpoint or run directory) in a temporary folder
(or uses ``--site DIR``) and screenshots one dimension's page, 1200 x 900: ``--dim`` or the most
class-consistent of the dimensions active on at least 5% of the images.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bayesncl.browse.chromium import page_url, screenshot
from bayesncl.browse.site import build_site
from bayesncl.export.encode import add_source_arguments, source_from_args
from bayesncl.export.model import load


def pick_dimension(site: Path, min_freq: float = 0.05) -> int:
    """The most class-consistent dimension active on at least ``min_freq`` of the images."""
    text = (site / "data.js").read_text()
    data = json.loads(text[text.index("=") + 1 :].rstrip().rstrip(";"))
    dims = [d for d in data["dims"] if (d["freq"] or 0) >= min_freq] or data["dims"]
    return max(dims, key=lambda d: ((d.get("cons") or 0), d["freq"] or 0))["k"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bayesncl.browse.screenshot", description=__doc__
    )
    parser.add_argument("model", nargs="?", help="export directory, checkpoint or run directory")
    parser.add_argument("--site", help="an existing site directory instead of MODEL")
    parser.add_argument("--out", default="docs/figures/browser.png")
    parser.add_argument("--dim", type=int, help="dimension to show (default: picked)")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=900)
    add_source_arguments(parser, required=False)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="bayesncl-site-") as tmp:
        if args.site:
            site = Path(args.site)
        elif args.model:
            model = load(args.model, args.device)
            source = source_from_args(model, args)
            site = build_site(model, source, tmp, args.batch_size, args.num_workers).parent
        else:
            parser.error("give MODEL or --site")
        dim = pick_dimension(site) if args.dim is None else args.dim
        out = screenshot(
            page_url(site / "index.html", f"dim={dim}"), args.out, (args.width, args.height)
        )
    print(f"wrote {out} (dimension {dim})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
