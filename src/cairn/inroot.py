"""Paths inside a root file system, resolved the way its kernel would from a chroot.

The one rule for every reader of a root, on disk or as an index of layers:
absolute symbolic links restart at the root, `..` never climbs above it, and a
chain of more than 40 links is a loop (the kernel's ELOOP), reported, never
followed.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal, Protocol

MAX_LINKS = 40

Kind = Literal["dir", "symlink", "file", "other"]
# what one path (inside the root, no leading slash) is: its kind and a link's target
Lookup = Callable[[str], "tuple[Kind, str] | None"]


class LinkLoop(Exception):
    """A path whose symbolic links do not end."""


def resolve(lookup: Lookup, path: str, follow_last: bool = True) -> str | None:
    """`path` inside the root as a path with no links in its directories (and none at its
    end with `follow_last`), without a leading slash; None when it is not there.

    Raises LinkLoop past 40 links.
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    parts.reverse()  # a stack: the next part last
    current: list[str] = []
    hops = 0
    while parts:
        part = parts.pop()
        if part == "..":
            if current:
                current.pop()
            continue
        candidate = "/".join([*current, part])
        found = lookup(candidate)
        if found is None:
            return None
        kind, link = found
        if kind == "symlink" and (parts or follow_last):
            hops += 1
            if hops > MAX_LINKS:
                raise LinkLoop(f"{path}: too many levels of symbolic links")
            if link.startswith("/"):
                current = []
            parts.extend(reversed([p for p in link.split("/") if p not in ("", ".")]))
            continue
        if parts and kind != "dir":
            return None
        current.append(part)
    return "/".join(current)


def resolve_quietly(lookup: Lookup, path: str, follow_last: bool = True) -> str | None:
    """resolve(), with a link loop read as absent."""
    try:
        return resolve(lookup, path, follow_last)
    except LinkLoop:
        return None


def directory_lookup(root: Path) -> Lookup:
    """Lookup over a root laid out on disk."""

    def lookup(path: str) -> tuple[Kind, str] | None:
        host = root / path
        try:
            st = host.lstat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(st.st_mode):
            return "symlink", str(host.readlink())
        if stat.S_ISDIR(st.st_mode):
            return "dir", ""
        return ("file" if stat.S_ISREG(st.st_mode) else "other"), ""

    return lookup


class Indexed(Protocol):
    kind: str
    linkname: str


def index_lookup(index: Mapping[str, Indexed]) -> Lookup:
    """Lookup over an index of paths (no leading slash) whose entries have a kind
    (dir, symlink, file, ...) and a link target."""

    def lookup(path: str) -> tuple[Kind, str] | None:
        entry = index.get(path)
        if entry is None:
            return None
        if entry.kind == "symlink":
            return "symlink", entry.linkname
        if entry.kind == "dir":
            return "dir", ""
        # a hard link is the regular file it shares content with
        return ("file" if entry.kind in ("file", "hardlink") else "other"), ""

    return lookup
