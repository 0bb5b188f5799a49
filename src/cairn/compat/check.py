"""Each ELF object of a source resolved against a target as the target's loader would.

The application's own files travel with it: a DT_RPATH/DT_RUNPATH entry with
$ORIGIN is looked up beside the object in the source; every other library
comes from the target. glibc's order: DT_RPATH (when there is no DT_RUNPATH),
DT_RUNPATH, ld.so.conf's directories, the built-in ones. musl's: the object's
paths, then /etc/ld-musl-ARCH.path or /lib:/usr/local/lib:/usr/lib.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from cairn.compat.elf import ElfError, ElfInfo
from cairn.compat.rootfs import RootDir
from cairn.compat.target import Target, version_key

Verdict = Literal["ok", "will-not-load", "risky"]
# Symbols whose behaviour differs on musl, and what differs.
MUSL_RISKS = {
    "dlclose": "musl's dlclose does not unload: libraries stay mapped, destructors do not run",
    "iconv_open": "musl's iconv knows fewer character sets (no UTF-7, few legacy code pages)",
    "getpwnam": "musl has no NSS modules: users from LDAP or sssd are not seen",
    "getpwuid": "musl has no NSS modules: users from LDAP or sssd are not seen",
    "getgrnam": "musl has no NSS modules: groups from LDAP or sssd are not seen",
    "gethostbyname": "musl has no NSS modules (mdns, myhostname); its resolver differs",
    "getaddrinfo": "musl has no NSS modules (mdns, myhostname); its resolver differs",
}


# Symbols a module's host program provides: Python's C API, Node's N-API, libuv and V8.
HOST_APIS = {
    "python extension": ("Py", "_Py"),
    "node addon": ("napi_", "uv_", "node_", "_ZN2v8", "_ZN4node"),
}
_MUSL_SELF = re.compile(r"^lib(c|pthread|rt|m|dl|util|xnet)\.")


@dataclass(frozen=True)
class Reason:
    kind: str
    detail: str


@dataclass(frozen=True)
class ObjectResult:
    path: str
    kind: str
    verdict: Verdict
    reasons: tuple[Reason, ...]
    glibc_needed: str | None  # the newest GLIBC_ version it requires


@dataclass(frozen=True)
class _Loaded:
    path: str
    info: ElfInfo
    in_source: bool


def object_kind(info: ElfInfo) -> str:
    name = PurePosixPath(info.path).name
    if info.go:
        flavour = "cgo" if info.go_cgo else "static" if not info.dynamic else "dynamic"
        return f"go ({flavour}{', netgo' if info.go_netgo else ''})"
    if name.endswith(".node"):
        return "node addon"
    if re.search(r"\.(cpython|abi3|pypy)[^/]*\.so$|\.abi3\.so$", name):
        return "python extension"
    if info.kind == "ET_EXEC" or info.interpreter:
        return "executable"
    return "shared library"


def _newest_glibc(info: ElfInfo) -> str | None:
    versions = [
        v.removeprefix("GLIBC_")
        for needs in info.version_needs.values()
        for v in needs
        if re.match(r"GLIBC_\d", v)
    ]
    return max(versions, key=version_key) if versions else None


class Checker:
    def __init__(self, source: RootDir, target: Target) -> None:
        self.source = source
        self.target = target
        # looked at once, not for every Go binary
        self.has_nsswitch = target.rootfs.file("/etc/nsswitch.conf") is not None

    def check(self, info: ElfInfo, path: str) -> ObjectResult:
        reasons: list[Reason] = []
        risks: list[Reason] = []
        tlibc = self.target.libc
        same_class = tlibc.elf_class is None or info.elf_class == tlibc.elf_class
        if tlibc.machine and (info.machine != tlibc.machine or not same_class):
            reasons.append(
                Reason(
                    "wrong-architecture",
                    f"built for {info.machine} ({info.elf_class}-bit), the target's loader is "
                    f"{tlibc.machine} ({tlibc.elf_class or '?'}-bit)",
                )
            )
            return self._result(info, path, reasons, risks)
        if info.interpreter and self.target.rootfs.file(info.interpreter) is None:
            libc = " ".join(x for x in (tlibc.family, tlibc.version) if x)
            where = f" at {tlibc.path}" if tlibc.path else ""
            reasons.append(
                Reason(
                    "missing-interpreter",
                    f"{info.interpreter} is not in the target (its libc: {libc}{where})",
                )
            )
        loaded = self._load(info, path, reasons)
        if tlibc.family == "glibc":
            reasons += self._versions(info, loaded)
        elif tlibc.family == "musl":
            reasons += self._symbols(info, loaded)
        # musl's behaviour goes where musl goes: loaded by a musl target, or linked in
        if (tlibc.family == "musl" and info.dynamic) or info.static_libc == "musl":
            risks += self._musl_risks(info)
        if info.go and not self.has_nsswitch:
            risks.append(
                Reason(
                    "go-no-nsswitch",
                    "a Go binary and no /etc/nsswitch.conf: Go's resolver then picks its own "
                    "order of /etc/hosts and DNS",
                )
            )
        return self._result(info, path, reasons, risks)

    def _result(
        self, info: ElfInfo, path: str, reasons: list[Reason], risks: list[Reason]
    ) -> ObjectResult:
        verdict: Verdict = "will-not-load" if reasons else "risky" if risks else "ok"
        return ObjectResult(
            path, object_kind(info), verdict, tuple(reasons + risks), _newest_glibc(info)
        )

    def _dirs(self, obj: _Loaded) -> list[tuple[str, bool]]:
        """(directory, look in the source) in the order the target's loader searches."""
        info = obj.info
        if self.target.libc.family == "musl":
            own = list(info.rpath) + list(info.runpath)
        else:
            own = list(info.runpath) if info.runpath else list(info.rpath)
        origin = str(PurePosixPath(obj.path).parent)
        out: list[tuple[str, bool]] = []
        for entry in own:
            if "$ORIGIN" in entry or "${ORIGIN}" in entry:
                expanded = entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
                out.append((expanded, obj.in_source))
            else:
                out.append((entry, False))
        out += [(d, False) for d in self.target.search]
        return out

    def _find(self, name: str, dirs: list[tuple[str, bool]]) -> tuple[str, Path, bool] | None:
        for directory, in_source in dirs:
            root = self.source if in_source else self.target.rootfs
            path = str(PurePosixPath(directory) / name)
            host = root.file(path)
            if host is not None:
                return path, host, in_source
        return None

    def _load(self, info: ElfInfo, path: str, reasons: list[Reason]) -> dict[str, _Loaded]:
        """Every library the object pulls in, breadth first as ld.so maps them."""
        loaded: dict[str, _Loaded] = {}
        if info.interpreter:
            host = self.target.rootfs.file(info.interpreter)
            if host is not None:
                interp = self.target.elf(host, info.interpreter)
                if isinstance(interp, ElfInfo):
                    loaded[PurePosixPath(info.interpreter).name] = _Loaded(
                        info.interpreter, interp, False
                    )
        queue = [_Loaded(path, info, True)]
        while queue:
            obj = queue.pop(0)
            for need in obj.info.needed:
                if need in loaded:
                    continue
                builtin = self._musl_builtin(need)
                if builtin is not None:
                    loaded[need] = builtin
                    continue
                found = self._find(need, self._dirs(obj))
                if found is None:
                    if obj.in_source:
                        reasons.append(Reason("missing-library", self._missing(need, obj)))
                    continue
                where, host, in_source = found
                lib = self.target.elf(host, where)
                if isinstance(lib, ElfError) or lib.machine != info.machine:
                    if obj.in_source:
                        reasons.append(
                            Reason("missing-library", f"{need}: {where} is not a usable library")
                        )
                    continue
                loaded[need] = _Loaded(where, lib, in_source)
                queue.append(loaded[need])
        return loaded

    def _musl_builtin(self, need: str) -> _Loaded | None:
        """musl's loader is libc, libpthread, librt, libm, libdl, libutil and libxnet in one:
        it answers any DT_NEEDED of those names itself (musllinux wheels need
        libc.musl-ARCH.so.1, a name Debian's musl package has no file for)."""
        libc = self.target.libc
        if libc.family != "musl" or libc.path is None or not _MUSL_SELF.match(need):
            return None
        host = self.target.rootfs.file(libc.path)
        info = self.target.elf(host, libc.path) if host is not None else None
        return _Loaded(libc.path, info, False) if isinstance(info, ElfInfo) else None

    def _missing(self, need: str, obj: _Loaded) -> str:
        by = "" if obj.path == obj.info.path else f" (needed by {obj.path})"
        packages = self.target.packages_providing(need)
        offer = f"; the target's package index has it in {', '.join(packages)}" if packages else ""
        return f"{need} is not found in the target's library path{by}{offer}"

    def _versions(self, info: ElfInfo, loaded: dict[str, _Loaded]) -> list[Reason]:
        out = []
        sources = [info, *(o.info for o in loaded.values() if o.in_source)]
        for obj in sources:
            for lib, versions in sorted(obj.version_needs.items()):
                provider = loaded.get(lib)
                if provider is None:
                    continue  # reported as a missing library
                missing = sorted(versions - provider.info.version_defs, key=version_key)
                if not missing:
                    continue
                family = missing[-1].split("_", 1)[0]
                have = sorted(
                    (v for v in provider.info.version_defs if v.startswith(family + "_")),
                    key=version_key,
                )
                newest = have[-1] if have else "none"
                out.append(
                    Reason(
                        "missing-symbol-version",
                        f"{lib} ({provider.path}) lacks {', '.join(missing)}: needs up to "
                        f"{missing[-1]}, the target has up to {newest}",
                    )
                )
        return out

    def _symbols(self, info: ElfInfo, loaded: dict[str, _Loaded]) -> list[Reason]:
        provided = set(info.defined)
        for obj in loaded.values():
            provided |= obj.info.defined
        # the interpreter that loads an extension provides its own API
        host_api = HOST_APIS.get(object_kind(info), ())
        missing = sorted(s for s in info.undefined - provided if not s.startswith(host_api))
        if not missing:
            return []
        shown = ", ".join(missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        return [Reason("missing-symbol", f"not defined by musl or any library loaded: {shown}")]

    @staticmethod
    def _musl_risks(info: ElfInfo) -> list[Reason]:
        """The same for the same code, linked dynamically (what it imports) or statically
        (what it carries)."""
        out = []
        uses = info.undefined | info.linked
        if "pthread_create" in uses and not info.stack_size:
            out.append(
                Reason(
                    "musl-thread-stack",
                    "creates threads and PT_GNU_STACK sets no stack size: musl gives 128 KiB "
                    "(glibc: 8 MiB)",
                )
            )
        seen: set[str] = set()
        for symbol, why in MUSL_RISKS.items():
            if symbol in uses and why not in seen:
                seen.add(why)
                out.append(Reason("musl-behaviour", f"{symbol}: {why}"))
        return out
