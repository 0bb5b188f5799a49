"""Tables cairn reads (suites, platforms, profiles): data, not code."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def data_path(name: str) -> Path:
    """Path of a packaged data file (the package is installed unzipped, so no
    importlib.resources: it costs every command a few milliseconds)."""
    return Path(__file__).parent / name


def load_toml(name: str) -> dict[str, Any]:
    with data_path(name).open("rb") as f:
        return tomllib.load(f)
