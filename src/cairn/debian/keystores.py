"""Java trust stores written at build time, made reproducible.

ca-certificates-java runs keytool in its postinst to write
/etc/ssl/certs/java/cacerts as a JKS keystore, and JKS stamps every entry with
the moment it was added: two builds of the same packages differ in those
bytes alone. Here every entry's date becomes the source date and the entries
are ordered by alias; the keystore's integrity hash (SHA-1 over the password,
the words "Mighty Aphrodite" and the body, as Java writes it) is recomputed.
A store that is not a trusted-certificates-only JKS, or whose hash does not
match the password, is left untouched.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from dataclasses import dataclass, replace
from pathlib import Path

MAGIC = 0xFEEDFEED
TRUSTED_CERT = 2
WHITENER = b"Mighty Aphrodite"
CACERTS = "etc/ssl/certs/java/cacerts"
DEFAULT_PASSWORD = "changeit"  # ca-certificates-java's, from /etc/default/cacerts


@dataclass(frozen=True)
class KeystoreEntry:
    alias: bytes  # Java's modified UTF-8, as stored
    millis: int
    cert_type: bytes
    cert: bytes


class NotTrustedJks(ValueError):
    pass


def _utf(data: bytes, at: int) -> tuple[bytes, int]:
    (n,) = struct.unpack_from(">H", data, at)
    return data[at + 2 : at + 2 + n], at + 2 + n


def _key(password: str) -> bytes:
    return password.encode("utf-16-be")


def parse(data: bytes, password: str) -> tuple[int, list[KeystoreEntry]]:
    """(version, entries) of a JKS holding trusted certificates only."""
    if len(data) < 32:
        raise NotTrustedJks("too short")
    magic, version, count = struct.unpack_from(">III", data, 0)
    if magic != MAGIC or version not in (1, 2):
        raise NotTrustedJks("not a JKS keystore")
    at, entries = 12, []
    for _ in range(count):
        (tag,) = struct.unpack_from(">I", data, at)
        if tag != TRUSTED_CERT:
            raise NotTrustedJks("holds private keys")
        alias, at = _utf(data, at + 4)
        (millis,) = struct.unpack_from(">q", data, at)
        at += 8
        cert_type = b""
        if version == 2:
            cert_type, at = _utf(data, at)
        (n,) = struct.unpack_from(">I", data, at)
        entries.append(KeystoreEntry(alias, millis, cert_type, data[at + 4 : at + 4 + n]))
        at += 4 + n
    body, digest = data[:at], data[at:]
    if hashlib.sha1(_key(password) + WHITENER + body).digest() != digest:
        raise NotTrustedJks("integrity hash does not match the password")
    return version, entries


def render(version: int, entries: list[KeystoreEntry], password: str) -> bytes:
    out = bytearray(struct.pack(">III", MAGIC, version, len(entries)))
    for e in entries:
        out += struct.pack(">IH", TRUSTED_CERT, len(e.alias)) + e.alias
        out += struct.pack(">q", e.millis)
        if version == 2:
            out += struct.pack(">H", len(e.cert_type)) + e.cert_type
        out += struct.pack(">I", len(e.cert)) + e.cert
    return bytes(out) + hashlib.sha1(_key(password) + WHITENER + bytes(out)).digest()


def normalize(data: bytes, epoch: int, password: str = DEFAULT_PASSWORD) -> bytes:
    """The same trust store with every date at `epoch` and entries in alias order."""
    version, entries = parse(data, password)
    fixed = sorted((replace(e, millis=epoch * 1000) for e in entries), key=lambda e: e.alias)
    return render(version, fixed, password)


def normalize_root(root: Path, epoch: int) -> bool:
    """Normalize the root file system's Java trust store, if it has one; True if changed."""
    path = root / CACERTS
    if not path.is_file() or path.is_symlink():
        return False
    data = path.read_bytes()
    try:
        fixed = normalize(data, epoch)
    except (NotTrustedJks, struct.error):
        return False
    if fixed == data:
        return False
    path.write_bytes(fixed)
    return True


def main(argv: list[str]) -> int:
    """python -m cairn.debian.keystores ROOT EPOCH: run by mmdebstrap as a customize hook."""
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m cairn.debian.keystores ROOT EPOCH", file=sys.stderr)
        return 2
    if normalize_root(Path(argv[0]), int(argv[1])):
        print(f"cairn keystores: {CACERTS} dated {argv[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
