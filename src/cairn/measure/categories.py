"""Size by category: rules are data (data/categories.toml), first match wins, the rest is
"other", so every byte is counted exactly once."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cairn.data import load_toml
from cairn.errors import UsageError

OTHER = "other"


@dataclass(frozen=True)
class Category:
    name: str
    paths: tuple[str, ...]


def glob_regex(pattern: str) -> str:
    """`*` within one directory, `**` across any number of them, `?` one character."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def _parse(rows: Any, origin: str) -> list[Category]:
    if not isinstance(rows, list) or not all(
        isinstance(r, dict)
        and isinstance(r.get("name"), str)
        and isinstance(r.get("paths"), list)
        and all(isinstance(p, str) and p.startswith("/") for p in r["paths"])
        for r in rows
    ):
        raise UsageError(
            f"{origin} is not a category table.",
            'Try: [[category]] tables, each with name = "..." and paths = ["/absolute/glob/**"].',
        )
    return [Category(r["name"], tuple(r["paths"])) for r in rows]


def load_categories(extra: Path | None = None) -> list[Category]:
    """The built-in rules, after the ones in `extra` (a user's table) when given."""
    rules = _parse(load_toml("categories.toml")["category"], "categories.toml")
    if extra is None:
        return rules
    try:
        user = tomllib.loads(extra.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UsageError(f"Reading {extra} failed ({e}).", "Try: a readable TOML file.") from None
    return _parse(user.get("category"), str(extra)) + rules


class Classifier:
    def __init__(self, categories: Iterable[Category]) -> None:
        self.names: list[str] = []
        groups: list[str] = []
        for category in categories:
            if category.name not in self.names:
                self.names.append(category.name)
            key = f"c{len(groups)}_{self.names.index(category.name)}"
            groups.append(f"(?P<{key}>{'|'.join(glob_regex(p) for p in category.paths)})")
        if OTHER not in self.names:
            self.names.append(OTHER)
        self._regex = re.compile("|".join(groups)) if groups else None

    def __call__(self, path: str) -> str:
        """The category of an absolute path."""
        m = self._regex.fullmatch(path) if self._regex else None
        if m is None or m.lastgroup is None:
            return OTHER
        return self.names[int(m.lastgroup.rsplit("_", 1)[1])]
