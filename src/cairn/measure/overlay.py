"""The file system an image's layers make, as an index of paths built member by member.

Nothing is extracted: each member updates a dictionary of paths, and the few
files the analysis reads (os-release, the package database, copyright files,
libc) are kept in memory. Whiteouts follow cairn.oci.whiteouts. Along the way
the index records, per layer, what dive counts for its efficiency score and
where bytes were wasted.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cairn.debian.dpkg import STATUS
from cairn.libc import version_strings
from cairn.oci.whiteouts import marker

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
            self._kids().pop(p, None)
            self._remove(p, layer, reason)
        self._kids().get(path.rpartition("/")[0], set()).discard(path)
        return len(gone)

    def _drop_lower(self, path: str, layer: int, reason: str, *, keep_path: bool) -> int:
        """Remove what lower layers put at `path` (unless `keep_path`) and below it: a marker
        of `layer` hides those, never the layer's own entries (cairn.oci.whiteouts)."""
        gone = [
            p
            for p in self._subtree(path)
            if not (keep_path and p == path) and p in self.index and self.index[p].layer < layer
        ]
        for p in gone:
            self._remove(p, layer, reason)
        kids = self._kids()
        for p in sorted(gone, key=lambda p: p.count("/"), reverse=True):
            if not kids.get(p):  # nothing of this layer's own below it
                kids.pop(p, None)
                kids.get(p.rpartition("/")[0], set()).discard(p)
        return len(gone)

    def _remove(self, p: str, layer: int, reason: str) -> None:
        node = self.index.pop(p, None)
        if node is None:
            return
        if node.kind == "file":
            heir = self._heir(p)
            if heir is None and node.size:
                self.waste.append(Waste(p, node.size, node.layer, f"{reason} in layer {layer}"))
            elif heir is not None:
                self.index[heir] = Node("file", node.size, node.layer, mode=node.mode)
        elif node.kind == "hardlink":
            self.links_to.get(node.linkname, set()).discard(p)

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
                stats.deleted += self._drop_lower(
                    found.target, layer, "deleted (opaque directory)", keep_path=True
                )
                continue
            if found is not None:
                target = found.target
                node = self.index.get(target)
                whiteouts[target] = self._stacked_size(target) if node and node.kind == "dir" else 0
                stats.deleted += self._drop_lower(target, layer, "deleted", keep_path=False)
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
