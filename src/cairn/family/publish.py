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
from collections.abc import Callable

from cairn.engines import require
from cairn.errors import UsageError
from cairn.family.jobs import BuildOptions, plan_jobs
from cairn.family.results import PushedImage
from cairn.family.spec import Family, Image
from cairn.oci import skopeo
from cairn.oci.access import Access
from cairn.oci.attachments import Registries, push_attachments
from cairn.oci.layout import OciLayout, layout_named
from cairn.oci.reference import parse_ref
from cairn.oci.registry import RetryPolicy
from cairn.platforms import Platform, native_platform

_DESTINATION = re.compile(r"^[a-z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")


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
    access: Access,
    say: Callable[[str], None],
    policy: RetryPolicy | None = None,
) -> list[PushedImage]:
    """Push each image (parents first) under every tag its spec gives, what is attached to
    it in the layout (signatures, attestations) first; transient registry failures are
    retried as `policy` (default: from the environment) says."""
    policy = policy or RetryPolicy.from_env()
    require("skopeo", f"Pushing to {destination}")
    dest = check_destination(destination)
    refs = layout.refs() if layout.exists() else {}
    missing = [i.name for i in images if i.name not in refs]
    if missing:
        raise UsageError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not built in "
            f"{layout.root}.",
            f"Try: cairn build {family.directory} --push {destination} (builds, then pushes).",
        )
    with Registries(access, policy) as registries:
        return [
            push_one(layout, image.name, image.tags, dest, registries, say=say) for image in images
        ]


def push_one(
    layout: OciLayout,
    name: str,
    tags: tuple[str, ...],
    destination: str,
    registries: Registries,
    *,
    say: Callable[[str], None],
    as_kept: bool = False,
) -> PushedImage:
    """Image `name` of the layout to DESTINATION/NAME under each tag, what is attached to it
    first: a tag never names an image whose signatures are not there yet. Only the
    signatures that name DESTINATION/NAME go, unless `as_kept` (a bundle's)."""
    repository = f"{destination}/{name}"
    attached = push_attachments(layout, name, repository, registries, as_kept=as_kept)
    index = layout.refs()[name]
    if not tags:  # a bundle may name an image with no tag: its attachments only
        return PushedImage(name, repository, index.digest, [], attached)
    say(f"pushing {name} to {repository}:{tags[0]}")
    skopeo.copy(
        f"oci:{layout.root}:{name}",
        f"docker://{repository}:{tags[0]}",
        options=("--all", "--preserve-digests"),
        access=registries.access,
        policy=registries.policy,
        operation="pushing",
    )
    # the image is there: each other tag is its index's bytes, put once more
    client, path = registries.of(repository)
    data = layout.read_blob(index.digest)
    for tag in tags[1:]:
        say(f"tagging {repository}:{tag}")
        client.put_manifest(path, tag, data, index.media_type)
    return PushedImage(name, repository, index.digest, list(tags), attached)


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


def built_layout(family: Family, opts: BuildOptions) -> OciLayout:
    return layout_named(
        parse_ref(opts.output or family.output), "Pushing and loading read images from"
    )


def publish(
    family: Family,
    opts: BuildOptions,
    destination: str,
    *,
    access: Access,
    say: Callable[[str], None],
    policy: RetryPolicy | None = None,
) -> list[PushedImage]:
    """Push the chosen images (all by default), parents first."""
    images = tuple(dict.fromkeys(image for image, _ in plan_jobs(family, opts)))
    layout = built_layout(family, opts)
    return push_images(
        family,
        layout,
        images,
        destination,
        access=access,
        say=say,
        policy=policy,
    )


def load_all(family: Family, opts: BuildOptions, *, say: Callable[[str], None]) -> list[str]:
    """Load each chosen image into Docker: one platform, the host's unless --platform names one."""
    layout = built_layout(family, opts)
    jobs = plan_jobs(family, opts)
    if not opts.platforms:
        host = native_platform()
        jobs = tuple((i, p) for i, p in jobs if p == host)
    if len({p for _, p in jobs}) > 1:
        raise UsageError(
            "--load puts one platform of each image into Docker, and several were chosen.",
            "Try: --platform linux/amd64 (or leave it out for this machine's platform).",
        )
    return [load_image(layout, image, platform, say) for image, platform in jobs]
