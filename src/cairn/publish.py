"""Publishing: the family's images from the OCI layout to a registry, or into a Docker engine.

skopeo copies each image as its multi-arch index with digests preserved (the
registry holds exactly what the layout holds) and asks the registry for every
blob before uploading it, so what is already there is not sent again. Parents
go first: their layers are then present when a child's are checked. A tag is
written only after all of its image's blobs and manifests are in, so a failed
push never moves a tag to a partial image.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cairn.engines import require, run_logged, tail
from cairn.errors import BuildError, UsageError
from cairn.oci import skopeo
from cairn.oci.layout import OciLayout
from cairn.platforms import Platform
from cairn.results import PushedImage
from cairn.spec import Family, Image

_DESTINATION = re.compile(r"^[a-z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_TRANSIENT = re.compile(
    r"connection refused|i/o timeout|timeout|TLS handshake|connection reset|EOF|"
    r"503 Service Unavailable|502 Bad Gateway|504 Gateway|429 Too Many",
    re.IGNORECASE,
)
DELAYS = (1.0, 2.0, 4.0)  # seconds before the 2nd, 3rd and 4th attempts


def check_destination(destination: str) -> str:
    """REGISTRY[:PORT]/PREFIX, lower case, without a transport or tag."""
    dest = destination.removeprefix("docker://").rstrip("/")
    if not _DESTINATION.match(dest):
        raise UsageError(
            f"{destination!r} is not a registry and prefix.",
            "Try: REGISTRY/PREFIX such as 127.0.0.1:5000/qapm or ghcr.io/acme/base-images.",
        )
    return dest


def push_images(
    family: Family,
    layout: OciLayout,
    images: tuple[Image, ...],
    destination: str,
    *,
    insecure: bool,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> list[PushedImage]:
    """Push each image (parents first) under every tag its spec gives."""
    skopeo_bin = require("skopeo", f"Pushing to {destination}")
    dest = check_destination(destination)
    refs = layout.refs() if layout.exists() else {}
    missing = [i.name for i in images if i.name not in refs]
    if missing:
        raise UsageError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not built in "
            f"{layout.root}.",
            f"Try: cairn build {family.directory} --push {destination} (builds, then pushes).",
        )
    pushed = []
    for image in images:
        digest = refs[image.name].digest
        for tag in image.tags:
            target = f"docker://{dest}/{image.name}:{tag}"
            say(f"pushing {image.name} to {target.removeprefix('docker://')}")
            cmd = [skopeo_bin, "copy", "--all", "--preserve-digests", "--quiet"]
            if insecure:
                cmd.append("--dest-tls-verify=false")
            _with_retries([*cmd, f"oci:{layout.root}:{image.name}", target], target, sleep)
        pushed.append(PushedImage(image.name, f"{dest}/{image.name}", digest, list(image.tags)))
    return pushed


def _with_retries(cmd: list[str], target: str, sleep: Callable[[float], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="cairn-push-") as tmp:
        log = Path(tmp) / "skopeo.log"
        for attempt in range(len(DELAYS) + 1):
            log.write_text("")
            if run_logged(cmd, log) == 0:
                return
            said = tail(log)
            if not _TRANSIENT.search(said) or attempt == len(DELAYS):
                raise _push_error(target, said, attempt + 1)
            sleep(DELAYS[attempt])
    raise AssertionError("unreachable")


def _push_error(target: str, said: str, attempts: int) -> BuildError:
    where = target.removeprefix("docker://")
    tried = f" (tried {attempts} times, waiting 1, 2 and 4 s between)" if attempts > 1 else ""
    if "server gave HTTP response to HTTPS client" in said:
        return BuildError(
            f"Pushing to {where} failed: the registry speaks plain HTTP.",
            "Try: --insecure, for a registry you trust on a private network (e.g. 127.0.0.1).",
        )
    if re.search(r"unauthorized|denied|authentication required", said, re.IGNORECASE):
        return BuildError(
            f"Pushing to {where} was refused: the registry wants credentials:\n{said}",
            "Try: skopeo login REGISTRY (cairn uses the same credentials), then push again.",
        )
    if re.search(r"connection refused", said, re.IGNORECASE):
        return BuildError(
            f"Pushing to {where} failed: nothing accepts connections there{tried}.",
            "Try: check the registry's address and port, and that it is running.",
        )
    if re.search(r"timeout", said, re.IGNORECASE):
        return BuildError(
            f"Pushing to {where} timed out{tried}:\n{said}",
            "Try: check the network path to the registry, then push again.",
        )
    return BuildError(f"Pushing to {where} failed{tried}; skopeo said:\n{said}")


def load_image(
    layout: OciLayout, image: Image, platform: Platform, say: Callable[[str], None]
) -> str:
    """One platform of an image into the Docker engine DOCKER_HOST names (or the default)."""
    ref = f"{image.name}:{image.tags[0]}"
    host = os.environ.get("DOCKER_HOST")
    say(f"loading {image.name} {platform.name} into Docker as {ref}")
    skopeo.copy(
        f"oci:{layout.root}:{image.name}",
        f"docker-daemon:{ref}",
        platform,
        options=("--dest-daemon-host", host) if host else (),
        hint="Try: check that the Docker engine runs (docker info) and DOCKER_HOST.",
    )
    return ref
