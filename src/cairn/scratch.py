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
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from cairn import reaper
from cairn.errors import StoreError

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


RAM_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})


def filesystem_type(path: Path) -> str:
    """The type of the file system `path` is on (tmpfs, ext4, ...), from mountinfo."""
    where = os.path.realpath(path)
    best, kind = "", ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")
            inside = where == point or where.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, fields[fields.index("-") + 1]
    return kind


def disk_root() -> Path:
    """Scratch space on a disk, never in memory: for untrusted bytes (a bundle being
    checked), which must not be able to fill the machine's RAM. $TMPDIR when it is on a
    disk, else /var/tmp, else /tmp."""
    candidates = [os.environ["TMPDIR"]] if os.environ.get("TMPDIR") else []
    for candidate in map(Path, [*candidates, "/var/tmp", "/tmp"]):
        if (
            candidate.is_dir()
            and os.access(candidate, os.W_OK | os.X_OK)
            and filesystem_type(candidate) not in RAM_FILESYSTEMS
        ):
            return candidate
    raise StoreError(
        "No scratch directory on a disk: $TMPDIR, /var/tmp and /tmp are all in memory (or "
        "missing), and a bundle is never unpacked into memory.",
        "Try: TMPDIR=DIR, DIR a directory on a disk with room for the bundle.",
    )


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


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _bottom_up(path: Path) -> Iterator[tuple[int, str, bool]]:
    """Everything below the directory `path` (links not followed), each directory after
    what it holds: (the descriptor of the directory holding it, its name, is a directory).
    Iterative, and relative to one open directory at a time: a tree thousands of levels
    deep (an untrusted archive's staircase), deeper than PATH_MAX, is walked as any other.
    Each directory is listed once; climbing back (through "..") checks that it is the
    directory that was left, and stops the walk if it was moved meanwhile."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError:
        return
    # per level: what is left of its listing, and the (device, inode) of the directory
    levels: list[tuple[Iterator[tuple[str, bool]], tuple[int, int]]] = []
    trail: list[str] = []
    entries = _listing(fd)
    try:
        while True:
            child = None
            for name, is_dir in entries:
                if not is_dir:
                    yield fd, name, False
                    continue
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    yield fd, name, True  # cannot be entered: judged as it is
                    continue
                st = os.fstat(fd)
                levels.append((entries, (st.st_dev, st.st_ino)))
                trail.append(name)
                break
            if child is not None:
                os.close(fd)
                fd = child
                entries = _listing(fd)
                continue
            if not trail:
                return
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            entries, identity = levels.pop()
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != identity:
                return  # the tree moved under the walk: leave the rest
            yield fd, trail.pop(), True
    finally:
        os.close(fd)


def _listing(fd: int) -> Iterator[tuple[str, bool]]:
    """The names in the directory `fd`, read once, each with whether it is a directory."""
    try:
        with os.scandir(fd) as found:
            listed = [(e.name, e.is_dir(follow_symlinks=False)) for e in found]
    except OSError:
        listed = []
    return iter(listed)


def tree_bytes(path: Path) -> int:
    total = 0
    for fd, name, is_dir in _bottom_up(path):
        if not is_dir:
            with contextlib.suppress(OSError):
                total += os.stat(name, dir_fd=fd, follow_symlinks=False).st_size
    return total


def _remove_all(path: Path) -> int:
    """Remove `path` and everything below it, going on past what cannot be removed; how
    many entries are left."""
    left = 0
    for fd, name, is_dir in _bottom_up(path):
        try:
            if is_dir:
                os.rmdir(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            pass
        except OSError:
            left += 1
    with contextlib.suppress(FileNotFoundError):
        try:
            if path.is_symlink() or not path.is_dir():
                path.unlink()
            else:
                path.rmdir()
        except OSError:
            left += 1
    return left


def remove_tree(path: Path) -> int:
    """Remove `path` and return the bytes it held; unmount what is mounted below it first,
    and leave it (OSError) rather than remove through a mount."""
    for point in _mounts_below(path):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    left = _mounts_below(path)
    if left:
        raise OSError(f"{path} still has mounts below it: {', '.join(left)}")
    size = tree_bytes(path)
    _remove_all(path)
    return size


def _ours_and_ended(candidate: Path) -> bool:
    """A scratch directory of this user's whose cairn process has ended. Another user's
    (which this one may not even look into) is theirs to reclaim."""
    try:
        st = candidate.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            return False
        return (candidate / OWNER).exists() and not _owner_alive(candidate)
    except OSError:
        return False


def reclaim(root: Path) -> tuple[int, list[Path]]:
    """Remove the scratch directories under `root` whose cairn process has ended. Nothing
    here fails the command that reclaims: what cannot be removed is left for later."""
    freed, removed = 0, []
    try:
        candidates = sorted(root.glob("cairn-*"))
    except OSError:
        return 0, []
    for candidate in candidates:
        if _ours_and_ended(candidate):
            try:
                freed += remove_tree(candidate)
            except (OSError, RecursionError):
                continue
            if not os.path.lexists(candidate):
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
