"""Delivery bundles: images (every platform), what is attached to them, checksums and a
signed manifest, in one zstandard-compressed tar that crosses an air gap whole.

The tar holds, in this order:
    cairn-bundle.json       format version, images (name, digest, tags), the key's
                            fingerprint, the digest of SHA256SUMS
    cairn-bundle.json.sig   the key's signature of cairn-bundle.json (base64)
    SHA256SUMS              every other file's sha256
    oci-layout, index.json, blobs/sha256/...   an OCI layout: each image under its name,
                            each attachment under NAME:TAG, every blob once; its
                            documents (manifests, indexes, configs, what is attached)
                            first, then the image layers, so that unbundle checks every
                            signature before the first layer and takes layers one by one
Every member is owned by 0:0, mode 0644, dated 0, in a fixed order, and cairn writes
index.json itself; with deterministic signatures, the same images give the same bytes
whether they were read from a layout or a registry. `--part-size` splits the file into
FILE.000, FILE.001, ... and FILE.parts (each part's size and sha256), so that a missing
or damaged part is named before anything is read.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import zstandard

from cairn.errors import ImageContentError, StoreError, UsageError, VerificationError
from cairn.oci.attachments import (
    MAX_PAYLOAD,
    repository_of_identity,
    signatures_for,
    signed_identity,
)
from cairn.oci.image import ANN_CREATED, ANN_REF_NAME, MEDIA_INDEX, canonical_json
from cairn.oci.layout import (
    ATTACHED,
    OCI_LAYOUT,
    NotRegular,
    OciLayout,
    checked_digest,
    new_file_mode,
    open_regular,
    reachable,
)
from cairn.trust import ustar
from cairn.trust.keys import PublicKey, SigningKey
from cairn.untrusted import MAX_DOCUMENT, json_object, printable

# 2: the manifest lists every file's size, so that each is taken at its signed size
# 3: the layout's documents come before its image layers, and the manifest counts them
BUNDLE_VERSION = 3
MANIFEST = "cairn-bundle.json"
SIGNATURE = "cairn-bundle.json.sig"
SUMS = "SHA256SUMS"
ZSTD_LEVEL = 3  # layers are compressed already: a higher level saves no space


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
) -> tuple[list[tuple[str, Path | bytes]], int]:
    """The layout part of the bundle: oci-layout, an index.json naming the images and their
    attachments, and every blob they reach, once: the documents sorted, then the image
    layers sorted; and how many files come before the layers. With `prefix`
    (REGISTRY/PREFIX), each image's signatures are only those that name PREFIX/NAME."""
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
    reached = reachable(view)
    # the images' layers: not what an attachment (a referrer of another tool) may hold
    layers = {
        layer["digest"]
        for image in images
        for manifest in layout.platform_manifests(image.name)
        for layer in layout.read_json(manifest.digest).get("layers", [])
    } & reached
    blobs = sorted(reached, key=lambda d: (d in layers, d))
    files: list[tuple[str, Path | bytes]] = [
        ("oci-layout", canonical_json(OCI_LAYOUT)),
        ("index.json", canonical_json(index)),
    ]
    files += [
        (f"blobs/sha256/{d.partition(':')[2]}", made.get(d) or layout.blob_path(d)) for d in blobs
    ]
    return files, len(files) - len(layers)


def signed_prefixes(layout: OciLayout, names: list[str]) -> dict[str, set[str]]:
    """For each image, the REGISTRY/PREFIX each of its signatures names (NAME and tag
    taken off)."""
    found: dict[str, set[str]] = {}
    for name in names:
        prefixes = found.setdefault(name, set())
        for tag, desc in layout.attachments(name).items():
            if not tag.endswith(".sig"):
                continue
            for layer in layout.read_json(desc.digest).get("layers", []):
                identity = signed_identity(layout.read_blob(layer["digest"], MAX_PAYLOAD))
                repository = repository_of_identity(identity or "")
                if repository.endswith(f"/{name}"):
                    prefixes.add(repository.removesuffix(f"/{name}"))
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


def _size(item: Path | bytes) -> int:
    return len(item) if isinstance(item, bytes) else item.lstat().st_size


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[IO[bytes]]:
    """A file of the store (or a part), as layout.open_regular opens it: a link planted in
    the store never puts another file in a bundle."""
    try:
        with open_regular(path) as (f, _):
            yield f
    except NotRegular as e:
        raise ImageContentError(
            f"{path} {e}.", "Try: build (or copy) the images again into a store of cairn's own."
        ) from None


def _sha256(item: Path | bytes) -> str:
    if isinstance(item, bytes):
        return hashlib.sha256(item).hexdigest()
    h = hashlib.sha256()
    with _opened(item) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _expected(name: str, item: Path | bytes) -> str:
    """A bundle file's checksum: a blob's is its name (checked as it is written)."""
    if isinstance(item, bytes):
        return hashlib.sha256(item).hexdigest()
    return name.rsplit("/", 1)[1]


def write_bundle(
    layout: OciLayout,
    images: list[BundledImage],
    key: SigningKey,
    out: IO[bytes],
    prefix: str | None = None,
) -> None:
    """The bundle of `images` (all in `layout`), signed with `key`, as a zstd stream; with
    `prefix`, only the signatures made for REGISTRY/PREFIX go in."""
    files, documents = layout_files(layout, images, prefix)
    # a blob's checksum is its name: each is hashed as it is written, and a store's blob
    # that does not match (or is no regular file) fails the bundle, unwritten
    hashed = [(name, _expected(name, item)) for name, item in files]
    sums = "".join(f"{digest}  {name}\n" for name, digest in hashed).encode()
    sizes = {name: _size(item) for name, item in files}
    manifest = canonical_json(
        {
            "bundle_version": BUNDLE_VERSION,
            "images": [{"name": i.name, "digest": i.digest, "tags": list(i.tags)} for i in images],
            "key": key.public.fingerprint,
            "checksums": "sha256:" + hashlib.sha256(sums).hexdigest(),
            "sizes": sizes,
            "documents": documents,
            # the newest image's creation (its source date): what the bundle is as new as
            "created": max(
                (
                    str(layout.read_json(i.digest).get("annotations", {}).get(ANN_CREATED, ""))
                    for i in images
                ),
                default="",
            ),
        }
    )
    signature = base64.b64encode(key.sign(manifest))
    head: list[tuple[str, Path | bytes]] = [
        (MANIFEST, manifest),
        (SIGNATURE, signature),
        (SUMS, sums),
    ]
    with zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(out, closefd=False) as zout:
        tar = _TarWriter(zout)
        for name, item in head + files:
            if isinstance(item, bytes):
                tar.add(name, len(item), iter((item,)))
                continue
            with _opened(item) as f:
                size = os.fstat(f.fileno()).st_size
                h = hashlib.sha256()
                tar.add(name, size, _hashed(f, size, h))
            if h.hexdigest() != name.rsplit("/", 1)[1] or size != sizes[name]:
                raise ImageContentError(
                    f"The blob {name} of {layout.root} does not match its digest: it is not "
                    "bundled (unbundle would refuse it).",
                    "Try: build the image again (or copy it again from its registry).",
                )
        tar.close()


def _hashed(f: IO[bytes], size: int, h: Any) -> Iterator[bytes]:
    """`size` bytes of `f` a MiB at a time, into `h` as they pass."""
    left = size
    while left and (chunk := f.read(min(1 << 20, left))):
        h.update(chunk)
        left -= len(chunk)
        yield chunk


class _TarWriter:
    """A POSIX ustar stream of regular files (what tarfile writes for them, without its
    small copies): a header, the data, padding to 512 bytes; two zero blocks and padding
    to tar's 10,240-byte record at the end."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._written = 0

    def _put(self, data: bytes) -> None:
        self._out.write(data)
        self._written += len(data)

    def add(self, name: str, size: int, chunks: Iterator[bytes]) -> None:
        self._put(_member(name, size).tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict"))
        sent = 0
        for chunk in chunks:
            sent += len(chunk)
            self._put(chunk)
        if sent != size:
            raise ImageContentError(
                f"{name} changed while it was bundled ({sent} bytes read, {size} expected).",
                "Try: bundle again once nothing writes to the store.",
            )
        self._put(b"\0" * (-size % 512))

    def close(self) -> None:
        self._put(b"\0" * 1024)
        self._put(b"\0" * (-self._written % 10240))


@dataclass(frozen=True)
class Opened:
    """A bundle checked and its documents unpacked into a layout (every file, when its
    layers do not come apart: a bundle older than format 3)."""

    layout: OciLayout
    images: tuple[BundledImage, ...]
    key: str
    layers_apart: bool


def _refused(what: str, hint: str = "") -> VerificationError:
    return VerificationError(
        f"The bundle is refused: {what}.",
        hint or "Try: copy the bundle again from its source, and check the key (--key).",
    )


MAX_SIGNATURE = 4096  # base64 of an ECDSA signature: about 100 bytes
MAX_SUMS = 16 << 20  # 100,000 lines of checksums
MAX_FILES = 100_000
MAX_SIZE = 1 << 50  # a file of a bundle: a petabyte is no layer
ROOM = 64 << 20  # free space kept beyond the bundle's files
_FILE_NAME = re.compile(r"^(?:oci-layout|index\.json|blobs/sha256/[0-9a-f]{64})$")
_SUM_LINE = re.compile(r"^([0-9a-f]{64})  (\S+)$")


@dataclass(frozen=True)
class _Head:
    """What the signed head of a bundle says: its images, and each file's digest and size
    (None for a bundle of format 1, which lists no sizes)."""

    images: tuple[BundledImage, ...]
    key: str
    digests: dict[str, str]
    sizes: dict[str, int] | None
    documents: int  # how many files come before the image layers (all, before format 3)


def _images(manifest: dict[str, Any]) -> tuple[BundledImage, ...]:
    try:
        images = []
        for i in manifest["images"]:
            name, tags = i["name"], i["tags"]
            if not isinstance(name, str) or not _IMAGE_NAME.match(name):
                raise ValueError("no image name")
            if not isinstance(tags, list) or not all(
                isinstance(t, str) and _TAG.match(t) for t in tags
            ):
                raise ValueError("no list of tags")
            images.append(BundledImage(name, checked_digest(i["digest"]), tuple(tags)))
    except (KeyError, TypeError, ValueError, ImageContentError):
        raise _refused("its manifest's list of images is damaged") from None
    return tuple(images)


_IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*\Z")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")


def _checked_head(
    manifest_bytes: bytes, signature_text: bytes, sums: bytes, key: PublicKey
) -> _Head:
    """The manifest's signature, format and checksum list, checked before any file is taken."""
    try:
        signature = base64.b64decode(signature_text, validate=True)
    except ValueError:
        signature = b""
    if not key.verifies(signature, manifest_bytes):
        raise _refused(f"its manifest is not signed by the key {key.fingerprint}")
    try:
        manifest = json_object(manifest_bytes, MANIFEST)
        version = manifest["bundle_version"]
        if type(version) is not int:
            raise TypeError("no whole number")
    except (ValueError, KeyError, TypeError):
        raise _refused(f"its {MANIFEST} is damaged") from None
    if version > BUNDLE_VERSION:
        raise UsageError(
            f"The bundle is of format {version}, made by a newer cairn; this one reads "
            f"format {BUNDLE_VERSION} and older.",
            "Try: unbundle with the cairn version that made the bundle, or a newer one.",
        )
    if "sha256:" + hashlib.sha256(sums).hexdigest() != manifest.get("checksums"):
        raise _refused(f"{SUMS} is not the checksum list its manifest signs")
    digests: dict[str, str] = {}
    for line in sums.decode("utf-8", errors="replace").splitlines():
        m = _SUM_LINE.match(line)
        if not m or not _FILE_NAME.match(m[2]) or m[2] in digests:
            raise _refused(f"{SUMS} has a line no bundle has: {printable(line, 120)!r}")
        digests[m[2]] = m[1]
        if m[2].startswith("blobs/") and m[2].rsplit("/", 1)[1] != m[1]:
            raise _refused(f"{m[2]} is listed with another blob's checksum")
    if len(digests) > MAX_FILES:
        raise _refused(f"it lists {len(digests)} files, more than {MAX_FILES}")
    sizes = None
    if version >= 2:
        listed = manifest.get("sizes")
        if (
            not isinstance(listed, dict)
            or set(listed) != set(digests)
            or not all(type(v) is int and 0 <= v < MAX_SIZE for v in listed.values())
        ):
            raise _refused("its manifest's sizes are not those of its checksum list")
        sizes = {str(k): int(v) for k, v in listed.items()}
    documents = _documents(manifest, version, len(digests))
    return _Head(_images(manifest), printable(manifest.get("key"), 100), digests, sizes, documents)


def _documents(manifest: dict[str, Any], version: int, files: int) -> int:
    """How many files come before the image layers: all of them before format 3."""
    if version < 3:
        return files
    documents = manifest.get("documents")
    if type(documents) is not int or not 0 < documents <= files:
        raise _refused("its manifest's count of documents is damaged")
    return documents


def _write(chunks: Iterator[bytes], target: Path) -> None:
    """A member's (checked) data into `target`, a new file: never through a link."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        for chunk in chunks:
            out.write(chunk)


def _head_member(
    items: Iterator[tuple[ustar.Member, Iterator[bytes]]], name: str, cap: int
) -> bytes:
    got = next(items, None)
    if got is None:
        raise _refused(f"it ends before its {name}")
    member, chunks = got
    if member.name != name:
        raise _refused(
            f"it begins with {printable(member.name, 120)!r} where {name} belongs: it is no "
            "bundle, or one whose files were reordered"
        )
    if member.size > cap:
        raise _refused(f"its {name} is {member.size} bytes, more than a bundle's ({cap})")
    return b"".join(chunks)


def _room(into: Path, needed: int) -> None:
    st = os.statvfs(into)
    free = st.f_bavail * st.f_frsize
    if needed + ROOM > free:
        raise StoreError(
            f"Unpacking the bundle needs {needed / 1e9:.2f} GB in {into}, which has "
            f"{free / 1e9:.2f} GB free; nothing was written.",
            "Try: TMPDIR=DIR on a disk with room (a RAM-backed one is never used for it).",
        )


class BundleReader:
    """A bundle read as it comes, verifying first: its manifest, signature and checksum
    list come first and are read within small caps; the signature, the format and the
    list are checked, and the room the files need; only then is each file taken, on sight:
    listed, of its signed size, a regular file, hashed as it is written. `documents` takes
    the layout's documents (every file, from a bundle older than format 3) into `into`;
    `layers` then takes each image layer in turn. Nothing unlisted or unsigned is
    written, and a failure raises before the caller pushes what it concerns."""

    def __init__(self, stream: IO[bytes], key: PublicKey, into: Path) -> None:
        self._stream, self._key, self._into = stream, key, into
        self._items: Iterator[tuple[ustar.Member, Iterator[bytes]]] = iter(())
        self._head: _Head | None = None
        self._order: list[str] = []  # the files, in the order the checksum list signs
        self._taken = 0

    @contextlib.contextmanager
    def refusals(self) -> Iterator[None]:
        """What reading the bundle raises, as a refusal of it (or a full disk)."""
        try:
            yield
        except ustar.Refused as e:
            raise _refused(str(e)) from None
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise StoreError(
                    f"Unpacking the bundle filled the disk holding {self._into}.",
                    "Try: TMPDIR=DIR on a disk with room.",
                ) from None
            raise _refused(f"it cannot be unpacked ({e.strerror or e})") from None
        except (zstandard.ZstdError, EOFError) as e:
            raise _refused(
                f"it is truncated or damaged ({e})",
                "Try: copy the bundle again; with parts, check that every part is there.",
            ) from None

    def documents(self) -> Opened:
        """The signed head checked, and the documents taken into `into`."""
        with self.refusals():
            head = self._read_head()
            (self._into / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            if head.sizes is not None:
                _room(self._into, sum(head.sizes[n] for n in self._order[: head.documents]))
            for _ in range(head.documents):
                name, chunks = self._next()
                _write(self._checked(name, chunks), self._into / name)
            if head.documents == len(self._order):
                self._end()
        apart = head.documents < len(self._order)
        return Opened(OciLayout(self._into), head.images, head.key, apart)

    def check_again(self, before: BundleReader) -> None:
        """The signed head checked, and the documents hashed without being written: the
        bundle `before` read, unchanged since (the same signed head, so the same bytes)."""
        with self.refusals():
            head = self._read_head()
            if head != before._head:
                raise _refused("it changed while it was read")
            for _ in range(head.documents):
                name, chunks = self._next()
                for _ in self._checked(name, chunks):
                    pass

    def _read_head(self) -> _Head:
        reader = zstandard.ZstdDecompressor().stream_reader(self._stream, closefd=False)
        self._items = ustar.members(reader)
        manifest = _head_member(self._items, MANIFEST, MAX_DOCUMENT)
        signature = _head_member(self._items, SIGNATURE, MAX_SIGNATURE)
        sums = _head_member(self._items, SUMS, MAX_SUMS)
        head = self._head = _checked_head(manifest, signature, sums, self._key)
        self._order = list(head.digests)
        return head

    def layers(self) -> Iterator[tuple[str, int, Iterator[bytes]]]:
        """Each image layer after the documents (none in a bundle older than format 3):
        its digest, its signed size, and its bytes as they are read, checked as they go:
        past the signed size, or at the end with another digest, the iterator raises the
        bundle's refusal. What the caller leaves unread of one is read (and checked)
        before the next. Then the end of the bundle: every listed file was there."""
        head = self._head
        assert head is not None, "documents() first"
        while self._taken < len(self._order):
            with self.refusals():
                name, chunks = self._next()
            checked = self._checked(name, chunks)
            yield "sha256:" + head.digests[name], (head.sizes or {}).get(name, 0), checked
            for _ in checked:
                pass
        with self.refusals():
            self._end()

    def _next(self) -> tuple[str, Iterator[bytes]]:
        """The next file, which must be the next the checksum list names (a bundle's
        files come in its signed order: its documents before its layers), at its signed
        size, with room for it."""
        head = self._head
        assert head is not None
        expected = self._order[self._taken]
        got = next(self._items, None)
        if got is None:
            raise _refused(f"{expected} is missing")
        member, chunks = got
        name = member.name
        if name not in head.digests:
            raise _refused(f"{printable(name, 120)!r} is in the bundle and not in its checksums")
        if name != expected:
            seen = name in self._order[: self._taken]
            raise _refused(
                f"{name} is in the bundle twice"
                if seen
                else f"{name} comes before {expected}, out of the order its checksums sign"
            )
        size = head.sizes[name] if head.sizes is not None else None
        if size is not None and member.size != size:
            raise _refused(f"{name} is {member.size} bytes, and its signed size is {size}")
        if size is None:  # format 1 signs no sizes: each file must fit before it is taken
            _room(self._into, member.size)
        self._taken += 1
        return name, chunks

    def _checked(self, name: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """`chunks`, hashed as they pass: a refusal as soon as they pass the signed size,
        or at their end when they are not the signed bytes."""
        head = self._head
        assert head is not None
        size = head.sizes[name] if head.sizes is not None else None
        h, got = hashlib.sha256(), 0
        with self.refusals():
            for chunk in chunks:
                got += len(chunk)
                if size is not None and got > size:
                    break
                h.update(chunk)
                yield chunk
            if (size is not None and got != size) or h.hexdigest() != head.digests[name]:
                raise _refused(f"{name} does not match its checksum")

    def _end(self) -> None:
        """Every listed file taken, and nothing after them."""
        if self._taken < len(self._order):
            raise _refused(f"{self._order[self._taken]} is missing")
        extra = next(self._items, None)
        if extra is not None:
            name = extra[0].name
            raise _refused(
                f"{name} is in the bundle twice"
                if name in self._order
                else f"{printable(name, 120)!r} is in the bundle and not in its checksums"
            )


def read_bundle(
    stream: IO[bytes], key: PublicKey, into: Path, *, keep_layers: bool = True
) -> Opened:
    """The whole bundle checked, its documents taken into `into`, and its image layers
    too with `keep_layers` (else each is hashed and dropped)."""
    reader = BundleReader(stream, key, into)
    opened = reader.documents()
    for digest, size, chunks in reader.layers():
        if keep_layers:
            with reader.refusals():
                if size:
                    _room(into, size)
                _write(chunks, into / "blobs" / "sha256" / digest.partition(":")[2])
    return opened


# ------------------------------------------------------------------ parts
def _new_beside(final: Path) -> tuple[IO[bytes], Path]:
    """A new temporary file beside `final` (O_EXCL, never through a link) and its path."""
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
    os.fchmod(fd, new_file_mode())
    return os.fdopen(fd, "wb"), Path(name)


def write_parts(whole: Path, part_size: int) -> list[Path]:
    """Split `whole` into WHOLE.000, .001, ... of `part_size` bytes and WHOLE.parts, copied
    a MiB at a time; the parts appear under their names only once all are written."""
    rows: list[dict[str, Any]] = []
    made: list[tuple[Path, Path]] = []  # (temporary, final)
    try:
        with whole.open("rb") as f:
            while True:
                final = whole.with_name(f"{whole.name}.{len(made):03d}")
                out, tmp = _new_beside(final)
                made.append((tmp, final))
                h, size = hashlib.sha256(), 0
                with out:
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
        out, tmp_index = _new_beside(index)
        made.append((tmp_index, index))
        with out:
            out.write(canonical_json({"parts": rows}))
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
                self._file = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb")
            n: int = self._file.readinto(buffer)
            if n:
                return n
            self._file.close()
            self._file = None


MAX_PART_LIST = 1 << 20
MAX_PARTS = 10_000
_PART_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,250}\Z")


def _part_rows(index: Path) -> list[tuple[str, int, str]]:
    """FILE.parts: each part's name (beside it), size and sha256, read within bounds."""
    try:
        with _opened(index) as f:
            doc = json_object(f.read(MAX_PART_LIST + 1), index.name, max_bytes=MAX_PART_LIST)
        rows = doc["parts"]
        if not isinstance(rows, list) or not 0 < len(rows) <= MAX_PARTS:
            raise ValueError("no list of parts")
        parsed = [(str(r["name"]), r["size"], str(r["sha256"])) for r in rows]
        if not all(type(size) is int for _, size, _ in parsed):
            raise ValueError("a size is no whole number")
    except (ValueError, KeyError, TypeError, ImageContentError):
        raise _refused(f"{index.name} is damaged") from None
    if len({name for name, _, _ in parsed}) != len(parsed):
        raise _refused(f"{index.name} names a part twice")
    for name, size, digest in parsed:
        if not _PART_NAME.match(name) or name == index.name:
            raise _refused(f"{index.name} names a part outside its directory")
        if not 0 <= size < MAX_SIZE or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise _refused(f"{index.name} is damaged")
    return parsed


@contextlib.contextmanager
def open_parts(path: Path) -> Iterator[IO[bytes]]:
    """The bundle at `path` (one file, or the FILE.parts of a split one), checked part by
    part against FILE.parts before it is read. Nothing is read through a link."""
    path = path.resolve()  # the user's own argument: a link they made is theirs to follow
    index = path if path.name.endswith(".parts") else path.with_name(path.name + ".parts")
    if path.is_file() and not path.name.endswith(".parts"):
        with _opened(path) as f:
            yield f
        return
    if not index.is_file():
        raise UsageError(
            f"{printable(path)} does not exist (nor {printable(index.name)}).",
            "Try: the bundle's path.",
        )
    rows = _part_rows(index)
    paths = []
    for name, size, digest in rows:
        part = index.with_name(name)
        if not part.is_file():
            raise _refused(
                f"its part {part.name} is missing ({len(rows)} parts)",
                f"Try: copy {part.name} next to {index.name}.",
            )
        if part.lstat().st_size != size or _sha256(part) != digest:
            raise _refused(f"its part {part.name} is damaged (its checksum differs)")
        paths.append(part)
    with io.BufferedReader(_Concatenated(paths)) as stream:
        yield stream
