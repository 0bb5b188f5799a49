"""The header reader against tarfile: every tar format Python writes, long names and links,
and the damage a reader must refuse."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from cairn.measure.tarscan import FileRange, PastLimit, Stream, TarFormatError, members

LONG = "usr/share/" + "/".join(f"directory-{i:02d}" for i in range(12)) + "/file.txt"
UNICODE = "usr/share/zoneinfo/América/São_Paulo"


def _tar(fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:

        def add(name: str, kind: bytes, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size, info.mode = kind, link, len(data), 0o640
            tf.addfile(info, io.BytesIO(data) if data else None)

        add("etc", tarfile.DIRTYPE)
        add("etc/hostname", tarfile.REGTYPE, b"box\n")
        add(LONG, tarfile.REGTYPE, os.urandom(1500))
        add("lib/" + "x" * 90 + "/libc.so.6", tarfile.REGTYPE, b"elf")  # ustar prefix split
        add("bin/sh", tarfile.SYMTYPE, link="/" + (LONG if fmt != tarfile.USTAR_FORMAT else "etc"))
        add("bin/hard", tarfile.LNKTYPE, link="etc/hostname")
        add("dev/null", tarfile.CHRTYPE)
        add("run/fifo", tarfile.FIFOTYPE)
        if fmt != tarfile.USTAR_FORMAT:
            add(UNICODE, tarfile.REGTYPE, b"tz")
    return buf.getvalue()


def _ours(data: bytes, stream: bool) -> list[tuple[str, str, int, str, int]]:
    if stream:
        src: FileRange | Stream = Stream(io.BytesIO(data))
    else:
        fd = os.memfd_create("layer")
        os.write(fd, data)
        src = FileRange(fd, 0, len(data))
    # tarfile drops the slash that ends a directory's name; the walk does too
    return [(m.name.rstrip("/"), m.kind, m.size, m.linkname, m.mode) for m in members(src)]


def _theirs(data: bytes) -> list[tuple[str, str, int, str, int]]:
    kinds = {b"0": "file", b"5": "dir", b"2": "symlink", b"1": "hardlink"}
    kinds |= {b"3": "char", b"6": "fifo"}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return [
            (
                m.name,
                kinds[m.type],
                m.size if m.isreg() else 0,
                m.linkname,
                m.mode,
            )
            for m in tf
        ]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("stream", [False, True], ids=["file", "stream"])
def test_members_are_tarfiles_members(fmt: int, stream: bool) -> None:
    data = _tar(fmt)
    assert _ours(data, stream) == _theirs(data)
    names = [m[0] for m in _ours(data, stream)]
    assert LONG in names and ("lib/" + "x" * 90 + "/libc.so.6") in names


def test_damage_is_an_error_not_a_quiet_end() -> None:
    data = bytearray(_tar(tarfile.GNU_FORMAT))
    second = 512  # the first member (etc/) has no data: the second header follows it
    data[second + 10] ^= 0xFF
    with pytest.raises(TarFormatError, match="checksum"):
        _ours(bytes(data), stream=False)
    with pytest.raises(TarFormatError, match="empty"):
        _ours(b"", stream=True)
    with pytest.raises(TarFormatError, match="cut short"):
        _ours(bytes(_tar(tarfile.GNU_FORMAT)[:700]), stream=True)
    with pytest.raises(EOFError):
        _ours(bytes(_tar(tarfile.GNU_FORMAT)[:3500]), stream=False)  # inside a file's data


def test_a_member_past_the_limit_is_not_given() -> None:
    src = Stream(io.BytesIO(_tar(tarfile.GNU_FORMAT)))
    with pytest.raises(PastLimit) as raised:
        list(members(src, limit=2048))
    assert raised.value.args[0] == LONG
