"""`cairn compat`: every ELF object of a source, checked against a target."""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import ClassVar

from cairn.compat.check import Checker, ObjectResult, Reason, Verdict
from cairn.compat.elf import ElfError, is_elf, read_elf
from cairn.compat.rootfs import RootDir, materialized
from cairn.compat.target import Libc, detect, version_key
from cairn.compat.wheels import tag_reasons
from cairn.errors import UsageError
from cairn.oci.reference import TRANSPORTS
from cairn.platforms import Platform
from cairn.scratch import scratch_dir


@dataclass(frozen=True)
class Summary:
    ok: int
    will_not_load: int
    risky: int
    min_glibc: str | None


@dataclass(frozen=True)
class CompatResult:
    # the target's libc gained path and elf_class (additions: still version 1)
    SCHEMA_VERSION: ClassVar[int] = 1
    source: str
    target: str
    target_libc: Libc
    objects: tuple[ObjectResult, ...]
    summary: Summary


@dataclass(frozen=True)
class _Source:
    root: RootDir
    files: list[tuple[str, Path]]
    wheel: str | None


def _is_reference(text: str) -> bool:
    transport, sep, _ = text.partition(":")
    return bool(sep) and transport in TRANSPORTS


@contextlib.contextmanager
def _source_tree(source: str, platform: Platform | None) -> Iterator[_Source]:
    """The source as a root, the ELF files to check in it, the wheel's name when it is one."""
    if _is_reference(source):
        with materialized(source, platform) as root:
            yield _Source(root, list(elf_files(root.root)), None)
        return
    path = Path(source)
    if path.is_dir():
        yield _Source(RootDir(path), list(elf_files(path)), None)
    elif path.is_file() and path.suffix == ".whl":
        with scratch_dir("wheel") as tmp:
            _extract_wheel(path, Path(tmp))
            yield _Source(RootDir(Path(tmp)), list(elf_files(Path(tmp))), path.name)
    elif path.is_file():
        # its directory is the root, so $ORIGIN finds what lies beside it
        yield _Source(RootDir(path.parent), [(f"/{path.name}", path)], None)
    else:
        raise UsageError(
            f"{source} is neither a file, a directory nor an image reference.",
            "Try: a path, dir:ROOTFS, oci:DIR:NAME, docker-archive:FILE or docker://REF.",
        )


def _extract_wheel(wheel: Path, into: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.infolist():
                name = PurePosixPath(member.filename)
                if name.is_absolute() or ".." in name.parts or member.is_dir():
                    continue
                dest = into / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, dest.open("wb") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
    except (zipfile.BadZipFile, OSError) as e:
        raise UsageError(f"{wheel} is not a readable wheel ({e}).") from None


def elf_files(base: Path) -> Iterator[tuple[str, Path]]:
    """(path inside the root, host path) of every regular ELF file; links are not followed."""
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            host = Path(dirpath) / name
            if host.is_symlink() or not host.is_file():
                continue
            if is_elf(host):
                yield "/" + host.relative_to(base).as_posix(), host


def compat(source: str, target: str, platform: Platform | None = None) -> CompatResult:
    with materialized(target, platform) as troot:
        tgt = detect(troot)
        with _source_tree(source, platform) as src:
            checker = Checker(src.root, tgt)
            blocking, risks = tag_reasons(src.wheel, tgt.libc) if src.wheel else ([], [])
            objects = []
            for shown, host in src.files:
                try:
                    info = read_elf(host, shown)
                except ElfError as e:
                    objects.append(
                        ObjectResult(
                            shown,
                            "unreadable",
                            "will-not-load",
                            (Reason("unreadable", str(e)),),
                            None,
                        )
                    )
                    continue
                result = checker.check(info, shown)
                objects.append(_with_wheel(result, blocking, risks))
    return CompatResult(source, target, tgt.libc, tuple(objects), _summary(objects))


def _with_wheel(result: ObjectResult, blocking: list[Reason], risks: list[Reason]) -> ObjectResult:
    if not blocking and not risks:
        return result
    reasons = tuple(blocking) + result.reasons + tuple(risks)
    verdict: Verdict = "will-not-load" if blocking or result.verdict == "will-not-load" else "risky"
    return replace(result, verdict=verdict, reasons=reasons)


def _summary(objects: list[ObjectResult]) -> Summary:
    needed = [o.glibc_needed for o in objects if o.glibc_needed]
    return Summary(
        ok=sum(o.verdict == "ok" for o in objects),
        will_not_load=sum(o.verdict == "will-not-load" for o in objects),
        risky=sum(o.verdict == "risky" for o in objects),
        min_glibc=max(needed, key=version_key) if needed else None,
    )
