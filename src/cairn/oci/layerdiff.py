"""File systems as OCI layers see them, and the layer that turns one into another.

`read_filesystem` applies gzip'd layer tars in order (whiteouts included) and
indexes the result; `write_diff` compares a complete root file system tar
against such an index and writes the layer that holds only what differs:
new and changed entries, and whiteouts (`.wh.NAME`) for what is gone. A child
image is then its parent's layers plus that one.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import tarfile
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from cairn.oci.whiteouts import WHITEOUT, Marker, apply_layer, marker


@dataclass(frozen=True)
class TarEntry:
    """What makes two file system entries the same, content included."""

    type: bytes
    mode: int
    uid: int
    gid: int
    mtime: int
    linkname: str
    digest: str  # of the content; for a hard link, of its target's content


@dataclass(frozen=True)
class DiffStats:
    added: int
    modified: int
    deleted: int


def norm(name: str) -> str:
    """Tar member names as paths: './usr/bin/' -> 'usr/bin'."""
    name = name.removeprefix("./").strip("/")
    return "" if name == "." else name


def _digest(f: IO[bytes] | None) -> str:
    h = hashlib.sha256()
    if f is not None:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _entry(tf: tarfile.TarFile, m: tarfile.TarInfo, index: Mapping[str, TarEntry]) -> TarEntry:
    if m.islnk():
        # A hard link is the file it names: which of a pair a tar writer lists
        # first (and so as the file) is its own choice, not a change.
        target = index.get(norm(m.linkname))
        return TarEntry(
            tarfile.REGTYPE, m.mode, m.uid, m.gid, int(m.mtime), "", target.digest if target else ""
        )
    digest = _digest(tf.extractfile(m)) if m.isreg() else ""
    return TarEntry(m.type, m.mode, m.uid, m.gid, int(m.mtime), m.linkname, digest)


def layer_sizes(layers: Iterable[Path]) -> list[int]:
    """The uncompressed size of each gzip'd layer."""
    sizes = []
    for layer in layers:
        size = 0
        with gzip.open(layer, "rb") as f:
            while chunk := f.read(1 << 20):
                size += len(chunk)
        sizes.append(size)
    return sizes


def read_filesystem(layers: Iterable[Path]) -> dict[str, TarEntry]:
    """The file system that gzip'd layer tars make, applied in order."""
    index: dict[str, TarEntry] = {}
    for layer in layers:
        own: list[tuple[str, TarEntry | Marker]] = []
        seen: dict[str, TarEntry] = {}
        with tarfile.open(layer, "r|gz") as tf:
            for m in tf:
                name = norm(m.name)
                found = marker(name)
                if found is not None:
                    own.append((name, found))
                elif name:
                    seen[name] = _entry(tf, m, ChainMap(seen, index))
                    own.append((name, seen[name]))
        apply_layer(index, own)
    return index


def _clamped(entry: TarEntry | None, mtime: int) -> TarEntry | None:
    return entry if entry is None or entry.mtime <= mtime else replace(entry, mtime=mtime)


def write_diff(
    parent: dict[str, TarEntry],
    child_tar: Path,
    out: Path,
    mtime: int,
    ignore: Callable[[str], bool] = lambda name: False,
) -> DiffStats:
    """Write to `out` the layer that turns `parent` into the file system in `child_tar`.

    Times later than `mtime` (the source date) are clamped to it, so steps that
    touch files at build time still give the same layer; paths `ignore` accepts
    keep the parent's state (an engine's bind-mounted /etc/hosts, say).
    """
    added = modified = 0
    with tarfile.open(child_tar) as tf:
        members = {
            norm(m.name): m for m in tf.getmembers() if norm(m.name) and not ignore(norm(m.name))
        }
        child: dict[str, TarEntry] = {}
        for name, m in members.items():
            m.mtime = min(int(m.mtime), mtime)
            # permission bits only: `docker export` also writes the file type bits
            m.mode &= 0o7777
            child[name] = _entry(tf, m, child)
        changed = [n for n, e in child.items() if _clamped(parent.get(n), mtime) != e]
        emitted = set(changed)
        gone = sorted(n for n in parent if n not in child and not ignore(n))
        # whiteout a deleted directory, not everything below it as well
        whiteouts = [n for n in gone if n.rpartition("/")[0] not in gone]

        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
            items = [(n, False) for n in changed] + [(n, True) for n in whiteouts]
            for name, is_whiteout in sorted(items):
                if is_whiteout:
                    head, _, base = name.rpartition("/")
                    info = tarfile.TarInfo("./" + (f"{head}/" if head else "") + WHITEOUT + base)
                    info.mtime = mtime
                    dst.addfile(info)
                    continue
                if name in parent:
                    modified += 1
                else:
                    added += 1
                m = members[name]
                info = copy.copy(m)
                info.name = f"./{name}"
                # Numeric owners, and no access or change times (GNU tar's pax
                # atime/ctime): what differs between two runs of the same steps.
                info.uname = info.gname = ""
                info.pax_headers = {
                    k: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")
                }
                target = norm(m.linkname)
                if m.islnk() and target not in emitted:
                    # a hard link may only point into its own layer: carry the content
                    src = members[target]
                    info = tarfile.TarInfo(f"./{name}")
                    info.size, info.mode, info.uid, info.gid = src.size, m.mode, m.uid, m.gid
                    info.mtime, info.uname, info.gname = m.mtime, m.uname, m.gname
                    dst.addfile(info, tf.extractfile(src))
                elif m.islnk():
                    info.linkname = f"./{target}"
                    dst.addfile(info)
                else:
                    dst.addfile(info, tf.extractfile(m) if m.isreg() else None)
    return DiffStats(added=added, modified=modified, deleted=len(whiteouts))
