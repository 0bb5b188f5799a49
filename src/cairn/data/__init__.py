"""Tables cairn reads (suites, platforms, profiles): data, not code."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any


def data_path(name: str) -> Path:
    """Path of a packaged data file (the package is installed unzipped)."""
    return Path(str(resources.files("cairn.data").joinpath(name)))


def load_toml(name: str) -> dict[str, Any]:
    with data_path(name).open("rb") as f:
        return tomllib.load(f)
