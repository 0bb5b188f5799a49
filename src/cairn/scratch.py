"""Where throw-away build work happens, and how it is always cleaned up.

In memory when the machine allows it: mmdebstrap writes tens of thousands of
small files; on the virtual disks of build machines that costs more than all of
dpkg's work (measured: 15.0 s on disk, 7.4 s in /dev/shm for the same bookworm
build). $TMPDIR, when set, always wins.

Every scratch directory is `cairn-PID-PURPOSE-XXXX` with an owner file naming
the process (its PID and start time). It is removed when its work ends, by the
reaper if cairn is killed first, and otherwise by the next cairn that uses the
same place: one whose owner is no longer alive is reclaimed, and that is said.
Removal never crosses a mount point (a killed mmdebstrap may leave its chroot's
/proc or /dev mounted): those are unmounted first, or the tree is left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from cairn import reaper

log = logging.getLogger("cairn")

SHM = Path("/dev/shm")
MIN_FREE = 4 << 30  # room for the largest root file system plus its tar, twice over
OWNER = ".cairn-owner"

_reclaimed: set[Path] = set()
_reclaim_lock = threading.Lock()


def scratch_root(shm: Path = SHM) -> Path:
    if os.environ.get("TMPDIR"):
        return Path(tempfile.gettempdir())
    try:
        st = os.statvfs(shm)
    except OSError:
        return Path(tempfile.gettempdir())
    # a chroot must be able to run its programs there
    if st.f_flag & os.ST_NOEXEC or st.f_bavail * st.f_frsize < MIN_FREE:
        return Path(tempfile.gettempdir())
    return shm


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_alive(directory: Path) -> bool:
    try:
        pid_text, _, started = (directory / OWNER).read_text().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return True  # not ours to judge (being made, or not cairn's format)
    return _start_time(pid) == started.strip()


def _mounts_below(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")
            if point == str(path) or point.startswith(prefix):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def tree_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size  # noqa: PTH118
    return total


def remove_tree(path: Path) -> int:
    """Remove `path` and return the bytes it held; unmount what is mounted below it first,
    and leave it (OSError) rather than remove through a mount."""
    for point in _mounts_below(path):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    left = _mounts_below(path)
    if left:
        raise OSError(f"{path} still has mounts below it: {', '.join(left)}")
    size = tree_bytes(path)
    shutil.rmtree(path, ignore_errors=True)
    return size


def reclaim(root: Path) -> tuple[int, list[Path]]:
    """Remove the scratch directories under `root` whose cairn process has ended."""
    freed, removed = 0, []
    for candidate in sorted(root.glob("cairn-*")):
        if candidate.is_dir() and (candidate / OWNER).exists() and not _owner_alive(candidate):
            with contextlib.suppress(OSError):
                freed += remove_tree(candidate)
                removed.append(candidate)
    return freed, removed


def _reclaim_once(root: Path) -> None:
    with _reclaim_lock:
        if root in _reclaimed:
            return
        _reclaimed.add(root)
    freed, removed = reclaim(root)
    if removed:
        log.warning(
            "reclaimed %.1f MB in %s: %d scratch director%s left by cairn processes that "
            "ended (%s)",
            freed / 1e6,
            root,
            len(removed),
            "y" if len(removed) == 1 else "ies",
            ", ".join(p.name for p in removed),
        )


@contextlib.contextmanager
def scratch_dir(purpose: str, root: Path | None = None) -> Iterator[Path]:
    """A private scratch directory for `purpose`, removed on every exit path."""
    base = root or scratch_root()
    _reclaim_once(base)
    path = Path(tempfile.mkdtemp(prefix=f"cairn-{os.getpid()}-{purpose}-", dir=base))
    (path / OWNER).write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
    reaper.watch_dir(path)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            remove_tree(path)
        reaper.release_dir(path)
