"""cairn.lock and cairn refresh against a real (small) Debian archive on 127.0.0.1, and
the lock of the example family against Debian's own archive."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from debian.debian_support import Version
from tests.debrepo import publish, serve
from tests.helpers import snapshot
from tests.integration.conftest import EXAMPLE, ROOT, Built, cairn, cairn_json, only
from tests.schemas import validated

from cairn.family.refresh import installed_versions
from cairn.oci.layout import OciLayout
from cairn.platforms import parse_platform

AMD64 = parse_platform("linux/amd64")


def family_with_repo(directory: Path, url: str) -> Path:
    directory.mkdir()
    (directory / "cairn.toml").write_text(
        f"""
[defaults]
platforms = ["linux/amd64"]
source_date_epoch = 1735689600

[images.hello]
packages = ["cairn-hello"]
repositories = [{{ url = "{url}", suite = "local", trusted = true }}]

[images.hello-more]
from = "hello"
packages = ["less"]

[images.other]
"""
    )
    return directory


def refresh_json(fam: Path, *args: str) -> tuple[int, dict[str, Any]]:
    res = subprocess.run(
        [sys.executable, "-m", "cairn", "refresh", str(fam), "--json", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode in (0, 1), res.stderr
    data: dict[str, Any] = validated("refresh", res.stdout)
    schema = json.loads((ROOT / "docs" / "schemas" / "refresh.schema.json").read_text())
    jsonschema.validate(data, schema)
    return res.returncode, data


def updates_of(data: dict[str, Any]) -> dict[str, list[tuple[str, str, str, str]]]:
    return {
        i["image"]: [
            (u["package"], u["installed"], u["available"], u["suite"]) for u in i["updates"]
        ]
        for i in data["images"]
    }


def test_refresh_finds_and_applies_a_new_version(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    publish(repo, {"cairn-hello": "1.0"})
    with serve(repo) as url:
        fam = family_with_repo(tmp_path / "family", url)
        store = fam / "out" / "oci"
        locked = cairn_json("lock", str(fam))
        assert {(i["image"], i["state"]) for i in locked["images"]} == {
            ("hello", "locked"),
            ("hello-more", "locked"),
            ("other", "locked"),
        }
        lock = json.loads((fam / "cairn.lock").read_text())
        assert lock["images"]["hello"]["linux/amd64"]["packages"]["cairn-hello"] == "1.0"
        assert "cairn-hello" not in lock["images"]["other"]["linux/amd64"]["packages"]

        first = cairn_json("build", str(fam))
        assert {p["reason"] for i in first["images"] for p in i["platforms"]} == {"new"}
        assert installed_versions(OciLayout(store), "hello", AMD64)["cairn-hello"] == "1.0"
        code, report = refresh_json(fam, "--check")
        assert (code, report["updates"]) == (0, 0)

        # Debian publishes a fix: the archive now has 1.1 and no longer 1.0
        publish(repo, {"cairn-hello": "1.1"})
        code, report = refresh_json(fam, "--check")
        assert code == 1
        assert updates_of(report) == {
            "hello": [("cairn-hello", "1.0", "1.1", "local")],
            "hello-more": [("cairn-hello", "1.0", "1.1", "local")],
            "other": [],
        }

        # the lock now names a version the archive no longer has: a clear error, no change
        before = snapshot(store)
        res = cairn("build", str(fam), "--image", "hello", "--force", check=False)
        assert res.returncode == 4, res.stderr
        assert "cairn.lock no longer matches Debian's archive" in res.stderr
        assert "cairn-hello 1.0 (got 1.1)" in res.stderr
        assert "cairn lock --update" in res.stderr
        assert snapshot(store) == before

        code, applied = refresh_json(fam)
        assert code == 0
        steps = {
            i["name"]: (p["action"], p["reason"])
            for i in applied["build"]["images"]
            for p in i["platforms"]
        }
        assert steps == {
            "hello": ("build", "packages updated"),
            "hello-more": ("build", "packages updated"),
            "other": ("skip", "unchanged"),
        }
        lock = json.loads((fam / "cairn.lock").read_text())
        assert lock["images"]["hello"]["linux/amd64"]["packages"]["cairn-hello"] == "1.1"
        for image in ("hello", "hello-more"):
            assert installed_versions(OciLayout(store), image, AMD64)["cairn-hello"] == "1.1"
        assert refresh_json(fam, "--check")[0] == 0
        plan = cairn_json("plan", str(fam))
        assert {s["action"] for s in plan["steps"]} == {"skip"}


def test_lock_pins_the_versions_a_build_installs(base: Built, tmp_path: Path) -> None:
    """A lock of the example's base gives the very layers the session built without one;
    a spec change makes its entry stale, and the build says so."""
    fam = tmp_path / "qapm"
    shutil.copytree(EXAMPLE, fam, ignore=shutil.ignore_patterns("out", "cairn.lock"))
    out = cairn("lock", str(fam), *only("base", "base-debug"), "--platform", "linux/amd64")
    assert "locked" in out.stdout
    lock = json.loads((fam / "cairn.lock").read_text())
    entry = lock["images"]["base"]["linux/amd64"]
    assert len(entry["packages"]) == base.platform("base", "linux/amd64")["packages"]
    assert "usrmerge" not in entry["packages"] and "perl" not in entry["packages"]

    store = tmp_path / "oci"
    built = cairn_json(
        "build", str(fam), "-i", "base", "-p", "linux/amd64", "--output", f"oci:{store}"
    )
    assert built["warnings"] == []
    assert installed_versions(OciLayout(store), "base", AMD64) == entry["packages"]
    session = installed_versions(OciLayout(base.store), "base", AMD64)
    if entry["packages"] == session:
        assert (
            built["images"][0]["platforms"][0]["layers"]
            == base.platform("base", "linux/amd64")["layers"]
        )
    else:
        # Debian published fixes between the session's build and this lock: the lock
        # must hold the newer versions, never older ones.
        moved = [n for n, v in entry["packages"].items() if session.get(n) != v]
        assert all(
            n in session and Version(entry["packages"][n]) > Version(session[n]) for n in moved
        ), moved

    spec = fam / "cairn.toml"
    spec.write_text(spec.read_text().replace('"netcat-openbsd"]', '"netcat-openbsd", "jq"]'))
    plan = cairn_json("plan", str(fam), *only("base", "base-debug"), "-p", "linux/amd64")
    assert any("stale for base-debug linux/amd64" in w for w in plan["warnings"])
    again = cairn("lock", str(fam), *only("base", "base-debug"), "--platform", "linux/amd64")
    assert "kept" in again.stdout  # base's entry still answers the spec
    lock = json.loads((fam / "cairn.lock").read_text())
    assert "jq" in lock["images"]["base-debug"]["linux/amd64"]["packages"]


@pytest.mark.parametrize("bad", ["{", '{"lock_version": 99}'])
def test_unreadable_lock_is_a_spec_error(tmp_path: Path, bad: str) -> None:
    fam = tmp_path / "f"
    fam.mkdir()
    (fam / "cairn.toml").write_text("[images.base]\n")
    (fam / "cairn.lock").write_text(bad)
    res = cairn("plan", str(fam), check=False)
    assert res.returncode == 2, res.stderr
    assert "cairn lock --update" in res.stderr
