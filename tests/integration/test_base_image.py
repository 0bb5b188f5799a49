"""The slim base image, built by cairn for both platforms, run for real."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
from tests.integration.conftest import (
    EXAMPLE,
    ROOT,
    Buildah,
    Built,
    cairn,
    cairn_json,
    only,
    skip_if_archive_moved,
)

# these tests build the example family for linux/arm64 too
pytestmark = pytest.mark.usefixtures("binfmt_registered")
PLATFORMS = {"linux/amd64": ("amd64", "x86_64"), "linux/arm64": ("arm64", "aarch64")}


def test_json_result_matches_schema_and_the_store(base: Built) -> None:
    schema = json.loads((ROOT / "docs" / "schemas" / "build.schema.json").read_text())
    jsonschema.validate(base.result, schema)
    assert base.result["output"] == f"oci:{base.store}"
    assert [i["name"] for i in base.result["images"]] == ["base", "base-debug", "tools"]
    img = base.result["images"][0]
    assert [p["platform"] for p in img["platforms"]] == ["linux/amd64", "linux/arm64"]

    index = json.loads((base.store / "index.json").read_text())
    refs = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
    assert set(refs) == {"base", "base-debug", "tools"}
    assert refs["base"]["digest"] == img["index_digest"]
    # anyone can check a digest: it is the sha256 of the blob
    for p in img["platforms"]:
        for digest in (p["manifest_digest"], p["config_digest"], *p["layers"]):
            blob = base.store / "blobs" / "sha256" / digest.split(":")[1]
            assert "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest() == digest
        assert 40 <= p["packages"] <= 150
        assert p["compressed_bytes"] < p["uncompressed_bytes"]


def test_index_platforms_annotations_and_config(base: Built) -> None:
    store = base.store
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{store}:base"], capture_output=True, check=True
    ).stdout
    index = json.loads(raw)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = [m["platform"] for m in index["manifests"]]
    assert platforms == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    for arch in ("amd64", "arm64"):
        cfg = json.loads(
            subprocess.run(
                ["skopeo", "inspect", "--config", "--override-arch", arch, f"oci:{store}:base"],
                capture_output=True,
                check=True,
            ).stdout
        )
        assert cfg["architecture"] == arch
        assert cfg["created"] == "2025-01-01T00:00:00Z"
        assert cfg["config"]["Cmd"] == ["bash"]
        assert "LANG=C.UTF-8" in cfg["config"]["Env"]
        labels = cfg["config"]["Labels"]
        assert labels["org.opencontainers.image.title"] == "base"
        assert labels["org.opencontainers.image.created"] == "2025-01-01T00:00:00Z"
    manifest = json.loads(
        (store / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]).read_text()
    )
    ann = manifest["annotations"]
    assert ann["org.opencontainers.image.title"] == "base"
    assert ann["org.opencontainers.image.created"] == "2025-01-01T00:00:00Z"
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    assert ann.get("org.opencontainers.image.revision") == (head or None)
    assert ann["vnd.cairn.debian.suite"] == "trixie"


@pytest.mark.parametrize(
    "platform", ["linux/amd64", pytest.param("linux/arm64", marks=pytest.mark.arm64)]
)
def test_base_runs_and_installs_packages(base: Built, buildah: Buildah, platform: str) -> None:
    arch, machine = PLATFORMS[platform]
    out = buildah.run(
        f"oci:{base.store}:base",
        arch,
        "uname -m; cat /etc/os-release; "
        "install_packages curl >/dev/null 2>&1; curl --version | head -1; "
        "apt-get check >/dev/null && echo APT-OK; "
        "ls /var/lib/apt/lists | grep -v -x -e lock -e partial | wc -l",
    )
    lines = out.splitlines()
    assert lines[0] == machine
    assert "VERSION_CODENAME=trixie" in out
    assert any(line.startswith("curl ") for line in lines)
    assert "APT-OK" in lines
    assert lines[-1] == "0"  # install_packages left no package lists behind


def test_slim_profile_and_later_installs_stay_slim(base: Built, buildah: Buildah) -> None:
    script = r"""
        ls /usr/share/man; test -z "$(find /usr/share/man -mindepth 2)"
        test -z "$(find /usr/share/doc -type f ! -name copyright)"
        # copyright files stay: about one per package (some share their source's directory)
        pkgs=$(dpkg-query -W | wc -l); kept=$(find /usr/share/doc -name copyright | wc -l)
        test "$pkgs" -ge 60 && test $((kept * 10)) -ge $((pkgs * 8))
        echo LOCALES: $(find /usr/share/locale -type f | cut -d/ -f5 | sort -u)
        test -n "$(find /usr/share/locale/zh_CN -name '*.mo')"
        echo INFO: $(find /usr/share/info /usr/share/lintian -type f 2>/dev/null | wc -l)
        cat /etc/dpkg/dpkg.cfg.d/10cairn-slim
        install_packages openjdk-21-jre-headless >/tmp/log 2>&1 || { tail -20 /tmp/log; exit 1; }
        java -version 2>&1 | head -1
        echo DOCS: $(find /usr/share/doc -type f ! -name copyright | wc -l)
        echo MAN: $(find /usr/share/man -type f | wc -l)
        echo COPYRIGHT: $(test -f /usr/share/doc/openjdk-21-jre-headless/copyright && echo yes)
        echo CACHE: $(find /var/cache/apt/archives -name '*.deb' | wc -l)
    """
    out = buildah.run(f"oci:{base.store}:base", "amd64", script)
    lines = out.splitlines()
    assert lines[:8] == [f"man{i}" for i in range(1, 9)]
    # the spec keeps zh_CN translations; every other language is left out
    assert "LOCALES: zh_CN" in lines
    assert "INFO: 0" in lines
    assert "path-exclude=/usr/share/doc/*" in lines
    assert any(line.startswith("openjdk version") for line in lines)
    assert "DOCS: 0" in lines
    assert "MAN: 0" in lines
    assert "COPYRIGHT: yes" in lines
    assert "CACHE: 0" in lines


@pytest.mark.parametrize(
    "platform", ["linux/amd64", pytest.param("linux/arm64", marks=pytest.mark.arm64)]
)
def test_child_is_its_parents_layers_plus_one(base: Built, buildah: Buildah, platform: str) -> None:
    parent, child = base.platform("base", platform), base.platform("base-debug", platform)
    assert child["layers"][:-1] == parent["layers"]
    assert len(child["layers"]) == 2
    assert child["packages"] > parent["packages"]
    manifest = json.loads(
        (base.store / "blobs" / "sha256" / child["manifest_digest"].split(":")[1]).read_text()
    )
    assert manifest["annotations"]["org.opencontainers.image.base.name"] == "base"
    assert (
        manifest["annotations"]["org.opencontainers.image.base.digest"] == parent["manifest_digest"]
    )
    arch, machine = PLATFORMS[platform]
    out = buildah.run(
        f"oci:{base.store}:base-debug",
        arch,
        "uname -m; curl --version | head -1; ps -o comm= -p 1 >/dev/null && echo PS-OK; "
        "strace -V | head -1; dpkg --audit && echo AUDIT-OK; "
        "echo DOCS: $(find /usr/share/doc -type f ! -name copyright | wc -l)",
    )
    lines = out.splitlines()
    assert lines[0] == machine
    assert lines[1].startswith("curl ")
    assert "PS-OK" in lines
    assert lines[3].startswith("strace -- version")
    assert "AUDIT-OK" in lines
    assert "DOCS: 0" in lines


@pytest.mark.arm64
def test_same_inputs_give_identical_digests(base: Built, tmp_path: Path) -> None:
    """A second build, from a cold package cache and one platform per layout (as a pipeline's
    per-platform jobs make them), gives byte-identical blobs; `cairn merge` joins the layouts
    into the very index one build of both platforms writes. (base only: a child's layer is
    made the same way, and arm64 under emulation is the slowest part of the suite.)"""
    parts = {}
    for platform in PLATFORMS:
        arch = PLATFORMS[platform][0]
        parts[platform] = cairn_json(
            "build",
            str(EXAMPLE),
            *only("base"),
            "--platform",
            platform,
            "--output",
            f"oci:{tmp_path / arch}",
            "--cache-dir",
            str(tmp_path / "cache"),
        )
    for platform in PLATFORMS:
        skip_if_archive_moved(base, tmp_path / PLATFORMS[platform][0], ("base",))
    for image in ("base",):
        for platform in PLATFORMS:
            first = base.platform(image, platform)
            second = Built(tmp_path, parts[platform]).platform(image, platform)
            assert second["manifest_digest"] == first["manifest_digest"]
            assert second["layers"] == first["layers"]
            assert second["config_digest"] == first["config_digest"]

    merged = tmp_path / "merged"
    out = cairn(
        "merge",
        str(EXAMPLE),
        str(tmp_path / "amd64"),
        str(tmp_path / "arm64"),
        "--output",
        f"oci:{merged}",
    )
    assert out.stderr == ""  # both platforms of both images were found
    assert out.stdout.splitlines() == [
        f"{i['name']}: linux/amd64, linux/arm64 {i['index_digest']}"
        for i in base.result["images"][:1]
    ]
    steps = cairn_json("plan", str(EXAMPLE), *only("base"), "--output", f"oci:{merged}")
    assert {s["action"] for s in steps["steps"]} == {"skip"}


def test_bookworm_is_one_key_away(tmp_path: Path, buildah: Buildah) -> None:
    """Debian 12 stays supported: the example family with `suite = "bookworm"` builds base."""
    family = tmp_path / "family"
    shutil.copytree(EXAMPLE, family, ignore=shutil.ignore_patterns("out"))
    spec = family / "cairn.toml"
    spec.write_text(spec.read_text().replace('suite = "trixie"', 'suite = "bookworm"', 1))
    store = tmp_path / "oci"
    result = cairn_json(
        "build", str(family), *only("base"), "--platform", "linux/amd64", "--output", f"oci:{store}"
    )
    assert [i["name"] for i in result["images"]] == ["base"]
    out = buildah.run(
        f"oci:{store}:base", "amd64", "cat /etc/os-release; dpkg-query -W -f '${Version}' libc6"
    )
    assert "VERSION_CODENAME=bookworm" in out
    assert out.splitlines()[-1].startswith("2.36-")
