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
from collections.abc import Sequence
from pathlib import Path

from cairn.errors import EngineMissingError

log = logging.getLogger("cairn")

# program -> the Debian package that provides it
PACKAGES = {
    "mmdebstrap": "mmdebstrap",
    "mmtarfilter": "mmdebstrap",
    "skopeo": "skopeo",
    "pigz": "pigz",
    "buildah": "buildah",
    "qemu-aarch64-static": "qemu-user-static",
}


def require(program: str, purpose: str) -> str:
    """The program's path, or EngineMissingError saying which package brings it."""
    path = shutil.which(program)
    if path is None:
        package = PACKAGES.get(program, program)
        raise EngineMissingError(
            f"{purpose} failed because '{program}' is not installed.",
            f"Try: apt-get install {package}",
        )
    return path


def echo(cmd: Sequence[str]) -> None:
    log.info("+ %s", shlex.join(cmd))


_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


def run_logged(
    cmd: Sequence[str],
    logfile: Path,
    *,
    env: dict[str, str] | None = None,
    stdin: Path | None = None,
    stdout: Path | None = None,
) -> int:
    """Run `cmd`, stderr (and stdout unless redirected to a file) into `logfile`.

    Each engine runs in a session of its own: mmdebstrap signals its whole
    process group when it fails, which must not reach cairn or whoever
    started cairn. Ctrl-C reaches engines through `interrupt_all` instead.
    """
    echo([*cmd, *(["<", str(stdin)] if stdin else [])])
    with contextlib.ExitStack() as files:
        log_f = files.enter_context(logfile.open("ab"))
        in_f = files.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
        out_f = files.enter_context(stdout.open("wb")) if stdout else log_f
        proc = subprocess.Popen(
            cmd, stdin=in_f, stdout=out_f, stderr=log_f, env=env, start_new_session=True
        )
        with _live_lock:
            _live.add(proc)
        try:
            return proc.wait()
        finally:
            with _live_lock:
                _live.discard(proc)


def interrupt_all() -> None:
    """Pass a Ctrl-C on to every running engine and wait for them to clean up."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def tail(logfile: Path, lines: int = 15) -> str:
    try:
        text = logfile.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def keep_log(logfile: Path, name: str) -> Path | None:
    """Copy a failed engine's log out of scratch space (which is removed) for the user."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    target = Path(base) / "cairn" / "logs" / name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(logfile, target)
    except OSError:
        return None
    return target
