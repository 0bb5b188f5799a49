"""Installed packages, read from the package databases the walk kept: dpkg's status file
(or distroless's status.d), apk's installed database; the files each owns, the layer that
added it, and which packages nothing else needs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cairn.debian.dpkg import STATUS, STATUS_DIR, Stanza, installed, installed_versions, stanzas
from cairn.inroot import index_lookup, resolve_quietly
from cairn.measure.overlay import Node, Walk


@dataclass
class Package:
    name: str
    version: str
    architecture: str
    manager: str  # dpkg or apk
    source: str
    source_version: str
    depends: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    required: bool = False  # Essential or Priority: required: never a removal candidate
    owned: list[str] = field(default_factory=list)  # paths the database lists
    listing: bytes = b""  # or dpkg's .list file, read when the files are assigned
    bytes: int = 0
    files: int = 0
    layer: int | None = None
    license: str | None = None  # apk states it; Debian's come from copyright files


def _names(field_value: str) -> tuple[str, ...]:
    """Package names in a Depends-like field, alternatives included, versions dropped."""
    out = []
    for part in re.split(r"[,|]", field_value):
        name = part.strip().split(" ", 1)[0].split(":", 1)[0]
        if name:
            out.append(name)
    return tuple(out)


def _dpkg_package(p: Stanza) -> Package:
    source, _, source_version = p.get("Source", p["Package"]).partition(" ")
    source_version = source_version.strip("()") or p.get("Version", "")
    return Package(
        name=p["Package"],
        version=p.get("Version", ""),
        architecture=p.get("Architecture", ""),
        manager="dpkg",
        source=source,
        source_version=source_version,
        depends=_names(
            ", ".join(p.get(f, "") for f in ("Depends", "Pre-Depends", "Recommends") if p.get(f))
        ),
        provides=_names(p.get("Provides", "")),
        required=p.get("Essential") == "yes" or p.get("Priority") == "required",
    )


def _lines(data: bytes) -> list[str]:
    return [line for line in data.decode("utf-8", "replace").splitlines() if line]


def dpkg_packages(walk: Walk) -> list[Package]:
    files = walk.files
    packages: list[Package] = []
    status = files.get(STATUS)
    if status is not None and walk.index.get(STATUS):
        for p in installed(stanzas(status)):
            pkg = _dpkg_package(p)
            arch = p.get("Architecture", "")
            pkg.listing = files.get(f"var/lib/dpkg/info/{pkg.name}.list") or files.get(
                f"var/lib/dpkg/info/{pkg.name}:{arch}.list", b""
            )
            packages.append(pkg)
    # distroless: one status paragraph per file in status.d, with its md5sums beside it
    for path in sorted(files):
        if not path.startswith(STATUS_DIR) or path not in walk.index:
            continue
        if path.endswith(".md5sums"):
            continue
        for p in installed(stanzas(files[path])):
            pkg = _dpkg_package(p)
            sums = files.get(f"{path}.md5sums", b"")
            pkg.owned = ["/" + line.split(None, 1)[1] for line in _lines(sums) if " " in line]
            pkg.layer = walk.index[path].layer
            packages.append(pkg)
    _first_layers(
        packages, {layer: installed_versions(data) for layer, data in walk.status_by_layer.items()}
    )
    return packages


Pairs = list[tuple[str, str]]


def _apk_paragraphs(data: bytes) -> list[Pairs]:
    """apk's database: blank-line separated paragraphs of `K:value` lines, order kept (each
    R: file belongs to the F: directory above it)."""
    out: list[Pairs] = []
    current: Pairs = []
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            if current:
                out.append(current)
            current = []
            continue
        key, _, value = line.partition(":")
        current.append((key, value))
    if current:
        out.append(current)
    return out


def _first(para: Pairs, key: str, default: str = "") -> str:
    return next((v for k, v in para if k == key), default)


def _apk_package(para: Pairs) -> Package:
    owned, directory = [], ""
    for key, value in para:
        if key == "F":
            directory = value
        elif key == "R":
            owned.append(f"/{directory}/{value}" if directory else f"/{value}")
    depends = " ".join(v for k, v in para if k == "D").split()
    return Package(
        name=_first(para, "P"),
        version=_first(para, "V"),
        architecture=_first(para, "A"),
        manager="apk",
        source=_first(para, "o", _first(para, "P")),
        source_version=_first(para, "V"),
        depends=tuple(re.split(r"[=<>~]", d, maxsplit=1)[0] for d in depends),
        owned=owned,
        license=_first(para, "L") or None,
    )


def apk_packages(walk: Walk) -> list[Package]:
    data = walk.files.get("lib/apk/db/installed")
    if data is None or "lib/apk/db/installed" not in walk.index:
        return []
    packages = [_apk_package(para) for para in _apk_paragraphs(data) if _first(para, "P")]
    _first_layers(
        packages,
        {
            layer: {_first(p, "P"): _first(p, "V") for p in _apk_paragraphs(raw)}
            for layer, raw in walk.apk_by_layer.items()
        },
    )
    return packages


def _first_layers(packages: list[Package], by_layer: dict[int, dict[str, str]]) -> None:
    """Each package's layer: the first whose database lists it at the version installed now."""
    first: dict[str, tuple[str, int]] = {}
    for layer in sorted(by_layer):
        for name, version in by_layer[layer].items():
            if name not in first or first[name][0] != version:
                first[name] = (version, layer)
    for pkg in packages:
        if pkg.layer is None and pkg.name in first:
            pkg.layer = first[pkg.name][1]


class IndexPaths:
    """Paths of the walk's final file system, resolved by cairn.inroot's rule (merged /usr:
    /bin/ls is usr/bin/ls)."""

    def __init__(self, index: dict[str, Node]) -> None:
        self.index = index
        self._lookup = index_lookup(index)
        self._dirs: dict[str, str | None] = {"": ""}

    def file(self, path: str) -> str | None:
        """`path` with its directories resolved (not a link at its end); None when absent."""
        head, _, name = path.strip("/").rpartition("/")
        if head not in self._dirs:
            self._dirs[head] = resolve_quietly(self._lookup, head)
        parent = self._dirs[head]
        if parent is None:
            return None
        full = f"{parent}/{name}" if parent else name
        return full if full in self.index else None

    def follow(self, path: str) -> str | None:
        """`path` with every link followed, the last one too; None when absent or looping."""
        found = resolve_quietly(self._lookup, path)
        return found if found and found in self.index else None


def assign_files(packages: list[Package], resolver: IndexPaths) -> None:
    """Give each regular file to the first package listing it."""
    taken: set[int] = set()  # ids of the nodes: the paths would be megabytes of new strings
    for pkg in packages:
        # one package's lines at a time, for the same reason
        for listed in (*pkg.owned, *pkg.listing.decode("utf-8", "replace").splitlines()):
            path = resolver.file(listed) if listed else None
            if path is None:
                continue
            node = resolver.index[path]
            if node.kind != "file" or id(node) in taken:
                continue
            taken.add(id(node))
            pkg.bytes += node.size
            pkg.files += 1


def unneeded(packages: list[Package]) -> list[Package]:
    """Packages no other installed package depends on or recommends, and not required."""
    providers: dict[str, set[str]] = {}
    for pkg in packages:
        for name in (pkg.name, *pkg.provides):
            providers.setdefault(name, set()).add(pkg.name)
    needed: set[str] = set()
    for pkg in packages:
        for dep in pkg.depends:
            needed |= providers.get(dep, set()) - {pkg.name}
    return sorted(
        (p for p in packages if p.name not in needed and not p.required),
        key=lambda p: (-p.bytes, p.name),
    )
