"""cairn setup: what the machine has of cairn's engines and what installs the rest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cairn.engines import require
from cairn.errors import EngineMissingError, UsageError
from cairn.machine import check, install, package_of, packages_for, system_of
from cairn.platforms import parse_platform
from tests.schemas import validated

BOOKWORM = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
    'VERSION_ID="12"\nID=debian\n'
)
ALPINE = 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n'


def test_os_release_names_the_system() -> None:
    assert system_of(BOOKWORM) == ("debian-12", "Debian GNU/Linux 12 (bookworm)")
    assert system_of(ALPINE) == ("alpine-3.20.3", "Alpine Linux v3.20")
    assert system_of("# nothing\n") == ("unknown", "unknown")


def test_each_system_gets_its_own_package_names() -> None:
    assert packages_for("qemu-user", "debian-12") == ("qemu-user-static",)
    assert packages_for("qemu-user", "debian-13") == ("qemu-user", "qemu-user-binfmt")
    assert packages_for("buildah", "debian-13") == ("buildah", "netavark")
    assert package_of("mmtarfilter", "debian-13") == "mmdebstrap"
    assert package_of("no-such-program", "debian-13") == "no-such-program"


def test_a_missing_engine_is_listed_with_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "os-release").write_text(BOOKWORM.replace('"12"', '"13"'))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no command is found
    arm64 = parse_platform("linux/arm64")
    report = check([arm64], os_release=tmp_path / "os-release", binfmt_dir=tmp_path)
    assert report.system == "debian-13" and report.supported and not report.ok
    missing = {e.name: e.missing for e in report.engines}
    assert missing["mmdebstrap"] == ("mmdebstrap", "mmtarfilter")
    assert "netavark" in report.missing_packages
    assert report.install_command is not None
    assert report.install_command.startswith("apt-get install -y --no-install-recommends ")
    if arm64.machine != os.uname().machine:  # a foreign platform needs its handler
        assert missing["qemu-user"]
    with pytest.raises(EngineMissingError) as e:
        require("buildah", "Building tools")
    assert "cairn setup --install" in e.value.hint


def test_installing_on_an_unknown_system_installs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "os-release").write_text(ALPINE)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    report = check([parse_platform("linux/amd64")], os_release=tmp_path / "os-release")
    assert not report.supported and report.missing_packages  # Debian's names, for reference
    assert report.install_command is None  # nothing cairn would run there
    with pytest.raises(UsageError) as e:
        install([parse_platform("linux/amd64")], os_release=tmp_path / "os-release")
    assert "Alpine Linux v3.20" in e.value.message and "nothing was installed" in e.value.message
    assert "Debian 13 (trixie)" in e.value.message


def test_setup_check_on_this_machine_prints_valid_json() -> None:
    """This machine runs the tests, so it has every engine: exit 0, and the schema holds."""
    out = subprocess.run(
        [sys.executable, "-m", "cairn", "setup", "--check", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    report = validated("setup", out.stdout)
    assert out.returncode == 0, [e for e in report["engines"] if e["missing"]]
    assert report["missing_packages"] == [] and report["install_command"] is None
