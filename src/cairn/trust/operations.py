"""The trust commands' operations, between the CLI and the modules that do the work."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cairn.errors import ImageRefError, UsageError
from cairn.family.jobs import BuildOptions, plan_jobs
from cairn.family.publish import built_layout, check_destination, publish
from cairn.family.results import PushedImage
from cairn.family.spec import load_family
from cairn.measure.vex import load_advisories
from cairn.oci.access import Access
from cairn.oci.attachments import Registries, fetch, fetch_attachments
from cairn.oci.layout import OciLayout, existing_layout
from cairn.oci.reference import parse_ref
from cairn.oci.registry import RetryPolicy
from cairn.scratch import disk_root, scratch_dir
from cairn.trust.attesting import sign_and_attest
from cairn.trust.bundle import open_parts, read_bundle
from cairn.trust.keys import PublicKey, SigningKey
from cairn.trust.results import SignResult, VerifiedImage, VerifyResult
from cairn.trust.verify import verify_image
from cairn.untrusted import json_object

# what `cairn verify` takes for a bundle rather than an image reference
BUNDLE_NAMES = (".tar.zst", ".parts")


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
    access: Access,
    say: Callable[[str], None],
    policy: RetryPolicy | None = None,
    advisories: tuple[str, ...] = (),
) -> list[PushedImage]:
    """`cairn push --sign-key`: sign and attest in the store, then push it all."""
    sign_family(family_dir, opts, destination, key, say=say, advisories=advisories)
    family = load_family(family_dir)
    return publish(family, opts, destination, access=access, say=say, policy=policy)


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
        doc = json_object(top.blobs[0].data, target)
        digests = [top.descriptor.digest, *(m["digest"] for m in doc.get("manifests") or [])]
        fetch_attachments(stage, client, path, name, digests)


def _targets(
    text: str, tmp: Path, registries: Registries, key: PublicKey
) -> list[tuple[OciLayout, str]]:
    """The layout and image names `text` names: a registry's image is first read into
    `tmp`, a bundle unpacked there (and its manifest, signature and checksums checked)."""
    if not text.startswith(("oci:", "docker://")) and Path(text).name.endswith(BUNDLE_NAMES):
        with open_parts(Path(text)) as stream:
            opened = read_bundle(stream, key, tmp, keep_layers=False)
        return [(opened.layout, i.name) for i in opened.images]
    ref = parse_ref(text)
    if ref.transport == "docker":
        from_registry(ref.target, tmp / "oci", registries)
        layout = OciLayout(tmp / "oci")
        return [(layout, next(iter(layout.refs())))]
    if ref.transport != "oci":
        raise UsageError(
            f"cairn verify reads a registry, an OCI layout or a bundle, not {ref.transport}:.",
            "Try: docker://REGISTRY/REPO:TAG, oci:DIR:NAME or FILE.tar.zst.",
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
    return [(layout, name)]


def verify_references(references: list[str], key: PublicKey, *, access: Access) -> VerifyResult:
    """Each image verified where it is: oci:DIR:NAME, docker://REGISTRY/REPO:TAG (its
    manifests and attachments read into a scratch layout, no layer), or every image of a
    bundle FILE.tar.zst (or FILE.parts)."""
    images = []
    with Registries(access) as registries:
        for text in references:
            with scratch_dir("verify", disk_root()) as tmp:
                # a registry's image is read without its layers; a layout's are hashed, every
                # one (a bundle's were, as they were taken)
                with_blobs = text.startswith("oci:")
                for layout, name in _targets(text, Path(tmp), registries, key):
                    checks = verify_image(layout, name, key, blobs=with_blobs)
                    label = text if text.startswith(("oci:", "docker://")) else f"{text}:{name}"
                    images.append(VerifiedImage(label, layout.refs()[name].digest, checks))
    verified = all(c.ok for i in images for c in i.checks)
    return VerifyResult(key.fingerprint, verified, images)
