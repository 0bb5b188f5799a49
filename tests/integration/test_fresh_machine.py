"""The README on freshly made Debian 12 and 13 machines (tests/freshroot.py), as a new user.

Each root is made once per session (`fresh_roots`) and can serve other tests that
need a Debian 13 userland (its packages), after the set-up check ran in it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from tests.buildkit import DOCKER, differences, layout_images, listing, oci_images, start_engine
from tests.freshroot import REPO, check_readme
from tests.helpers import with_ctrl_c
from tests.integration.conftest import FreshRoots
from tests.schemas import schema

import cairn
from cairn.family.spec import load_family

# what Debian's own python3 is on each release (users have these; cairn must run on them)
DEBIAN_PYTHON = {"bookworm": "Python 3.11.2", "trixie": "Python 3.13."}
DEBIAN_VERSION = {"bookworm": 12, "trixie": 13}


@pytest.mark.arm64
@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_readme_set_up_on_a_fresh_machine(fresh_roots: FreshRoots, suite: str) -> None:
    root = fresh_roots.get(suite)
    result = check_readme(root)
    print(f"fresh {suite}: " + ", ".join(f"{k} {v} s" for k, v in root.timings().items()))

    # cairn ran on the release's own python3, in the virtualenv the README's set-up made
    version = root.run("python", ".venv/bin/python -V").strip()
    assert version.startswith(DEBIAN_PYTHON[suite]), version
    assert (root.path / "root/cairn/.venv/pyvenv.cfg").read_text().count("home = /usr/bin") == 1

    # the example family's base, both platforms, from the trixie archive
    build = result["build"]
    jsonschema.validate(build, schema("build"))
    (image,) = build["images"]
    assert image["name"] == "base"
    assert [p["platform"] for p in image["platforms"]] == ["linux/amd64", "linux/arm64"]
    assert (root.path / "root/cairn/examples/qapm/out/oci/index.json").is_file()
    # skopeo (installed by the set-up in the root) reads what cairn wrote
    raw = root.run("skopeo", "skopeo inspect --raw oci:examples/qapm/out/oci:base")
    assert json.loads(raw)["manifests"][1]["platform"]["architecture"] == "arm64"

    analysis = result["analysis"]
    jsonschema.validate(analysis, schema("analyze"))
    assert analysis["os"]["codename"] == "trixie"
    assert analysis["libc"]["family"] == "glibc"
    assert 40 <= len(analysis["packages"]) <= 150
    compat = result["compat"]
    jsonschema.validate(compat, schema("compat"))
    jsonschema.validate(result["doctor"], schema("doctor"))
    assert compat["target_libc"]["family"] == "glibc"
    assert [o["verdict"] for o in compat["objects"]] == ["ok"], compat
    assert result["doctor"]["errors"] == 0, result["doctor"]

    # the wheel, installed away from the source tree, finds every engine the set-up installed
    assert result["version"] == f"cairn {cairn.__version__}"
    setup = result["setup"]
    jsonschema.validate(setup, schema("setup"))
    assert setup["system"] == f"debian-{DEBIAN_VERSION[suite]}"
    assert setup["missing_packages"] == [] and not any(e["missing"] for e in setup["engines"])


def _fresh_dirs() -> set[Path]:
    return set(Path("/var/tmp").glob("cairn-fresh-*"))


def _fresh_mounts() -> list[str]:
    return [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if "/var/tmp/cairn-fresh-" in line.split()[4]
    ]


def test_a_failed_step_is_named_and_leaves_nothing(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (mmdebstrap, mount)")
    before, mounts_before = _fresh_dirs(), set(_fresh_mounts())
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.freshroot",
            "trixie",
            "--mirror",
            "http://127.0.0.1:9/debian",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        check=False,
        timeout=300,
    )
    assert res.returncode == 1, res.stderr
    assert "step 'make the root (mmdebstrap)' failed" in res.stderr
    assert f"the whole log: {tmp_path}/cairn-fresh-trixie.log" in res.stderr
    assert _fresh_dirs() == before
    assert set(_fresh_mounts()) == mounts_before


def test_ctrl_c_unmounts_and_removes_the_root(tmp_path: Path) -> None:
    """Ctrl-C in the middle of the set-up: exit 130, no mount, root or process left."""
    if os.geteuid() != 0:
        pytest.skip("needs root (mmdebstrap, mount, chroot)")
    # the session's own fresh roots may be mounted meanwhile: only what this run adds counts
    before, mounts_before = _fresh_dirs(), set(_fresh_mounts())
    proc = subprocess.Popen(
        with_ctrl_c([sys.executable, "-m", "tests.freshroot", "bookworm"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    log = tmp_path / "cairn-fresh-bookworm.log"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and "=== set-up (README)" in log.read_text():
            break
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()
    time.sleep(3)  # well inside the set-up: apt is running in the root
    assert set(_fresh_mounts()) - mounts_before, "the root was mounted while it ran"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted; the bookworm root is removed" in err
    assert _fresh_dirs() == before
    assert set(_fresh_mounts()) == mounts_before
    left = [
        p.name
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _root_of(p).startswith("/var/tmp/cairn-fresh-bookworm")
    ]
    assert not left, left


def _root_of(proc: Path) -> str:
    try:
        return str((proc / "root").readlink())
    except OSError:
        return ""


def test_unit_tests_pass_on_debian_13s_python(fresh_roots: FreshRoots) -> None:
    """The fast tests on Debian 13's own python3 (the host's venv runs them on Debian 12's)."""
    root = fresh_roots.get("trixie")
    out = root.run(
        "unit tests (python 3.13)",
        "test -x .venv/bin/python || ./scripts/setup\n"
        ".venv/bin/pip install -q --disable-pip-version-check -e '.[dev]' >/root/pip.log 2>&1 "
        "|| { grep -v 'WARNING: Location' /root/pip.log; exit 1; }\n"
        ".venv/bin/python -m pytest -q -p no:cacheprovider -m 'not slow' tests/unit",
    )
    assert re.search(r"^\d+ passed", out.splitlines()[-1]), out[-2000:]


# What a package child built by BuildKit from the bake file has that cairn's own build of
# it has not, and the other way round (the README's "bake" section says why): path ->
# (cairn's, BuildKit's). Everything else is the same: paths, kinds, modes, owners,
# contents and link targets.
BAKE_DIFFERENCES = {
    "app": {
        # netbase's postinst writes /etc/hosts when there is none; under BuildKit the
        # engine's own /etc/hosts is mounted there while the step runs
        "etc/hosts": ("file 644 0:0", "absent"),
    }
}


@pytest.mark.arm64
def test_the_bake_file_builds_the_family_under_buildkit(
    fresh_roots: FreshRoots, binfmt_registered: None
) -> None:
    """`cairn plan --emit bake` for the small family, built by Debian 13's BuildKit
    (docker.io 26.1, docker-buildx 0.13, the docker driver) in the trixie root after the
    README's check there: the roots come from cairn's OCI layout (no registry is reachable
    here, so nothing can be pulled), the children are built by BuildKit, arm64 under qemu."""
    root = fresh_roots.get("trixie")
    root.run("set-up", "test -x .venv/bin/cairn || ./scripts/setup")
    versions = start_engine(root)
    assert "26.1" in versions and "0.13" in versions, versions
    family = load_family(REPO / "examples" / "small")
    children = [i for i in family.images if i.parent is not None]
    root.run(
        "cairn build and --emit bake (small family)",
        "rm -rf /root/small && cp -r examples/small /root/small\n"
        ".venv/bin/cairn build /root/small >/dev/null\n"
        ".venv/bin/cairn plan /root/small --emit bake",
    )
    # beside the family's targets, BuildKit's own reading of cairn's build of each child
    (root.path / "root/small/compare.hcl").write_text(
        "".join(
            f'target "cairn-{i.name}" {{\n  dockerfile-inline = "FROM {i.name}\\n"\n'
            f'  contexts = {{ "{i.name}" = "oci-layout://out/oci:{i.name}" }}\n'
            f"  platforms = {json.dumps([p.name for p in i.platforms])}\n}}\n"
            for i in children
        )
    )
    to_tar = " ".join(
        f"--set {n}.output=type=tar,dest=/root/bake/{n}.tar"
        for n in [i.name for i in family.images] + [f"cairn-{i.name}" for i in children]
    )
    to_oci = " ".join(
        f"--set {i.name}.output=type=oci,dest=/root/bake/{i.name}.oci.tar" for i in family.images
    )
    targets = " ".join(["default", *(f"cairn-{i.name}" for i in children)])
    start = time.monotonic()
    root.run(
        "docker buildx bake",
        "mkdir -p /root/bake && cd /root/small\n"
        f"{DOCKER} buildx bake -f docker-bake.hcl -f compare.hcl --progress plain {to_tar} "
        f"{targets}\n"
        # the same build again, its images this time (every step is in BuildKit's cache)
        f"{DOCKER} buildx bake --progress plain {to_oci}",
    )
    print(f"bake: {time.monotonic() - start:.0f} s for {len(family.images)} targets")

    out, layout = root.path / "root/bake", root.path / "root/small/out/oci"
    for image in family.images:
        baked, cairns = oci_images(out / f"{image.name}.oci.tar"), layout_images(layout, image.name)
        assert sorted(baked) == sorted(p.name for p in image.platforms)
        for platform, mine in cairns.items():
            # every config field cairn sets (Env, Cmd, Labels, User...) is the same
            assert baked[platform].config == mine.config, (image.name, platform)
            if image.parent is None:
                # a root is cairn's own, layer for layer
                assert baked[platform].layers == mine.layers
            else:
                # a child is its parent's layers and one of its own
                parent = layout_images(layout, image.parent)[platform].layers
                assert baked[platform].layers[:-1] == parent and len(mine.layers) == len(parent) + 1
    for image in children:
        baked_files = listing(out / f"{image.name}.tar")
        cairns_files = listing(out / f"cairn-{image.name}.tar")
        assert sorted(baked_files) == sorted(cairns_files) == ["linux_amd64", "linux_arm64"]
        for platform, files in cairns_files.items():
            assert differences(files, baked_files[platform]) == BAKE_DIFFERENCES[image.name]
            assert len(files) > 2000, platform
