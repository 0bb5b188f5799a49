"""Copies between transports, done by skopeo."""

from __future__ import annotations

import os
from pathlib import Path

from cairn.engines import require, run_logged, tail
from cairn.errors import BuildError
from cairn.oci import registry
from cairn.oci.layout import OciLayout
from cairn.oci.reference import ImageRef, is_local
from cairn.platforms import Platform, native_platform
from cairn.scratch import scratch_dir

# the name an image copied into a private layout goes by there
COPIED = "image"


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
    remote = next((ref for ref in (src, dst) if ref.startswith("docker://")), None)
    if remote is not None:
        # a registry at one end: retries, a stall time-out, what the registry said
        registry.run("copying", remote.removeprefix("docker://"), cmd)
        return
    with scratch_dir("skopeo") as tmp:
        logfile = Path(tmp) / "skopeo.log"
        if run_logged(cmd, logfile) != 0:
            raise BuildError(
                f"Copying {src} to {dst} failed because skopeo reported an error:\n{tail(logfile)}",
                hint,
            )


def _source_options(ref: ImageRef) -> tuple[str, ...]:
    if ref.transport == "docker" and is_local(ref.target):
        return ("--src-tls-verify=false",)
    if ref.transport == "docker-daemon" and os.environ.get("DOCKER_HOST"):
        # skopeo reads no DOCKER_HOST of its own
        return ("--src-daemon-host", os.environ["DOCKER_HOST"])
    return ()


def into_layout(ref: ImageRef, platform: Platform | None, directory: Path) -> OciLayout:
    """The image `ref` names (a registry's, a daemon's, an archive's), copied with its blobs as
    they are into an OCI layout at `directory`, named COPIED there; `platform` (else this
    machine's) picks one out of an index."""
    copy(
        str(ref),
        f"oci:{directory}:{COPIED}",
        platform or native_platform(),
        options=_source_options(ref),
        hint="Try: check the reference (and --platform for a multi-arch image).",
    )
    return OciLayout(directory)
