"""The emitted GitLab pipeline, run for real: gitlab-ci-local runs every job with its shell
executor in a repository that holds only a small family, installing cairn from a wheel of
the commit under test, arm64 under qemu, and pushing to a registry on 127.0.0.1. What it
pushes must be what `cairn build` gives for the same family and lock."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tests.integration.conftest import ROOT, Registry, cairn, cairn_json

GITLAB_CI_LOCAL = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    / "cairn-dev/gitlab-ci-local-4.56.2/node_modules/.bin/gitlab-ci-local"
)
SMALL_FAMILY = """\
[defaults]
suite = "trixie"
platforms = ["linux/amd64", "linux/arm64"]
source_date_epoch = 1735689600
output = "oci:out/oci"

[images.core]
tags = ["1"]

[images.app]
from = "core"
packages = ["netbase"]
tags = ["1"]
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cairn's wheel, built from the commit under test (a copy: the tree gets no build/)."""
    work = tmp_path_factory.mktemp("wheel")
    # the working tree as it is (uncommitted edits included), without what git ignores
    files = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(
        ["rsync", "-a", "--from0", "--files-from=-", f"{ROOT}/", f"{work / 'src'}/"],
        input=files,
        check=True,
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"),
         str(work / "src")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (built,) = (work / "dist").glob("cairn-*.whl")
    return built


def registry_digest(registry: Registry, name: str) -> str:
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.address}/{name}"],
        capture_output=True,
        check=True,
    ).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@pytest.mark.arm64
def test_the_gitlab_pipeline_runs_in_a_family_only_repository_and_pushes_what_build_gives(
    tmp_path: Path, wheel: Path, registry: Registry, binfmt_registered: None
) -> None:
    if not GITLAB_CI_LOCAL.exists():
        pytest.fail(f"{GITLAB_CI_LOCAL} is missing: scripts/setup --dev installs it")
    repo = tmp_path / "family"
    repo.mkdir()
    (repo / "cairn.toml").write_text(SMALL_FAMILY)
    cairn("lock", str(repo))
    # the pipeline file, written from the repository's root as a user would
    subprocess.run(
        [sys.executable, "-m", "cairn", "plan", ".", "--emit", "gitlab-ci"], cwd=repo, check=True
    )
    pipeline = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    assert not (repo / "scripts").exists() and "scripts/setup" not in json.dumps(pipeline)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "the family")
    assert sorted(p.name for p in repo.iterdir()) == [
        ".git",
        ".gitlab-ci.yml",
        "cairn.lock",
        "cairn.toml",
    ]

    # cairn's own build of the same family and lock, for the digests
    direct = cairn_json("build", str(repo), "--output", f"oci:{tmp_path / 'direct'}")
    expected = {i["name"]: i["index_digest"] for i in direct["images"]}

    start = time.monotonic()
    run = subprocess.run(
        [
            str(GITLAB_CI_LOCAL),
            "--shell-isolation",
            "--variable", f"CAIRN_PACKAGE={wheel}",
            "--variable", f"CAIRN_REGISTRY={registry.address}/pipeline",
            "--variable", "CAIRN_PUSH_OPTIONS=--insecure",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )  # fmt: skip
    seconds = time.monotonic() - start
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-6000:]
    print(f"gitlab pipeline: {seconds:.0f} s")
    for job in ("build-core-amd64", "build-core-arm64", "build-app-amd64", "build-app-arm64"):
        assert f"PASS  {job}" in log, log[-6000:]
    assert "PASS  publish" in log
    pushed = {name: registry_digest(registry, f"pipeline/{name}:1") for name in expected}
    assert pushed == expected

    # publish without a registry: it merges, keeps the layout and says that nothing is pushed
    parts = tmp_path / "publish"
    shutil.copytree(repo, parts, ignore=shutil.ignore_patterns(".gitlab-ci-local"))
    shutil.copytree(tmp_path / "direct", parts / "cairn-parts" / "everything")
    quiet = run_script(pipeline["publish"]["script"], parts, wheel, CAIRN_REGISTRY="")
    assert quiet.returncode == 0, quiet.stderr
    assert "CAIRN_REGISTRY is not set, so nothing is pushed" in quiet.stdout
    merged = json.loads((parts / "cairn-published" / "index.json").read_text())
    assert {m["digest"] for m in merged["manifests"]} == set(expected.values())


def run_script(
    lines: list[str], cwd: Path, wheel: Path, **variables: str
) -> subprocess.CompletedProcess[str]:
    """A job's script as GitLab's shell runs it: one shell, stopping at the first failure."""
    env = {**os.environ, "CAIRN_PACKAGE": str(wheel), "CAIRN_PUSH_OPTIONS": "", **variables}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(lines)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_job_whose_parent_artifact_is_missing_names_the_parent_job(
    tmp_path: Path, wheel: Path
) -> None:
    (tmp_path / "cairn.toml").write_text(SMALL_FAMILY)
    text = subprocess.run(
        [sys.executable, "-m", "cairn", "plan", ".", "--emit", "gitlab-ci", "--emit-file", "-"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    job = yaml.safe_load(text)["build-app-arm64"]
    run = run_script(job["script"], tmp_path, wheel)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "cairn: job build-core-arm64 left no cairn-parts/core-arm64: this job builds on it; "
        "run build-core-arm64 first and keep its artifact."
    )
    assert not (tmp_path / ".cairn-venv").exists()  # it stopped before installing anything
