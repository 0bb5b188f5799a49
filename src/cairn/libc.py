"""Where each C library keeps its loader and how it names its version, read from bytes so
that both the compatibility check (on a root file system) and the image analysis (on
layer streams) can use them without an ELF parser."""

from __future__ import annotations

import re

GLIBC_LOADERS = ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1")
MUSL_LOADERS = ("/lib/ld-musl-x86_64.so.1", "/lib/ld-musl-aarch64.so.1")


# glibc's banner ("... release version 2.36."); musl's plain version string, which it
# keeps next to the loader's usage text
_GLIBC = re.compile(rb"release version (\d+\.\d+)")
_MUSL = re.compile(rb"\x00(1\.\d+\.\d+)\x00")


def glibc_release(data: bytes) -> str | None:
    m = _GLIBC.search(data)
    return m.group(1).decode() if m else None


def musl_release(data: bytes) -> str | None:
    m = _MUSL.search(data)
    return m.group(1).decode() if m else None


def version_strings(data: bytes) -> bytes:
    """The few bytes of a C library that glibc_release and musl_release read, for a caller
    that should not keep megabytes of it."""
    return b"".join(m.group(0) for m in (_GLIBC.search(data), _MUSL.search(data)) if m)
