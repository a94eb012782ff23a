"""``model.method`` on the command line and in config files: preset names and the old format.

``--model.method bayesncl`` (or ``method: bayesncl`` in a YAML config) stands for the preset's
nested settings, so later options such as ``--model.method.gate.prior 0.5`` change them. Configs
written before the nested method config (``method: NAME`` plus flat ``method_overrides``) are
converted on the fly (``bayesncl.core.presets.from_legacy``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from bayesncl.core.presets import PRESETS, from_legacy
from bayesncl.train.recipes import find_config, shipped_configs

#: the model settings that take a method preset's name
METHOD_KEYS = ("method", "pair_method")


def _split(args: list[str]) -> list[tuple[str, str | None]]:
    """(option, value) pairs; ``--a=b`` and ``--a b`` both give ("--a", "b")."""
    pairs: list[tuple[str, str | None]] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") and "=" in a:
            name, _, value = a.partition("=")
            pairs.append((name, value))
        elif a.startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            pairs.append((a, args[i + 1]))
            i += 1
        else:
            pairs.append((a, None))
        i += 1
    return pairs


def _join(pairs: list[tuple[str, str | None]]) -> list[str]:
    out: list[str] = []
    for name, value in pairs:
        out += [name] if value is None else [name, value]
    return out


def method_dict(value: Any, legacy_overrides: dict[str, Any] | None = None) -> Any:
    """``model.method`` as a nested dict: a preset name becomes the preset's config; the format
    before the nested config (``method: NAME`` + ``method_overrides``) is converted."""
    if isinstance(value, str) and (value in PRESETS or legacy_overrides):
        return from_legacy(value, legacy_overrides).to_dict()
    if isinstance(value, str) and not value.lstrip().startswith("{"):
        raise ValueError(
            f"model.method={value!r} is not a preset; use one of: {', '.join(PRESETS)}, "
            "or give the nested method settings"
        )
    return value


def expand_config_file(path: str) -> str:
    """A ``--config`` file (a path, or a shipped config's name such as ``digits/bayesncl``),
    with ``model.method: PRESET`` (and the old flat ``method_overrides``) turned into the nested
    method config; other files pass unchanged."""
    p = Path(path)
    if not p.is_file():
        shipped = find_config(path)
        if shipped is None:
            raise FileNotFoundError(
                f"--config {path}: no such file, and not a shipped config name; names look like "
                f"digits/bayesncl (`bayesncl configs` lists all {len(shipped_configs())})"
            )
        p = shipped
    data = yaml.safe_load(p.read_text())
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or not any(isinstance(model.get(k), str) for k in METHOD_KEYS):
        return str(p)
    if isinstance(model.get("method"), str):
        model["method"] = method_dict(model["method"], model.pop("method_overrides", None))
    if isinstance(model.get("pair_method"), str):  # multimodal: the partner tower's method
        model["pair_method"] = method_dict(model["pair_method"])
    return yaml.safe_dump(data, sort_keys=False)


def config_task(args: list[str]) -> str:
    """The ``task`` of ``bayesncl fit`` arguments (after :func:`expand_method_args`): the last
    ``--task`` option, else the last ``--config`` that sets one, else ``pretrain``."""
    task = "pretrain"
    for name, value in _split(args):
        if name == "--config" and value is not None:
            try:
                text = Path(value).read_text() if Path(value).is_file() else value
            except OSError:  # a YAML text too long for a file name
                text = value
            data = yaml.safe_load(text)
            if isinstance(data, dict) and isinstance(data.get("task"), str):
                task = data["task"]
        elif name == "--task" and value is not None:
            task = value
    return task


def expand_method_args(args: list[str]) -> list[str]:
    """``--model.method bayesncl`` -> the preset's nested settings (as JSON), and YAML configs
    naming a preset likewise, so later ``--model.method.gate.prior 0.5`` options change them."""
    pairs = []
    for name, value in _split(args):
        if name in ("--model.method", "--model.pair_method") and value is not None:
            value = json.dumps(method_dict(value))
        elif name == "--config" and value is not None:
            value = expand_config_file(value)
        pairs.append((name, value))
    return _join(pairs)
