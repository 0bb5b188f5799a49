from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cairn.errors import EngineMissingError, ImageRefError, UsageError
from cairn.oci.reference import parse_ref
from cairn.platforms import (
    check_emulation,
    emulation_env,
    host_machine,
    known_platforms,
    parse_platform,
    platform_option,
)


def foreign() -> str:
    return "linux/arm64" if host_machine() != "aarch64" else "linux/amd64"


def test_parse_platform() -> None:
    assert parse_platform("linux/arm64").variant == "v8"
    assert parse_platform("linux/arm64/v8").name == "linux/arm64"
    assert parse_platform("linux/arm/v7").debian_arch == "armhf"
    with pytest.raises(KeyError):
        parse_platform("linux/mips")


def test_missing_binfmt_handler_says_how_to_register(tmp_path: Path) -> None:
    plat = parse_platform(foreign())
    with pytest.raises(EngineMissingError) as e:
        check_emulation(plat, binfmt_dir=tmp_path)
    assert plat.binfmt in e.value.message
    assert "cairn setup --install" in e.value.hint
    assert e.value.exit_code == 3


def test_disabled_and_enabled_handler(tmp_path: Path) -> None:
    plat = parse_platform(foreign())
    (tmp_path / plat.binfmt).write_text("disabled\ninterpreter /usr/libexec/qemu\n")
    with pytest.raises(EngineMissingError, match="disabled"):
        check_emulation(plat, binfmt_dir=tmp_path)
    (tmp_path / plat.binfmt).write_text("enabled\ninterpreter /usr/libexec/qemu\n")
    check_emulation(plat, binfmt_dir=tmp_path)


def test_native_platform_needs_no_handler(tmp_path: Path) -> None:
    native = next(
        p for p in ("linux/amd64", "linux/arm64") if parse_platform(p).machine == host_machine()
    )
    check_emulation(parse_platform(native), binfmt_dir=tmp_path)


def test_a_foreign_build_emulates_a_cpu_without_pointer_authentication() -> None:
    arm64 = parse_platform("linux/arm64")
    if arm64.machine == host_machine():
        assert emulation_env(arm64, {}) == {}
        return
    assert emulation_env(arm64, {}) == {"QEMU_CPU": "cortex-a53"}
    # the user's choice wins, and the native platform is never emulated
    assert emulation_env(arm64, {"QEMU_CPU": "max"}) == {"QEMU_CPU": "max"}
    native = next(p for p in known_platforms().values() if p.machine == host_machine())
    assert emulation_env(native, {}) == {}


@pytest.mark.skipif(not shutil.which("qemu-aarch64-static"), reason="needs qemu-user-static")
def test_qemu_knows_every_cpu_cairn_asks_for() -> None:
    listed = subprocess.run(
        ["qemu-aarch64-static", "-cpu", "help"], capture_output=True, text=True, check=False
    ).stdout.split()  # qemu 7.2 lists them and exits 1
    cpus = {p.qemu_cpu for p in known_platforms().values() if p.machine == "aarch64"}
    assert cpus and cpus <= set(listed)


@pytest.mark.parametrize(
    ("text", "transport", "target", "name"),
    [
        ("oci:out/oci:base", "oci", "out/oci", "base"),
        ("oci:/abs/dir", "oci", "/abs/dir", None),
        ("docker-archive:base.tar", "docker-archive", "base.tar", None),
        ("docker-archive:b.tar:qapm/base:12", "docker-archive", "b.tar", "qapm/base:12"),
        ("docker://127.0.0.1:5000/qapm/base:1", "docker", "127.0.0.1:5000/qapm/base:1", None),
        ("docker-daemon:base:latest", "docker-daemon", "base:latest", None),
        ("dir:/rootfs", "dir", "/rootfs", None),
    ],
)
def test_parse_ref(text: str, transport: str, target: str, name: str | None) -> None:
    ref = parse_ref(text)
    assert (ref.transport, ref.target, ref.name) == (transport, target, name)
    assert str(ref) == text


@pytest.mark.parametrize("text", ["base", "oci:", "docker:base", "nfs:/x"])
def test_bad_refs(text: str) -> None:
    with pytest.raises(ImageRefError):
        parse_ref(text)


def test_an_unknown_platform_option_names_the_known_ones() -> None:
    assert platform_option("linux/arm64/v8").name == "linux/arm64"
    with pytest.raises(UsageError) as e:
        platform_option("linux/mips")
    assert e.value.message == "--platform linux/mips is not a platform cairn knows."
    assert "linux/amd64, linux/arm64" in e.value.hint
