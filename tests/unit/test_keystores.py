"""JKS trust stores: dates and order normalized, integrity hash recomputed."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest

from cairn.debian.keystores import (
    CACERTS,
    WHITENER,
    KeystoreEntry,
    NotTrustedJks,
    normalize,
    normalize_root,
    parse,
    render,
)


def jks(entries: list[tuple[bytes, int, bytes]], password: str = "changeit") -> bytes:
    """A JKS as keytool writes it (written independently of cairn's render)."""
    out = struct.pack(">III", 0xFEEDFEED, 2, len(entries))
    for alias, millis, cert in entries:
        out += struct.pack(">IH", 2, len(alias)) + alias + struct.pack(">q", millis)
        out += struct.pack(">H", 5) + b"X.509" + struct.pack(">I", len(cert)) + cert
    return out + hashlib.sha1(password.encode("utf-16-be") + WHITENER + out).digest()


def test_dates_and_order_no_longer_depend_on_the_build() -> None:
    one = jks([(b"b-root", 1795838000123, b"CERT-B"), (b"a-root", 1795838000456, b"CERT-A")])
    two = jks([(b"a-root", 1795999999999, b"CERT-A"), (b"b-root", 1795999999000, b"CERT-B")])
    assert one != two
    assert normalize(one, 1735689600) == normalize(two, 1735689600)
    version, entries = parse(normalize(one, 1735689600), "changeit")
    assert version == 2
    assert entries == [
        KeystoreEntry(b"a-root", 1735689600000, b"X.509", b"CERT-A"),
        KeystoreEntry(b"b-root", 1735689600000, b"X.509", b"CERT-B"),
    ]
    # render is parse's inverse
    assert render(*parse(one, "changeit"), "changeit") == one


def test_other_stores_are_left_alone(tmp_path: Path) -> None:
    with pytest.raises(NotTrustedJks, match="password"):
        parse(jks([(b"a", 1, b"C")], password="secret"), "changeit")
    private = bytearray(jks([(b"a", 1, b"C")]))
    private[12:16] = struct.pack(">I", 1)
    with pytest.raises(NotTrustedJks, match="private keys"):
        parse(bytes(private), "changeit")
    store = tmp_path / CACERTS
    store.parent.mkdir(parents=True)
    store.write_bytes(b"0\x82 not a JKS at all, PKCS#12 perhaps")
    assert normalize_root(tmp_path, 0) is False
    store.write_bytes(jks([(b"a", 1795838000123, b"C")]))
    assert normalize_root(tmp_path, 1735689600) is True
    assert parse(store.read_bytes(), "changeit")[1][0].millis == 1735689600000
    assert normalize_root(tmp_path, 1735689600) is False  # already normal
