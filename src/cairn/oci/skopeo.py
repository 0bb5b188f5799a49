"""Copies between transports, done by skopeo."""

from __future__ import annotations

import tempfile
from pathlib import Path

from cairn.engines import require, run_logged, tail
from cairn.errors import BuildError
from cairn.platforms import Platform


def copy(
    src: str,
    dst: str,
    platform: Platform | None = None,
    *,
    options: tuple[str, ...] = (),
    hint: str = "Try: check the destination path and free space, then run again.",
) -> None:
    """skopeo copy [OPTIONS] SRC DST, choosing `platform` out of an index."""
    skopeo = require("skopeo", f"Copying {src} to {dst}")
    cmd = [skopeo, "copy", "--quiet", *options]
    if platform is not None:
        cmd += ["--override-os", platform.os, "--override-arch", platform.architecture]
        if platform.variant:
            cmd += ["--override-variant", platform.variant]
    cmd += [src, dst]
    with tempfile.TemporaryDirectory(prefix="cairn-skopeo-") as tmp:
        logfile = Path(tmp) / "skopeo.log"
        if run_logged(cmd, logfile) != 0:
            raise BuildError(
                f"Copying {src} to {dst} failed because skopeo reported an error:\n{tail(logfile)}",
                hint,
            )
