"""Walk an image (or a directory): every layer read as a stream (cairn.measure.layer_reading)
into the index of the file system they make (cairn.measure.overlay). Nothing is extracted;
the image's digests are checked on the way, in the background for uncompressed layers.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from cairn.errors import ImageContentError
from cairn.measure import verified
from cairn.measure.digests import BackgroundHashes, HashJob
from cairn.measure.layer_reading import LayerRange, check_layer, read_layer
from cairn.measure.overlay import Item, LayerStats, Walk, capture_pattern
from cairn.measure.source import Source


def _dir_items(root: Path, capture: re.Pattern[str]) -> Iterator[Item]:
    """A directory tree as layer members (hard links found by inode, links not followed)."""
    seen: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            host = Path(dirpath) / name
            path = str(host.relative_to(root))
            st = host.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                yield Item(path, "dir", 0, "", mode, None)
            elif stat.S_ISLNK(st.st_mode):
                yield Item(path, "symlink", 0, str(host.readlink()), mode, None)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    yield Item(path, "hardlink", 0, seen[key], mode, None)
                    continue
                seen[key] = path
                read = (lambda h=host: h.read_bytes()) if capture.match(path) else None
                yield Item(path, "file", st.st_size, "", mode, read)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                yield Item(path, "char" if stat.S_ISCHR(st.st_mode) else "block", 0, "", mode, None)
            else:
                yield Item(path, "fifo", 0, "", mode, None)


def walk_source(source: Source, licenses: bool = False) -> Walk:
    """The image's file system as its layers make it; with `licenses`, the copyright files
    kept too."""
    walk = Walk(capture=capture_pattern(licenses))
    if source.root is not None:
        stats = LayerStats(0, "", None, created_by=f"the directory {source.root}")
        walk.layers.append(stats)
        walk.apply(0, _dir_items(source.root, walk.capture), stats)
        return walk
    history = [h for h in source.config.get("history", []) if not h.get("empty_layer")]
    with contextlib.ExitStack() as stack:
        ranges = [
            LayerRange.opened(layer, *stack.enter_context(layer.open())) for layer in source.layers
        ]
        jobs = {
            r.layer.index: HashJob(r.fd, r.start, r.length)
            for r in ranges
            if r.compression is None and not r.known
        }
        hashes = BackgroundHashes(jobs)
        streamed = []
        try:
            for r in ranges:
                layer = r.layer
                stats = LayerStats(
                    layer.index, layer.digest, layer.size if layer.compressed else None
                )
                if layer.index < len(history):
                    stats.created_by = str(history[layer.index].get("created_by", ""))
                walk.layers.append(stats)
                streamed.append(read_layer(walk, r, stats))
        except BaseException:
            hashes.cancel()  # before the files close under the workers
            raise
        hashes.wait()
        for r, digest_and_count in zip(ranges, streamed, strict=True):
            job = jobs.get(r.layer.index)
            if job is not None and job.error is not None:
                raise ImageContentError(
                    f"Reading layer {r.layer.index} ({r.layer.digest}) failed ({job.error}).",
                    "Try: check that the image's files are readable.",
                )
            hashed = (job.digest, job.count) if job is not None else digest_and_count
            if r.known:
                hashed = (None, r.length)
            if hashed is None:
                continue  # not read to its end: a finding says so
            check_layer(walk, r.layer, *hashed)
            if hashed[0] == r.layer.digest:
                verified.remember(r.fd, r.start, r.length, r.layer.digest)
    return walk
