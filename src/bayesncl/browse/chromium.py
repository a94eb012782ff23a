"""Drive a headless Chromium over the static site (tests and the README screenshot)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def page_url(index: str | Path, fragment: str = "") -> str:
    """file:// URL of ``index`` with an optional ``#fragment`` (e.g. ``dim=3``)."""
    url = Path(index).resolve().as_uri()
    return f"{url}#{fragment}" if fragment else url


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError(
            "no chromium found: install it (Debian: apt-get install chromium) to run the browser"
        )
    with tempfile.TemporaryDirectory(prefix="bayesncl-chromium-") as profile:
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def dump_dom(url: str, timeout: float = 60, budget_ms: int = 2000) -> str:
    """The DOM of ``url`` after its scripts ran (``--dump-dom``)."""
    res = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], timeout)
    if res.returncode != 0 or not res.stdout.strip():
        raise RuntimeError(
            f"chromium --dump-dom {url} failed ({res.returncode}): {res.stderr[-2000:]}"
        )
    return res.stdout


def screenshot(
    url: str, out: str | Path, size: tuple[int, int] = (1200, 900), timeout: float = 60
) -> Path:
    """A PNG of ``url`` rendered in a ``size`` window."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    res = _run(
        [
            "--virtual-time-budget=2000",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={out}",
            url,
        ],
        timeout,
    )
    if res.returncode != 0 or not out.is_file():
        raise RuntimeError(
            f"chromium --screenshot {url} failed ({res.returncode}): {res.stderr[-2000:]}"
        )
    return out
