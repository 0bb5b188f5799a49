"""`cairn bundle` and `cairn unbundle`: the family's signed images across an air gap.

A bundle is made from the family's store, or from the registry the images were pushed
to (each image copied with its digests, its attachments read byte for byte); both give
the same file for the same images. Unbundling checks everything (the manifest's
signature, every checksum, every image's signatures and attestations) before it
pushes anything; then it reads the bundle again, sending each layer to the registry
as it is read (the images' attachments beside them), and last each image's manifests
and tags.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import IO

from cairn.errors import CairnError, StoreError, UsageError, VerificationError
from cairn.family.jobs import BuildOptions, plan_jobs
from cairn.family.publish import built_layout, check_destination, push_one
from cairn.family.results import PushedImage
from cairn.family.spec import Family, load_family
from cairn.oci import skopeo
from cairn.oci.access import Access
from cairn.oci.attachments import Registries, fetch_attachments, push_attachments, push_manifest
from cairn.oci.image import ANN_CREATED
from cairn.oci.layout import OciLayout, new_file_mode
from cairn.scratch import disk_root, scratch_dir
from cairn.trust.bundle import (
    BundledImage,
    BundleReader,
    Opened,
    open_parts,
    signed_prefixes,
    write_bundle,
    write_parts,
)
from cairn.trust.keys import PublicKey, SigningKey
from cairn.trust.verify import first_failure, verify_image
from cairn.untrusted import json_object


def _from_registry(
    family: Family, names: list[str], source: str, into: Path, registries: Registries
) -> OciLayout:
    """Each image (every platform, digests kept) and its attachments, from SOURCE/NAME."""
    layout = OciLayout(into)
    for name in names:
        tag = family.image(name).tags[0]
        skopeo.copy(
            f"docker://{source}/{name}:{tag}",
            f"oci:{into}:{name}",
            options=("--all", "--preserve-digests"),
            access=registries.access,
        )
    with layout.staging() as stage:
        for name in names:
            client, path = registries.of(f"{source}/{name}")
            index = layout.refs()[name].digest
            digests = [index, *(m.digest for m in layout.platform_manifests(name))]
            fetch_attachments(stage, client, path, name, digests)
    return layout


@contextlib.contextmanager
def _written(out: Path) -> Iterator[IO[bytes]]:
    """A new temporary file beside `out` (made with O_EXCL: never one planted there, nor
    through a link), renamed to it when the block succeeds."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    except OSError as e:
        raise StoreError(f"Writing {out} failed: {e.strerror}.") from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        tmp.chmod(new_file_mode())
        tmp.replace(out)
    except OSError as e:
        raise StoreError(f"Writing {out} failed: {e.strerror}.") from None
    finally:
        tmp.unlink(missing_ok=True)


def make_bundle(
    family_dir: Path,
    opts: BuildOptions,
    out: Path,
    key: SigningKey,
    *,
    source: str | None,
    access: Access,
    part_size: int | None,
    made_for: str | None = None,
) -> list[Path]:
    """The bundle of the chosen images, from the store or from SOURCE (REGISTRY/PREFIX),
    with the signatures made for `made_for` (REGISTRY/PREFIX; default SOURCE, or the one
    destination the store's signatures name)."""
    family = load_family(family_dir)
    names = list(dict.fromkeys(image.name for image, _ in plan_jobs(family, opts)))
    with scratch_dir("bundle") as tmp:
        if source is None:
            layout = built_layout(family, opts)
        else:
            with Registries(access) as registries:
                layout = _from_registry(
                    family, names, check_destination(source), Path(tmp) / "oci", registries
                )
        refs = layout.refs()
        missing = [n for n in names if n not in refs]
        if missing:
            raise UsageError(
                f"{', '.join(missing)} not built in {layout.root}.",
                f"Try: cairn build {family.directory}, cairn sign, then bundle.",
            )
        # what unbundle will refuse is refused here, on this side of the air gap (the
        # blobs' bytes are checked once, as write_bundle hashes each against its name)
        for name in names:
            failed = first_failure(verify_image(layout, name, key.public, blobs=False))
            if failed is not None:
                raise VerificationError(
                    f"{name} is not bundled: its {failed.check} of {failed.subject}: "
                    f"{failed.detail}.",
                    "Try: cairn sign (or push --sign-key) with this key first.",
                )
        prefix = _identity(layout, names, made_for or source)
        images = [BundledImage(n, refs[n].digest, family.image(n).tags) for n in names]
        with _written(out) as f:
            write_bundle(layout, images, key, f, prefix)
    return write_parts(out, part_size) if part_size else [out]


def _identity(layout: OciLayout, names: list[str], chosen: str | None) -> str:
    """The REGISTRY/PREFIX whose signatures the bundle carries: the one chosen, else the
    one the store's signatures name; every image must have some for it."""
    per_image = signed_prefixes(layout, names)
    named = set().union(*per_image.values())
    if chosen is None:
        if len(named) != 1:
            raise UsageError(
                f"The images are signed for {len(named)} destinations "
                f"({', '.join(sorted(named)) or 'none'}), and a bundle carries the signatures "
                "of one.",
                "Try: --for REGISTRY/PREFIX, the one the customer's policy expects.",
            )
        return named.pop()
    prefix = check_destination(chosen)
    unsigned = [n for n in names if prefix not in per_image[n]]
    if unsigned:
        raise VerificationError(
            f"{', '.join(unsigned)} {'has' if len(unsigned) == 1 else 'have'} no signature "
            f"for {prefix}.",
            f"Try: cairn sign ... {prefix} (or push --sign-key to it) first.",
        )
    return prefix


@contextlib.contextmanager
def _nothing_pushed() -> Iterator[None]:
    """A failure while the bundle is checked says that the registry was not touched."""
    try:
        yield
    except CairnError as e:
        e.message += " Nothing was pushed."
        raise


@contextlib.contextmanager
def _no_image_pushed() -> Iterator[None]:
    """A failure while layers are sent says that no image was pushed, nor its tags moved."""
    try:
        yield
    except CairnError as e:
        e.message += (
            " No image was pushed and no image's tag moved (signatures and attestations "
            "may be there, under tags named by the images' digests); the layers sent "
            "before are unreferenced blobs, which the registry's garbage collection removes."
        )
        raise


def _check_images(opened: Opened, key: PublicKey) -> None:
    refs = opened.layout.refs()
    for image in opened.images:
        if image.name not in refs or refs[image.name].digest != image.digest:
            raise VerificationError(
                f"The bundle is refused: its layout does not hold {image.name} at "
                f"{image.digest}, which its manifest names."
            )
        # read_bundle took every file at its signed checksum: no blob is hashed twice
        failed = first_failure(verify_image(opened.layout, image.name, key, blobs=False))
        if failed is not None:
            raise VerificationError(
                f"The bundle is refused: {image.name}'s {failed.check} of "
                f"{failed.subject}: {failed.detail}.",
                "Try: bundle the images again after cairn sign, with the same key.",
            )


def _created(doc: dict[str, object]) -> datetime | None:
    """An index's org.opencontainers.image.created, if it names a time."""
    annotations = doc.get("annotations")
    value = annotations.get(ANN_CREATED) if isinstance(annotations, dict) else None
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _refuse_rollback(opened: Opened, dest: str, registries: Registries) -> None:
    """No tag moves back: where the destination's tag already names an image created after
    the bundle's (org.opencontainers.image.created, the family's source date), the bundle
    is refused, naming both. An older signed bundle cannot undo a newer one's fixes."""
    for image in opened.images:
        ours = _created(opened.layout.read_json(image.digest))
        client, path = registries.of(f"{dest}/{image.name}")
        for tag in image.tags:
            there = client.get_manifest(path, tag)
            if there is None or ours is None:
                continue
            try:
                theirs = _created(json_object(there[1], f"{dest}/{image.name}:{tag}"))
            except ValueError:
                continue  # not ours to judge: the push replaces it
            digest = "sha256:" + hashlib.sha256(there[1]).hexdigest()
            if theirs is not None and theirs > ours and digest != image.digest:
                raise VerificationError(
                    f"The bundle is refused: it would move {dest}/{image.name}:{tag} back from "
                    f"{digest} (created {theirs.isoformat()}) to the older {image.digest} "
                    f"(created {ours.isoformat()}).",
                    "Try: unbundle the newer bundle, or --allow-rollback when going back is "
                    "meant (a newer image that broke something).",
                )


PUSHING_AT_ONCE = 4


def unbundle(
    bundle: Path,
    destination: str,
    key: PublicKey,
    *,
    access: Access,
    say: Callable[[str], None],
    allow_rollback: bool = False,
) -> list[PushedImage]:
    dest = check_destination(destination)
    with scratch_dir("unbundle", disk_root()) as tmp, Registries(access) as registries:
        # first the whole bundle is checked, its documents kept, its layers hashed and
        # dropped: a bundle damaged anywhere is refused before the registry is touched
        with _nothing_pushed():
            with open_parts(bundle) as stream:
                first = BundleReader(stream, key, Path(tmp))
                opened = first.documents()
                carried = set()
                for digest, _, chunks in first.layers():
                    carried.add(digest)
                    for _ in chunks:
                        pass
            _check_images(opened, key)
            if opened.layers_apart:
                _check_layers(opened, carried)
            if not allow_rollback:
                _refuse_rollback(opened, dest, registries)
        if not opened.layers_apart:  # an older bundle: every file is in scratch
            say(f"{bundle.name}: {len(opened.images)} images, every check passed")
            return [
                push_one(opened.layout, i.name, i.tags, dest, registries, say=say, as_kept=True)
                for i in opened.images
            ]
        # read again (the same checks: the file may have changed since), each layer sent
        # as it is read, while the images' attachments go beside it; then each image's
        # manifests and tags. Scratch holds the documents only
        with (
            _no_image_pushed(),
            ThreadPoolExecutor(PUSHING_AT_ONCE) as pool,
            _cancelled_on_failure(pool),
        ):
            with open_parts(bundle) as stream:
                again = BundleReader(stream, key, Path(tmp))
                again.check_again(first)
                attach = functools.partial(push_attachments, opened.layout, as_kept=True)
                attaching = [
                    pool.submit(attach, i.name, f"{dest}/{i.name}", registries)
                    for i in opened.images
                ]
                there = _push_layers(again, opened, dest, registries, say)
            attached = [a.result() for a in attaching]
        say(f"{bundle.name}: {len(opened.images)} images, every check passed")
        with ThreadPoolExecutor(PUSHING_AT_ONCE) as pool, _cancelled_on_failure(pool):
            tagging = [
                pool.submit(
                    _push_image, opened.layout, image, dest, registries, there=there, say=say
                )
                for image in opened.images
            ]
            digests = [t.result() for t in tagging]
        return [
            PushedImage(i.name, f"{dest}/{i.name}", digest, list(i.tags), tags)
            for i, digest, tags in zip(opened.images, digests, attached, strict=True)
        ]


@contextlib.contextmanager
def _cancelled_on_failure(pool: ThreadPoolExecutor) -> Iterator[None]:
    """A failure in the block cancels what the pool has not started (it waits for what
    it has)."""
    try:
        yield
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise


def _push_image(
    layout: OciLayout,
    image: BundledImage,
    dest: str,
    registries: Registries,
    *,
    there: frozenset[str],
    say: Callable[[str], None],
) -> str:
    """An image of a bundle whose layers were sent (`there`) to DEST/NAME: its configs,
    manifests and index, byte for byte (digests kept), under each tag; its index's
    digest."""
    repository = f"{dest}/{image.name}"
    client, path = registries.of(repository)
    index = layout.refs()[image.name]
    for tag in image.tags:
        say(f"pushing {image.name} to {repository}:{tag}")
        push_manifest(client, path, layout, index, tag, there=there)
    return index.digest


def _check_layers(opened: Opened, carried: set[str]) -> None:
    """The layers the bundle carries apart are exactly its images' layers."""
    wanted = set(_layer_repositories(opened, ""))
    if carried != wanted:
        odd = sorted(carried ^ wanted)[0]
        raise VerificationError(
            f"The bundle is refused: {odd} is "
            + ("carried as a layer and no image has it" if odd in carried else "missing"),
            "Try: bundle the images again with this cairn.",
        )


def _layer_repositories(opened: Opened, dest: str) -> dict[str, list[str]]:
    """Each image layer's digest -> the repositories (DEST/NAME) whose images have it."""
    wanted: dict[str, list[str]] = {}
    for image in opened.images:
        for manifest in opened.layout.platform_manifests(image.name):
            for layer in opened.layout.read_json(manifest.digest).get("layers", []):
                repositories = wanted.setdefault(str(layer.get("digest")), [])
                if f"{dest}/{image.name}" not in repositories:
                    repositories.append(f"{dest}/{image.name}")
    return wanted


def _push_layers(
    reader: BundleReader,
    opened: Opened,
    dest: str,
    registries: Registries,
    say: Callable[[str], None],
) -> frozenset[str]:
    """The bundle's image layers (a bundle older than format 3 holds them among its
    documents: none come here), each sent to the first repository whose image has it as
    it is read from the bundle, hashed on the way (the registry keeps a blob only when it
    hashes to the signed digest), then mounted into the others. Scratch holds none.
    Returns the layers sent: each is in every repository whose image has it."""
    wanted = _layer_repositories(opened, dest)
    sent: set[str] = set()
    for digest, size, chunks in reader.layers():
        # check_again held the head to the first read's: these are the layers
        # _check_layers found to be exactly the images'
        repositories = wanted[digest]
        client, first = registries.of(repositories[0])
        if client.has_blob(first, digest):
            say(f"layer {digest[7:19]} is in {dest} already")
        else:
            say(f"sending layer {digest[7:19]} ({size / 1e6:.1f} MB) to {dest}")
            client.stream_blob(first, digest, size, chunks)
        for repository in repositories[1:]:
            other, there = registries.of(repository)
            if not other.mount_blob(there, digest, first):
                other.copy_blob(first, there, digest, size)
        sent.add(digest)
    return frozenset(sent)
