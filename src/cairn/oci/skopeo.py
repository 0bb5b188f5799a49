"""Copies between transports, done by skopeo."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from cairn.engines import require, run_logged, tail
from cairn.errors import BuildError
from cairn.oci import registry
from cairn.oci.access import Access, repository_of
from cairn.oci.layout import OciLayout
from cairn.oci.reference import ImageRef
from cairn.oci.registry import RetryPolicy
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
    access: Access | None = None,
    policy: RetryPolicy | None = None,
    operation: str = "copying",
) -> None:
    """skopeo copy [OPTIONS] SRC DST, choosing `platform` out of an index. A registry end
    is reached as `access` says (default: the environment's), skopeo handed the same
    certificates and credentials cairn's own client uses."""
    skopeo = require("skopeo", f"Copying {src} to {dst}")
    cmd = [skopeo, "copy", "--quiet", *options]
    if platform is not None:
        cmd += ["--override-os", platform.os, "--override-arch", platform.architecture]
        if platform.variant:
            cmd += ["--override-variant", platform.variant]
    with scratch_dir("skopeo") as tmp:
        remote = None
        lookup = None
        trust = None
        sides: tuple[tuple[Literal["src", "dest"], str], ...] = (("src", src), ("dest", dst))
        for side, ref in sides:
            if ref.startswith("docker://"):
                remote = ref.removeprefix("docker://")
                repository = repository_of(remote)
                host = (access or Access()).of(remote)
                cmd += host.skopeo_options(side, repository, Path(tmp))
                lookup = host.credential(repository)
                trust = host.trust
        cmd += [src, dst]
        if remote is not None:
            # a registry at one end: retries, a stall time-out, what the registry said
            registry.run(
                operation,
                remote,
                cmd,
                policy=policy,
                lookup=lookup,
                write=dst.startswith("docker://"),
                env=isolated_env(Path(tmp)),
                trust=trust,
            )
            return
        logfile = Path(tmp) / "skopeo.log"
        if run_logged(cmd, logfile) != 0:
            raise BuildError(
                f"Copying {src} to {dst} failed because skopeo reported an error:\n{tail(logfile)}",
                hint,
            )


def isolated_env(scratch: Path) -> dict[str, str]:
    """skopeo's environment, with Docker's config moved to an empty directory: skopeo is
    handed the credentials cairn found (its --authfile), and older ones (Debian 12's)
    would read ~/.docker/config.json after it, running its credential helpers again."""
    empty = scratch / "no-docker-config"
    empty.mkdir(exist_ok=True)
    return {**os.environ, "DOCKER_CONFIG": str(empty)}


def _source_options(ref: ImageRef) -> tuple[str, ...]:
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
