from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest

from cairn import cli as cli_package
from cairn import schemas
from cairn.errors import BuildError, UsageError
from cairn.family.build import build
from cairn.family.jobs import BuildOptions, Silent, plan_build, plan_jobs
from cairn.family.platform_build import step
from cairn.family.spec import load_family

ROOT = Path(__file__).parents[2]
SPEC = "[defaults]\nplatforms = ['linux/amd64', 'linux/arm64']\n[images.base]\n[images.other]\n"


def cairn(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cairn", *args], capture_output=True, text=True, env=env, check=False
    )


@pytest.fixture
def family_dir(tmp_path: Path) -> Path:
    (tmp_path / "cairn.toml").write_text(SPEC)
    return tmp_path


def test_plan_selects_images_and_overrides_platforms(family_dir: Path) -> None:
    fam = load_family(family_dir)
    assert [f"{i.name} {p.name}" for i, p in plan_jobs(fam, BuildOptions())] == [
        "base linux/amd64",
        "base linux/arm64",
        "other linux/amd64",
        "other linux/arm64",
    ]
    jobs = plan_jobs(fam, BuildOptions(images=("other",), platforms=("linux/arm64",)))
    assert [f"{i.name} {p.name}" for i, p in jobs] == ["other linux/arm64"]
    with pytest.raises(UsageError, match="linux/sparc"):
        plan_jobs(fam, BuildOptions(platforms=("linux/sparc",)))


def test_docker_archive_needs_one_image_and_platform(family_dir: Path) -> None:
    with pytest.raises(
        UsageError, match="holds one image for one platform, and this build makes 4"
    ):
        build(load_family(family_dir), BuildOptions(output=f"docker-archive:{family_dir}/x.tar"))
    with pytest.raises(UsageError, match="cannot write to docker://"):
        build(load_family(family_dir), BuildOptions(output="docker://127.0.0.1:5000/x:1"))
    assert not (family_dir / "x.tar").exists()


def test_docker_archive_of_a_child_points_to_skopeo(tmp_path: Path) -> None:
    (tmp_path / "cairn.toml").write_text("[images.base]\n[images.debug]\nfrom = 'base'\n")
    opts = BuildOptions(
        images=("debug",), platforms=("linux/amd64",), output=f"docker-archive:{tmp_path}/d.tar"
    )
    with pytest.raises(UsageError, match="root images only; debug is built on base") as e:
        build(load_family(tmp_path), opts)
    assert "skopeo copy" in e.value.hint


def test_cli_spec_error_exits_2_and_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "cairn.toml").write_text("[images.base]\nsuite = 'buster'\n")
    res = cairn("build", str(tmp_path))
    assert res.returncode == 2
    assert "images.base.suite: expected one of bookworm" in res.stderr
    assert res.stdout == ""
    assert not (tmp_path / "out").exists()


def test_cli_missing_engine_exits_3_with_install_hint(family_dir: Path) -> None:
    env = {**os.environ, "PATH": "/nonexistent"}
    res = cairn("build", str(family_dir), "--platform", "linux/amd64", "--image", "base", env=env)
    assert res.returncode == 3, res.stderr
    assert "'mmdebstrap' is not installed" in res.stderr
    assert "apt-get install mmdebstrap" in res.stderr
    assert not (family_dir / "out").exists()


def test_cli_version_and_help() -> None:
    assert cairn("--version").stdout.startswith("cairn ")
    assert "--platform" in cairn("build", "--help").stdout


@pytest.mark.parametrize("name", schemas.every_name())
def test_committed_schemas_match_the_result_types(name: str) -> None:
    committed = (ROOT / "docs" / "schemas" / name).read_text()
    assert committed == schemas.render(name), "run: python -m cairn.schemas"
    if name != schemas.SPEC_SCHEMA:
        assert json.loads(committed)["required"][0] == "schema_version"


def test_no_committed_schema_is_left_without_its_type() -> None:
    committed = {p.name for p in (ROOT / "docs" / "schemas").glob("*.json")}
    assert committed == set(schemas.every_name())


def test_the_spec_schema_accepts_the_example_family_and_refuses_a_typo() -> None:
    schema = json.loads((ROOT / "docs" / "schemas" / schemas.SPEC_SCHEMA).read_text())
    family = tomllib.loads((ROOT / "examples" / "qapm" / "cairn.toml").read_text())
    jsonschema.validate(family, schema)
    family["images"]["base"]["suite"] = "trixy"
    with pytest.raises(jsonschema.ValidationError, match="trixy"):
        jsonschema.validate(family, schema)
    del family["images"]["base"]["suite"]
    family["images"]["base"]["pakages"] = ["curl"]
    with pytest.raises(jsonschema.ValidationError, match="pakages"):
        jsonschema.validate(family, schema)


def test_an_error_from_a_build_step_names_the_job_and_the_step(tmp_path: Path) -> None:
    family = load_family(ROOT / "examples" / "qapm")
    opts = BuildOptions(images=("base",), platforms=("linux/amd64",), output=f"oci:{tmp_path}")
    (job,) = plan_build(family, opts)
    with pytest.raises(BuildError) as e, step(job, "compress", Silent(), "compressing"):
        raise BuildError("pigz failed.")
    assert e.value.message == "base linux/amd64, step compress: pigz failed."


def test_an_error_quoting_brackets_from_a_log_is_printed_as_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log's [brackets] are no markup, and its :x: is no emoji (a passwd line)."""

    def failing() -> None:
        raise BuildError(
            'could not find "netavark" in one of [/usr/libexec/podman /usr/lib].\n'
            "RUN echo 'tool:x:10001:10001::/home/tool:/bin/bash' >> /etc/passwd"
        )

    monkeypatch.setattr(cli_package, "app", failing)
    with pytest.raises(SystemExit) as exited:
        cli_package.main()
    assert exited.value.code == 4
    err = capsys.readouterr().err
    assert "one of [/usr/libexec/podman /usr/lib]." in err
    assert "echo 'tool:x:10001:10001::/home/tool:/bin/bash'" in err
