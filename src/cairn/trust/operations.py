"""The trust commands' operations, between the CLI and the modules that do the work."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from cairn.errors import ImageRefError, UsageError
from cairn.family.jobs import BuildOptions, plan_jobs
from cairn.family.publish import built_layout, check_destination, publish
from cairn.family.results import PushedImage
from cairn.family.spec import load_family
from cairn.measure.vex import load_advisories
from cairn.oci.attachments import Registries, fetch, stage_fetched
from cairn.oci.layout import OciLayout, existing_layout
from cairn.oci.reference import parse_ref
from cairn.oci.registry import RetryPolicy
from cairn.scratch import scratch_dir
from cairn.trust.attesting import sign_and_attest
from cairn.trust.keys import PublicKey, SigningKey
from cairn.trust.results import SignResult, VerifiedImage, VerifyResult
from cairn.trust.sigstore import referrers_tag, tag_for
from cairn.trust.verify import verify_image


def sign_family(
    family_dir: Path,
    opts: BuildOptions,
    destination: str,
    key: SigningKey,
    *,
    say: Callable[[str], None],
    advisories: tuple[str, ...] = (),
) -> SignResult:
    """Sign and attest the chosen images (all by default) for DESTINATION in the family's
    store, where `cairn push` and `cairn bundle` find them; with `advisories`, an OpenVEX
    statement of each platform too."""
    family = load_family(family_dir)
    dest = check_destination(destination)
    layout = built_layout(family, opts)
    names = list(dict.fromkeys(image.name for image, _ in plan_jobs(family, opts)))
    say(f"signing and attesting {len(names)} images for {dest} with {key.public.fingerprint}")
    documents = load_advisories(list(advisories)) if advisories else None
    return sign_and_attest(family, layout, names, dest, key, advisories=documents)


def push_signed(
    family_dir: Path,
    opts: BuildOptions,
    destination: str,
    key: SigningKey,
    *,
    insecure: bool,
    say: Callable[[str], None],
    policy: RetryPolicy | None = None,
    advisories: tuple[str, ...] = (),
) -> list[PushedImage]:
    """`cairn push --sign-key`: sign and attest in the store, then push it all."""
    sign_family(family_dir, opts, destination, key, say=say, advisories=advisories)
    family = load_family(family_dir)
    return publish(family, opts, destination, insecure=insecure, say=say, policy=policy)


def _registry_reference(target: str) -> tuple[str, str]:
    """REGISTRY/REPO:TAG or REGISTRY/REPO@DIGEST -> (REGISTRY/REPO, TAG or DIGEST)."""
    if "@" in target:
        repository, _, reference = target.partition("@")
        return repository, reference
    head, _, last = target.rpartition("/")
    name, sep, tag = last.partition(":")
    return f"{head}/{name}", tag if sep else "latest"


def from_registry(target: str, into: Path, registries: Registries) -> None:
    """The image REGISTRY/REPO:TAG names, its manifests and everything attached to them (no
    layers), into a layout at `into`, as image NAME (the repository's last part)."""
    repository, reference = _registry_reference(target)
    client, path = registries.of(repository)
    top = fetch(client, path, reference, with_blobs=False)
    if top is None:
        raise ImageRefError(
            f"{target} is not in the registry.", "Try: skopeo list-tags docker://REPOSITORY"
        )
    name = repository.rsplit("/", 1)[1]
    layout = OciLayout(into)
    with layout.staging() as stage:
        for blob in top.blobs:
            stage.add(blob)
        stage.set_ref(name, top.descriptor)
        doc = json.loads(top.blobs[0].data)
        digests = [top.descriptor.digest, *(m["digest"] for m in doc.get("manifests", []))]
        tags = set(client.tags(path))
        for digest in digests:
            for tag in (tag_for(digest, "sig"), tag_for(digest, "att"), referrers_tag(digest)):
                if tag in tags:
                    fetched = fetch(client, path, tag)
                    if fetched is not None:
                        stage_fetched(stage, name, tag, fetched)


def _target(text: str, tmp: Path, registries: Registries) -> tuple[OciLayout, str]:
    """The layout and image name `text` names; a registry's image is first read into `tmp`."""
    ref = parse_ref(text)
    if ref.transport == "docker":
        from_registry(ref.target, tmp / "oci", registries)
        layout = OciLayout(tmp / "oci")
        return layout, next(iter(layout.refs()))
    if ref.transport != "oci":
        raise UsageError(
            f"cairn verify reads a registry or an OCI layout, not {ref.transport}:.",
            "Try: docker://REGISTRY/REPO:TAG or oci:DIR:NAME.",
        )
    layout = existing_layout(
        ref.path, "Verifying failed: ", "Try: oci:DIR:NAME, DIR a cairn store.", ImageRefError
    )
    names = sorted(layout.refs())
    name = ref.name or (names[0] if len(names) == 1 else "")
    if name not in names:
        raise ImageRefError(
            f"{text} names no image of the layout.",
            f"Try: oci:{ref.path}:NAME with NAME one of {', '.join(names) or '-'}.",
        )
    return layout, name


def verify_references(references: list[str], key: PublicKey, *, insecure: bool) -> VerifyResult:
    """Each image verified where it is: oci:DIR:NAME, or docker://REGISTRY/REPO:TAG (its
    manifests and attachments read into a scratch layout, no layer)."""
    images = []
    registries = Registries(insecure)
    for text in references:
        with scratch_dir("verify") as tmp:
            layout, name = _target(text, Path(tmp), registries)
            checks = verify_image(layout, name, key)
            images.append(VerifiedImage(text, layout.refs()[name].digest, checks))
    verified = all(c.ok for i in images for c in i.checks)
    return VerifyResult(key.fingerprint, verified, images)
