"""Apply an image's layers, read as streams, to an index of the file system they make.

Nothing is extracted: each tar member updates a dictionary of paths, and the
few files the analysis reads (os-release, the package database, copyright
files, libc) are kept in memory. Whiteouts are applied as the OCI image spec
says (`.wh.NAME` deletes NAME, `.wh..wh..opq` hides what lower layers put in
its directory). Along the way the walk records, per layer, what dive counts
for its efficiency score and where bytes were wasted, and turns hostile input
(paths that climb out of the root, hard links to nothing, device nodes, a
gzip bomb) into findings instead of following it.
"""

from __future__ import annotations

import bz2
import contextlib
import fnmatch
import gzip
import lzma
import os
import posixpath
import re
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from cairn.compat.libc import version_strings
from cairn.debian.dpkg import STATUS
from cairn.errors import ImageContentError
from cairn.measure import verified
from cairn.measure.digests import BackgroundHashes, Job
from cairn.measure.source import DigestReader, Layer, Source
from cairn.measure.tarscan import (
    ByteSource,
    FileRange,
    PastLimit,
    Readable,
    Stream,
    TarFormatError,
    members,
)
from cairn.oci.whiteouts import marker

# A layer may expand to this many times its compressed size, and at least MIN_EXPANSION
# bytes: ordinary layers expand 2-5x, a run of zeros about 1000x.
MAX_RATIO = 1000
MIN_EXPANSION = 1 << 30
MAX_ENTRIES = 2_000_000
CAPTURE_LIMIT = 64 << 20

# The files the analysis reads, kept in memory as the walk passes them; of a C library,
# only the strings that name its version. The SBOM also reads the copyright files.
CAPTURED = (
    "etc/os-release",
    "usr/lib/os-release",
    "etc/passwd",
    "var/lib/dpkg/status",
    "var/lib/dpkg/status.d/*",
    "var/lib/dpkg/info/*.list",
    "lib/apk/db/installed",
    "*/libc.so.6",
    "*/ld-musl-*.so.1",
)
LICENSES = ("usr/share/doc/*/copyright",)
LIBC = re.compile(r".*/(libc\.so\.6|ld-musl-[^/]*\.so\.1)")


def capture_pattern(licenses: bool = False) -> re.Pattern[str]:
    patterns = CAPTURED + LICENSES if licenses else CAPTURED
    return re.compile("|".join(fnmatch.translate(p) for p in patterns))


_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}


@dataclass(slots=True)
class Node:
    kind: str  # file, dir, symlink, hardlink, char, block, fifo
    size: int
    layer: int
    linkname: str = ""
    mode: int = 0


@dataclass(frozen=True, slots=True)
class Item:
    """One member of a layer, whatever it was read from."""

    path: str
    kind: str
    size: int
    linkname: str
    mode: int
    read: Callable[[], bytes] | None


@dataclass(frozen=True)
class Finding:
    severity: str  # info, warning, error
    code: str
    message: str
    path: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "path": self.path,
        }


@dataclass(frozen=True)
class Waste:
    path: str
    bytes: int
    layer: int  # the layer whose copy is lost
    reason: str  # "overwritten in layer N", "deleted in layer N"


@dataclass
class LayerStats:
    index: int
    digest: str
    compressed_bytes: int | None
    bytes: int = 0
    entries: int = 0
    added: int = 0
    modified: int = 0
    deleted: int = 0
    created_by: str = ""


@dataclass(slots=True)
class DiveCount:
    """One path's figures in dive's efficiency formula."""

    cumulative: int
    minimum: int
    nodes: int

    def add(self, size: int) -> None:
        self.cumulative += size
        self.minimum = min(self.minimum, size)
        self.nodes += 1


@dataclass
class Walk:
    index: dict[str, Node] = field(default_factory=dict)
    # each directory's entries, for deleting a subtree: built at the first deletion, as
    # most layers delete nothing
    children: dict[str, set[str]] | None = None
    links_to: dict[str, set[str]] = field(default_factory=dict)
    layers: list[LayerStats] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    status_by_layer: dict[int, bytes] = field(default_factory=dict)
    apk_by_layer: dict[int, bytes] = field(default_factory=dict)
    waste: list[Waste] = field(default_factory=list)
    dive: dict[str, DiveCount] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    capture: re.Pattern[str] = field(default_factory=capture_pattern)

    # -- the file system ------------------------------------------------------------

    def _attach(self, path: str, layer: int) -> None:
        """Hang `path` under its directory, making the directories a layer left implicit."""
        parent = path.rpartition("/")[0]
        if self.children is not None:
            self.children.setdefault(parent, set()).add(path)
        if parent and parent not in self.index:
            self.index[parent] = Node("dir", 0, layer)
            self._attach(parent, layer)

    def _kids(self) -> dict[str, set[str]]:
        if self.children is None:
            self.children = {}
            for path in self.index:
                self.children.setdefault(path.rpartition("/")[0], set()).add(path)
        return self.children

    def _subtree(self, path: str) -> Iterator[str]:
        children = self._kids()
        stack = [path]
        while stack:
            p = stack.pop()
            yield p
            stack.extend(children.get(p, ()))

    def _drop(self, path: str, layer: int, reason: str) -> int:
        """Remove `path` and all below it; the bytes lost become waste. Returns how many paths
        went."""
        gone = list(self._subtree(path))
        for p in gone:
            node = self.index.pop(p, None)
            self._kids().pop(p, None)
            if node is None:
                continue
            if node.kind == "file":
                heir = self._heir(p)
                if heir is None and node.size:
                    self.waste.append(Waste(p, node.size, node.layer, f"{reason} in layer {layer}"))
                elif heir is not None:
                    self.index[heir] = Node("file", node.size, node.layer, mode=node.mode)
            elif node.kind == "hardlink":
                self.links_to.get(node.linkname, set()).discard(p)
        self._kids().get(path.rpartition("/")[0], set()).discard(path)
        return len(gone)

    def _heir(self, path: str) -> str | None:
        """A hard link that keeps the content of `path` alive once `path` goes."""
        links = sorted(p for p in self.links_to.pop(path, set()) if p in self.index)
        if not links:
            return None
        heir, rest = links[0], links[1:]
        for p in rest:
            self.index[p].linkname = heir
        if rest:
            self.links_to[heir] = set(rest)
        return heir

    def _stacked_size(self, path: str) -> int:
        return sum(self.index[p].size for p in self._subtree(path) if p in self.index)

    # -- layers ---------------------------------------------------------------------

    def apply(self, layer: int, items: Iterator[Item], stats: LayerStats) -> None:
        leaves: dict[str, int] = {}
        whiteouts: dict[str, int] = {}
        opaque: list[str] = []
        for item in items:
            stats.entries += 1
            path = item.path
            found = marker(path)
            # markers hide what lower layers hold, never this layer's own entries
            if found is not None and found.kind == "opaque":
                opaque.append(found.target)
                for child in list(self._kids().get(found.target, ())):
                    lower = self.index.get(child)
                    if lower is not None and lower.layer < layer:
                        stats.deleted += self._drop(child, layer, "deleted (opaque directory)")
                continue
            if found is not None:
                target = found.target
                node = self.index.get(target)
                whiteouts[target] = self._stacked_size(target) if node and node.kind == "dir" else 0
                if node is not None and node.layer < layer:
                    stats.deleted += self._drop(target, layer, "deleted")
                continue
            self._add(layer, item, stats)
            leaves[path] = item.size  # 0 for all but files
            if item.read is not None:
                self._capture(layer, item)
        self._count_dive(leaves, whiteouts, opaque)

    def _add(self, layer: int, item: Item, stats: LayerStats) -> None:
        path = item.path
        old = self.index.get(path)
        if old is None:
            stats.added += 1
        else:
            stats.modified += 1 if old.layer < layer else 0
            if not (old.kind == "dir" and item.kind == "dir"):
                self._drop(path, layer, "overwritten")
        if item.kind == "file":
            stats.bytes += item.size
        if item.kind == "dir" and old is not None and old.kind == "dir":
            old.layer, old.mode = layer, item.mode
            return
        node = Node(
            item.kind, item.size if item.kind == "file" else 0, layer, item.linkname, item.mode
        )
        if item.kind == "hardlink":
            target = self.index.get(item.linkname)
            if target is None or target.kind != "file":
                self.findings.append(
                    Finding(
                        "warning",
                        "hardlink-missing",
                        f"a hard link in layer {layer} points to {item.linkname}, "
                        "which is no file there",
                        path,
                    )
                )
            else:
                self.links_to.setdefault(item.linkname, set()).add(path)
        self.index[path] = node
        self._attach(path, layer)

    def _capture(self, layer: int, item: Item) -> None:
        assert item.read is not None
        data = item.read()
        if LIBC.fullmatch(item.path):
            data = version_strings(data)
        self.files[item.path] = data
        if item.path == STATUS:
            self.status_by_layer[layer] = data
        elif item.path == "lib/apk/db/installed":
            self.apk_by_layer[layer] = data

    def _count_dive(
        self, leaves: dict[str, int], whiteouts: dict[str, int], opaque: list[str]
    ) -> None:
        """dive's tree of a layer: a node per member (whiteouts under their own name, opaque
        markers left out) and the directories above them; its leaves count."""
        inner: set[str] = set()
        # an opaque marker makes its directory a node without giving it a child
        for path in (*leaves, *whiteouts, *opaque):
            parent = path.rpartition("/")[0]
            while parent and parent not in inner:
                inner.add(parent)
                parent = parent.rpartition("/")[0]
        for path, size in leaves.items():
            if path not in inner:
                self._dive_node(path, size)
        for path, size in whiteouts.items():
            self._dive_node(path, size)
        for path in opaque:
            if path not in inner and path not in leaves:
                self._dive_node(path, 0)

    def _dive_node(self, path: str, size: int) -> None:
        count = self.dive.get(path)
        if count is None:
            self.dive[path] = DiveCount(size, size, 1)  # most paths are in one layer only
        else:
            count.add(size)


# -- reading members --------------------------------------------------------------------


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
class _Range:
    """A layer's bytes, opened: where they lie, how they are compressed, and whether an
    earlier run checked them against the layer's digest."""

    layer: Layer
    fd: int
    start: int
    length: int
    compression: str | None
    known: bool

    @classmethod
    def opened(cls, layer: Layer, f: IO[bytes], start: int, length: int) -> _Range:
        fd = f.fileno()
        compression = _compression(os.pread(fd, 6, start))
        return cls(
            layer, fd, start, length, compression, verified.known(fd, start, length, layer.digest)
        )


def _read_layer(walk: Walk, r: _Range, stats: LayerStats) -> tuple[str | None, int] | None:
    """Walk one layer. For a compressed one, its digest and length as read (None for the
    digest when already known); for an uncompressed one the background hashes give them.
    None when the layer was not read to its end (a finding says why)."""
    layer = r.layer
    limit = max(MIN_EXPANSION, MAX_RATIO * (layer.size or 1))
    try:
        if r.compression is None:
            src: ByteSource = FileRange(r.fd, r.start, r.length)
            walk.apply(layer.index, _tar_items(src, layer.index, limit, walk), stats)
            return None
        reader = DigestReader(FileRange(r.fd, r.start, r.length), hashing=not r.known)
        src = Stream(_decompressed(r.compression, reader))
        walk.apply(layer.index, _tar_items(src, layer.index, limit, walk), stats)
        reader.drain()
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


def _check(walk: Walk, layer: Layer, digest: str | None, count: int) -> None:
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


def _dir_items(root: Path, capture: re.Pattern[str]) -> Iterator[Item]:
    """A directory tree as layer members (hard links found by inode, links not followed)."""
    seen: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            host = Path(dirpath) / name
            path = str(host.relative_to(root))
            st = host.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                yield Item(path, "dir", 0, "", mode, None)
            elif stat.S_ISLNK(st.st_mode):
                yield Item(path, "symlink", 0, str(host.readlink()), mode, None)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    yield Item(path, "hardlink", 0, seen[key], mode, None)
                    continue
                seen[key] = path
                read = (lambda h=host: h.read_bytes()) if capture.match(path) else None
                yield Item(path, "file", st.st_size, "", mode, read)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                yield Item(path, "char" if stat.S_ISCHR(st.st_mode) else "block", 0, "", mode, None)
            else:
                yield Item(path, "fifo", 0, "", mode, None)


def walk_source(source: Source, licenses: bool = False) -> Walk:
    """The image's file system as its layers make it; with `licenses`, the copyright files
    kept too."""
    walk = Walk(capture=capture_pattern(licenses))
    if source.root is not None:
        stats = LayerStats(0, "", None, created_by=f"the directory {source.root}")
        walk.layers.append(stats)
        walk.apply(0, _dir_items(source.root, walk.capture), stats)
        return walk
    history = [h for h in source.config.get("history", []) if not h.get("empty_layer")]
    with contextlib.ExitStack() as stack:
        ranges = [
            _Range.opened(layer, *stack.enter_context(layer.open())) for layer in source.layers
        ]
        jobs = {
            r.layer.index: Job(r.fd, r.start, r.length)
            for r in ranges
            if r.compression is None and not r.known
        }
        hashes = BackgroundHashes(jobs)
        streamed = []
        try:
            for r in ranges:
                layer = r.layer
                stats = LayerStats(
                    layer.index, layer.digest, layer.size if layer.compressed else None
                )
                if layer.index < len(history):
                    stats.created_by = history[layer.index].get("created_by", "")
                walk.layers.append(stats)
                streamed.append(_read_layer(walk, r, stats))
        except BaseException:
            hashes.cancel()  # before the files close under the workers
            raise
        hashes.wait()
        for r, digest_and_count in zip(ranges, streamed, strict=True):
            job = jobs.get(r.layer.index)
            if job is not None and job.error is not None:
                raise ImageContentError(
                    f"Reading layer {r.layer.index} ({r.layer.digest}) failed ({job.error}).",
                    "Try: check that the image's files are readable.",
                )
            hashed = (job.digest, job.count) if job is not None else digest_and_count
            if r.known:
                hashed = (None, r.length)
            if hashed is None:
                continue  # not read to its end: a finding says so
            _check(walk, r.layer, *hashed)
            if hashed[0] == r.layer.digest:
                verified.remember(r.fd, r.start, r.length, r.layer.digest)
    return walk
