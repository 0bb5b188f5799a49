"""Tar members read straight from their 512-byte headers, for the walk.

tarfile parses every header field into a TarInfo, and in stream mode (the only
one that reads a compressed layer in one pass) reads through each member it skips;
the walk needs five fields and the data of a few files. This reader takes those
(ustar, GNU long names, pax path/linkpath/size), checks each header's checksum,
and skips data by moving an offset when the bytes lie in a file (a docker
archive's layer, an uncompressed blob), or by reading and dropping them from a
decompressing stream.

It is stricter than tarfile: a header with a bad checksum or number after the
first is a corrupt layer here, where tarfile would end the archive quietly.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

BLOCK = 512
_SIGNED_SUM = struct.Struct("148b8x356b")
_ZERO_BLOCK = bytes(BLOCK)
_KINDS = {
    b"0": "file",
    b"\0": "file",
    b"7": "file",  # contiguous file
    b"S": "file",  # GNU sparse: the stored bytes are what the layer holds
    b"1": "hardlink",
    b"2": "symlink",
    b"3": "char",
    b"4": "block",
    b"5": "dir",
    b"6": "fifo",
}


class TarFormatError(Exception):
    """The bytes are not a tar archive, or one cut short."""


class PastLimit(Exception):
    """The next member's data would end past the caller's limit; args[0] is its name."""


class Readable(Protocol):
    def read(self, n: int, /) -> bytes: ...


class ByteSource(Protocol):
    position: int

    def read(self, n: int) -> bytes:
        """Up to n bytes; fewer only at the end."""

    def skip(self, n: int) -> None:
        """Move n bytes on; EOFError when fewer are left."""


class FileRange:
    """A range of an open file: reads are pread calls, skipping costs nothing."""

    def __init__(self, fd: int, start: int, length: int) -> None:
        self.fd, self.start, self.length = fd, start, length
        self.position = 0

    def read(self, n: int = -1) -> bytes:
        left = self.length - self.position
        n = left if n < 0 else max(0, min(n, left))
        data = os.pread(self.fd, n, self.start + self.position) if n else b""
        self.position += len(data)
        return data

    def skip(self, n: int) -> None:
        if self.position + n > self.length:
            raise EOFError(f"the data ends {self.position + n - self.length} bytes early")
        self.position += n


class Stream:
    """A stream read in order (a decompressor): skipping reads and drops the bytes."""

    CHUNK = 1 << 20

    def __init__(self, raw: Readable) -> None:
        self.raw = raw
        self.position = 0

    def read(self, n: int) -> bytes:
        parts = []
        wanted = n
        while wanted > 0:
            data = self.raw.read(wanted)
            if not data:
                break
            parts.append(data)
            wanted -= len(data)
        out = parts[0] if len(parts) == 1 else b"".join(parts)
        self.position += len(out)
        return out

    def skip(self, n: int) -> None:
        while n > 0:
            got = len(self.read(min(n, self.CHUNK)))
            if not got:
                raise EOFError(f"the data ends {n} bytes early")
            n -= got


@dataclass(slots=True)
class Member:
    name: str
    kind: str  # file, dir, symlink, hardlink, char, block, fifo
    size: int  # bytes of data that follow the header
    linkname: str
    mode: int


def _text(field: bytes) -> str:
    end = field.find(b"\0")
    return (field if end < 0 else field[:end]).decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    if field[0] in (0o200, 0o377):  # GNU base-256, for values octal cannot hold
        n = int.from_bytes(field[1:], "big")
        return n - (256 ** (len(field) - 1)) if field[0] == 0o377 else n
    try:
        return int(field.rstrip(b"\0 ") or b"0", 8)  # octal digits, then NUL or space
    except ValueError:
        pass
    end = field.find(b"\0")  # what follows a NUL is not part of the number
    digits = (field if end < 0 else field[:end]).strip()
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise TarFormatError(f"a header holds {digits!r} where a number belongs") from None


def _byte_sum(block: bytes) -> int:
    """sum(block), six times faster: adler32's low half is 1 + the byte sum modulo 65521,
    and no 256 bytes sum to more than 65280, so each half comes out exact."""
    return (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2


def _checksum_ok(block: bytes) -> bool:
    stored = _number(block[148:156])
    field = block[148:156]
    unsigned = _byte_sum(block) - sum(field) + 256  # the field counts as eight spaces
    return stored == unsigned or stored == sum(_SIGNED_SUM.unpack(block)) + 256


def _pax(data: bytes) -> dict[str, str]:
    """pax records: "LENGTH KEY=VALUE\\n", LENGTH counting the whole record."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarFormatError("a pax header holds a malformed record") from None
        record = data[space + 1 : pos + length]
        if space < 0 or length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise TarFormatError("a pax header holds a malformed record")
        key, _, value = record[:-1].partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def _padded(size: int) -> int:
    return -size % BLOCK + size


def _header(src: ByteSource) -> bytes | None:
    """The next header block, checked; None at the end of the archive."""
    header_at = src.position
    block = src.read(BLOCK)
    if not block:
        if header_at == 0:
            raise TarFormatError("the layer is empty")
        return None  # the end without end-of-archive blocks, as some writers leave it
    if len(block) < BLOCK:
        raise TarFormatError(f"a header is cut short at byte {header_at}")
    if block == _ZERO_BLOCK:
        return None
    if not _checksum_ok(block):
        raise TarFormatError(f"the header at byte {header_at} fails its checksum")
    return block


def _extended(src: ByteSource, flag: bytes, size: int, into: dict[str, str]) -> None:
    """Read a GNU long name or link, or pax records, into what the next member overrides."""
    data = src.read(size)
    if len(data) < size:
        raise EOFError("an extended header is cut short")
    src.skip(_padded(size) - size)
    if flag == b"L":
        into["path"] = _text(data)
    elif flag == b"K":
        into["linkpath"] = _text(data)
    elif flag == b"x":
        into.update(_pax(data))
    # global pax headers (g) name no member, and set nothing the walk reads


def members(src: ByteSource, limit: float = float("inf")) -> Iterator[Member]:
    """The archive's members in order. Between two steps the caller may read a member's
    data with src.read(member.size); what it leaves is skipped. Raises PastLimit rather
    than give a member whose data would end past `limit` bytes."""
    overrides: dict[str, str] = {}
    while (block := _header(src)) is not None:
        flag = block[156:157]
        size = _number(block[124:136])
        if size < 0:
            raise TarFormatError(f"the header at byte {src.position - BLOCK} gives a negative size")
        if flag in (b"L", b"K", b"x", b"g"):
            _extended(src, flag, size, overrides)
            continue
        name = _text(block[0:100])
        if block[345] != 0 and flag != b"S":
            name = _text(block[345:500]) + "/" + name  # ustar splits long names in two
        linkname = _text(block[157:257]) if flag in (b"1", b"2") else ""
        if overrides:
            name = overrides.get("path", name)
            linkname = overrides.get("linkpath", linkname)
            if overrides.get("size", "").isdigit():
                size = int(overrides["size"])
            overrides = {}
        kind = _KINDS.get(flag, "fifo")  # an unknown type is nothing the walk can count
        if kind == "file" and flag == b"\0" and name.endswith("/"):
            kind = "dir"  # old tars mark directories only by the slash
        data_size = size if kind == "file" or flag not in _KINDS else 0
        if src.position + data_size > limit:
            raise PastLimit(name)
        data_end = src.position + data_size
        yield Member(
            name, kind, data_size if kind == "file" else 0, linkname, _number(block[100:108])
        )
        src.skip(data_end - src.position + _padded(data_size) - data_size)
