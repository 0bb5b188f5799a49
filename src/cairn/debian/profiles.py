"""Slim profiles: which paths dpkg leaves out, which directories stay, what is removed.

Profiles are data (data/profiles/*.toml); an image may name one and keep
extra locales.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from cairn.data import data_path, load_toml

_SAFE_PATH = re.compile(r"^/[A-Za-z0-9_.*+@/-]+$")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    path_exclude: tuple[str, ...]
    path_include: tuple[str, ...]
    keep_dirs: tuple[str, ...]
    remove: tuple[str, ...]

    def with_locales(self, locales: tuple[str, ...]) -> Profile:
        """The profile with the message catalogues of `locales` kept."""
        if not locales or not any(p.startswith("/usr/share/locale/") for p in self.path_exclude):
            return self
        keep = [f"/usr/share/locale/{loc}/*" for loc in locales]
        return Profile(
            name=self.name,
            description=self.description,
            path_exclude=self.path_exclude,
            path_include=self.path_include + tuple(dict.fromkeys(keep)),
            keep_dirs=self.keep_dirs,
            remove=self.remove,
        )

    def excluding(self, paths: tuple[str, ...]) -> Profile:
        """The profile extended by an image: `paths` left out as well (before the includes,
        so that copyright files stay)."""
        if not paths:
            return self
        return replace(self, path_exclude=tuple(dict.fromkeys(self.path_exclude + paths)))

    @classmethod
    def from_dict(cls, name: str, row: dict[str, Any]) -> Profile:
        return cls(
            name=name,
            description=row["description"],
            path_exclude=tuple(row["path_exclude"]),
            path_include=tuple(row["path_include"]),
            keep_dirs=tuple(row["keep_dirs"]),
            remove=tuple(row["remove"]),
        )

    def dpkg_options(self) -> tuple[str, ...]:
        """dpkg options in the order dpkg needs them: excludes first, then includes."""
        return tuple(f"path-exclude={p}" for p in self.path_exclude) + tuple(
            f"path-include={p}" for p in self.path_include
        )

    def dpkg_cfg(self) -> str:
        """The /etc/dpkg/dpkg.cfg.d/ file that keeps later installs as slim as the image."""
        head = [
            f"# Written by cairn: the '{self.name}' profile.",
            f"# {self.description}",
            "# Delete this file to have dpkg install every file of later packages.",
        ]
        return "\n".join(head + list(self.dpkg_options())) + "\n"


def known_profiles() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in data_path("profiles").glob("*.toml")))


@cache
def load_profile(name: str) -> Profile:
    """Load a profile by name; KeyError when there is none of that name."""
    if name not in known_profiles():
        raise KeyError(name)
    row = load_toml(f"profiles/{name}.toml")
    for pattern in (*row["path_exclude"], *row["path_include"], *row["keep_dirs"], *row["remove"]):
        # These become shell words in mmdebstrap hooks: plain absolute paths and globs only.
        if not _SAFE_PATH.match(pattern):
            raise ValueError(f"profile {name}: unsafe path {pattern!r}")
    return Profile.from_dict(name, row)
