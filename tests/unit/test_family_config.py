"""`cairn config`: every value as cairn resolves it, with the table it comes from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cairn.family.config import describe
from cairn.family.spec import load_family
from tests.schemas import validated

SPEC = """
[defaults]
suite = "bookworm"
env = { LANG = "C.UTF-8", TZ = "UTC" }

[variants.debug]
packages = ["curl"]
env = { DEBUG = "1" }
exclude = ["/usr/share/curl/*"]

[images.base]
packages = ["tzdata"]
repositories = [{ suite = "bookworm-backports" }]
cmd = ["sh"]
env = { TZ = "Asia/Shanghai" }
variants = ["debug"]

[images.app]
from = "base"
packages = ["python3"]
user = "nobody"
"""


def values(family_dir: Path, image: str) -> dict[str, tuple[object, str]]:
    config = describe(load_family(family_dir))
    found = next(i for i in config.images if i.name == image)
    return {v.key: (v.value, v.origin) for v in found.values}


def test_each_value_names_the_table_it_comes_from(tmp_path: Path) -> None:
    (tmp_path / "cairn.toml").write_text(SPEC)
    base = values(tmp_path, "base")
    assert base["suite"] == ("bookworm", "defaults")
    assert base["variant"] == ("apt", "cairn")
    assert base["cmd"] == (["sh"], "images.base")
    assert base["env.TZ"] == ("Asia/Shanghai", "images.base")
    assert base["env.LANG"] == ("C.UTF-8", "defaults")
    assert base["tags"] == (["bookworm"], "defaults")  # the suite's name
    app = values(tmp_path, "app")
    assert app["cmd"] == (["sh"], "images.base")  # inherited: where the parent set it
    assert app["user"] == ("nobody", "images.app")
    assert app["suite"] == ("bookworm", "defaults")
    debug = values(tmp_path, "base-debug")
    assert debug["env.DEBUG"] == ("1", "variants.debug")
    assert debug["env.TZ"] == ("Asia/Shanghai", "images.base")


def test_packages_list_every_ancestor_first(tmp_path: Path) -> None:
    (tmp_path / "cairn.toml").write_text(SPEC)
    config = describe(load_family(tmp_path))
    debug = next(i for i in config.images if i.name == "base-debug")
    assert [(p.value, p.origin) for p in debug.packages] == [
        ("tzdata", "images.base"),
        ("curl", "variants.debug"),
    ]
    assert [i.name for i in config.images] == ["base", "base-debug", "app"]
    assert [(e.value, e.origin) for e in debug.exclude] == [("/usr/share/curl/*", "variants.debug")]
    assert [(r.value, r.origin) for r in debug.repositories] == [
        ("deb http://deb.debian.org/debian bookworm-backports main", "images.base")
    ]


def test_the_json_is_what_its_schema_says(tmp_path: Path) -> None:
    (tmp_path / "cairn.toml").write_text(SPEC)
    res = subprocess.run(
        [sys.executable, "-m", "cairn", "config", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    data = validated("config", res.stdout)
    assert data["images"][0]["table"] == "images.base"
