"""Debian suites cairn knows (data/suites.toml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from cairn.data import load_toml


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    updates: str | None
    security: str | None


@cache
def known_suites() -> dict[str, Suite]:
    return {
        name: Suite(
            name=name,
            version=row["version"],
            updates=row.get("updates"),
            security=row.get("security"),
        )
        for name, row in load_toml("suites.toml").items()
    }


def apt_sources(suite: Suite, mirror: str, security_mirror: str) -> tuple[str, ...]:
    """One-line sources for the suite plus its updates and security suites."""
    lines = [f"deb {mirror} {suite.name} main"]
    if suite.updates:
        lines.append(f"deb {mirror} {suite.updates} main")
    if suite.security:
        lines.append(f"deb {security_mirror} {suite.security} main")
    return tuple(lines)
