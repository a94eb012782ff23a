"""Option spelling shared by ``cli`` and ``train.fit`` (a leaf module with no imports: fast CLI start)."""

from __future__ import annotations


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
