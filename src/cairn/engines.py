"""Finding and running the external engines (mmdebstrap, skopeo, ...), echoing each command."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from cairn import reaper
from cairn.cachedir import default_cache_dir
from cairn.errors import BuildError, EngineMissingError
from cairn.machine import package_of

log = logging.getLogger("cairn")


def require(program: str, purpose: str) -> str:
    """The program's path, or EngineMissingError saying which package brings it."""
    path = shutil.which(program)
    if path is None:
        raise EngineMissingError(
            f"{purpose} failed because '{program}' is not installed.",
            f"Try: cairn setup --install (as root), or apt-get install {package_of(program)}",
        )
    return path


def echo(cmd: Sequence[str]) -> None:
    log.info("+ %s", shlex.join(cmd))


_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()
GRACE = 30.0  # seconds an interrupted engine has to clean up (mmdebstrap unmounts its chroot)


class Stalled(Exception):
    """An engine made no progress (no byte read or written) for `seconds`; it was ended."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no progress for {seconds:.0f} s")
        self.seconds = seconds


def run_logged(
    cmd: Sequence[str],
    logfile: Path,
    *,
    env: dict[str, str] | None = None,
    stdin: Path | None = None,
    stdout: Path | None = None,
    stall_timeout: float | None = None,
) -> int:
    """Run `cmd`, stderr (and stdout unless redirected to a file) into `logfile`.

    Each engine runs in a session of its own: mmdebstrap signals its whole
    process group when it fails, which must not reach cairn or whoever
    started cairn. Ctrl-C reaches engines through `interrupt_all` (or, for the
    engine this thread waits for, directly); if cairn is killed, the reaper ends
    the session. With `stall_timeout`, an engine that reads and writes nothing
    for that long is ended and `Stalled` raised.
    """
    echo([*cmd, *(["<", str(stdin)] if stdin else [])])
    with contextlib.ExitStack() as files:
        log_f = files.enter_context(logfile.open("ab"))
        in_f = files.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
        out_f = files.enter_context(stdout.open("wb")) if stdout else log_f
        proc = subprocess.Popen(
            cmd, stdin=in_f, stdout=out_f, stderr=log_f, env=env, start_new_session=True
        )
        reaper.watch_session(proc.pid)
        with _live_lock:
            _live.add(proc)
        try:
            if stall_timeout is None:
                return proc.wait()
            return _wait_for_progress(proc, stall_timeout)
        except BaseException:
            # Ctrl-C, SIGTERM or an error in cairn: the engine must not go on alone
            stop(proc)
            raise
        finally:
            with _live_lock:
                _live.discard(proc)
            reaper.release_session(proc.pid)


def _io_bytes(sid: int) -> int | None:
    """Bytes the engine's session has read and written so far (any file or socket)."""
    total, readable = 0, False
    for pid in reaper.session_members(sid):
        try:
            text = Path(f"/proc/{pid}/io").read_text()
        except OSError:
            continue
        readable = True
        counts = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
        total += int(counts.get("rchar", 0)) + int(counts.get("wchar", 0))
    return total if readable else None


# What counts as progress: the Go runtime of a waiting skopeo still reads and writes a few
# bytes now and then (its wake-up pipe, a reconnect); a transfer moves kilobytes.
PROGRESS_BYTES = 4096


def _wait_for_progress(proc: subprocess.Popen[bytes], stall_timeout: float) -> int:
    mark, since = _io_bytes(proc.pid) or 0, time.monotonic()
    while True:
        try:
            return proc.wait(timeout=min(1.0, stall_timeout))
        except subprocess.TimeoutExpired:
            pass
        now, seen = time.monotonic(), _io_bytes(proc.pid)
        if seen is None or abs(seen - mark) >= PROGRESS_BYTES:
            mark, since = seen or mark, now
        elif now - since >= stall_timeout:
            stop(proc, grace=2.0)
            raise Stalled(now - since)


def stop(proc: subprocess.Popen[bytes], grace: float = GRACE) -> None:
    """SIGINT to the engine's process group, SIGKILL to it after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def interrupt_all() -> None:
    """Pass a Ctrl-C on to every running engine and wait for them to clean up."""
    with _live_lock:
        procs = list(_live)
    workers = [threading.Thread(target=stop, args=(p,)) for p in procs]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def tail(logfile: Path, lines: int = 15) -> str:
    try:
        text = logfile.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def keep_log(logfile: Path, cache_dir: Path | None, step: str) -> Path | None:
    """Copy a failed step's engine log out of scratch space (which is removed) for the user:
    `CACHE/logs/STEP-ENGINE-TIMESTAMP-PID.log` under the cache directory in use."""
    base = cache_dir or default_cache_dir()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = base / "logs" / f"{step}-{logfile.stem}-{stamp}-{os.getpid()}.log"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(logfile, target)
    except OSError:
        return None
    return target


# what an engine writes while cleaning up after itself, failed or not
CLEANUP_LOG = "cleanup.log"


@contextlib.contextmanager
def logs_kept(workdir: Path, cache_dir: Path | None, step: str) -> Iterator[None]:
    """When an engine fails in `workdir`, keep the log it wrote last and name it in the error
    (not the log of the clean-up that runs after a failure)."""
    try:
        yield
    except BuildError as error:
        logs = sorted(
            (p for p in workdir.rglob("*.log") if p.name != CLEANUP_LOG),
            key=lambda p: p.stat().st_mtime,
        )
        kept = keep_log(logs[-1], cache_dir, step) if logs else None
        if kept is not None:
            error.message += f"\nThe whole log: {kept}"
        raise
