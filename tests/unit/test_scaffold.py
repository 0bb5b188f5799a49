"""What cairn init renders and what cairn doctor parses, without any tool."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cairn.scaffold import doctor
from cairn.scaffold.dockerfile import parse, stages
from cairn.scaffold.doctor import check_dockerfile, used_services
from cairn.scaffold.family import FamilyImages
from cairn.scaffold.languages import LANGUAGES
from cairn.scaffold.render import Project, dockerfile, justfile, project_files, project_name
from tests.helpers import PROJECT_RECIPES


def project(lang: str, services: tuple[str, ...] = ()) -> Project:
    language = LANGUAGES[lang]
    refs = {
        language.build_image: f"{language.build_image}:1@sha256:{'a' * 64}",
        language.runtime_image: f"{language.runtime_image}:2@sha256:{'b' * 64}",
    }
    return Project("orders", language, FamilyImages("reg.example/qapm", refs), services)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_dockerfiles_are_multi_stage_on_the_family_as_non_root(lang: str, tmp_path: Path) -> None:
    text = dockerfile(project(lang))
    assert text.startswith("# syntax=docker/dockerfile:1\n")
    assert "ARG FAMILY=reg.example/qapm" in text
    froms = [s.image for s in stages(parse(text))]
    assert len(froms) == 2 and all(f.startswith("${FAMILY}/") for f in froms)
    assert "latest" not in text and "@@" not in text
    (tmp_path / "Dockerfile").write_text(text)
    assert check_dockerfile(tmp_path) == []
    # cross-compiled or architecture-neutral builds run on the build platform; Python's not
    assert ("--platform=$BUILDPLATFORM" in text) == (lang != "python")


def test_justfile_names_every_recipe_and_both_platforms() -> None:
    text = justfile(project("go"))
    for recipe in PROJECT_RECIPES:
        assert f"\n{recipe}:\n" in text
    assert 'platforms := env("PLATFORMS", "linux/amd64,linux/arm64")' in text
    assert "set dotenv-load" in text


def test_hello_world_only_into_an_empty_directory() -> None:
    with_hello = project_files(project("go"), with_hello=True)
    assert {"go.mod", "go.sum", "main.go", "main_test.go"} <= set(with_hello)
    assert "module example.com/orders" in with_hello["go.mod"]
    assert set(project_files(project("go"), with_hello=False)) == {
        "Dockerfile",
        ".dockerignore",
        "justfile",
        ".devcontainer/devcontainer.json",
        ".devcontainer/compose.yaml",
    }


def test_instructions_keep_their_first_line() -> None:
    text = "# c\nFROM a AS b\n\nRUN one \\\n  # inside\n  two\nUSER x\n"
    assert [(i.line, i.keyword, i.args) for i in parse(text)] == [
        (2, "FROM", "a AS b"),
        (4, "RUN", "one two"),
        (7, "USER", "x"),
    ]


def test_names_and_service_clients(tmp_path: Path) -> None:
    assert project_name("My Service_2") == "my-service-2"
    # a name inside another package's name is not that package
    (tmp_path / "requirements.txt").write_text("redis-om==0.3\nkafka-python-ng==2.2\n")
    assert used_services(tmp_path) == {"kafka": "requirements.txt"}
    (tmp_path / "go.mod").write_text("require github.com/redis/go-redis/v9 v9.7.0\n")
    assert used_services(tmp_path) == {"kafka": "requirements.txt", "redis": "go.mod"}


def test_every_doctor_rule_is_data_and_every_check_names_a_rule_there() -> None:
    source = Path(doctor.__file__).read_text()
    used = set(re.findall(r'finding\("([A-Z]{2}\d{3})"', source))
    table = doctor.rules()
    assert used == set(table)
    for rule, row in table.items():
        assert set(row) == {"file", "level", "message", "fix"}, rule
        assert row["level"] in ("error", "warning", "info"), rule
