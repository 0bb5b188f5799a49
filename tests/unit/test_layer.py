from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

from cairn.oci.layer import compress_layer


def make_tar(path: Path) -> None:
    with tarfile.open(path, "w") as tf:
        data = b"hello\n" * 1000
        info = tarfile.TarInfo("etc/hello")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


def test_layer_is_reproducible_and_digests_are_right(tmp_path: Path) -> None:
    make_tar(tmp_path / "a.tar")
    one = compress_layer(tmp_path / "a.tar", tmp_path / "one.gz")
    two = compress_layer(tmp_path / "a.tar", tmp_path / "two.gz")
    blob = (tmp_path / "one.gz").read_bytes()
    assert blob == (tmp_path / "two.gz").read_bytes()
    assert one.digest == two.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    raw = (tmp_path / "a.tar").read_bytes()
    assert one.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert one.uncompressed_size == len(raw)
    assert one.size == len(blob)
    assert gzip.decompress(blob) == raw
    assert blob[4:8] == b"\0\0\0\0"  # no mtime in the gzip header
    assert blob[3] & 0x08 == 0  # and no file name
