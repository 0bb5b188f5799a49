"""Lay gzip'd OCI layers out as a directory tree, whiteouts applied.

A package child is built on its parent's file system: mmdebstrap runs this as
its first setup hook (`python -m cairn.oci.unpack ROOT LAYER...`), so apt finds
the parent's packages installed and adds only the child's. Paths mmdebstrap's
own setup has already written for this build (its sources, the resolver files)
are kept: the child's sources may list more suites than the parent's.
"""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path

from cairn.oci.layerdiff import norm
from cairn.oci.whiteouts import marker

BUILD_OWNED = (
    # written by mmdebstrap's setup for the build at hand; the parent's copies are stale
    "etc/apt/sources.list",
    "etc/apt/sources.list.d",
    "etc/resolv.conf",
    "etc/hostname",
    # cairn's apt settings go back in at the end: during the build the host's apt
    # reads the chroot's configuration, and their clean-up hooks would run on the host
    "etc/apt/apt.conf.d/90cairn",
)


# Extraction filters came with Python 3.11.4 (Debian 12 has 3.11.2); where they exist,
# say that these layers are trusted (cairn wrote them), as 3.14 would filter otherwise.
HAS_FILTERS = hasattr(tarfile, "data_filter")


def _owned(name: str, keep: Iterable[str]) -> bool:
    return any(name == k or name.startswith(k + "/") for k in keep)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.is_symlink() or path.exists():
        path.unlink()


def _clear(directory: Path) -> None:
    if directory.is_dir() and not directory.is_symlink():
        for child in directory.iterdir():
            _remove(child)


def unpack_layers(layers: Iterable[Path], root: Path, keep: Iterable[str] = ()) -> None:
    """Apply `layers` in order onto `root` with owners, modes and times; paths in `keep`
    (and below them) stay as they are in `root`."""
    keep = tuple(keep)
    for layer in layers:
        with tarfile.open(layer, "r:gz") as tf:
            members = []
            for m in tf.getmembers():
                name = norm(m.name)
                found = marker(name)
                # markers act before this layer's own entries go in (cairn.oci.whiteouts)
                if found is not None and found.kind == "opaque":
                    _clear(root / found.target)
                elif found is not None:
                    _remove(root / found.target)
                elif name and not _owned(name, keep):
                    members.append(m)
            for m in members:
                path = root / norm(m.name)
                if path.is_symlink() or (path.exists() and not (m.isdir() and path.is_dir())):
                    _remove(path)
            # directories get their times last, once everything below them is in
            if HAS_FILTERS:
                tf.extractall(root, members=members, numeric_owner=True, filter="fully_trusted")
            else:
                tf.extractall(root, members=members, numeric_owner=True)
            for m in members:
                if m.issym():
                    # tarfile leaves a link's own time at now: it would read as changed
                    os.utime(root / norm(m.name), (m.mtime, m.mtime), follow_symlinks=False)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m cairn.oci.unpack ROOT LAYER...", file=sys.stderr)
        return 2
    root = Path(argv[0])
    os.umask(0o022)
    unpack_layers([Path(p) for p in argv[1:]], root, keep=BUILD_OWNED)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
