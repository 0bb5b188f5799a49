"""Images to measure, whatever they are stored in, with their layers as byte streams.

oci:DIR[:NAME] and docker-archive:FILE are read where they lie; docker:// and
docker-daemon: are first copied by skopeo into cairn's temporary directory as an
OCI layout (compressed blobs, nothing unpacked); dir:ROOTFS is one layer made of
the directory itself. Every stream checks its digest as it is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from cairn.errors import ImageContentError, ImageRefError
from cairn.oci import skopeo
from cairn.oci.layout import OciLayout
from cairn.oci.reference import ImageRef, parse_ref
from cairn.oci.select import select_manifest
from cairn.platforms import Platform
from cairn.scratch import scratch_root


class DigestReader:
    """A read-only stream that hashes what passes through and counts it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


@dataclass(frozen=True)
class Layer:
    """One layer as the manifest describes it; `open` gives its (maybe compressed) tar bytes."""

    index: int
    digest: str  # what the stream must hash to: the blob's digest, or the diff_id
    size: int | None  # the manifest's word for the stream's length, when it gives one
    compressed: bool
    open: Callable[[], contextlib.AbstractContextManager[IO[bytes]]]


@dataclass
class Source:
    reference: str
    platform: str | None
    config: dict[str, Any]
    layers: list[Layer]
    root: Path | None = None  # dir: sources are read from here instead of layers

    @property
    def compressed_bytes(self) -> int | None:
        if self.root is not None or not all(layer.compressed for layer in self.layers):
            return None
        return sum(layer.size or 0 for layer in self.layers)


def _platform_name(config: dict[str, Any]) -> str | None:
    if "architecture" not in config:
        return None
    name = f"{config.get('os', 'linux')}/{config['architecture']}"
    return f"{name}/{config['variant']}" if config.get("variant") else name


def _blob_opener(path: Path) -> Callable[[], contextlib.AbstractContextManager[IO[bytes]]]:
    def opener() -> contextlib.AbstractContextManager[IO[bytes]]:
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise ImageContentError(
                f"Reading the layer {path.name} failed because the blob is missing.",
                "Try: copy the image again (skopeo copy) and analyze the copy.",
            ) from None

    return opener


def _from_layout(
    reference: str, layout: OciLayout, name: str | None, platform: Platform | None
) -> Source:
    manifest = select_manifest(layout, name, platform)
    config = layout.read_json(manifest["config"]["digest"])
    layers = [
        Layer(
            i,
            layer["digest"],
            layer.get("size"),
            any(kind in layer.get("mediaType", "") for kind in ("gzip", "zstd")),
            _blob_opener(layout.blob_path(layer["digest"])),
        )
        for i, layer in enumerate(manifest["layers"])
    ]
    return Source(reference, _platform_name(config), config, layers)


def _member_opener(
    archive: Path, member: str
) -> Callable[[], contextlib.AbstractContextManager[IO[bytes]]]:
    @contextlib.contextmanager
    def opener() -> Iterator[IO[bytes]]:
        with tarfile.open(archive) as outer:
            try:
                f = outer.extractfile(member)
            except KeyError:
                f = None
            if f is None:
                raise ImageContentError(
                    f"{archive} names {member} as a layer, but holds no such file.",
                    "Try: write the archive again (docker save, or skopeo copy).",
                )
            yield f

    return opener


def _archive_json(outer: tarfile.TarFile, name: str) -> Any:
    f = outer.extractfile(name)
    if f is None:
        raise KeyError(name)
    return json.load(f)


def _from_docker_archive(ref: ImageRef) -> Source:
    """`docker save` / skopeo archives: manifest.json names a config and layer tars."""
    archive = ref.path
    try:
        with tarfile.open(archive) as outer:
            entries = _archive_json(outer, "manifest.json")
            if ref.name:
                entries = [e for e in entries if ref.name in (e.get("RepoTags") or [])]
            if not entries:
                raise ImageRefError(
                    f"{archive} holds no image" + (f" tagged {ref.name}." if ref.name else "."),
                    "Try: docker-archive:FILE:REPO:TAG with a tag the archive holds.",
                )
            config = _archive_json(outer, entries[0]["Config"])
            members = list(entries[0]["Layers"])
            sizes = {m.name: m.size for m in outer.getmembers() if m.isfile()}
    except (OSError, tarfile.TarError, KeyError, TypeError, ValueError) as e:
        raise ImageRefError(
            f"Reading {archive} as a docker archive failed ({e}).",
            "Try: a file written by `docker save` or `skopeo copy ... docker-archive:FILE`.",
        ) from None
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    layers = []
    for i, member in enumerate(members):
        digest = diff_ids[i] if i < len(diff_ids) else ""
        if member.startswith("blobs/sha256/"):
            # an archive holding an OCI layout names layers by their blob's digest
            digest = "sha256:" + member.rsplit("/", 1)[1]
        layers.append(Layer(i, digest, sizes.get(member), False, _member_opener(archive, member)))
    return Source(str(ref), _platform_name(config), config, layers)


@contextlib.contextmanager
def open_source(reference: str, platform: Platform | None = None) -> Iterator[Source]:
    """The image `reference` names, for the duration of the block."""
    ref = parse_ref(reference)
    if ref.transport == "dir":
        if not ref.path.is_dir():
            raise ImageRefError(f"{reference}: {ref.path} is not a directory.")
        yield Source(reference, None, {}, [], root=ref.path)
        return
    if ref.transport == "oci":
        if not OciLayout(ref.path).exists():
            raise ImageRefError(
                f"{ref.path} is not an OCI image layout (no oci-layout and index.json).",
                "Try: oci:DIR[:NAME] with DIR written by cairn build or skopeo copy.",
            )
        yield _from_layout(reference, OciLayout(ref.path), ref.name, platform)
        return
    if ref.transport == "docker-archive":
        if not ref.path.is_file():
            raise ImageRefError(f"{reference}: {ref.path} is not a file.")
        yield _from_docker_archive(ref)
        return
    with tempfile.TemporaryDirectory(prefix="cairn-measure-", dir=scratch_root()) as tmp:
        layout = skopeo.into_layout(ref, platform, Path(tmp) / "oci")
        yield _from_layout(reference, layout, skopeo.COPIED, None)
