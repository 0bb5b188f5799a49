"""Apply a slim profile to a root file system, with dpkg's own filter semantics.

dpkg honours path-exclude/path-include for what it unpacks, but mmdebstrap
extracts the Essential set before dpkg is in charge, and filtering that
extraction through mmdebstrap's --dpkgopt costs more than the rest of the
build together (measured: 8.7 s against 2 s, bookworm amd64). So dpkg gets
the filters as a dpkg.cfg.d file, and this module removes what the extraction
left, run by mmdebstrap as a hook:

    python -m cairn.debian.slimming [--filters-only] PROFILE.json ROOT

Right after extraction only the path filters apply (apt's lists are still
needed then); the last hook also removes the profile's leftovers.

Rules, as dpkg applies them: each pattern is matched with fnmatch against the
absolute path (`*` also matches `/`), and the last matching pattern wins.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from cairn.debian.profiles import Profile


@dataclass(frozen=True)
class Slimmed:
    files: int
    bytes: int


def _union(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(map(fnmatch.translate, patterns))) if patterns else None


@functools.cache
def exclusion(profile: Profile) -> Callable[[str], bool]:
    """Whether dpkg would leave a path (absolute, inside the image) out: the profile's
    globs compiled once."""
    exclude, include = _union(profile.path_exclude), _union(profile.path_include)
    return lambda path: (
        bool(exclude and exclude.match(path)) and not (include and include.match(path))
    )


def excluded(path: str, profile: Profile) -> bool:
    return exclusion(profile)(path)


def removes(profile: Profile) -> Callable[[str], bool]:
    """Whether the profile leaves a path out of an image: dpkg's filters or its leftovers."""
    filtered, remove = exclusion(profile), _union(profile.remove)
    return lambda path: filtered(path) or bool(remove and remove.match(path))


def _literal_prefix(pattern: str) -> str:
    """The directory a pattern can only match below: /usr/share/doc for /usr/share/doc/*."""
    cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=len(pattern))
    return pattern[:cut].rsplit("/", 1)[0] or "/"


def slim(root: Path, profile: Profile, filters_only: bool = False) -> Slimmed:
    """Remove excluded files and the empty directories they leave; unless `filters_only`,
    also the profile's leftovers (apt lists, logs), and make its kept directories."""
    done = _apply_filters(root, profile)
    if not filters_only:
        for pattern in profile.remove:
            for hit in root.glob(pattern.lstrip("/")):
                if hit.is_dir() and not hit.is_symlink():
                    shutil.rmtree(hit)
                else:
                    hit.unlink(missing_ok=True)
    # after the extraction pass too: maintainer scripts run before the last pass
    for keep in profile.keep_dirs:
        (root / keep.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return done


def _apply_filters(root: Path, profile: Profile) -> Slimmed:
    files = size = 0
    for top in sorted({_literal_prefix(p) for p in profile.path_exclude}):
        base = root / top.lstrip("/")
        if not base.is_dir() or base.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(base, topdown=False):
            here = Path(dirpath)
            inside = "/" + str(here.relative_to(root))
            for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
                entry = here / name
                # a link to a directory may be how a kept file is reached
                # (/usr/share/doc/libgcc-s1 -> gcc-12-base): leave it
                if entry.is_symlink() and (root / _inside_target(entry, root)).is_dir():
                    continue
                if excluded(f"{inside}/{name}", profile):
                    files += 1
                    size += entry.lstat().st_size
                    entry.unlink()
            if (
                here != base
                and inside not in profile.keep_dirs
                and not any(here.iterdir())
                and excluded(inside, profile)
            ):
                here.rmdir()
    return Slimmed(files, size)


def _inside_target(link: Path, root: Path) -> str:
    """Where a symlink points, resolved inside `root` (never on the build host)."""
    target = str(link.readlink())
    inside = os.path.normpath(
        target.lstrip("/")
        if target.startswith("/")
        else str(link.parent.relative_to(root) / target)
    )
    return "nonexistent" if inside.startswith("..") else inside


def write_profile(profile: Profile, path: Path) -> None:
    path.write_text(json.dumps(asdict(profile)))


def main(argv: list[str]) -> int:
    filters_only = argv[:1] == ["--filters-only"]
    args = argv[1:] if filters_only else argv
    if len(args) != 2:
        print(
            "usage: python -m cairn.debian.slimming [--filters-only] PROFILE.json ROOT",
            file=sys.stderr,
        )
        return 2
    data = json.loads(Path(args[0]).read_text())
    profile = Profile.from_dict(data["name"], data)
    done = slim(Path(args[1]), profile, filters_only)
    print(f"cairn slimming: removed {done.files} files, {done.bytes} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
