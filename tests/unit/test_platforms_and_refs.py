from __future__ import annotations

from pathlib import Path

import pytest

from cairn.errors import EngineMissingError, ImageRefError
from cairn.oci.reference import parse_ref
from cairn.platforms import check_emulation, host_machine, parse_platform


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
    assert f"/usr/lib/binfmt.d/{plat.binfmt}.conf" in e.value.hint
    assert "qemu-user-static" in e.value.hint
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
