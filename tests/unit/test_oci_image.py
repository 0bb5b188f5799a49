from __future__ import annotations

import json

from cairn.oci.image import (
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_MANIFEST,
    LayerInfo,
    RunConfig,
    canonical_json,
    image_config,
    image_index,
    image_manifest,
    sha256_digest,
)
from cairn.platforms import parse_platform

LAYER = LayerInfo("sha256:" + "a" * 64, 10, "sha256:" + "b" * 64, 20, "mmdebstrap bookworm")
ARM = parse_platform("linux/arm64")
AMD = parse_platform("linux/amd64")


def test_canonical_json_is_stable() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == b'{"a":[1,{"c":3,"d":2}],"b":1}'


def test_config_carries_platform_runtime_and_history() -> None:
    run = RunConfig(env=(("PATH", "/bin"),), cmd=("bash",), user="app", labels=(("k", "v"),))
    blob = image_config(ARM, (LAYER,), 1735689600, run)
    doc = json.loads(blob.data)
    assert blob.descriptor.media_type == MEDIA_CONFIG
    assert blob.descriptor.digest == sha256_digest(blob.data)
    assert (doc["architecture"], doc["os"], doc["variant"]) == ("arm64", "linux", "v8")
    assert doc["created"] == "2025-01-01T00:00:00Z"
    assert doc["config"] == {
        "Env": ["PATH=/bin"],
        "Cmd": ["bash"],
        "User": "app",
        "Labels": {"k": "v"},
    }
    assert doc["rootfs"] == {"type": "layers", "diff_ids": [LAYER.diff_id]}
    assert doc["history"] == [
        {"created": "2025-01-01T00:00:00Z", "created_by": "mmdebstrap bookworm"}
    ]
    assert "variant" not in json.loads(image_config(AMD, (LAYER,), 0, run).data)


def test_manifest_and_index() -> None:
    config = image_config(AMD, (LAYER,), 0, RunConfig()).descriptor
    ann = (("org.opencontainers.image.title", "base"),)
    amd = image_manifest(AMD, config, (LAYER,), ann)
    arm = image_manifest(ARM, config, (LAYER,), ann)
    doc = json.loads(amd.data)
    assert doc["schemaVersion"] == 2
    assert doc["mediaType"] == MEDIA_MANIFEST
    assert doc["config"]["digest"] == config.digest
    assert doc["layers"] == [
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": LAYER.digest,
            "size": 10,
        }
    ]
    assert doc["annotations"] == {"org.opencontainers.image.title": "base"}

    # index order does not depend on the order the platforms finished in
    one = image_index((arm.descriptor, amd.descriptor), ann)
    two = image_index((amd.descriptor, arm.descriptor), ann)
    assert one.data == two.data
    idx = json.loads(one.data)
    assert idx["mediaType"] == MEDIA_INDEX
    assert [m["platform"] for m in idx["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
