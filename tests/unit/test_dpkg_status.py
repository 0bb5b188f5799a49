"""dpkg's status file, read once for the build, refresh and measuring alike."""

from __future__ import annotations

from cairn.debian.dpkg import installed_packages, installed_versions, stanzas

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
