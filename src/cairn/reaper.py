"""The watchman that outlives nothing: when cairn dies, what it started dies too.

cairn starts every engine in a session of its own (so that mmdebstrap's signals
to its process group never reach cairn). A SIGKILL of cairn would leave those
sessions running, re-parented to PID 1, and its scratch directories in memory.
So the first engine cairn starts also starts this small process, in a session
of its own too, reading a pipe from cairn:

    +session PID     an engine's session to end if cairn dies
    -session PID     it ended in time
    +dir PATH        scratch space to remove if cairn dies
    -dir PATH        removed by cairn

When the pipe closes (cairn exited, however it exited), every session still
listed gets SIGTERM, then SIGKILL after a grace period, and every directory
still listed is removed (never across a mount point). Then it exits.

    python -m cairn.reaper     (started by cairn.engines, never by hand)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

GRACE = 10.0  # seconds an engine has to clean up (mmdebstrap unmounts) before SIGKILL


# ---------------------------------------------------------------- cairn's side
_lock = threading.Lock()
_reaper: subprocess.Popen[str] | None = None


def _send(line: str, *, start: bool = True) -> None:
    global _reaper  # noqa: PLW0603 - one reaper per cairn process, started on first use
    with _lock:
        if _reaper is None and not start:
            return
        for _ in range(2):
            if _reaper is None or _reaper.poll() is not None:
                _reaper = subprocess.Popen(
                    [sys.executable, "-m", "cairn.reaper"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    text=True,
                    start_new_session=True,
                )
            pipe: IO[str] | None = _reaper.stdin
            try:
                assert pipe is not None
                pipe.write(line + "\n")
                pipe.flush()
                return
            except (BrokenPipeError, OSError):
                _reaper = None


def watch_session(pid: int) -> None:
    """End session `pid` (an engine started with start_new_session) if cairn dies first."""
    _send(f"+session {pid}")


def release_session(pid: int) -> None:
    _send(f"-session {pid}", start=False)


def watch_dir(path: Path) -> None:
    """Remove `path` (scratch space) if cairn dies before it does."""
    _send(f"+dir {path}")


def release_dir(path: Path) -> None:
    _send(f"-dir {path}", start=False)


# ---------------------------------------------------------------- the reaper's side
def session_members(sid: int) -> list[int]:
    """Every live process of session `sid` (field 6 of /proc/PID/stat)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        # fields[0] is the state (field 3); the session is field 6
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def end_sessions(sids: set[int], grace: float = GRACE) -> None:
    """SIGTERM to every process of every session, then SIGKILL to what is left after `grace`."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        pids = [pid for sid in sids for pid in session_members(sid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(session_members(sid) for sid in sids):
            time.sleep(0.1)


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    sessions: set[int] = set()
    dirs: set[str] = set()
    for line in sys.stdin:
        op, _, arg = line.rstrip("\n").partition(" ")
        if op == "+session":
            sessions.add(int(arg))
        elif op == "-session":
            sessions.discard(int(arg))
        elif op == "+dir":
            dirs.add(arg)
        elif op == "-dir":
            dirs.discard(arg)
    # cairn is gone: whatever it left is ours to end
    if sessions:
        end_sessions(sessions)
    from cairn.scratch import remove_tree  # noqa: PLC0415 - cairn.scratch imports this module

    for path in dirs:
        with contextlib.suppress(OSError):
            remove_tree(Path(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
