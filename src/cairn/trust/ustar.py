"""A strict reader of the plain ustar archives cairn writes (bundles), for input from
outside.

Python's tarfile takes whatever a tar may hold: GNU sparse members (which expand to
any size on disk), long-name and PAX records read whole into memory, links, devices.
A bundle holds none of these, so this reader takes regular files only, each announced
by one 512-byte POSIX ustar header whose checksum holds, with a name of at most 255
bytes and an octal size; anything else is refused at its header, before a byte of it
is read. Members come one at a time, their data read in bounded chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

BLOCK = 512
REGULAR = (b"0", b"\0")


class Refused(ValueError):
    """The archive is not one a bundle can be."""


@dataclass(frozen=True)
class Member:
    name: str
    size: int


def _field(header: bytes, start: int, length: int) -> bytes:
    return header[start : start + length].split(b"\0", 1)[0]


def _octal(raw: bytes, what: str) -> int:
    text = raw.strip(b" \0")
    if not text or any(c not in b"01234567" for c in text):
        raise Refused(f"a member's {what} is not an octal number")
    return int(text, 8)


def parse_header(header: bytes) -> Member | None:
    """The member a 512-byte header announces; None for the end of the archive."""
    if header == b"\0" * BLOCK:
        return None
    stored = _octal(header[148:156], "checksum")
    if sum(header[:148]) + 8 * 32 + sum(header[156:]) != stored:
        raise Refused("a member's header is damaged (its checksum does not hold)")
    if header[257:263] != b"ustar\0" or header[263:265] != b"00":
        raise Refused("it is not a POSIX ustar archive (a GNU or old tar format)")
    kind = header[156:157]
    if kind not in REGULAR:
        raise Refused(
            f"a member is of type {kind.decode('latin-1')!r} (a link, a directory, a device, "
            "a sparse file or a PAX or long-name record), and a bundle holds regular files only"
        )
    name, prefix = _field(header, 0, 100), _field(header, 345, 155)
    full = prefix + b"/" + name if prefix else name
    try:
        text = full.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("a member's name is not UTF-8") from None
    return Member(text, _octal(header[124:136], "size"))


def _exactly(stream: IO[bytes], n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise Refused("it is truncated or damaged (it ends in the middle of a member)")
        data += chunk
    return data


def members(stream: IO[bytes]) -> Iterator[tuple[Member, Iterator[bytes]]]:
    """Each member and an iterator of its data in chunks of at most 1 MiB. A member's data
    must be read (or left) before the next is asked for; what is left is skipped."""
    while True:
        header = _exactly(stream, BLOCK)
        member = parse_header(header)
        if member is None:
            return
        left = [member.size]

        def chunks(left: list[int] = left) -> Iterator[bytes]:
            while left[0] > 0:
                data = _exactly(stream, min(left[0], 1 << 20))
                left[0] -= len(data)
                yield data

        yield member, chunks()
        for _ in chunks():  # what the caller did not read
            pass
        padding = -member.size % BLOCK
        if padding:
            _exactly(stream, padding)
