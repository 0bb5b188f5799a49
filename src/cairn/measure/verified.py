"""Layers whose digest cairn has already checked, so that reading the same unchanged file
again (analyze, then sbom, then scan in one CI job) does not hash it again.

A record is keyed by the file's identity as stat gives it (device, inode, size, mtime,
ctime: rewriting a file changes its ctime, which no user can set), the byte range and the
digest the range must hash to. Like git's index, a file changed within the last
RACY_SECONDS is never recorded: a change in the same clock tick could leave its stat
unchanged.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

from cairn.cachedir import default_cache_dir

RACY_SECONDS = 2.0
# a digest becomes part of a file name: anything else (say, "sha256:../x") is never recorded
_DIGEST = re.compile(r"[a-z0-9]+:[0-9a-f]{32,128}")


def _store() -> Path:
    return default_cache_dir() / "verified"


def _key(fd: int, start: int, length: int, digest: str) -> str:
    """A file name of about 130 characters; no hashing, so no OpenSSL to load."""
    st = os.fstat(fd)
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, start, length)
    return "-".join(map(str, identity)) + "-" + digest.replace(":", "-")


def known(fd: int, start: int, length: int, digest: str) -> bool:
    """Whether this range of the open file was checked against `digest` before."""
    return bool(_DIGEST.fullmatch(digest)) and (_store() / _key(fd, start, length, digest)).exists()


def remember(fd: int, start: int, length: int, digest: str) -> None:
    """Record a range that has just hashed to `digest` (best effort: a read-only cache only
    costs the next read its hashing)."""
    st = os.fstat(fd)
    if not _DIGEST.fullmatch(digest) or time.time() - max(st.st_mtime, st.st_ctime) < RACY_SECONDS:
        return
    store = _store()
    with contextlib.suppress(OSError):
        store.mkdir(parents=True, exist_ok=True)
        # the record is the empty file's name: creating it is atomic, it has no content
        (store / _key(fd, start, length, digest)).touch()
