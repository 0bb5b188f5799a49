"""What `cairn plan --emit` writes parses, and carries the family's graph."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

import cairn
from cairn.errors import UsageError
from cairn.family.emit import bake, github_actions, gitlab_ci
from cairn.family.pipeline import PUBLISH_LOGIN, ci_jobs, repository_root
from cairn.family.spec import load_family

EXAMPLE = Path(__file__).parents[2] / "examples" / "qapm"
CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")


def unquote(value: Any) -> Any:
    """python-hcl2 (8) returns string literals as written; HCL's escapes are JSON's."""
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return json.loads(value).replace("$${", "${").replace("%%{", "%{")
    return value


def test_bake_targets_follow_the_tree() -> None:
    fam = load_family(EXAMPLE)
    doc: dict[str, Any] = unquote(hcl2.loads(bake(fam, "127.0.0.1:5000/qapm", EXAMPLE)))
    targets = {name: body for t in doc["target"] for name, body in t.items()}
    assert set(targets) == {i.name for i in fam.images}
    group = next(iter(doc["group"][0].values()))
    assert set(group["targets"]) == set(targets)
    (variable,) = doc["variable"]
    assert variable["CAIRN_LAYOUT"]["default"] == "out/oci"  # the family's output, from here
    for image in fam.images:
        t = targets[image.name]
        assert t["platforms"] == ["linux/amd64", "linux/arm64"]
        assert t["tags"] == [f"127.0.0.1:5000/qapm/{image.name}:{tag}" for tag in image.tags]
        assert t["args"] == {"SOURCE_DATE_EPOCH": str(fam.source_date_epoch)}
        inline = t["dockerfile-inline"]
        if image.parent is None or image.runtime:
            # cairn's own build of the root (or of a runtime image, which has no shell to run
            # a step in), from its layout: no registry, no mmdebstrap
            assert t["contexts"] == {image.name: f"oci-layout://${{CAIRN_LAYOUT}}:{image.name}"}
            assert inline == f"FROM {image.name}\n"
        else:
            assert t["contexts"] == {image.parent: f"target:{image.parent}"}
            assert inline.startswith(f"FROM {image.parent}\nARG SOURCE_DATE_EPOCH\n")
            assert f'"org.opencontainers.image.title"="{image.name}"' in inline
    python = targets["python"]["dockerfile-inline"]
    # arm64 emulated as cairn emulates it; a native builder sets no QEMU_CPU
    assert (
        'RUN [ "$BUILDARCH" = "$TARGETARCH" ] || case "$TARGETARCH" in '
        "arm64) export QEMU_CPU=cortex-a53;; esac; install_packages python3\n"
    ) in python
    assert 'ENV GOTOOLCHAIN="local"' in targets["golang"]["dockerfile-inline"]
    tools = targets["tools"]["dockerfile-inline"]
    assert tools.startswith("FROM base\nARG SOURCE_DATE_EPOCH\nARG QEMU_CPU\n# A fragment")
    assert "useradd" in tools and "QEMU_CPU=" not in tools
    assert targets["tools"]["context"] == "tools"


def test_bake_paths_are_relative_to_the_file_and_need_an_oci_output(tmp_path: Path) -> None:
    fam = load_family(EXAMPLE)
    doc = unquote(hcl2.loads(bake(fam, "", EXAMPLE / "ci")))
    assert doc["variable"][0]["CAIRN_LAYOUT"]["default"] == "../out/oci"
    targets = {name: body for t in doc["target"] for name, body in t.items()}
    assert targets["tools"]["context"] == "../tools"
    assert targets["base"]["tags"] == ["base:trixie", "base:13"]
    spec = tmp_path / "cairn.toml"
    spec.write_text('[defaults]\noutput = "docker-archive:out.tar"\n[images.base]\n')
    with pytest.raises(UsageError, match="reads the roots from cairn's OCI layout") as e:
        bake(load_family(spec), "", tmp_path)
    assert 'output = "oci:out/oci"' in e.value.hint


def test_pipelines_have_a_job_per_image_and_platform_on_native_runners() -> None:
    fam = load_family(EXAMPLE)
    gha = yaml.safe_load(github_actions(fam))
    jobs = gha["jobs"]
    expected = {f"build-{i.name}-{p.debian_arch}" for i in fam.images for p in i.platforms}
    assert set(jobs) == expected | {"publish"}
    assert len(expected) == 2 * len(fam.images)
    for image in fam.images:
        for arch, runner in (("amd64", "ubuntu-24.04"), ("arm64", "ubuntu-24.04-arm")):
            job = jobs[f"build-{image.name}-{arch}"]
            assert job["runs-on"] == runner
            script = "\n".join(s.get("run", "") for s in job["steps"])
            # cairn comes from a package, its engines for this platform from cairn setup
            assert (
                '.cairn-venv/bin/pip install -q --disable-pip-version-check "$CAIRN_PACKAGE"'
                in (script)
            )
            assert f"cairn setup --install --platform linux/{arch}" in script
            assert "scripts/setup" not in script
            assert f"--image {image.name} --platform linux/{arch}" in script
            assert f"--output oci:cairn-parts/{image.name}-{arch}" in script
            uploads = [s for s in job["steps"] if "upload-artifact" in s.get("uses", "")]
            assert uploads[0]["with"]["name"] == f"{image.name}-{arch}"
            if image.parent:
                # the same platform's parent, whose layout this job starts from
                assert job["needs"] == [f"build-{image.parent}-{arch}"]
                downloads = [s for s in job["steps"] if "download-artifact" in s.get("uses", "")]
                assert downloads[0]["with"] == {
                    "name": f"{image.parent}-{arch}",
                    "path": f"cairn-parts/{image.parent}-{arch}",
                }
                assert f"build-{image.parent}-{arch} left no" in script
            else:
                assert "needs" not in job
    # a valid order exists: every job's needs are defined
    for job in jobs.values():
        assert all(n in jobs for n in job.get("needs", []))
    publish = jobs["publish"]
    assert set(publish["needs"]) == expected
    script = publish["steps"][-2]["run"]
    assert "cairn merge examples/qapm cairn-parts/* --output oci:cairn-published" in script
    assert 'cairn push examples/qapm "$CAIRN_DESTINATION"' in script
    assert "so nothing is pushed" in script
    # ghcr.io with the job's token, which may write packages there
    assert publish["permissions"] == {"contents": "read", "packages": "write"}
    assert publish["env"]["CAIRN_CI_PASSWORD"] == "${{ secrets.GITHUB_TOKEN }}"
    assert publish["env"]["CAIRN_CI_REGISTRY_IMAGE"] == "ghcr.io/${{ github.repository }}"
    assert all("secrets." in v for k, v in publish["env"].items() if "PASSWORD" in k or "KEY" in k)

    gl = yaml.safe_load(gitlab_ci(fam))
    for image in fam.images:
        for arch in ("amd64", "arm64"):
            job = gl[f"build-{image.name}-{arch}"]
            assert job["tags"] == [f"$CAIRN_RUNNER_TAG_{arch.upper()}"]
            assert gl["variables"][f"CAIRN_RUNNER_TAG_{arch.upper()}"] == f"saas-linux-small-{arch}"
            assert job["artifacts"]["paths"] == [f"cairn-parts/{image.name}-{arch}"]
    assert gl["publish"]["stage"] == "publish"
    assert gl["publish"]["variables"] == {
        "CAIRN_CI_REGISTRY": "$CI_REGISTRY",
        "CAIRN_CI_REGISTRY_IMAGE": "$CI_REGISTRY_IMAGE",
        "CAIRN_CI_USER": "$CI_REGISTRY_USER",
        "CAIRN_CI_PASSWORD": "$CI_REGISTRY_PASSWORD",
    }
    # cairn is not on PyPI: the package is the user's to name, and a job without it stops
    assert gl["variables"]["CAIRN_PACKAGE"] == ""
    first = gl["build-base-amd64"]["script"][0]
    run = subprocess.run(
        ["bash", "-c", first],
        env={"CAIRN_PACKAGE": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert f"CAIRN_PACKAGE: is not set: set it to a cairn {cairn.__version__} wheel" in run.stderr


def test_github_and_gitlab_run_the_same_jobs_needs_and_commands() -> None:
    fam = load_family(EXAMPLE)
    gha = yaml.safe_load(github_actions(fam))["jobs"]
    gl = {k: v for k, v in yaml.safe_load(gitlab_ci(fam)).items() if isinstance(v, dict)}
    gl = {k: v for k, v in gl.items() if "script" in v}
    assert list(gha) == list(gl)
    for name, job in gha.items():
        assert job.get("needs", []) == [n["job"] for n in gl[name]["needs"]]
        (run,) = [s["run"] for s in job["steps"] if "run" in s]
        assert run.split("\n") == gl[name]["script"]


def test_the_ci_systems_own_schemas_accept_both_pipelines(tmp_path: Path) -> None:
    fam = load_family(EXAMPLE)
    for kind, text in (("github-workflows", github_actions(fam)), ("gitlab-ci", gitlab_ci(fam))):
        path = tmp_path / f"{kind}.yml"
        path.write_text(text)
        out = subprocess.run(
            [CHECK_JSONSCHEMA, "--builtin-schema", f"vendor.{kind}", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stdout + out.stderr


def test_a_family_outside_the_repository_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="is not inside"):
        gitlab_ci(load_family(EXAMPLE))


def test_a_pipeline_names_the_family_from_its_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from inside the family's directory, the jobs still name it from the root, where
    the CI system checks the repository out."""
    (tmp_path / ".git").mkdir()
    family = tmp_path / "images" / "qapm"
    shutil.copytree(EXAMPLE, family, ignore=shutil.ignore_patterns("out"))
    monkeypatch.chdir(family)
    jobs = {job.id: job for job in ci_jobs(load_family(family))}
    assert "cairn build images/qapm --image base --platform linux/amd64" in " ".join(
        jobs["build-base-amd64"].script
    )
    assert repository_root(family) == tmp_path.resolve()


def test_the_bake_file_goes_beside_cairn_toml_and_reads_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    family = tmp_path / "images"
    shutil.copytree(EXAMPLE, family, ignore=shutil.ignore_patterns("out"))
    monkeypatch.chdir(tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "cairn", "plan", "images", "--emit", "bake"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "wrote images/docker-bake.hcl"
    written = unquote(hcl2.loads((family / "docker-bake.hcl").read_text()))
    assert written["variable"][0]["CAIRN_LAYOUT"]["default"] == "out/oci"
    # to stdout, the paths are the working directory's
    res = subprocess.run(
        [sys.executable, "-m", "cairn", "plan", "images", "--emit", "bake", "--emit-file", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert unquote(hcl2.loads(res.stdout))["variable"][0]["CAIRN_LAYOUT"]["default"] == (
        "images/out/oci"
    )


def _publish(tmp_path: Path, **variables: str) -> tuple[str, list[str]]:
    """The publish job's login and push lines, run by bash with a cairn that records how it
    was called (and what it read on standard input): its output, and the calls."""
    fam = load_family(EXAMPLE)
    push = next(line for line in ci_jobs(fam, EXAMPLE)[-1].script if "cairn push" in line)
    stub = tmp_path / ".cairn-venv" / "bin" / "cairn"
    stub.parent.mkdir(parents=True)
    calls = tmp_path / "calls"
    stub.write_text(
        "#!/bin/bash\n"
        f'printf "%s|" "$@" >> {calls}\n'
        f'if [ "$1" = login ]; then printf "stdin=%s|file=%s" "$(cat)" "$REGISTRY_AUTH_FILE" '
        f">> {calls}; fi\necho >> {calls}\n"
    )
    stub.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "CAIRN_PUSH_OPTIONS": "", **variables}
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join([*PUBLISH_LOGIN, push])],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout, calls.read_text().splitlines() if calls.exists() else []


def test_publish_logs_in_by_the_ci_convention_and_variables_override(tmp_path: Path) -> None:
    gitlab = {
        "CAIRN_CI_REGISTRY": "registry.gitlab.example",
        "CAIRN_CI_REGISTRY_IMAGE": "registry.gitlab.example/Group/Family",
        "CAIRN_CI_USER": "gitlab-ci-token",
        "CAIRN_CI_PASSWORD": "job-token-123",
    }
    # the CI's own registry (lower case), with the job's token on standard input
    _, calls = _publish(tmp_path / "a", **gitlab)
    login, push = calls
    assert login.startswith("login|registry.gitlab.example|-u|gitlab-ci-token|--password-stdin|")
    assert "stdin=job-token-123|" in login and "job-token-123" not in login.split("stdin=")[0]
    assert "/auth.json" in login  # a file of the job's own (removed when the shell exits)
    assert push.startswith("push|examples/qapm|registry.gitlab.example/group/family|")
    assert not Path(login.split("file=")[1]).exists()
    # another registry: its own credentials, and the job's token never goes there
    _, calls = _publish(
        tmp_path / "b",
        **gitlab,
        CAIRN_REGISTRY="harbor.example/base",
        CAIRN_REGISTRY_USER="robot$family",
        CAIRN_REGISTRY_PASSWORD="harbor-secret",
    )
    assert calls[0].startswith("login|harbor.example|-u|robot$family|--password-stdin|")
    assert "stdin=harbor-secret|" in calls[0]
    _, calls = _publish(tmp_path / "c", **gitlab, CAIRN_REGISTRY="harbor.example/base")
    assert [c.split("|")[0] for c in calls] == ["push"]
    assert "job-token-123" not in "".join(calls)
    # a private registry's password never goes to the CI's registry
    _, calls = _publish(tmp_path / "c2", **gitlab, CAIRN_REGISTRY_PASSWORD="harbor-secret")
    assert "harbor-secret" not in "".join(calls)
    assert calls[0].startswith("login|registry.gitlab.example|-u|gitlab-ci-token|")
    # a signing key given as PEM goes to a file of the job's own
    _, calls = _publish(tmp_path / "d", **gitlab, CAIRN_SIGN_KEY="-----BEGIN KEY-----\nx")
    assert "|--sign-key|" in calls[1] and calls[1].split("--sign-key|")[1].endswith("sign.key|")
    # nowhere to push: nothing logs in, nothing is pushed, and it says so
    out, calls = _publish(tmp_path / "e")
    assert calls == [] and "so nothing is pushed" in out
