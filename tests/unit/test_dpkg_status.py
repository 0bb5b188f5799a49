"""dpkg's status file, read once for the build, refresh and measuring alike."""

from __future__ import annotations

from pathlib import Path

from cairn.debian.dpkg import installed_packages, installed_versions, stanzas
from cairn.family.refresh import layers_versions
from tests.layers import M, compress, tar_bytes

STATUS = b"""Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.41-12
Description: GNU C Library
 a continued line: not a field

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.41-12

Package: gone
Status: deinstall ok config-files
Version: 1.0

Package: half
Status: install ok half-configured
Version: 2.0

Package: status-d
Version: 3.0
"""


def test_only_installed_packages_count_and_a_missing_status_is_installed() -> None:
    assert installed_packages(STATUS) == [
        ("libc6", "2.41-12"),
        ("libc6", "2.41-12"),
        ("status-d", "3.0"),
    ]
    assert installed_versions(STATUS) == {"libc6": "2.41-12", "status-d": "3.0"}


def test_continuation_lines_keep_the_first_line_of_a_value() -> None:
    first = next(stanzas(STATUS))
    assert first["Description"] == "GNU C Library"
    assert "a continued line" not in first


def test_layers_versions_read_status_or_every_layers_status_d(tmp_path: Path) -> None:
    """What cairn refresh compares with the archive: an apt image's topmost status file, or a
    runtime image's status.d entries from all its layers (the upper layer's over the lower)."""

    def layer(name: str, members: list[M]) -> Path:
        path = tmp_path / f"{name}.tar.gz"
        path.write_bytes(compress(tar_bytes(members), "gzip"))
        return path

    def entry(package: str, version: str) -> M:
        data = f"Package: {package}\nStatus: install ok installed\nVersion: {version}\n"
        return M(f"var/lib/dpkg/status.d/{package}", data=data.encode())

    sums = M("var/lib/dpkg/status.d/libc6.md5sums", data=b"0123  usr/lib/libc.so.6\n")
    lower = layer("lower", [entry("base-files", "13.8"), entry("libc6", "2.41-1")])
    upper = layer("upper", [entry("libc6", "2.41-12"), entry("python3.13", "3.13.5-2"), sums])
    assert layers_versions([lower, upper]) == {
        "base-files": "13.8",
        "libc6": "2.41-12",
        "python3.13": "3.13.5-2",
    }
    apt = layer("apt", [M("var/lib/dpkg/status", data=STATUS)])
    assert layers_versions([lower, apt]) == installed_versions(STATUS)
