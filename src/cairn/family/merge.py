"""Several OCI layouts of one family made into one: per-platform builds joined.

A pipeline that builds each platform on its own runner ends with one layout
per image and platform (each also holding the ancestors it was built on).
`merge_layouts` gathers every image's platform manifests from them, copies the
blobs those reach (checking each digest), and writes one multi-platform index
per image into the output layout, in one atomic commit. Two different
manifests for the same image and platform are an error, not a choice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cairn.errors import StoreError, UsageError
from cairn.family.annotations import image_annotations
from cairn.family.spec import Family
from cairn.oci.image import Descriptor, image_index
from cairn.oci.layout import OciLayout, Staging, existing_layout, layout_named
from cairn.oci.reference import parse_ref


@dataclass(frozen=True)
class MergedImage:
    name: str
    digest: str  # of the merged index
    platforms: tuple[str, ...]
    missing: tuple[str, ...]  # platforms the spec lists that no source has


def _found(sources: list[OciLayout], name: str) -> dict[str, tuple[Descriptor, OciLayout]]:
    """Platform -> (manifest, the layout holding it); a disagreement is an error."""
    found: dict[str, tuple[Descriptor, OciLayout]] = {}
    for src in sources:
        for desc in src.platform_manifests(name):
            plat = desc.platform.name if desc.platform else "unknown"
            seen = found.get(plat)
            if seen is None:
                found[plat] = (desc, src)
            elif seen[0].digest != desc.digest:
                raise UsageError(
                    f"Merging failed because {seen[1].root} and {src.root} hold different "
                    f"{plat} images of {name} ({seen[0].digest[:19]} and {desc.digest[:19]}).",
                    "Try: merge the layouts of one pipeline run, built from the same commit.",
                )
    return found


def _copy_blob(stage: Staging, src: OciLayout, digest: str) -> None:
    """Copy one blob into the stage unless the output has it, checking its digest."""
    if stage.blob_path(digest).exists():
        return
    source = src.blob_path(digest)
    tmp = stage.work / digest.partition(":")[2]
    h = hashlib.sha256()
    try:
        with source.open("rb") as fin, tmp.open("wb") as fout:
            while chunk := fin.read(1 << 20):
                h.update(chunk)
                fout.write(chunk)
    except OSError as e:
        raise StoreError(
            f"Merging failed because blob {digest} could not be copied from {src.root} ({e}).",
            "Try: download that layout again.",
        ) from None
    if f"sha256:{h.hexdigest()}" != digest:
        raise StoreError(
            f"Merging failed because blob {digest} in {src.root} does not match its digest.",
            "Try: download that layout again; it is damaged.",
        )
    stage.adopt(tmp, digest)


def _copy_image(stage: Staging, src: OciLayout, manifest: Descriptor) -> None:
    obj = src.read_json(manifest.digest)
    for blob in [obj["config"], *obj["layers"]]:
        _copy_blob(stage, src, blob["digest"])
    _copy_blob(stage, src, manifest.digest)


def merge_layouts(family: Family, sources: list[Path], output: str | None) -> list[MergedImage]:
    """Merge `sources` into the layout `output` names (cairn.toml's store by default)."""
    ref = parse_ref(output or family.output)
    out = layout_named(ref, "Merging writes")
    layouts = [
        existing_layout(
            p,
            "Merging failed because ",
            "Try: pass the directories `cairn build --output oci:DIR` wrote.",
        )
        for p in sources
    ]
    if ref.path.resolve() in {p.resolve() for p in sources}:
        raise UsageError(
            f"Merging failed because the output {ref.path} is also one of the sources.",
            "Try: --output oci:ANOTHER_DIR.",
        )
    merged: list[MergedImage] = []
    with out.staging() as stage:
        for image in family.images:
            found = _found(layouts, image.name)
            if not found:
                continue
            for desc, src in found.values():
                _copy_image(stage, src, desc)
            index = stage.add(
                image_index(tuple(d for d, _ in found.values()), image_annotations(family, image))
            )
            stage.set_ref(image.name, index)
            wanted = [p.name for p in image.platforms]
            merged.append(
                MergedImage(
                    image.name,
                    index.digest,
                    tuple(sorted(found)),
                    tuple(p for p in wanted if p not in found),
                )
            )
        if not merged:
            raise UsageError(
                f"Merging failed because none of {', '.join(map(str, sources))} holds an "
                f"image of {family.directory}.",
                "Try: pass the layouts this family's `cairn build` wrote.",
            )
    return merged
