"""What the dynamic loader reads from an ELF object, read with pyelftools.

Only what deciding "will this load there" needs: class, machine, the
interpreter, DT_NEEDED, RPATH/RUNPATH, the symbol versions required of each
library, the versions and symbols an object provides, and what marks a Go
binary (and whether it uses cgo or the netgo resolver). A malformed file is an
ElfError with the reason, never a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError as PyElfError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection
from elftools.elf.sections import SymbolTableSection
from elftools.elf.segments import InterpSegment

ELF_MAGIC = b"\x7fELF"
# Go marks its binaries with a build ID note and keeps its build settings in
# .go.buildinfo (-tags, CGO_ENABLED).
_GO_SECTIONS = (".go.buildinfo", ".note.go.buildid", ".gopclntab")


class ElfError(Exception):
    """The file looks like ELF but cannot be read as one."""


@dataclass(frozen=True)
class ElfInfo:
    path: str
    elf_class: int  # 32 or 64
    machine: str  # e_machine, e.g. EM_X86_64
    kind: str  # ET_EXEC, ET_DYN, ...
    interpreter: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    soname: str | None
    # library file name (as in DT_NEEDED) -> versions required from it
    version_needs: dict[str, frozenset[str]] = field(default_factory=dict)
    version_defs: frozenset[str] = frozenset()
    undefined: frozenset[str] = frozenset()  # strong undefined dynamic symbols
    defined: frozenset[str] = frozenset()  # dynamic symbols this object provides
    stack_size: int | None = None  # PT_GNU_STACK's p_memsz; None: no PT_GNU_STACK
    go: bool = False
    go_cgo: bool | None = None
    go_netgo: bool = False
    # a static executable: the libc linked into it ("musl", "glibc"; None: none found or
    # stripped) and the functions it carries (its .symtab), which stand for `undefined`
    static_libc: str | None = None
    linked: frozenset[str] = frozenset()

    @property
    def dynamic(self) -> bool:
        return self.interpreter is not None or bool(self.needed)


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def _split(value: str) -> tuple[str, ...]:
    return tuple(p for p in value.split(":") if p)


def read_elf(path: Path, shown: str | None = None) -> ElfInfo:
    try:
        with path.open("rb") as f:
            return _read(ELFFile(f), shown or str(path))
    except (PyElfError, ValueError, KeyError, IndexError, AssertionError, OSError) as e:
        reason = str(e) or type(e).__name__
        raise ElfError(f"{shown or path}: not a readable ELF file ({reason})") from None
    except RecursionError:
        raise ElfError(f"{shown or path}: its ELF structures loop") from None


def _read(elf: ELFFile, shown: str) -> ElfInfo:
    header = elf.header
    if elf.num_sections() > 65535 or elf.num_segments() > 65535:
        raise ElfError(f"{shown}: absurd section or segment count")
    interpreter, stack_size = _segments(elf)
    dyn = _Dynamic()
    version_needs: dict[str, frozenset[str]] = {}
    version_defs: set[str] = set()
    undefined: set[str] = set()
    defined: set[str] = set()
    static_symbols: SymbolTableSection | None = None
    names = set()
    for section in elf.iter_sections():
        names.add(section.name)
        if isinstance(section, DynamicSection):
            dyn = _dynamic(section)
        elif isinstance(section, GNUVerNeedSection):
            for verneed, auxes in section.iter_versions():
                version_needs[verneed.name or ""] = frozenset(a.name for a in auxes)
        elif isinstance(section, GNUVerDefSection):
            for verdef, auxes in section.iter_versions():
                if not verdef["vd_flags"] & 0x1:  # VER_FLG_BASE names the file, not a version
                    version_defs.update(a.name for a in auxes)
        elif isinstance(section, SymbolTableSection) and section.name == ".dynsym":
            _symbols(section, undefined, defined)
        elif isinstance(section, SymbolTableSection) and section.name == ".symtab":
            static_symbols = section
    go = any(n in names for n in _GO_SECTIONS)
    linked: frozenset[str] = frozenset()
    if interpreter is None and not dyn.needed and static_symbols is not None and not go:
        linked = frozenset(
            sym.name
            for sym in static_symbols.iter_symbols()
            if sym.name and sym["st_shndx"] != "SHN_UNDEF" and sym["st_info"]["type"] == "STT_FUNC"
        )
    cgo, netgo = _go_settings(elf) if go else (None, False)
    return ElfInfo(
        path=shown,
        elf_class=elf.elfclass,
        machine=header["e_machine"],
        kind=header["e_type"],
        interpreter=interpreter,
        needed=dyn.needed,
        rpath=dyn.rpath,
        runpath=dyn.runpath,
        soname=dyn.soname,
        version_needs=version_needs,
        version_defs=frozenset(version_defs),
        undefined=frozenset(undefined),
        defined=frozenset(defined),
        stack_size=stack_size,
        go=go,
        go_cgo=cgo,
        go_netgo=netgo,
        static_libc=_static_libc(linked),
        linked=linked,
    )


# what only one libc's start-up code defines: how a static executable shows its libc
_LIBC_MARKS = {"musl": ("__init_libc", "__libc_start_init"), "glibc": ("__libc_setup_tls",)}


def _static_libc(linked: frozenset[str]) -> str | None:
    return next((libc for libc, marks in _LIBC_MARKS.items() if linked & set(marks)), None)


def _segments(elf: ELFFile) -> tuple[str | None, int | None]:
    interpreter = stack_size = None
    for seg in elf.iter_segments():
        if isinstance(seg, InterpSegment):
            interpreter = seg.get_interp_name()
        elif seg["p_type"] == "PT_GNU_STACK":
            stack_size = seg["p_memsz"]
    return interpreter, stack_size


@dataclass(frozen=True)
class _Dynamic:
    needed: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    soname: str | None = None


def _dynamic(section: DynamicSection) -> _Dynamic:
    # pyelftools gives each tag its value under the tag's own name (needed, rpath, ...)
    needed: list[str] = []
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    soname = None
    for tag in section.iter_tags():
        kind = tag.entry.d_tag
        if kind == "DT_NEEDED":
            needed.append(tag.needed)  # type: ignore[attr-defined]
        elif kind == "DT_RPATH":
            rpath = _split(tag.rpath)  # type: ignore[attr-defined]
        elif kind == "DT_RUNPATH":
            runpath = _split(tag.runpath)  # type: ignore[attr-defined]
        elif kind == "DT_SONAME":
            soname = tag.soname  # type: ignore[attr-defined]
    return _Dynamic(tuple(needed), rpath, runpath, soname)


def _symbols(section: SymbolTableSection, undefined: set[str], defined: set[str]) -> None:
    for sym in section.iter_symbols():
        if not sym.name:
            continue
        if sym["st_shndx"] == "SHN_UNDEF":
            if sym["st_info"]["bind"] != "STB_WEAK":
                undefined.add(sym.name)
        else:
            defined.add(sym.name)


_BUILD_SETTING = re.compile(rb"build\t(CGO_ENABLED|-tags)=([^\n]*)\n")


def _go_settings(elf: ELFFile) -> tuple[bool | None, bool]:
    """(cgo used, netgo tag) from the module build info Go writes since 1.18."""
    section = elf.get_section_by_name(".go.buildinfo")
    data = section.data() if section is not None else b""
    if section is None or len(data) < 64:
        # older or stripped: data sections hold the same text
        data = b"".join(
            s.data()
            for s in elf.iter_sections()
            if s.name in (".rodata", ".data", ".noptrdata") and s["sh_size"] < 1 << 28
        )
    settings = {m.group(1): m.group(2) for m in _BUILD_SETTING.finditer(data)}
    cgo = None
    if b"CGO_ENABLED" in settings:
        cgo = settings[b"CGO_ENABLED"] == b"1"
    netgo = b"netgo" in settings.get(b"-tags", b"").split(b",")
    return cgo, netgo
