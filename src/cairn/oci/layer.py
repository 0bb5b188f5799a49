"""Turn a root file system tar into a reproducible gzip layer blob."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True)
class CompressedLayer:
    path: Path
    digest: str
    size: int
    diff_id: str
    uncompressed_size: int


class _HashingWriter:
    """A file wrapper that hashes and counts what gzip writes through it."""

    def __init__(self, path: Path) -> None:
        self._f = path.open("wb")
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def compress_layer(tar: Path, dest: Path, level: int = 6) -> CompressedLayer:
    """gzip `tar` into `dest` with no name and a zero mtime in the header, so that
    the same tar always gives the same blob (on the same zlib)."""
    out = _HashingWriter(dest)
    diff = hashlib.sha256()
    raw = 0
    try:
        with (
            tar.open("rb") as src,
            gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=level, mtime=0) as gz,
        ):
            while chunk := src.read(_CHUNK):
                diff.update(chunk)
                raw += len(chunk)
                gz.write(chunk)
    finally:
        out.close()
    return CompressedLayer(
        path=dest,
        digest="sha256:" + out.sha.hexdigest(),
        size=out.size,
        diff_id="sha256:" + diff.hexdigest(),
        uncompressed_size=raw,
    )
