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
from pathlib import Path

import pytest
import yaml
from tests.integration.conftest import cairn_json
from tests.pipelines import (
    GITLAB_CI_LOCAL,
    SMALL_FAMILY,
    build_wheel,
    family_repository,
    run_pipeline,
)
from tests.secure_registries import SecureRegistry, certs_d, tls_htpasswd_registry


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def expected_jobs() -> list[str]:
    return [f"build-{i}-{a}" for i in ("core", "app") for a in ("amd64", "arm64")]


def registry_digest(registry: SecureRegistry, name: str, cert_dir: Path) -> str:
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--cert-dir", str(cert_dir),
         "--creds", f"{CI_USER}:{CI_PASSWORD}", f"docker://{registry.address}/{name}"],
        capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# GitLab's job token: its user and a password only this test knows
CI_USER = "gitlab-ci-token"
CI_PASSWORD = "glcbt-64_a7Xq2pLmN0vR9sT"


@pytest.mark.arm64
def test_the_gitlab_pipeline_runs_in_a_family_only_repository_and_pushes_what_build_gives(
    tmp_path: Path, wheel: Path, binfmt_registered: None
) -> None:
    """...and logs in to GitLab's registry as GitLab says: CI_REGISTRY, CI_REGISTRY_IMAGE,
    CI_REGISTRY_USER, CI_REGISTRY_PASSWORD; the registry's TLS comes from a private CA
    (a file variable), and it wants an htpasswd login."""
    with tls_htpasswd_registry(tmp_path / "registry", {CI_USER: CI_PASSWORD}) as registry:
        _run_gitlab_pipeline(tmp_path, wheel, registry)


def _run_gitlab_pipeline(tmp_path: Path, wheel: Path, registry: SecureRegistry) -> None:
    if not GITLAB_CI_LOCAL.exists():
        pytest.fail(f"{GITLAB_CI_LOCAL} is missing: scripts/setup --dev installs it")
    repo = tmp_path / "family"
    family_repository(repo)
    pipeline = yaml.safe_load((repo / ".gitlab-ci.yml").read_text())
    assert "scripts/setup" not in json.dumps(pipeline)
    assert sorted(p.name for p in repo.iterdir()) == [
        ".git",
        ".gitlab-ci.yml",
        "cairn.lock",
        "cairn.toml",
    ]

    # cairn's own build of the same family and lock, for the digests
    direct = cairn_json("build", str(repo), "--output", f"oci:{tmp_path / 'direct'}")
    expected = {i["name"]: i["index_digest"] for i in direct["images"]}

    run = run_pipeline(
        repo,
        CAIRN_PACKAGE=str(wheel),
        CI_REGISTRY=registry.address,
        CI_REGISTRY_IMAGE=f"{registry.address}/Group/Pipeline",
        CI_REGISTRY_USER=CI_USER,
        CI_REGISTRY_PASSWORD=CI_PASSWORD,
        CAIRN_REGISTRY_CA_FILE=str(registry.ca_cert),
    )
    assert run.returncode == 0, run.log[-6000:]
    assert CI_PASSWORD not in run.log
    assert f"Login succeeded: {CI_USER} at {registry.address}" in run.log, run.log[-6000:]
    print(f"gitlab pipeline: {run.seconds:.0f} s, {run.job_seconds()}")
    assert set(run.job_seconds()) == {*expected_jobs(), "publish"}, run.log[-6000:]
    for job in (*expected_jobs(), "publish"):
        assert f"PASS  {job}" in run.log, run.log[-6000:]
    cert_dir = certs_d(tmp_path / "certs", registry)
    pushed = {
        name: registry_digest(registry, f"group/pipeline/{name}:1", cert_dir) for name in expected
    }
    assert pushed == expected

    # publish without a registry: it merges, keeps the layout and says that nothing is pushed
    parts = tmp_path / "publish"
    shutil.copytree(repo, parts, ignore=shutil.ignore_patterns(".gitlab-ci-local"))
    shutil.copytree(tmp_path / "direct", parts / "cairn-parts" / "everything")
    quiet = run_script(pipeline["publish"]["script"], parts, wheel, CAIRN_REGISTRY="")
    assert quiet.returncode == 0, quiet.stderr
    assert "so nothing is pushed" in quiet.stdout
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
    (tmp_path / "cairn.toml").write_text(SMALL_FAMILY.read_text())
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
