from __future__ import annotations

from cairn.debian.resolver import Resolved, parse_simulation
from cairn.family.refresh import newer

SIMULATION = """\
NOTE: This is only a simulation!
Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64]) []
Inst tzdata (2026f-0+deb12u1 Debian-Security:12/oldstable-security [all])
Inst golang-1.23-go (1.23.6-1~bpo12+1 Debian Backports:oldstable-backports [amd64])
Inst cairn-hello [1.0] (1.1 local [all])
Conf libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])
"""


def test_simulation_lines_give_version_and_archive() -> None:
    found = parse_simulation(SIMULATION)
    assert found["libc6"] == Resolved("2.36-9+deb12u14", "Debian:12.15/oldstable")
    assert found["tzdata"].suite == "oldstable-security"
    assert found["golang-1.23-go"].suite == "oldstable-backports"
    assert found["cairn-hello"].version == "1.1"
    assert found["cairn-hello"].suite == "local"
    assert len(found) == 4


def test_only_newer_versions_are_updates() -> None:
    now = parse_simulation(SIMULATION)
    installed = {
        "libc6": "2.36-9+deb12u14",  # the same
        "tzdata": "2025b-0+deb12u1",  # older: an update
        "cairn-hello": "1.0",
        "golang-1.23-go": "1.23.7-1~bpo12+1",  # newer than the archive's: not an update
        "gone": "1",  # no longer resolved: nothing to say
    }
    updates = newer(installed, now)
    assert [(u.package, u.installed, u.available, u.suite) for u in updates] == [
        ("cairn-hello", "1.0", "1.1", "local"),
        ("tzdata", "2025b-0+deb12u1", "2026f-0+deb12u1", "oldstable-security"),
    ]
