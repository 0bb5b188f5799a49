"""Images to measure, whatever they are stored in, with their layers as byte ranges of
files (a blob, or a member of a docker archive).

oci:DIR[:NAME] and docker-archive:FILE are read where they lie; docker:// and
docker-daemon: are first copied by skopeo into cairn's temporary directory as an
OCI layout (compressed blobs, nothing unpacked); dir:ROOTFS is one layer made of
the directory itself. The walk checks every layer against its digest.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cairn.errors import ImageContentError, ImageRefError
from cairn.measure.tarscan import FileRange, TarFormatError, members
from cairn.oci.reference import ImageRef, parse_ref
from cairn.platforms import Platform
from cairn.scratch import scratch_dir

if TYPE_CHECKING:
    from cairn.oci.layout import OciLayout


class DigestReader:
    """A read-only stream that hashes what passes through (unless told the digest is known)
    and counts it."""

    def __init__(self, raw: IO[bytes] | FileRange, hashing: bool = True) -> None:
        self.raw = raw
        self.sha = None
        if hashing:
            import hashlib  # here, not above: see open_source

            self.sha = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1, /) -> bytes:
        data = self.raw.read(n)
        if self.sha is not None:
            self.sha.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str | None:
        return None if self.sha is None else "sha256:" + self.sha.hexdigest()


@dataclass(frozen=True)
class Layer:
    """One layer as the manifest describes it: a byte range of a file (a blob, or a member of
    a docker archive) holding a tar, maybe compressed."""

    index: int
    digest: str  # what the range must hash to: the blob's digest, or the diff_id
    size: int | None  # the manifest's word for the range's length, when it gives one
    compressed: bool
    path: Path
    offset: int = 0
    length: int | None = None  # None: to the end of the file

    @contextlib.contextmanager
    def open(self) -> Iterator[tuple[IO[bytes], int, int]]:
        """The open file, where the range starts and how long it is."""
        try:
            f = self.path.open("rb", buffering=0)
        except FileNotFoundError:
            raise ImageContentError(
                f"Reading the layer {self.path.name} failed because the blob is missing.",
                "Try: copy the image again (skopeo copy) and analyze the copy.",
            ) from None
        with f:
            length = self.length
            if length is None:
                length = os.fstat(f.fileno()).st_size - self.offset
            yield f, self.offset, length


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


def _from_layout(
    reference: str, layout: OciLayout, name: str | None, platform: Platform | None
) -> Source:
    from cairn.oci.select import select_manifest

    manifest = select_manifest(layout, name, platform)
    config = layout.read_json(manifest["config"]["digest"])
    layers = [
        Layer(
            i,
            layer["digest"],
            layer.get("size"),
            any(kind in layer.get("mediaType", "") for kind in ("gzip", "zstd")),
            layout.blob_path(layer["digest"]),
        )
        for i, layer in enumerate(manifest["layers"])
    ]
    return Source(reference, _platform_name(config), config, layers)


@contextlib.contextmanager
def layout_source(
    label: str, layout: OciLayout, name: str, platform: Platform | None
) -> Iterator[Source]:
    """Image `name` of a layout, `platform` of it, known by `label` in what is made of it
    (an SBOM's name), not by where the layout lies."""
    yield _from_layout(label, layout, name, platform)


MAX_JSON = 16 << 20  # a docker archive's manifest.json and image configs are kilobytes


@dataclass(frozen=True)
class _Entry:
    kind: str
    offset: int
    size: int
    linkname: str


def _archive_entries(fd: int) -> dict[str, _Entry]:
    """The members of a docker archive (a plain tar) by name, with where their data lies."""
    src = FileRange(fd, 0, os.fstat(fd).st_size)
    entries = {}
    for m in members(src):
        name = posixpath.normpath(m.name)
        entries[name] = _Entry(m.kind, src.position, m.size, m.linkname)
    return entries


def _data_entry(entries: dict[str, _Entry], name: str) -> _Entry | None:
    """The member holding `name`'s bytes: legacy `docker save` archives link each
    ID/layer.tar to the blob it shares."""
    name = posixpath.normpath(name)
    for _ in range(8):
        entry = entries.get(name)
        if entry is None or entry.kind == "file":
            return entry
        if entry.kind == "symlink":
            name = posixpath.normpath(posixpath.join(posixpath.dirname(name), entry.linkname))
        elif entry.kind == "hardlink":
            name = posixpath.normpath(entry.linkname)
        else:
            return None
    return None


def _archive_json(fd: int, entries: dict[str, _Entry], name: str) -> Any:
    entry = _data_entry(entries, name)
    if entry is None:
        raise KeyError(name)
    if entry.size > MAX_JSON:
        raise ValueError(f"{name} is {entry.size} bytes, more than any manifest or config")
    return json.loads(os.pread(fd, entry.size, entry.offset))


def _from_docker_archive(ref: ImageRef) -> Source:
    """`docker save` / skopeo archives: manifest.json names a config and layer tars."""
    archive = ref.path
    try:
        with archive.open("rb", buffering=0) as f:
            fd = f.fileno()
            index = _archive_entries(fd)
            entries = _archive_json(fd, index, "manifest.json")
            if ref.name:
                entries = [e for e in entries if ref.name in (e.get("RepoTags") or [])]
            if not entries:
                raise ImageRefError(
                    f"{archive} holds no image" + (f" tagged {ref.name}." if ref.name else "."),
                    "Try: docker-archive:FILE:REPO:TAG with a tag the archive holds.",
                )
            config = _archive_json(fd, index, entries[0]["Config"])
            members = [(name, _data_entry(index, name)) for name in entries[0]["Layers"]]
    except (OSError, EOFError, TarFormatError, KeyError, TypeError, ValueError) as e:
        raise ImageRefError(
            f"Reading {archive} as a docker archive failed ({e}).",
            "Try: a file written by `docker save` or `skopeo copy ... docker-archive:FILE`.",
        ) from None
    diff_ids = config.get("rootfs", {}).get("diff_ids", [])
    layers = []
    for i, (name, member) in enumerate(members):
        if member is None:
            raise ImageContentError(
                f"{archive} names {name} as a layer, but holds no such file.",
                "Try: write the archive again (docker save, or skopeo copy).",
            )
        digest = diff_ids[i] if i < len(diff_ids) else ""
        if name.startswith("blobs/sha256/"):
            # an archive holding an OCI layout names layers by their blob's digest
            digest = "sha256:" + name.rsplit("/", 1)[1]
        layers.append(Layer(i, digest, member.size, False, archive, member.offset, member.size))
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
    if ref.transport == "docker-archive":
        if not ref.path.is_file():
            raise ImageRefError(f"{reference}: {ref.path} is not a file.")
        yield _from_docker_archive(ref)
        return
    # imported here: these modules load OpenSSL through hashlib (4 MB), which a docker
    # archive whose layers were verified before never needs
    from cairn.oci import skopeo
    from cairn.oci.layout import existing_layout

    if ref.transport == "oci":
        layout = existing_layout(
            ref.path,
            "",
            "Try: oci:DIR[:NAME] with DIR written by cairn build or skopeo copy.",
            ImageRefError,
        )
        yield _from_layout(reference, layout, ref.name, platform)
        return
    with scratch_dir("measure") as tmp:
        layout = skopeo.into_layout(ref, platform, Path(tmp) / "oci")
        yield _from_layout(reference, layout, skopeo.COPIED, None)
