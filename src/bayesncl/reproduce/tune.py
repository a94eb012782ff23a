"""Choosing BayesNCL's setting from the sensitivity cells, by a rule fixed before the runs."""

from __future__ import annotations

import math
import statistics
from typing import Any

from bayesncl.reproduce.paper import TUNE, Preset, Row, TuneRule


def select_tuned(
    preset: Preset, results: dict[str, list[dict[str, Any]]], rule: TuneRule = TUNE
) -> tuple[Row | None, dict[str, Any]]:
    """Pick BayesNCL's setting from the sensitivity grid (``results``: runs by row key).

    Every cell of ``rule.table`` (the default BayesNCL row included) is judged on its seed-0 run
    alone, so all cells stand on equal footing: among the cells whose ``rule.guard`` (linear
    probe top-1) is at most ``rule.max_drop`` below the reference row's (NCL's) mean, the one
    with the highest ``rule.score`` (consistency) wins. The winner is then rerun on fresh seeds
    (1, 2, ...) that played no part in the choice, as the row ``rule.tuned_key``, which removes
    the winner's-curse bias of its seed-0 score. The default cell is rerun too when it wins: its
    own seed-0 score took part in the choice. Returns (that row, or None when no cell
    qualifies; a summary whose candidates and selection are row keys).
    """
    ref = [r[rule.guard] for r in results.get(rule.reference, []) if r.get(rule.guard) is not None]
    floor = statistics.fmean(ref) - rule.max_drop if ref else -math.inf
    cells = []
    for row in preset.rows:
        runs = [r for r in results.get(row.key, []) if r.get("seed", 0) == 0]
        if rule.table not in row.tables or not runs:
            continue
        r0 = runs[0]
        score, guard = r0[rule.score], r0[rule.guard]
        # a NaN score (no active dimension) never wins: max() could not replace it
        ok = guard >= floor and score is not None and math.isfinite(score)
        cells.append((row, score, guard, ok))
    eligible = [c for c in cells if c[3]]
    best = max(eligible, key=lambda c: c[1], default=None)
    info: dict[str, Any] = {
        "rule": "highest seed-0 Cons. among sensitivity cells with seed-0 LP@1 >= NCL mean "
        f"LP@1 - {100 * rule.max_drop:g} points; confirmed on fresh seeds",
        "lp1_floor": floor if ref else None,
        "candidates": {
            c[0].key: {rule.score: c[1], rule.guard: c[2], "eligible": c[3]} for c in cells
        },
        "selected": best[0].key if best else None,
    }
    if best is None:
        return None, info
    row = best[0]
    tuned = Row(
        rule.tuned_key,
        rule.tuned_label,
        row.preset,
        dict(row.method),
        dict(row.optim),
        rule.tuned_tables,
        first_seed=1,
    )
    return tuned, info
