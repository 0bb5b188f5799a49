"""How a layer deletes what lower layers hold (OCI image spec, "Whiteouts").

The one rule every reader of layers follows (unpacking, diffing, measuring):
a layer's markers hide what the layers *below* it hold, never the layer's own
entries, wherever in the tar stream the marker stands.

- `DIR/.wh.NAME` deletes DIR/NAME and everything below it;
- `DIR/.wh..wh..opq` (opaque) hides everything lower layers put in DIR; DIR
  itself stays.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

WHITEOUT = ".wh."  # .wh.NAME deletes NAME
OPAQUE = ".wh..wh..opq"  # hides everything lower layers put in its directory

T = TypeVar("T")


@dataclass(frozen=True)
class Marker:
    """A whiteout member, read: what it deletes, or which directory it empties."""

    kind: Literal["delete", "opaque"]
    target: str  # a normalised path ("" is the root)


def marker(path: str) -> Marker | None:
    """The marker a normalised member path ("usr/.wh.bin") is, or None for an entry."""
    parent, _, base = path.rpartition("/")
    if base == OPAQUE:
        return Marker("opaque", parent)
    if base.startswith(WHITEOUT):
        name = base[len(WHITEOUT) :]
        return Marker("delete", f"{parent}/{name}" if parent else name)
    return None


def below(path: str, directory: str) -> bool:
    """Whether `path` lies strictly inside `directory` ("" is the root)."""
    return path.startswith(directory + "/") if directory else bool(path)


@dataclass
class LayerMarkers:
    """All the markers of one layer."""

    deleted: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)

    def add(self, m: Marker) -> None:
        (self.deleted if m.kind == "delete" else self.opaque).append(m.target)

    def hides(self, path: str) -> bool:
        """Whether a lower layer's `path` is gone once this layer is on top."""
        return any(path == d or below(path, d) for d in self.deleted) or any(
            below(path, o) for o in self.opaque
        )

    def __bool__(self) -> bool:
        return bool(self.deleted or self.opaque)


def apply_layer(lower: MutableMapping[str, T], entries: Iterable[tuple[str, T | Marker]]) -> None:
    """Put one layer's entries on top of `lower` (path -> entry), its markers applied first."""
    markers = LayerMarkers()
    own: dict[str, T] = {}
    for path, entry in entries:
        if isinstance(entry, Marker):
            markers.add(entry)
        else:
            own[path] = entry
    if markers:
        for path in [p for p in lower if markers.hides(p)]:
            del lower[path]
    lower.update(own)
