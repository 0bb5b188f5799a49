"""Delivery bundles: images (every platform), what is attached to them, checksums and a
signed manifest, in one zstandard-compressed tar that crosses an air gap whole.

The tar holds, in this order:
    cairn-bundle.json       format version, images (name, digest, tags), the key's
                            fingerprint, the digest of SHA256SUMS
    cairn-bundle.json.sig   the key's signature of cairn-bundle.json (base64)
    SHA256SUMS              every other file's sha256
    oci-layout, index.json, blobs/sha256/...   an OCI layout: each image under its name,
                            each attachment under NAME:TAG, every blob once
Every member is owned by 0:0, mode 0644, dated 0, in a fixed order, and cairn writes
index.json itself; with deterministic signatures, the same images give the same bytes
whether they were read from a layout or a registry. `--part-size` splits the file into
FILE.000, FILE.001, ... and FILE.parts (each part's size and sha256), so that a missing
or damaged part is named before anything is read.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import zstandard

from cairn.errors import StoreError, UsageError, VerificationError
from cairn.oci.attachments import signatures_for, signed_identity
from cairn.oci.image import ANN_REF_NAME, MEDIA_INDEX, canonical_json
from cairn.oci.layout import ATTACHED, OCI_LAYOUT, OciLayout, reachable
from cairn.trust.keys import PublicKey, SigningKey

BUNDLE_VERSION = 1
MANIFEST = "cairn-bundle.json"
SIGNATURE = "cairn-bundle.json.sig"
SUMS = "SHA256SUMS"
ZSTD_LEVEL = 10


@dataclass(frozen=True)
class BundledImage:
    name: str
    digest: str
    tags: tuple[str, ...]


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def layout_files(
    layout: OciLayout, images: list[BundledImage], prefix: str | None = None
) -> list[tuple[str, Path | bytes]]:
    """The layout part of the bundle: oci-layout, an index.json naming the images and their
    attachments, and every blob they reach, once, sorted. With `prefix` (REGISTRY/PREFIX),
    each image's signatures are only those that name PREFIX/NAME."""
    entries = []
    made: dict[str, bytes] = {}  # the blobs of signature manifests made for `prefix`
    for image in images:
        refs = {image.name: layout.refs()[image.name]}
        for tag, desc in layout.attachments(image.name).items():
            if prefix is not None and tag.endswith(".sig"):
                chosen = signatures_for(layout, desc, f"{prefix}/{image.name}")
                if chosen is None:
                    continue
                for blob in (chosen.manifest, *chosen.blobs):
                    made[blob.descriptor.digest] = blob.data
                desc = chosen.manifest.descriptor  # noqa: PLW2901
            refs[f"{image.name}{ATTACHED}{tag}"] = desc
        for ref, desc in sorted(refs.items()):
            entry = desc.to_json()
            entry["annotations"] = {ANN_REF_NAME: ref}
            entries.append(entry)
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": entries}
    view = _IndexView(layout, index, made)
    blobs = sorted(reachable(view))
    files: list[tuple[str, Path | bytes]] = [
        ("oci-layout", canonical_json(OCI_LAYOUT)),
        ("index.json", canonical_json(index)),
    ]
    files += [
        (f"blobs/sha256/{d.partition(':')[2]}", made.get(d) or layout.blob_path(d)) for d in blobs
    ]
    return files


def signed_prefixes(layout: OciLayout, names: list[str]) -> set[str]:
    """The REGISTRY/PREFIX each signature of the images names (NAME and tag taken off)."""
    found = set()
    for name in names:
        for tag, desc in layout.attachments(name).items():
            if not tag.endswith(".sig"):
                continue
            for layer in layout.read_json(desc.digest).get("layers", []):
                identity = signed_identity(layout.read_blob(layer["digest"])) or ""
                head, _, last = identity.rpartition("/")
                repository = f"{head}/{last.partition(':')[0]}"
                if repository.endswith(f"/{name}"):
                    found.add(repository.removesuffix(f"/{name}"))
    return found


class _IndexView(OciLayout):
    """A layout with another index.json (and blobs made for it): what `reachable` walks
    for a bundle."""

    def __init__(self, layout: OciLayout, index: dict[str, Any], made: dict[str, bytes]) -> None:
        super().__init__(layout.root)
        self._view = index
        self._made = made

    def index(self) -> dict[str, Any]:
        return self._view

    def read_json(self, digest: str) -> dict[str, Any]:
        if digest in self._made:
            doc: dict[str, Any] = json.loads(self._made[digest])
            return doc
        return super().read_json(digest)


def _sha256(item: Path | bytes) -> str:
    if isinstance(item, bytes):
        return hashlib.sha256(item).hexdigest()
    h = hashlib.sha256()
    with item.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_bundle(
    layout: OciLayout,
    images: list[BundledImage],
    key: SigningKey,
    out: IO[bytes],
    prefix: str | None = None,
) -> None:
    """The bundle of `images` (all in `layout`), signed with `key`, as a zstd stream; with
    `prefix`, only the signatures made for REGISTRY/PREFIX go in."""
    files = layout_files(layout, images, prefix)
    sums = "".join(f"{_sha256(item)}  {name}\n" for name, item in files).encode()
    manifest = canonical_json(
        {
            "bundle_version": BUNDLE_VERSION,
            "images": [{"name": i.name, "digest": i.digest, "tags": list(i.tags)} for i in images],
            "key": key.public.fingerprint,
            "checksums": "sha256:" + hashlib.sha256(sums).hexdigest(),
        }
    )
    signature = base64.b64encode(key.sign(manifest))
    head: list[tuple[str, Path | bytes]] = [
        (MANIFEST, manifest),
        (SIGNATURE, signature),
        (SUMS, sums),
    ]
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    with (
        compressor.stream_writer(out, closefd=False) as zout,
        tarfile.open(fileobj=zout, mode="w|", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for name, item in head + files:
            if isinstance(item, bytes):
                tar.addfile(_member(name, len(item)), io.BytesIO(item))
            else:
                with item.open("rb") as f:
                    tar.addfile(_member(name, os.fstat(f.fileno()).st_size), f)


@dataclass(frozen=True)
class Opened:
    """A bundle checked and unpacked into a layout."""

    layout: OciLayout
    images: tuple[BundledImage, ...]
    key: str


def _refused(what: str, hint: str = "") -> VerificationError:
    return VerificationError(
        f"The bundle is refused: {what}.",
        hint or "Try: copy the bundle again from its source, and check the key (--key).",
    )


def read_bundle(stream: IO[bytes], key: PublicKey, into: Path) -> Opened:
    """Unpack a bundle into the directory `into` and check it all: the manifest's format and
    signature, the checksum list's digest, every file's checksum, nothing missing or
    added, every blob's digest. Any failure raises before the caller writes anything."""
    members = _unpack(stream, into)
    try:
        manifest_bytes = (into / MANIFEST).read_bytes()
        manifest = json.loads(manifest_bytes)
        version = int(manifest["bundle_version"])
    except (OSError, ValueError, KeyError, TypeError):
        raise _refused(f"it has no readable {MANIFEST}") from None
    try:
        signature = base64.b64decode((into / SIGNATURE).read_bytes(), validate=True)
    except (OSError, ValueError):
        signature = b""
    if not key.verifies(signature, manifest_bytes):
        raise _refused(
            f"its manifest is not signed by the key {key.fingerprint} (it names "
            f"{manifest.get('key')})"
        )
    if version > BUNDLE_VERSION:
        raise UsageError(
            f"The bundle is of format {version}, made by a newer cairn; this one reads "
            f"format {BUNDLE_VERSION} and older.",
            "Try: unbundle with the cairn version that made the bundle, or a newer one.",
        )
    sums = (into / SUMS).read_bytes() if (into / SUMS).is_file() else b""
    if "sha256:" + hashlib.sha256(sums).hexdigest() != manifest.get("checksums"):
        raise _refused(f"{SUMS} is not the checksum list its manifest signs")
    listed = {}
    for line in sums.decode().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    extra = sorted(set(members) - set(listed) - {MANIFEST, SIGNATURE, SUMS})
    if extra:
        raise _refused(f"{extra[0]} is in the bundle and not in its checksums")
    for name, digest in sorted(listed.items()):
        path = into / name
        if name not in members or not path.is_file():
            raise _refused(f"{name} is missing")
        if _sha256(path) != digest:
            raise _refused(f"{name} does not match its checksum")
        if name.startswith("blobs/sha256/") and digest != name.rsplit("/", 1)[1]:
            raise _refused(f"{name} holds another blob")
    images = tuple(
        BundledImage(i["name"], i["digest"], tuple(i["tags"])) for i in manifest["images"]
    )
    return Opened(OciLayout(into), images, str(manifest.get("key")))


def _unpack(stream: IO[bytes], into: Path) -> list[str]:
    names = []
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(stream, closefd=False)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                name = os.path.normpath(member.name)
                if not member.isfile() or name.startswith(("/", "..", ".")) or name in names:
                    raise _refused(f"it holds {member.name!r}, which no bundle has")
                target = into / name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with target.open("wb") as out:
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
                names.append(name)
    except OSError as e:
        raise _refused(f"it cannot be unpacked ({e.strerror or e})") from None
    except (zstandard.ZstdError, tarfile.TarError, EOFError) as e:
        raise _refused(
            f"it is truncated or damaged ({e})",
            "Try: copy the bundle again; with parts, check that every part is there.",
        ) from None
    return names


# ------------------------------------------------------------------ parts
def write_parts(whole: Path, part_size: int) -> list[Path]:
    """Split `whole` into WHOLE.000, .001, ... of `part_size` bytes and WHOLE.parts, copied
    a MiB at a time; the parts appear under their names only once all are written."""
    rows: list[dict[str, Any]] = []
    made: list[tuple[Path, Path]] = []  # (temporary, final)
    try:
        with whole.open("rb") as f:
            while True:
                final = whole.with_name(f"{whole.name}.{len(made):03d}")
                tmp = final.with_name(f".{final.name}.cairn-{os.getpid()}")
                made.append((tmp, final))
                h, size = hashlib.sha256(), 0
                with tmp.open("wb") as out:
                    while size < part_size and (chunk := f.read(min(1 << 20, part_size - size))):
                        out.write(chunk)
                        h.update(chunk)
                        size += len(chunk)
                if size == 0:
                    tmp.unlink()
                    made.pop()
                    break
                rows.append({"name": final.name, "size": size, "sha256": h.hexdigest()})
        index = whole.with_name(f"{whole.name}.parts")
        tmp_index = index.with_name(f".{index.name}.cairn-{os.getpid()}")
        tmp_index.write_bytes(canonical_json({"parts": rows}))
        made.append((tmp_index, index))
        for tmp, final in made:
            tmp.replace(final)
    except OSError as e:
        for tmp, _ in made:
            tmp.unlink(missing_ok=True)
        raise StoreError(
            f"Splitting {whole} into parts failed: {e.strerror}.",
            "Try: free some space beside it, or a larger --part-size.",
        ) from None
    whole.unlink()
    return [final for _, final in made]


class _Concatenated(io.RawIOBase):
    """The parts, read one after the other as one stream."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = iter(paths)
        self._file: io.BufferedReader | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._file is None:
                path = next(self._paths, None)
                if path is None:
                    return 0
                self._file = path.open("rb")
            n: int = self._file.readinto(buffer)
            if n:
                return n
            self._file.close()
            self._file = None


@contextlib.contextmanager
def open_parts(path: Path) -> Iterator[IO[bytes]]:
    """The bundle at `path` (one file, or the FILE.parts of a split one), checked part by
    part against FILE.parts before it is read."""
    index = path if path.name.endswith(".parts") else path.with_name(path.name + ".parts")
    if path.is_file() and not path.name.endswith(".parts"):
        with path.open("rb") as f:
            yield f
        return
    if not index.is_file():
        raise UsageError(f"{path} does not exist (nor {index.name}).", "Try: the bundle's path.")
    try:
        rows = json.loads(index.read_bytes())["parts"]
        names = [str(row["name"]) for row in rows]
        sizes = [int(row["size"]) for row in rows]
        sums = [str(row["sha256"]) for row in rows]
    except (OSError, ValueError, KeyError, TypeError):
        raise _refused(f"{index.name} is damaged") from None
    if any(Path(n).name != n or n.startswith(".") for n in names):
        raise _refused(f"{index.name} names a part outside its directory")
    paths = []
    for name, size, digest in zip(names, sizes, sums, strict=True):
        part = index.with_name(name)
        if not part.is_file():
            raise _refused(
                f"its part {part.name} is missing ({len(rows)} parts)",
                f"Try: copy {part.name} next to {index.name}.",
            )
        if part.stat().st_size != size or _sha256(part) != digest:
            raise _refused(f"its part {part.name} is damaged (its checksum differs)")
        paths.append(part)
    with io.BufferedReader(_Concatenated(paths)) as stream:
        yield stream
