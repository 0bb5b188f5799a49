"""compat's resolution of one object against a target, on a hand-made target root holding
this machine's own loader and C library (real ELF files) and hand-made objects."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from cairn.compat.check import Checker
from cairn.compat.elf import ElfInfo
from cairn.compat.rootfs import RootDir
from cairn.compat.target import detect

HOST_LOADER = Path("/lib64/ld-linux-x86-64.so.2")
HOST_LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")
HOST_LIBZ = Path("/lib/x86_64-linux-gnu/libz.so.1")

pytestmark = pytest.mark.skipif(
    not (HOST_LOADER.exists() and HOST_LIBC.exists() and HOST_LIBZ.exists()),
    reason="needs an x86_64 Debian host's loader, libc and zlib",
)

PROGRAM = ElfInfo(
    path="/app/bin/prog",
    elf_class=64,
    machine="EM_X86_64",
    kind="ET_DYN",
    interpreter="/lib64/ld-linux-x86-64.so.2",
    needed=("libc.so.6",),
    rpath=(),
    runpath=(),
    soname=None,
    version_needs={"libc.so.6": frozenset({"GLIBC_2.2.5", "GLIBC_2.34"})},
)


@pytest.fixture
def checker(tmp_path: Path) -> Checker:
    target = tmp_path / "target"
    (target / "lib64").mkdir(parents=True)
    (target / "lib" / "x86_64-linux-gnu").mkdir(parents=True)
    shutil.copy(HOST_LOADER, target / "lib64" / "ld-linux-x86-64.so.2")
    shutil.copy(HOST_LIBC, target / "lib" / "x86_64-linux-gnu" / "libc.so.6")
    source = tmp_path / "source"
    (source / "app" / "bin").mkdir(parents=True)
    (source / "app" / "lib").mkdir()
    shutil.copy(HOST_LIBZ, source / "app" / "lib" / "libz.so.1")
    return Checker(RootDir(source), detect(RootDir(target)))


def reasons(checker: Checker, info: ElfInfo) -> list[str]:
    return [r.kind for r in checker.check(info, info.path).reasons]


def test_the_target_is_read_from_its_own_files(checker: Checker) -> None:
    libc = checker.target.libc
    assert (libc.family, libc.machine, libc.path) == (
        "glibc",
        "EM_X86_64",
        "/lib/x86_64-linux-gnu/libc.so.6",
    )
    assert libc.version is not None and libc.version.startswith("2.")


def test_a_program_the_target_serves_is_ok(checker: Checker) -> None:
    assert checker.check(PROGRAM, PROGRAM.path).verdict == "ok"


def test_a_newer_glibc_symbol_version_will_not_load(checker: Checker) -> None:
    newer = replace(PROGRAM, version_needs={"libc.so.6": frozenset({"GLIBC_2.99"})})
    result = checker.check(newer, newer.path)
    assert result.verdict == "will-not-load"
    assert "GLIBC_2.99" in result.reasons[0].detail
    assert result.glibc_needed == "2.99"


def test_a_missing_library_and_interpreter(checker: Checker) -> None:
    assert reasons(checker, replace(PROGRAM, needed=("libc.so.6", "libfoo.so.1"))) == [
        "missing-library"
    ]
    musl = replace(PROGRAM, interpreter="/lib/ld-musl-x86_64.so.1")
    assert "missing-interpreter" in reasons(checker, musl)


def test_origin_libraries_travel_with_the_program(checker: Checker) -> None:
    with_zlib = replace(PROGRAM, needed=("libc.so.6", "libz.so.1"), runpath=("$ORIGIN/../lib",))
    assert checker.check(with_zlib, with_zlib.path).verdict == "ok"
    elsewhere = replace(with_zlib, runpath=("$ORIGIN/../nowhere",))
    assert reasons(checker, elsewhere) == ["missing-library"]


def test_another_architecture_will_not_load(checker: Checker) -> None:
    arm = replace(PROGRAM, machine="EM_AARCH64", interpreter="/lib/ld-linux-aarch64.so.1")
    assert reasons(checker, arm) == ["wrong-architecture"]


def test_go_without_nsswitch_is_risky(checker: Checker) -> None:
    static_go = replace(PROGRAM, interpreter=None, needed=(), version_needs={}, go=True)
    result = checker.check(static_go, static_go.path)
    assert (result.verdict, [r.kind for r in result.reasons]) == ("risky", ["go-no-nsswitch"])
