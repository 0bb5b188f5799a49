"""Other outputs (docker-archive into a real Docker engine, other suites into an existing
store) and failures with real engines: each leaves the store exactly as it was."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.helpers import snapshot, with_ctrl_c
from tests.integration.conftest import (
    EXAMPLE,
    SESSION_IMAGES,
    Buildah,
    Built,
    Docker,
    assert_fails_cleanly,
    cairn,
    cairn_json,
    only,
    skip_if_archive_moved,
)
from tests.schemas import validated


def family(tmp_path: Path, body: str) -> Path:
    d = tmp_path / "family"
    d.mkdir()
    (d / "cairn.toml").write_text(
        "[defaults]\nsource_date_epoch = 1735689600\nplatforms = ['linux/amd64']\n" + body
    )
    return d


def test_docker_archive_loads_and_runs_in_docker(tmp_path: Path, docker: Docker) -> None:
    archive = tmp_path / "base-amd64.tar"
    result = cairn_json(
        "build",
        str(EXAMPLE),
        "--image",
        "base",
        "--platform",
        "linux/amd64",
        "--output",
        f"docker-archive:{archive}:qapm/base:test",
    )
    assert result["output"] == f"docker-archive:{archive}:qapm/base:test"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base-amd64.tar"]
    assert "Loaded image: qapm/base:test" in docker("load", "-i", str(archive))
    inspect = json.loads(docker("image", "inspect", "qapm/base:test"))[0]
    assert inspect["Architecture"] == "amd64"
    assert "LANG=C.UTF-8" in inspect["Config"]["Env"]
    out = docker(
        "run",
        "--rm",
        "--network",
        "host",
        "qapm/base:test",
        "sh",
        "-ec",
        "cat /etc/os-release; install_packages curl >/dev/null 2>&1; curl --version",
    )
    assert "VERSION_CODENAME=trixie" in out
    assert out.splitlines()[-1].startswith("Features:") or "curl " in out


def test_trixie_is_added_beside_the_existing_image(
    base: Built, store_copy: Path, buildah: Buildah, tmp_path: Path
) -> None:
    fam = family(tmp_path, "[images.base-trixie]\nsuite = 'trixie'\n")
    result = cairn_json("build", str(fam), "--output", f"oci:{store_copy}")
    refs = {
        m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
        for m in json.loads((store_copy / "index.json").read_text())["manifests"]
    }
    # the new image is added; the ones already there are kept unchanged
    assert refs == {
        **{i["name"]: i["index_digest"] for i in base.result["images"]},
        "base-trixie": result["images"][0]["index_digest"],
    }
    out = buildah.run(
        f"oci:{store_copy}:base-trixie",
        "amd64",
        ". /etc/os-release; echo $VERSION_CODENAME; apt-get update -qq; apt-get check; echo APT-OK",
    )
    assert out.splitlines()[0] == "trixie"
    assert "APT-OK" in out


def test_rebuilding_one_platform_keeps_the_others(base: Built, store_copy: Path) -> None:
    result = cairn_json(
        "build",
        str(EXAMPLE),
        "--image",
        "base",
        "--platform",
        "linux/amd64",
        "--output",
        f"oci:{store_copy}",
    )
    [img] = result["images"]
    assert [p["platform"] for p in img["platforms"]] == ["linux/amd64"]
    skip_if_archive_moved(base, store_copy, ("base",))
    index = json.loads(
        subprocess.run(
            ["skopeo", "inspect", "--raw", f"oci:{store_copy}:base"],
            capture_output=True,
            check=True,
        ).stdout
    )
    by_arch = {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}
    assert by_arch == {
        "amd64": base.platform("base", "linux/amd64")["manifest_digest"],
        "arm64": base.platform("base", "linux/arm64")["manifest_digest"],
    }
    # reproducible: the rebuilt amd64 manifest is the same, so the index is too
    assert img["index_digest"] == base.result["images"][0]["index_digest"]


def plan_of(family_dir: Path, store: Path) -> list[tuple[str, str, str, str]]:
    steps = cairn_json("plan", str(family_dir), *only(*SESSION_IMAGES), "--output", f"oci:{store}")[
        "steps"
    ]
    return [(s["image"], s["platform"], s["action"], s["reason"]) for s in steps]


def test_second_build_rebuilds_nothing(base: Built, store_copy: Path) -> None:
    assert {(s[2], s[3]) for s in plan_of(EXAMPLE, store_copy)} == {("skip", "unchanged")}
    before = snapshot(store_copy)
    start = time.monotonic()
    again = cairn_json(
        "build", str(EXAMPLE), *only(*SESSION_IMAGES), "--output", f"oci:{store_copy}"
    )
    took = time.monotonic() - start
    assert {p["action"] for i in again["images"] for p in i["platforms"]} == {"skip"}
    assert [i["index_digest"] for i in again["images"]] == [
        i["index_digest"] for i in base.result["images"]
    ]
    kept = again["images"][1]["platforms"][0]
    assert kept == {
        **base.platform("base-debug", "linux/amd64"),
        "seconds": 0.0,
        "action": "skip",
        "reason": "unchanged",
    }
    assert snapshot(store_copy) == before
    assert took < 10


def test_a_change_rebuilds_that_image_and_its_descendants_only(
    base: Built, store_copy: Path, tmp_path: Path
) -> None:
    changed = tmp_path / "qapm"
    shutil.copytree(EXAMPLE, changed, ignore=shutil.ignore_patterns("out"))
    spec = changed / "cairn.toml"
    spec.write_text(spec.read_text().replace('"netcat-openbsd"]', '"netcat-openbsd", "jq"]'))
    assert plan_of(changed, store_copy) == [
        ("base", "linux/amd64", "skip", "unchanged"),
        ("base", "linux/arm64", "skip", "unchanged"),
        ("base-debug", "linux/amd64", "build", "spec changed"),
        ("base-debug", "linux/arm64", "build", "spec changed"),
        ("tools", "linux/amd64", "skip", "unchanged"),
        ("tools", "linux/arm64", "skip", "unchanged"),
    ]
    result = cairn_json(
        "build",
        str(changed),
        *only(*SESSION_IMAGES),
        "--platform",
        "linux/amd64",
        "--output",
        f"oci:{store_copy}",
    )
    [base_step, debug_step, tools_step] = [i["platforms"][0] for i in result["images"]]
    assert (base_step["action"], debug_step["action"], tools_step["action"]) == (
        "skip",
        "build",
        "skip",
    )
    assert debug_step["layers"][0] == base.platform("base", "linux/amd64")["layers"][0]
    # jq and what it depends on
    assert debug_step["packages"] > base.platform("base-debug", "linux/amd64")["packages"]

    spec.write_text(spec.read_text().replace('env = { LANG = "C.UTF-8" }', 'env = { LANG = "C" }'))
    assert plan_of(changed, store_copy)[::2] == [
        ("base", "linux/amd64", "build", "spec changed"),
        ("base-debug", "linux/amd64", "build", "parent changed"),
        ("tools", "linux/amd64", "build", "parent changed"),
    ]


def test_child_without_its_parent_in_the_store(tmp_path: Path) -> None:
    fam = family(tmp_path, "[images.base]\n[images.debug]\nfrom = 'base'\npackages = ['curl']\n")
    res = cairn("build", str(fam), "--image", "debug", check=False)
    assert res.returncode == 4, res.stderr
    assert "its parent 'base' has no linux/amd64 image" in res.stderr
    assert "cairn build DIR --image base" in res.stderr
    assert not (fam / "out").exists()


def test_unreachable_mirror(store_copy: Path, tmp_path: Path) -> None:
    fam = family(tmp_path, "mirror = 'http://127.0.0.1:9/debian'\n[images.base]\n")
    assert_fails_cleanly(
        ["build", str(fam)], store_copy, 4, "mirror could not be reached", "Try: check the network"
    )


def test_package_that_does_not_exist(store_copy: Path, tmp_path: Path) -> None:
    fam = family(tmp_path, "[images.base]\npackages = ['curl', 'no-such-package-cairn']\n")
    assert_fails_cleanly(
        ["build", str(fam)],
        store_copy,
        4,
        "base linux/amd64, step rootfs: ",  # the job and its step that failed
        "package 'no-such-package-cairn' does not exist",
    )


def test_a_failed_steps_log_is_kept_under_the_cache_dir_in_use(tmp_path: Path) -> None:
    fam = family(tmp_path, "[images.base]\npackages = ['no-such-package-cairn']\n")
    cache = tmp_path / "elsewhere"
    res = cairn(
        "build",
        str(fam),
        "--cache-dir",
        str(cache),
        "--output",
        f"oci:{tmp_path / 'oci'}",
        check=False,
    )
    assert res.returncode == 4, res.stderr
    found = re.search(r"The whole log: (\S+)", res.stderr)
    assert found, res.stderr
    log = Path(found.group(1))
    assert log.parent == cache / "logs"
    assert re.fullmatch(r"base-amd64-mmdebstrap-\d{8}T\d{6}-\d+\.log", log.name), log.name
    assert "no-such-package-cairn" in log.read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="switches the host's binfmt handler off and on")
def test_missing_arm64_emulation_is_reported_before_any_work(tmp_path: Path) -> None:
    handler = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    fam = family(tmp_path, "[images.base]\nplatforms = ['linux/arm64']\n")
    handler.write_text("0")
    try:
        res = cairn("build", str(fam), check=False)
    finally:
        handler.write_text("1")
    assert res.returncode == 3, res.stderr
    assert "binfmt_misc handler" in res.stderr and "disabled" in res.stderr
    assert "Try: cairn setup --install" in res.stderr
    assert not (fam / "out").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="switches the host's binfmt handler off and on")
def test_setup_finds_a_disabled_handler_and_install_enables_it() -> None:
    handler = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    handler.write_text("0")
    try:
        before = cairn("setup", "--check", check=False)
        found = cairn("setup", "--check", "--json", check=False)
        installed = cairn("setup", "--install", "--json", check=False)
        enabled = handler.read_text().startswith("enabled")
    finally:
        handler.write_text("1")
    assert before.returncode == 3, before.stdout
    assert "Try: cairn setup --install (as root), which registers qemu's binfmt handlers." in (
        before.stdout
    )
    missing = {e["name"]: e["missing"] for e in validated("setup", found.stdout)["engines"]}
    assert missing["qemu-user"] == ["linux/arm64 handler"]
    assert not any(v for k, v in missing.items() if k != "qemu-user")
    assert installed.returncode == 0, installed.stderr
    assert "cairn setup: installing nothing" in installed.stderr  # apt-get was not needed
    assert validated("setup", installed.stdout)["missing_packages"] == []
    assert enabled


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_full_disk(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(small)], check=True)
    try:
        fam = family(tmp_path, "[images.base]\n")
        res = cairn("build", str(fam), "--output", f"oci:{small / 'oci'}", check=False)
        assert res.returncode in (4, 5), res.stderr
        assert "full" in res.stderr
        assert "Try: free some space" in res.stderr
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_interrupted_build_leaves_store_as_it_was(store_copy: Path, tmp_path: Path) -> None:
    before = snapshot(store_copy)
    fam = family(tmp_path, "[images.base]\npackages = ['curl']\n")
    proc = subprocess.Popen(
        with_ctrl_c(
            [sys.executable, "-m", "cairn", "build", str(fam), "--output", f"oci:{store_copy}"]
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    # wait until the staging area exists (mmdebstrap is running), then press Ctrl-C
    deadline = time.monotonic() + 60
    while not list(store_copy.parent.glob(".oci.cairn-staging-*")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    # one line says so, and nothing else follows it
    assert err.rstrip().splitlines()[-1] == (
        "error: cairn was interrupted: its engines are stopped, no output is half-written."
    ), err
    assert "Traceback" not in err
    assert snapshot(store_copy) == before
