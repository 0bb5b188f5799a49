"""dpkg's package database, read from bytes: the one reader of the status file.

The status file (and distroless's `status.d/` files, one package each) is
deb822: blank-line separated stanzas of `Field: value` lines, continued by
lines that start with a space. cairn reads only one-line fields, so a
continued value keeps its first line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

STATUS = "var/lib/dpkg/status"  # as a normalised path inside a root or layer
STATUS_DIR = "var/lib/dpkg/status.d/"


def is_status_entry(path: str) -> bool:
    """Whether a normalised path is one package's status.d file (not its md5sums)."""
    return path.startswith(STATUS_DIR) and not path.endswith(".md5sums") and path != STATUS_DIR


Stanza = dict[str, str]


def dummy_stanza(name: str, version: str, description: str, source: str | None = None) -> str:
    """The status stanza of a package apt is to take as installed, though it is not."""
    return (
        f"Package: {name}\nStatus: install ok installed\nPriority: optional\n"
        "Section: oldlibs\nMaintainer: cairn\nArchitecture: all\nMulti-Arch: foreign\n"
        + (f"Source: {source}\n" if source else "")
        + f"Version: {version}\nDescription: {description}\n"
    )


def stanzas(data: bytes) -> Iterator[Stanza]:
    fields: Stanza = {}
    for line in data.decode("utf-8", "replace").splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields = {}
        elif line[0] not in " \t#":
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
    if fields:
        yield fields


def installed(found: Iterable[Stanza]) -> Iterator[Stanza]:
    """The stanzas of installed packages. A stanza with no Status counts as installed:
    distroless's status.d files carry none."""
    for p in found:
        if "Package" in p and p.get("Status", "install ok installed").endswith(" installed"):
            yield p


def installed_packages(status: bytes) -> list[tuple[str, str]]:
    """(name, version) of every installed package, sorted (a package installed for two
    architectures appears twice)."""
    return sorted((p["Package"], p.get("Version", "")) for p in installed(stanzas(status)))


def installed_versions(status: bytes) -> dict[str, str]:
    """name -> version of every installed package."""
    return dict(installed_packages(status))
