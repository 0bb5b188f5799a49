"""Turn a root file system tar into a reproducible gzip layer blob."""

from __future__ import annotations

import errno
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cairn.engines import require, run_logged, tail
from cairn.errors import BuildError
from cairn.oci.layout import store_failure

_CHUNK = 1 << 20
# pigz's output depends on its level and block size only, not on how many
# threads it uses, so every machine gets the same blob from the same tar.
GZIP_LEVEL = "-6"


@dataclass(frozen=True)
class CompressedLayer:
    path: Path
    digest: str
    size: int
    diff_id: str
    uncompressed_size: int


def _sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def compress_layer(tar: Path, dest: Path) -> CompressedLayer:
    """gzip `tar` into `dest` on every core, with no name and a zero mtime in the header."""
    pigz = require("pigz", "Compressing a layer")
    # beside the tar (scratch space), not the blob: the blob's disk may be the full one
    log = tar.with_name(tar.name + ".pigz.log")
    if run_logged([pigz, "--no-name", GZIP_LEVEL, "--stdout", str(tar)], log, stdout=dest) != 0:
        said = tail(log)
        if "No space left" in said:
            raise store_failure("Writing the layer", dest, OSError(errno.ENOSPC, said))
        raise BuildError(f"Compressing {tar} failed: {said}")
    log.unlink()
    diff_id, raw = _sha256(tar)
    digest, size = _sha256(dest)
    return CompressedLayer(
        path=dest, digest=digest, size=size, diff_id=diff_id, uncompressed_size=raw
    )
