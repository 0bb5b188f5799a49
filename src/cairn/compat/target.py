"""A target root file system as its dynamic loader sees it: libc, machine, search paths."""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

from cairn.compat.elf import ElfError, ElfInfo, is_elf, read_elf
from cairn.compat.rootfs import RootDir
from cairn.libc import GLIBC_LOADERS, MUSL_LOADERS, glibc_release, musl_release

# glibc's built-in directories after ld.so.cache (Debian's multiarch first); musl's default
# path when /etc/ld-musl-ARCH.path is absent.
MULTIARCH = {"EM_X86_64": "x86_64-linux-gnu", "EM_AARCH64": "aarch64-linux-gnu"}
MUSL_ARCH = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64"}
MUSL_DEFAULT = ("/lib", "/usr/local/lib", "/usr/lib")


@dataclass(frozen=True)
class Libc:
    family: str  # glibc, musl or none
    version: str | None
    path: str | None  # where it lives in the target
    machine: str | None
    elf_class: int | None = None  # 32 or 64: x32 shares x86_64's machine


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


def _glibc_version(host: Path, info: ElfInfo) -> str | None:
    """The release libc.so.6 names itself; else the newest symbol version it defines (which
    lags behind releases that added no symbols: 2.31 defines nothing past GLIBC_2.30)."""
    release = glibc_release(host.read_bytes())
    if release:
        return release
    versions = [v.removeprefix("GLIBC_") for v in info.version_defs if re.match(r"GLIBC_\d", v)]
    return max(versions, key=version_key) if versions else None


@dataclass
class Target:
    rootfs: RootDir
    libc: Libc
    search: tuple[str, ...]
    _cache: dict[Path, ElfInfo | ElfError] = field(default_factory=dict)
    _contents: dict[str, list[str]] | None = None

    def packages_providing(self, library: str) -> list[str]:
        """Packages whose files include `library`, from the target's apt Contents indexes
        (apt-file's, in /var/lib/apt/lists); none when the target keeps none."""
        if self._contents is None:
            self._contents = _contents_index(self.rootfs)
        return self._contents.get(library, [])

    def elf(self, host: Path, shown: str) -> ElfInfo | ElfError:
        if host not in self._cache:
            try:
                self._cache[host] = read_elf(host, shown)
            except ElfError as e:
                self._cache[host] = e
        return self._cache[host]

    def find(self, name: str, directories: tuple[str, ...]) -> tuple[str, Path] | None:
        """The first directory holding an ELF file `name`: (path in the target, host path)."""
        for directory in directories:
            path = f"{directory.rstrip('/')}/{name}"
            host = self.rootfs.file(path)
            if host is not None and is_elf(host):
                return path, host
        return None


def _contents_index(rootfs: RootDir) -> dict[str, list[str]]:
    """Library file name -> packages, from Contents-ARCH(.gz) files."""
    lists = rootfs.resolve("/var/lib/apt/lists")
    index: dict[str, list[str]] = {}
    if lists is None or not lists.is_dir():
        return index
    for path in sorted(lists.glob("*Contents-*")):
        if path.suffix not in ("", ".gz") or not path.is_file():
            continue
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                name, _, packages = line.rstrip("\n").rpartition(" ")
                name = name.strip()
                if ".so" not in name:
                    continue
                base = name.rsplit("/", 1)[-1]
                for package in packages.split(","):
                    owners = index.setdefault(base, [])
                    short = package.rsplit("/", 1)[-1]
                    if short not in owners:
                        owners.append(short)
    return index


def ld_so_conf(rootfs: RootDir, path: str = "/etc/ld.so.conf", depth: int = 0) -> list[str]:
    """The directories ld.so.conf lists, `include` globs followed (ldconfig's order)."""
    text = rootfs.read_text(path)
    if text is None or depth > 8:
        return []
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include "):
            pattern = line.split(None, 1)[1].strip()
            if not pattern.startswith("/"):
                pattern = str(Path(path).parent / pattern)
            for included in rootfs.glob(pattern):
                out += ld_so_conf(rootfs, included, depth + 1)
        elif line.startswith("/"):
            out += [p for p in re.split(r"[:\s,]+", line) if p]
    return out


def detect(rootfs: RootDir) -> Target:
    """Which libc the target has (read from its files), and where its loader searches."""
    for loader in MUSL_LOADERS:
        found = _loader(rootfs, loader)
        if found is not None:
            host, info = found
            arch = MUSL_ARCH.get(info.machine, "")
            listed = rootfs.read_text(f"/etc/ld-musl-{arch}.path")
            search = (
                tuple(p for p in re.split(r"[:\n]+", listed) if p.strip())
                if listed
                else MUSL_DEFAULT
            )
            libc = Libc(
                "musl", musl_release(host.read_bytes()), loader, info.machine, info.elf_class
            )
            return Target(rootfs, libc, search)
    for loader in GLIBC_LOADERS:
        found = _loader(rootfs, loader)
        if found is None:
            continue
        machine, elf_class = found[1].machine, found[1].elf_class
        triplet = MULTIARCH.get(machine, "")
        system = (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib")
        search = tuple(dict.fromkeys([*ld_so_conf(rootfs), *system]))
        target = Target(rootfs, Libc("glibc", None, None, machine, elf_class), search)
        libc_so = target.find("libc.so.6", search)
        if libc_so is not None:
            read = target.elf(libc_so[1], libc_so[0])
            version = _glibc_version(libc_so[1], read) if isinstance(read, ElfInfo) else None
            target.libc = Libc("glibc", version, libc_so[0], machine, elf_class)
        return target
    return Target(rootfs, Libc("none", None, None, None), ("/lib", "/usr/lib"))


def _loader(rootfs: RootDir, path: str) -> tuple[Path, ElfInfo] | None:
    """The dynamic loader at `path`, read once: its host path and what it is built for."""
    host = rootfs.file(path)
    if host is None or not is_elf(host):
        return None
    try:
        return host, read_elf(host, path)
    except ElfError:
        return None
