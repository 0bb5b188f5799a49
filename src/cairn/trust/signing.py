"""Signing images where they are kept: in cairn's OCI layout, before a push carries the
signatures to a registry with the images.

Each image is signed twice over: its index digest (what `skopeo copy --all` and a
pull by tag verify) and every platform's manifest digest (what a runtime that
picked one platform verifies). A signature names the repository the image is
pushed to (cosign's docker-reference), so it is made for a destination.
"""

from __future__ import annotations

from collections.abc import Iterable

from cairn.errors import UsageError
from cairn.oci.attachments import attachment
from cairn.oci.image import Blob, Descriptor
from cairn.oci.layout import OciLayout, Staging, attachment_tag
from cairn.trust.keys import SigningKey
from cairn.trust.results import Signature
from cairn.trust.sigstore import merged_layers, signature_layer


def image_digests(layout: OciLayout, name: str) -> list[str]:
    """The index digest, then each platform's manifest digest."""
    refs = layout.refs()
    if name not in refs:
        raise UsageError(
            f"{name} is not built in {layout.root}.",
            f"Try: cairn build, then sign (the layout has {', '.join(sorted(refs)) or 'none'}).",
        )
    return [refs[name].digest, *(m.digest for m in layout.platform_manifests(name))]


def attached_layers(layout: OciLayout | Staging, manifest: Descriptor) -> list[Blob]:
    """The layers of an attachment manifest, each with its payload."""
    doc = layout.read_json(manifest.digest)
    return [
        Blob(layout.read_blob(d["digest"]), Descriptor.from_json(d)) for d in doc.get("layers", [])
    ]


def store(stage: Staging, name: str, tag: str, layers: list[Blob]) -> Descriptor:
    """An attachment manifest of `layers`, staged under image `name`'s `tag`."""
    made = attachment([(b.data, b.descriptor) for b in layers])
    for blob in (*made.blobs, made.manifest):
        stage.add(blob)
    stage.attach(name, tag, made.manifest.descriptor)
    return made.manifest.descriptor


def identities(repository: str, tags: Iterable[str]) -> list[str]:
    """Whom a signature names: the repository (as cosign signs) and REPOSITORY:TAG for each
    tag (as skopeo and podman sign, and as containers' policies that match a tag or remap
    a prefix, matchRepoDigestOrExact and remapIdentity, require)."""
    return [repository, *(f"{repository}:{t}" for t in tags)]


def sign_images(
    layout: OciLayout, images: Iterable[tuple[str, str, tuple[str, ...]]], key: SigningKey
) -> list[Signature]:
    """Sign each (image, REGISTRY/PREFIX/NAME, tags) in the layout, keeping other signers'
    signatures; what this key signed already is left as it is."""
    done: list[Signature] = []
    with layout.staging() as stage:
        for name, repository, tags in images:
            attached = layout.attachments(name)
            for digest in image_digests(layout, name):
                tag = attachment_tag(digest, "sig")
                existing = attached_layers(layout, attached[tag]) if tag in attached else []
                layers = [(b.data, b.descriptor) for b in existing]
                changed = False
                for identity in identities(repository, tags):
                    merged = merged_layers(
                        layers, signature_layer(key, identity, digest), key.public
                    )
                    if merged is not None:
                        layers, changed = merged, True
                    done.append(Signature(name, identity, digest, tag, merged is not None))
                if changed:
                    store(stage, name, tag, [Blob(data, d) for data, d in layers])
    return done
