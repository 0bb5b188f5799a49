"""An OCI image layout on disk (oci:DIR), written atomically.

A build stages every blob in a sibling directory and commits under a lock.
A new layout is the staging directory itself, completed there and renamed
into place. An existing one takes the staged blobs first (content-addressed,
so harmless if left over), then index.json in one rename. A build that fails
or is killed before that rename leaves the layout exactly as it was; blobs
that nothing references any more are collected after each commit, and Ctrl-C
or SIGTERM waits for a commit that has begun.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from cairn.errors import CairnError, ImageContentError, StoreError, UsageError
from cairn.oci.image import (
    ANN_REF_NAME,
    MEDIA_INDEX,
    MEDIA_MANIFEST,
    Blob,
    Descriptor,
    canonical_json,
)
from cairn.oci.reference import ImageRef
from cairn.signals import stop_deferred
from cairn.untrusted import MAX_DOCUMENT, json_object

MAX_READ = 64 << 20  # a blob read whole (an attestation's SBOM, a signature payload)
MAX_INDEX = 64 << 20  # index.json: thousands of images and attachments

OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}
# An attachment of image NAME is kept under the ref NAME:TAG, TAG the registry's tag for
# it: sha256-HEX.sig (signatures), sha256-HEX.att (attestations), sha256-HEX (referrers).
ATTACHED = ":"


def attachment_tag(digest: str, kind: str = "") -> str:
    """The registry tag what is attached to `digest` goes under: sha256-HEX.sig (signatures),
    sha256-HEX.att (attestations), sha256-HEX (the referrers tag schema's index)."""
    algo, _, hexdigest = digest.partition(":")
    return f"{algo}-{hexdigest}" + (f".{kind}" if kind else "")


_ATTACHMENT = re.compile(r"^(?P<name>[^:]+):(?P<tag>sha256-(?P<hex>[0-9a-f]{64})(?:\.[a-z]+)?)$")
_STAGING = ".cairn-staging"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


class NotRegular(OSError):
    """A file that is a link, not a regular file, or cannot be opened (says which)."""


@contextlib.contextmanager
def open_regular(path: Path) -> Iterator[tuple[BinaryIO, int]]:
    """`path` opened for reading, and its size, only when it is a regular file reached
    without following a link: a link planted in a store never makes another file read, a
    FIFO never blocks and a device never reads for ever. NotRegular otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise NotRegular(
            "is a link" if e.errno == errno.ELOOP else f"cannot be read ({e.strerror})"
        ) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegular("is not a regular file")
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as f:
        yield f, st.st_size


def new_file_mode() -> int:
    """The mode a new file gets from this process's umask (0644 under the usual 022); a
    file made through mkstemp (0600) is given it before it is renamed into place."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text()
        umask = int(next(ln for ln in status.splitlines() if ln.startswith("Umask:")).split()[1], 8)
        return 0o666 & ~umask
    return 0o644


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a part of it:
    through a new temporary file beside it (O_EXCL, never one planted there or a link),
    renamed over it."""
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(new_file_mode())
        tmp.replace(path)
    except OSError as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise store_failure(f"Writing {path.name}", path, e) from None


def store_failure(action: str, path: Path, e: OSError) -> StoreError:
    if e.errno == errno.ENOSPC:
        return StoreError(
            f"{action} failed because the disk holding {path} is full.",
            "Try: free some space, or build to another place with --output.",
        )
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoreError(
            f"{action} failed because {path} is not writable ({e.strerror}).",
            "Try: --output to a directory you can write to.",
        )
    return StoreError(f"{action} failed at {path}: {e}.")


_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def checked_digest(digest: str) -> str:
    """`digest` if it is a sha256 digest; a document that names a blob by anything else
    (a path, say) is refused before it can name a file."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ImageContentError(
            f"A document names the blob {str(digest)[:80]!r}, which is no sha256 digest.",
            "Try: copy the image again from a source you trust.",
        )
    return digest


def layout_named(ref: ImageRef, purpose: str) -> OciLayout:
    """The layout an `oci:DIR` reference names; any other transport is a usage error that
    says what needed a layout ("cairn plan compares with")."""
    if ref.transport != "oci":
        raise UsageError(f"{purpose} an OCI layout, not {ref}.", "Try: --output oci:DIR")
    return OciLayout(ref.path)


def existing_layout(
    path: Path, failure: str, fix: str, error: type[CairnError] = UsageError
) -> OciLayout:
    """The layout at `path`, or `error` saying `failure` (what cannot be done) because it
    is none."""
    layout = OciLayout(path)
    if not layout.exists():
        raise error(
            f"{failure}{path} is not an OCI image layout (no oci-layout and index.json).", fix
        )
    return layout


class OciLayout:
    """Read access to a layout, and `staging()` for changing it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def exists(self) -> bool:
        return (self.root / "oci-layout").is_file() and (self.root / "index.json").is_file()

    def index(self) -> dict[str, Any]:
        if not self.exists():
            return {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": []}
        try:
            fd = os.open(self.root / "index.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise ValueError("not a regular file")
            with os.fdopen(fd, "rb") as f:
                loaded = json_object(f.read(MAX_INDEX + 1), "index.json", max_bytes=MAX_INDEX)
            if not isinstance(loaded.get("manifests", []), list):
                raise ValueError("its manifests are no list")
        except (OSError, ValueError) as e:
            raise StoreError(
                f"Reading the image layout {self.root} failed because its index.json "
                f"is unreadable ({e}).",
                "Try: remove the directory and build again.",
            ) from None
        return loaded

    def all_refs(self) -> dict[str, Descriptor]:
        """Every ref name -> descriptor, from org.opencontainers.image.ref.name."""
        out: dict[str, Descriptor] = {}
        for m in self.index().get("manifests", []):
            desc = Descriptor.from_json(m)  # every field of its type, or ImageContentError
            name = dict(desc.annotations).get(ANN_REF_NAME)
            if name:
                out[name] = desc
        return out

    def refs(self) -> dict[str, Descriptor]:
        """Image name -> descriptor: the images, not what is attached to them."""
        return {n: d for n, d in self.all_refs().items() if not _ATTACHMENT.match(n)}

    def attachments(self, name: str) -> dict[str, Descriptor]:
        """What is attached to image `name` (signatures, attestations), by the tag a
        registry keeps it under: sha256-HEX.sig -> descriptor."""
        out = {}
        for ref, desc in self.all_refs().items():
            m = _ATTACHMENT.match(ref)
            if m and m["name"] == name:
                out[m["tag"]] = desc
        return out

    def platform_manifests(self, name: str) -> tuple[Descriptor, ...]:
        """The per-platform manifests of the image index named `name` (none if absent)."""
        ref = self.refs().get(name)
        if ref is None or ref.media_type != MEDIA_INDEX:
            return ()
        return tuple(Descriptor.from_json(m) for m in self.read_json(ref.digest)["manifests"])

    def blob_path(self, digest: str) -> Path:
        algo, _, hexdigest = checked_digest(digest).partition(":")
        return self.root / "blobs" / algo / hexdigest

    @contextlib.contextmanager
    def open_blob(self, digest: str) -> Iterator[tuple[BinaryIO, int]]:
        """The blob's file and size, opened as `open_regular` opens; ImageContentError
        naming the blob otherwise."""
        try:
            with open_regular(self.blob_path(digest)) as (f, size):
                yield f, size
        except NotRegular as e:
            raise ImageContentError(
                f"The blob {digest} of {self.root} {e}.",
                "Try: copy the image again from a source you trust.",
            ) from None

    def read_blob(self, digest: str, max_bytes: int = MAX_READ) -> bytes:
        """The blob's bytes, read within `max_bytes` and checked against its digest."""
        with self.open_blob(digest) as (f, size):
            if size > max_bytes:
                raise ImageContentError(
                    f"The blob {digest} of {self.root} is {size} bytes, more than the "
                    f"{max_bytes} a document of its kind may be.",
                    "Try: copy the image again from a source you trust.",
                )
            data = f.read(max_bytes + 1)
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ImageContentError(
                f"The blob {digest} of {self.root} does not match its digest.",
                "Try: copy the image again from a source you trust.",
            )
        return data

    def check_blob(self, digest: str, size: int | None = None) -> None:
        """That the blob (a layer, of any size) is a regular file of `size` bytes (when its
        descriptor gives one) matching its digest, read a MiB at a time; ImageContentError
        otherwise. A file of another size is refused before a byte is hashed."""
        h = hashlib.sha256()
        with self.open_blob(digest) as (f, actual):
            if size is not None and actual != size:
                raise ImageContentError(
                    f"The blob {digest} of {self.root} is {actual} bytes, and its descriptor "
                    f"says {size}.",
                    "Try: copy the image again from a source you trust.",
                )
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if "sha256:" + h.hexdigest() != digest:
            raise ImageContentError(
                f"The blob {digest} of {self.root} does not match its digest.",
                "Try: copy the image again from a source you trust.",
            )

    def read_json(self, digest: str) -> dict[str, Any]:
        """A manifest, index, config or other JSON document of the layout, read within
        untrusted's bounds and checked against its digest."""
        data = self.read_blob(digest, MAX_DOCUMENT)
        try:
            return json_object(data, f"the blob {digest}")
        except ValueError as e:
            raise ImageContentError(
                f"The layout {self.root} is damaged: {e}.",
                "Try: copy the image again from a source you trust.",
            ) from None

    @contextlib.contextmanager
    def staging(self) -> Iterator[Staging]:
        """Stage a change; it is committed when the block ends without an error."""
        parent = self.root.parent.absolute()
        created = [d for d in (parent, *parent.parents) if not d.exists()]
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise store_failure("Creating the output directory", parent, e) from None
        stage = Staging(
            self, parent / f".{self.root.name}{_STAGING}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        committed = False
        try:
            yield stage
            stage.commit()
            committed = True
        finally:
            shutil.rmtree(stage.dir, ignore_errors=True)
            if not committed:
                # a failed first build leaves no empty directories behind either
                for d in created:
                    with contextlib.suppress(OSError):
                        d.rmdir()


class Staging:
    """Blobs and ref changes waiting to be committed to an OciLayout."""

    def __init__(self, layout: OciLayout, directory: Path) -> None:
        self.layout = layout
        self.dir = directory
        self.blobs = directory / "blobs" / "sha256"
        self.work = directory / "work"
        self._refs: dict[str, Descriptor] = {}
        try:
            self.blobs.mkdir(parents=True)
            self.work.mkdir()
        except OSError as e:
            raise store_failure("Staging the build", directory, e) from None

    def blob_path(self, digest: str) -> Path:
        """A blob staged here, else the one already in the layout."""
        staged = self.blobs / checked_digest(digest).partition(":")[2]
        return staged if staged.exists() else self.layout.blob_path(digest)

    def _holding(self, digest: str) -> OciLayout:
        """Where the blob is: staged here, else the layout (each read as OciLayout reads)."""
        staged = self.blobs / checked_digest(digest).partition(":")[2]
        return OciLayout(self.dir) if os.path.lexists(staged) else self.layout

    def read_blob(self, digest: str, max_bytes: int = MAX_READ) -> bytes:
        return self._holding(digest).read_blob(digest, max_bytes)

    def read_json(self, digest: str) -> dict[str, Any]:
        return self._holding(digest).read_json(digest)

    def add(self, blob: Blob) -> Descriptor:
        target = self.blobs / checked_digest(blob.descriptor.digest).partition(":")[2]
        try:
            _write_file(target, blob.data)
        except OSError as e:
            raise store_failure("Writing a blob", target, e) from None
        return blob.descriptor

    def adopt(self, path: Path, digest: str) -> None:
        """Take a finished blob file (written in self.work) into the staged blobs."""
        target = self.blobs / digest.partition(":")[2]
        try:
            with path.open("rb") as f:
                os.fsync(f.fileno())
            path.replace(target)
        except OSError as e:
            raise store_failure("Staging a layer", target, e) from None

    def set_ref(self, name: str, descriptor: Descriptor) -> None:
        self._refs[name] = descriptor

    def attach(self, name: str, tag: str, descriptor: Descriptor) -> None:
        """Keep `descriptor` as image `name`'s attachment under the registry tag `tag`."""
        self._refs[f"{name}{ATTACHED}{tag}"] = descriptor

    def commit(self) -> None:
        root = self.layout.root
        try:
            with _locked(root.parent), stop_deferred():
                if os.path.lexists(root):  # a layout, or a directory (or link) made for one
                    self._commit_into(root)
                else:
                    self._commit_new(root)
        except OSError as e:
            raise store_failure("Writing the image layout", root, e) from None

    def _index(self) -> dict[str, Any]:
        """The layout's index with this staging's refs set (each ref names one entry)."""
        index = self.layout.index()
        kept = [
            m
            for m in index.get("manifests", [])
            if m.get("annotations", {}).get(ANN_REF_NAME) not in self._refs
        ]
        for name, desc in sorted(self._refs.items()):
            entry = desc.to_json()
            entry["annotations"] = {**entry.get("annotations", {}), ANN_REF_NAME: name}
            kept.append(entry)
        return {**index, "manifests": self._without_stale_attachments(kept)}

    def _without_stale_attachments(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Attachments of digests their image no longer has (it was rebuilt) are dropped;
        a layout without the image keeps them (one that carries attachments alone)."""
        digests: dict[str, set[str]] = {}
        for m in entries:
            name = m.get("annotations", {}).get(ANN_REF_NAME, "")
            if name and not _ATTACHMENT.match(name):
                digests[name] = {m["digest"]}
                if m["mediaType"] == MEDIA_INDEX:
                    children = self.read_json(m["digest"]).get("manifests", [])
                    digests[name] |= {c["digest"] for c in children}

        def live(m: dict[str, Any]) -> bool:
            found = _ATTACHMENT.match(m.get("annotations", {}).get(ANN_REF_NAME, ""))
            if not found or found["name"] not in digests:
                return True
            return f"sha256:{found['hex']}" in digests[found["name"]]

        return [m for m in entries if live(m)]

    def _commit_new(self, root: Path) -> None:
        """The staging directory becomes the layout, whole, in one rename."""
        shutil.rmtree(self.work)
        _write_file(self.dir / "oci-layout", canonical_json(OCI_LAYOUT))
        _write_file(self.dir / "index.json", canonical_json(self._index()))
        collect_garbage(OciLayout(self.dir))
        _fsync_dir(self.blobs)
        _fsync_dir(self.dir)
        self.dir.replace(root)
        _fsync_dir(root.parent)

    def _commit_into(self, root: Path) -> None:
        """Blobs first, then index.json in one rename: a kill between leaves only spare blobs,
        which the next commit collects."""
        index = self._index()
        blob_dir = root / "blobs" / "sha256"
        blob_dir.mkdir(parents=True, exist_ok=True)
        for staged in self.blobs.iterdir():
            final = blob_dir / staged.name
            if not final.exists():
                staged.replace(final)
        _fsync_dir(blob_dir)
        layout_file = root / "oci-layout"
        if not layout_file.exists():
            _write_file(layout_file, canonical_json(OCI_LAYOUT))
        tmp = root / f".index.json.{os.getpid()}.tmp"
        _write_file(tmp, canonical_json(index))
        tmp.replace(root / "index.json")
        # under the lock no other index is being written: any other is a killed cairn's
        for stale in root.glob(".index.json.*.tmp"):
            stale.unlink(missing_ok=True)
        _fsync_dir(root)
        collect_garbage(self.layout)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive flock on the directory that holds the layout (no lock file left behind)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _remove_stale_staging(directory)
        yield
    finally:
        os.close(fd)


def _remove_stale_staging(directory: Path) -> None:
    """Staging directories of cairn processes that died (killed mid-build)."""
    for d in directory.glob(f".*{_STAGING}-*"):
        pid = d.name.rsplit("-", 2)[-2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)


def reachable(layout: OciLayout) -> set[str]:
    """Every blob digest that index.json reaches through indexes and manifests."""
    seen: set[str] = set()
    todo: list[Any] = list(layout.index().get("manifests", []))
    while todo:
        desc = Descriptor.from_json(todo.pop())
        if desc.digest in seen:
            continue
        seen.add(desc.digest)
        try:
            if desc.media_type == MEDIA_INDEX:
                todo += list(layout.read_json(desc.digest)["manifests"])
            elif desc.media_type == MEDIA_MANIFEST:
                doc = layout.read_json(desc.digest)
                todo += [doc["config"], *list(doc.get("layers", []))]
        except (KeyError, TypeError):
            raise ImageContentError(
                f"The document {desc.digest} of {layout.root} is no OCI manifest or index.",
                "Try: copy the image again from a source you trust.",
            ) from None
    return seen


def collect_garbage(layout: OciLayout) -> int:
    """Delete blobs nothing references; returns how many bytes were freed."""
    keep = {d.partition(":")[2] for d in reachable(layout)}
    freed = 0
    blob_dir = layout.root / "blobs" / "sha256"
    for blob in blob_dir.iterdir():
        if blob.name not in keep:
            freed += blob.stat().st_size
            blob.unlink()
    return freed
