"""cairn's package cache: the .debs of every build, per architecture.

apt checked every .deb against the signed archive index when it downloaded
it; cairn records each file's SHA-256 when it takes it into the cache and
checks it again before handing it to the next build, so a damaged or altered
file is dropped (and downloaded afresh) instead of installed. apt's package
indexes are not kept: copying them in and out of a build cost more than
downloading them (measured: 1.9 s against 0.6 s).

Several builds of one architecture may share the cache at once (images of one
level of the family build in parallel, and so may several cairn processes):
the manifest is read and written under a lock, and a .deb that is not in the
manifest yet but was created in the last minutes belongs to a build still
running, so it is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "SHA256SUMS"
IN_FLIGHT_SECONDS = 15 * 60
_thread_locks: dict[Path, threading.Lock] = {}
_guard = threading.Lock()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class DebCache:
    """DIR/ARCH/debs/*.deb with their SHA256SUMS."""

    root: Path

    @classmethod
    def for_arch(cls, cache_dir: Path, debian_arch: str) -> DebCache:
        return cls(cache_dir / debian_arch)

    @property
    def directory(self) -> Path:
        return self.root / "debs"

    def _read_manifest(self) -> dict[str, str]:
        try:
            lines = (self.directory / MANIFEST).read_text().splitlines()
        except FileNotFoundError:
            return {}
        out: dict[str, str] = {}
        for line in lines:
            digest, _, name = line.partition("  ")
            if digest and name:
                out[name] = digest
        return out

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One user of the manifest at a time: threads of this process, then processes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with _guard:
            lock = _thread_locks.setdefault(self.directory, threading.Lock())
        with lock, (self.directory / ".lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def _write_manifest(self, entries: dict[str, str]) -> None:
        tmp = self.directory / f".{MANIFEST}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text("".join(f"{d}  {n}\n" for n, d in sorted(entries.items())))
        tmp.replace(self.directory / MANIFEST)

    def verify(self) -> int:
        """Drop every .deb whose hash is wrong, or unknown and not a running build's;
        returns how many were dropped."""
        with self._locked():
            manifest = self._read_manifest()
            dropped = 0
            good: dict[str, str] = {}
            for deb in self.directory.glob("*.deb"):
                if manifest.get(deb.name) == _sha256(deb):
                    good[deb.name] = manifest[deb.name]
                elif deb.name in manifest or not _in_flight(deb):
                    deb.unlink(missing_ok=True)
                    dropped += 1
            self._write_manifest(good)
            return dropped

    def record_new(self) -> int:
        """Hash the .debs a build added to the cache; returns how many were added."""
        with self._locked():
            manifest = self._read_manifest()
            added = 0
            for deb in self.directory.glob("*.deb"):
                if deb.name not in manifest:
                    manifest[deb.name] = _sha256(deb)
                    added += 1
            self._write_manifest(manifest)
            return added


def _in_flight(deb: Path) -> bool:
    """Copied in by a build that may still be running (cp -p keeps mtime, not ctime)."""
    try:
        return time.time() - deb.stat().st_ctime < IN_FLIGHT_SECONDS
    except FileNotFoundError:
        return False
