"""Hand-made layers and images for the measuring tests: any tar member, hostile ones too,
written as an OCI layout or a docker archive without an engine."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import zstandard

MEDIA_PLAIN = "application/vnd.oci.image.layer.v1.tar"


@dataclass(frozen=True)
class M:
    """A tar member: kind is file, dir, symlink, hardlink, char or fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    link: str = ""


def tar_bytes(members: list[M]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.mtime = 1700000000
            info.mode = 0o755 if m.kind == "dir" else 0o644
            info.type = {
                "file": tarfile.REGTYPE,
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "char": tarfile.CHRTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[m.kind]
            info.linkname = m.link
            if m.kind == "file":
                info.size = len(m.data)
                tf.addfile(info, io.BytesIO(m.data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_blob(root: Path, data: bytes) -> str:
    digest = sha(data)
    path = root / "blobs" / "sha256" / digest.split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def config_for(tars: list[bytes], history: list[str] | None = None) -> dict[str, object]:
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": "2025-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in tars]},
        "history": [
            {"created_by": h} for h in (history or [f"layer {i}" for i in range(len(tars))])
        ],
    }


def compress(tar: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(tar, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(tar)
    return tar


def oci_image(
    root: Path,
    layers: list[list[M]],
    name: str = "img",
    compression: str = "gzip",
    run_config: dict[str, object] | None = None,
) -> tuple[Path, list[str]]:
    """An OCI layout holding one image (gzip, zstd or plain tar layers); returns it and the
    layer digests."""
    tars = [tar_bytes(members) for members in layers]
    blobs = [compress(t, compression) for t in tars]
    media = MEDIA_PLAIN + ("" if compression == "none" else f"+{compression}")
    digests = [write_blob(root, b) for b in blobs]
    doc = config_for(tars)
    if run_config is not None:
        doc["config"] = run_config
    config = json.dumps(doc).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": write_blob(root, config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": media, "digest": d, "size": len(b)}
            for d, b in zip(digests, blobs, strict=True)
        ],
    }
    raw = json.dumps(manifest).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": write_blob(root, raw),
                "size": len(raw),
                "annotations": {"org.opencontainers.image.ref.name": name},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return root, digests


def manifest_of(root: Path) -> tuple[Path, dict[str, object]]:
    index = json.loads((root / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    path = root / "blobs" / "sha256" / digest
    return path, json.loads(path.read_text())


def docker_archive(path: Path, layers: list[list[M]], tag: str = "test/img:1") -> Path:
    """What `docker save` writes: manifest.json, a config, one layer.tar per layer."""
    tars = [tar_bytes(members) for members in layers]
    config = json.dumps(config_for(tars)).encode()
    with tarfile.open(path, "w") as out:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))

        names = []
        for i, t in enumerate(tars):
            names.append(f"{i:02d}/layer.tar")
            add(names[-1], t)
        add("config.json", config)
        add(
            "manifest.json",
            json.dumps([{"Config": "config.json", "RepoTags": [tag], "Layers": names}]).encode(),
        )
    return path
