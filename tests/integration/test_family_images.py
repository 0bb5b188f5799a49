"""Dockerfile fragments (buildah and Docker's BuildKit), and publishing: a real registry on
127.0.0.1 and a real Docker engine."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import (
    EXAMPLE,
    Buildah,
    Built,
    Docker,
    Registry,
    assert_fails_cleanly,
    cairn,
    cairn_json,
    only,
)
from tests.schemas import validated

# these tests build the example family for linux/arm64 too
pytestmark = pytest.mark.usefixtures("binfmt_registered")

PLATFORMS = {"linux/amd64": "amd64", "linux/arm64": "arm64"}


def blob(store: Path, digest: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (store / "blobs" / "sha256" / digest.split(":")[1]).read_text()
    )
    return data


@pytest.mark.parametrize(
    "platform", ["linux/amd64", pytest.param("linux/arm64", marks=pytest.mark.arm64)]
)
def test_fragment_image_is_base_plus_one_layer(
    base: Built, buildah: Buildah, platform: str
) -> None:
    parent, tools = base.platform("base", platform), base.platform("tools", platform)
    assert tools["layers"][:-1] == parent["layers"]
    config = blob(base.store, tools["config_digest"])
    assert config["config"]["User"] == "tool"  # type: ignore[index]
    assert config["config"]["WorkingDir"] == "/home/tool"  # type: ignore[index]
    history = config["history"][-1]["created_by"]  # type: ignore[index]
    assert "buildah build Dockerfile" in history
    out = buildah.run(
        f"oci:{base.store}:tools",
        PLATFORMS[platform],
        "id -un; cat /etc/motd; test ! -e /.dockerenv && echo CLEAN",
    )
    assert out.splitlines() == [
        "tool",
        "qapm tools image: an unprivileged 'tool' user, built from a Dockerfile fragment.",
        "CLEAN",
    ]
    # the fragment's layer holds what it changed, not the engine's files
    layer = base.store / "blobs" / "sha256" / tools["layers"][-1].split(":")[1]
    names = subprocess.run(
        ["tar", "-tzf", str(layer)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "./etc/motd" in names and "./etc/passwd" in names
    assert not {"./etc/hosts", "./etc/resolv.conf", "./usr/bin/perl5.36.0"} & set(names)
    assert len(names) < 40


def test_docker_builder_gives_the_same_layer(base: Built, docker: Docker, store_copy: Path) -> None:
    store = store_copy
    res = cairn(
        "build",
        str(EXAMPLE),
        "-i",
        "tools",
        "-p",
        "linux/amd64",
        "--builder",
        "docker",
        "--force",
        "--output",
        f"oci:{store}",
        "--json",
        docker_host=docker.host,
    )
    step = validated("build", res.stdout)["images"][0]["platforms"][0]
    buildah_step = base.platform("tools", "linux/amd64")
    assert step["layers"][:-1] == base.platform("base", "linux/amd64")["layers"]
    config = blob(store, step["config_digest"])
    assert "docker build Dockerfile" in config["history"][-1]["created_by"]  # type: ignore[index]
    # both engines ran the same steps on the same parent: the same changes (useradd's
    # backup files, NAME-, aside: the engines differ in how those come about)
    assert changed_paths(store, step) == changed_paths(base.store, buildah_step)


def changed_paths(store: Path, step: dict[str, Any]) -> set[tuple[str, int, int]]:
    layer = store / "blobs" / "sha256" / step["layers"][-1].split(":")[1]
    with tarfile.open(layer) as tf:
        return {(m.name, m.uid, m.mode) for m in tf if not m.name.endswith("-")}


def test_fragment_builds_from_any_scratch_path(store_copy: Path, tmp_path: Path) -> None:
    """buildah names images after oci: paths; cairn's scratch path must not matter."""
    odd = tmp_path / "Scratch__With_Capitals_"
    odd.mkdir()
    res = cairn(
        "build",
        str(EXAMPLE),
        "-i",
        "tools",
        "-p",
        "linux/amd64",
        "--force",
        "--output",
        f"oci:{store_copy}",
        "--json",
        tmpdir=odd,
    )
    assert validated("build", res.stdout)["images"][0]["platforms"][0]["action"] == "build"


def test_failing_dockerfile_changes_nothing(base: Built, tmp_path: Path) -> None:
    fam = tmp_path / "qapm"
    shutil.copytree(EXAMPLE, fam, ignore=shutil.ignore_patterns("out", "cairn.lock"))
    (fam / "tools" / "Dockerfile").write_text("RUN echo about to fail && exit 3\n")
    store = tmp_path / "oci"
    shutil.copytree(base.store, store)
    assert_fails_cleanly(
        ["build", str(fam), "-i", "tools", "-p", "linux/amd64"],
        store,
        4,
        "buildah could not run",
        "exit 3",
        "fix the failing step in Dockerfile",
    )


def skopeo_raw(ref: str) -> dict[str, object]:
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", ref],
        capture_output=True,
        check=True,
    ).stdout
    data: dict[str, object] = json.loads(out)
    return data


def uploads(requests: list[str]) -> list[str]:
    """Blob uploads started (cross-repository mounts are not uploads)."""
    return [
        r
        for r in requests
        if r.startswith("POST ") and "/blobs/uploads/" in r and "mount=" not in r
    ]


def test_push_multi_arch_index_and_skip_what_is_there(base: Built, registry: Registry) -> None:
    dest = f"{registry.address}/qapm"
    first = cairn(
        "push", str(EXAMPLE), dest, "--insecure", *only("base"), "--output", f"oci:{base.store}"
    )
    assert "pushing base" in first.stderr
    before_child = len(registry.requests())
    cairn(
        "push",
        str(EXAMPLE),
        dest,
        "--insecure",
        *only("base-debug", "tools"),
        "--output",
        f"oci:{base.store}",
    )
    child_uploads = uploads(registry.requests()[before_child:])
    # each child sends its own layer and config per platform (twice two), never base's layer
    base_layers = {
        d for p in ("linux/amd64", "linux/arm64") for d in base.platform("base", p)["layers"]
    }
    assert not any(
        d in r
        for r in registry.requests()[before_child:]
        if r.startswith("PUT ")
        for d in base_layers
    )
    assert 0 < len(child_uploads) <= 8

    for image, tags in {
        "base": ["trixie", "13"],
        "base-debug": ["trixie", "13"],
        "tools": ["trixie"],
    }.items():
        expected = next(i for i in base.result["images"] if i["name"] == image)["index_digest"]
        for tag in tags:
            raw = subprocess.run(
                [
                    "skopeo",
                    "inspect",
                    "--raw",
                    "--tls-verify=false",
                    f"docker://{dest}/{image}:{tag}",
                ],
                capture_output=True,
                check=True,
            ).stdout
            assert "sha256:" + hashlib.sha256(raw).hexdigest() == expected
            index = json.loads(raw)
            assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]

    # everything is there now: a second push uploads nothing
    start = len(registry.requests())
    result = cairn_json(
        "push",
        str(EXAMPLE),
        dest,
        "--insecure",
        *only("base", "base-debug", "tools"),
        "--output",
        f"oci:{base.store}",
    )
    assert [p["image"] for p in result["pushed"]] == ["base", "base-debug", "tools"]
    assert uploads(registry.requests()[start:]) == []


def test_push_without_plain_http_and_to_nothing(
    base: Built, registry: Registry, tmp_path: Path
) -> None:
    # a registry on this machine may speak plain HTTP without --plain-http, as Docker allows
    # (elsewhere "the registry speaks plain HTTP. Try: --plain-http": a unit test's)
    res = cairn(
        "push",
        str(EXAMPLE),
        f"{registry.address}/qapm",
        *only("base"),
        "--output",
        f"oci:{base.store}",
        check=False,
    )
    assert res.returncode == 0, res.stderr
    res = cairn(
        "push",
        str(EXAMPLE),
        "127.0.0.1:9/qapm",
        "--insecure",
        *only("base"),
        "--output",
        f"oci:{base.store}",
        check=False,
    )
    assert res.returncode == 4, res.stderr
    assert "nothing accepts connections at 127.0.0.1:9 after 4 attempts" in res.stderr
    assert "connection refused (attempt 3 of 4); retrying in" in res.stderr, res.stderr
    res = cairn("push", str(EXAMPLE), "Not A Registry", *only("base"), check=False)
    assert res.returncode == 2 and "is not a registry and prefix" in res.stderr


def test_load_puts_the_image_into_docker(docker: Docker, store_copy: Path) -> None:
    res = cairn(
        "build",
        str(EXAMPLE),
        "-i",
        "tools",
        "--load",
        "--output",
        f"oci:{store_copy}",
        docker_host=docker.host,
    )
    assert "loading tools linux/amd64 into Docker as tools:trixie" in res.stderr
    out = docker("run", "--rm", "--network", "host", "tools:trixie", "sh", "-c", "id -un; uname -m")
    assert out.split() == ["tool", "x86_64"]
