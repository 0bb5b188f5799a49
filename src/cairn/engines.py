"""Finding and running the external engines (mmdebstrap, skopeo, ...), echoing each command."""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from cairn.errors import EngineMissingError

log = logging.getLogger("cairn")

# program -> the Debian package that provides it
PACKAGES = {
    "mmdebstrap": "mmdebstrap",
    "mmtarfilter": "mmdebstrap",
    "skopeo": "skopeo",
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


def run_logged(
    cmd: Sequence[str],
    logfile: Path,
    *,
    env: dict[str, str] | None = None,
    stdout: Path | None = None,
) -> int:
    """Run `cmd`, stderr (and stdout unless redirected to a file) into `logfile`."""
    echo(cmd)
    with logfile.open("ab") as log_f:
        if stdout is None:
            return subprocess.run(
                cmd, stdout=log_f, stderr=subprocess.STDOUT, env=env, check=False
            ).returncode
        with stdout.open("wb") as out_f:
            return subprocess.run(cmd, stdout=out_f, stderr=log_f, env=env, check=False).returncode


def tail(logfile: Path, lines: int = 15) -> str:
    try:
        text = logfile.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])
