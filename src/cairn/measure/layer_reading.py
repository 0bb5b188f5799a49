"""One layer read as a stream: its blob decompressed (gzip, bzip2, xz, zstd or none),
checked against its digest, and its tar members turned into overlay items. Hostile
input (paths that climb out of the root, device nodes, a gzip bomb) becomes findings
instead of being followed.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import posixpath
import zlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, cast

from cairn.errors import ImageContentError
from cairn.measure import verified
from cairn.measure.overlay import Finding, Item, LayerStats, Walk
from cairn.measure.source import DigestReader, Layer
from cairn.measure.tarscan import (
    ByteSource,
    FileRange,
    PastLimit,
    Readable,
    Stream,
    TarFormatError,
    members,
)

# A layer may expand to this many times its compressed size, and at least MIN_EXPANSION
# bytes: ordinary layers expand 2-5x, a run of zeros about 1000x.
MAX_RATIO = 1000
MIN_EXPANSION = 1 << 30
MAX_ENTRIES = 2_000_000
CAPTURE_LIMIT = 64 << 20

_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


def _clean(name: str, layer: int, findings: list[Finding]) -> str | None:
    """A member name as a path inside the root, or None (with a finding) when it leaves it."""
    raw = name
    if name.startswith("/"):
        findings.append(
            Finding("warning", "absolute-path", f"layer {layer} names an absolute path", raw)
        )
        name = name.lstrip("/")
    name = name.removeprefix("./").rstrip("/")  # how most layer tools write names
    # normpath is slow, and most names are already normal
    path = posixpath.normpath(name) if "//" in name or "." in name[:1] or "/." in name else name
    if path in {".", ""}:
        return None
    if path == ".." or path.startswith("../"):
        findings.append(
            Finding(
                "error",
                "path-escapes-root",
                f"layer {layer} names a path outside the root; it was ignored",
                raw,
            )
        )
        return None
    return path


def _tar_items(src: ByteSource, layer: int, limit: float, walk: Walk) -> Iterator[Item]:
    count = 0
    try:
        for m in members(src, limit):
            count += 1
            if count > MAX_ENTRIES:
                raise PastLimit(m.name)
            path = _clean(m.name, layer, walk.findings)
            if path is None:
                continue
            kind, linkname = m.kind, m.linkname
            if kind == "hardlink":
                linkname = _clean(linkname, layer, walk.findings) or ""
            elif kind == "symlink" and _escapes(path, linkname):
                walk.findings.append(
                    Finding(
                        "warning",
                        "link-escapes-root",
                        f"a symbolic link in layer {layer} climbs above the root ({linkname})",
                        path,
                    )
                )
            elif kind in ("char", "block"):
                walk.findings.append(
                    Finding("info", "device-node", f"layer {layer} holds a device node", path)
                )
            read = None
            if kind == "file" and m.size <= CAPTURE_LIMIT and walk.capture.match(path):
                size = m.size

                def read(size: int = size) -> bytes:
                    return src.read(size)

            yield Item(path, kind, m.size, linkname, m.mode, read)
    except PastLimit as e:
        walk.findings.append(
            Finding(
                "error",
                "expansion-limit",
                f"layer {layer} expands past {limit} bytes or {MAX_ENTRIES} entries "
                "(a gzip bomb?); the rest of it was not read",
                e.args[0],
            )
        )
        raise _Stop from None


class _Stop(Exception):
    """The rest of a layer is not read (a finding says why)."""


def _escapes(path: str, target: str) -> bool:
    if target.startswith("/"):
        return False
    depth = path.count("/")  # directories above the link
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _compression(head: bytes) -> str | None:
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def _decompressed(kind: str, reader: DigestReader) -> Readable:
    # the decompressors only call read(), whatever their stubs ask for
    if kind == "gzip":
        return gzip.GzipFile(fileobj=cast("IO[bytes]", reader))
    if kind == "bzip2":
        return bz2.BZ2File(cast("IO[bytes]", reader))
    if kind == "xz":
        return lzma.LZMAFile(cast("IO[bytes]", reader))
    return _Zstd(reader)


class _Zstd:
    """zstandard's stream reader, with its errors as the corrupt-layer error the walk
    reports. Imported here: a C extension only zstd layers need."""

    def __init__(self, reader: DigestReader) -> None:
        import zstandard

        self._error = zstandard.ZstdError
        self._raw = zstandard.ZstdDecompressor().stream_reader(
            cast("IO[bytes]", reader), closefd=False
        )

    def read(self, n: int, /) -> bytes:
        try:
            return self._raw.read(n)
        except self._error as e:
            raise TarFormatError(f"zstd: {e}") from None


@dataclass(frozen=True)
class LayerRange:
    """A layer's bytes, opened: where they lie, how they are compressed, and whether an
    earlier run checked them against the layer's digest."""

    layer: Layer
    fd: int
    start: int
    length: int
    compression: str | None
    known: bool

    @classmethod
    def opened(cls, layer: Layer, f: IO[bytes], start: int, length: int) -> LayerRange:
        fd = f.fileno()
        compression = _compression(os.pread(fd, 6, start))
        return cls(
            layer, fd, start, length, compression, verified.known(fd, start, length, layer.digest)
        )


# (layer digest, capture pattern) -> the layer's items and findings, while shared_layers()
_SHARED: ContextVar[dict[tuple[str, str], tuple[list[Item], list[Finding]]] | None] = ContextVar(
    "shared_layers", default=None
)


@contextlib.contextmanager
def shared_layers() -> Iterator[None]:
    """Within the block, a layer is read once however many images share it (a family's
    children all carry their parents' layers): its items, captured files included, are
    kept by digest and replayed for the next image that has it."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _bytes(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _recorded(items: Iterator[Item], into: list[Item]) -> Iterator[Item]:
    """`items`, each kept in `into` as it passes, its captured bytes read now."""
    for item in items:
        if item.read is not None:
            item = Item(  # noqa: PLW2901
                item.path, item.kind, item.size, item.linkname, item.mode, _bytes(item.read())
            )
        into.append(item)
        yield item


def read_layer(walk: Walk, r: LayerRange, stats: LayerStats) -> tuple[str | None, int] | None:
    """Walk one layer. For a compressed one, its digest and length as read (None for the
    digest when already known); for an uncompressed one the background hashes give them.
    None when the layer was not read to its end (a finding says why). Within
    shared_layers(), a layer read before (and checked against its digest) is replayed."""
    layer = r.layer
    shared = _SHARED.get()
    key = (layer.digest, walk.capture.pattern)
    if shared is not None and layer.digest and key in shared:
        replayed, findings = shared[key]
        walk.findings.extend(findings)
        walk.apply(layer.index, iter(replayed), stats)
        return (None, r.length) if r.compression is not None else None
    kept: list[Item] = []
    before = len(walk.findings)
    limit = max(MIN_EXPANSION, MAX_RATIO * (layer.size or 1))
    try:
        if r.compression is None:
            src: ByteSource = FileRange(r.fd, r.start, r.length)
            walk.apply(layer.index, _tar_items(src, layer.index, limit, walk), stats)
            return None
        reader = DigestReader(FileRange(r.fd, r.start, r.length), hashing=not r.known)
        src = Stream(_decompressed(r.compression, reader))
        items = _tar_items(src, layer.index, limit, walk)
        walk.apply(layer.index, _recorded(items, kept) if shared is not None else items, stats)
        reader.drain()
        if shared is not None and layer.digest and reader.digest in (None, layer.digest):
            shared[key] = (kept, walk.findings[before:])
        return reader.digest, reader.count
    except _Stop:
        return None
    except (TarFormatError, EOFError, zlib.error, lzma.LZMAError, OSError) as e:
        if layer.size is not None and r.length < layer.size:
            raise _truncated(layer, r.length) from None
        raise ImageContentError(
            f"Reading layer {layer.index} ({layer.digest}) failed because it is truncated "
            f"or corrupt ({e}).",
            "Try: copy the image again from its registry; if that copy fails too, rebuild it.",
        ) from None


def _truncated(layer: Layer, count: int) -> ImageContentError:
    return ImageContentError(
        f"Layer {layer.index} is truncated: its blob holds {count} bytes, "
        f"the manifest says {layer.size}.",
        "Try: copy the image again from its registry (an interrupted copy leaves such blobs).",
    )


def check_layer(walk: Walk, layer: Layer, digest: str | None, count: int) -> None:
    if layer.size is not None and count < layer.size and digest not in (None, layer.digest):
        raise _truncated(layer, count)
    if layer.digest and digest is not None and digest != layer.digest:
        raise ImageContentError(
            f"Layer {layer.index} does not match its digest: it hashes to {digest}, "
            f"the image says {layer.digest}.",
            "Try: copy the image again; a blob that does not match its digest was changed "
            "or damaged.",
        )
    if layer.size is not None and count != layer.size:
        walk.findings.append(
            Finding(
                "warning",
                "size-mismatch",
                f"layer {layer.index} is {count} bytes; the manifest says {layer.size}",
            )
        )
